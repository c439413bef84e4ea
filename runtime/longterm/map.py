"""`LongTermMap`: experience-based mapping for months of life in one home.

Each place holds several experiences (keyframes of it under different lighting or layout). Every
frame is localized (global-descriptor retrieval, restricted to the last localized room and its
neighbours first, then geometric verification with the loop-closure verifier); a frame that
fails becomes a new experience of the place at its pose, so memory grows with the variety of
appearances, not with time. Each experience keeps usage statistics (last matched, match count);
over the byte budget the least useful are forgotten (:mod:`.forget`), never the last of a place.
A room in which most recent frames fail is declared changed (:class:`.rooms.ChangeMonitor`): its
old experiences turn stale and are forgotten first. With an OdometryConfig the robot's odometry
carries a pose prior from the last strict localization, and a weaker verification is accepted among
the experiences it allows (:mod:`.odometry`). Saved in the checksummed map format (:mod:`.persist`).
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from pathlib import Path

import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.frontend import Frontend
from homeloc.runtime.longterm.agree import accepts, disagree, frame_rotation
from homeloc.runtime.longterm.colour import NONE, colour_distance, colour_signature
from homeloc.runtime.longterm.config import (
    DESCRIPTOR_BITS,
    BudgetConfig,
    ChangeConfig,
    PlaceConfig,
    SearchConfig,
)
from homeloc.runtime.longterm.forget import plan_forget, usefulness
from homeloc.runtime.longterm.metric import MetricPose, metric_pose
from homeloc.runtime.longterm.odometry import (
    Motion,
    NoiseScale,
    OdometryConfig,
    PosePrior,
    claims_still,
    colocated,
    in_gate,
    metric_contradicts,
    metric_update,
    mounted,
    next_prior,
    planar,
    search_near,
    sees_again,
    wrap,
)
from homeloc.runtime.longterm.results import Localization, LongTermStats, Update
from homeloc.runtime.longterm.rooms import (
    NO_ROOM,
    ChangeMonitor,
    Rooms,
    centre_distance,
    nearest_place,
    places_near,
)
from homeloc.runtime.longterm.store import Tables
from homeloc.runtime.loop_closure.config import VerifyConfig
from homeloc.runtime.loop_closure.ids import check_ids
from homeloc.runtime.loop_closure.index import normalize
from homeloc.runtime.loop_closure.models import MapModels
from homeloc.runtime.loop_closure.results import Candidate
from homeloc.runtime.loop_closure.stored_features import StoredFeatures
from homeloc.runtime.loop_closure.verify import verify_all
from homeloc.runtime.places import GlobalDescriptor


class LongTermMap:
    """Long-term map of one home.

    Args:
        global_model, frontend: GlobalDescriptor / Frontend, ONNX paths, or None (the shipped
            models, loaded when first needed), as for LoopClosureDetector.
        K: 3 x 3 intrinsics (essential-matrix verification; None: fundamental matrix).
        rooms: R x 4 room rectangles [x0, y0, x1, y1] of the floor plan (metres; may be empty).
        place, search, budget, change, verify: settings (:mod:`.config`; None: the defaults;
            VerifyConfig is the loop closure's, with the same calibrated acceptance score; the
            default keeps 4-bit descriptors, :data:`.config.DESCRIPTOR_BITS`).
        learn: add experiences when a frame fails to localize (False: a fixed map).
        odometry: the pose prior from odometry (:mod:`.odometry`; None: off, every frame is
            localized globally).
    """

    def __init__(
        self,
        global_model: GlobalDescriptor | str | os.PathLike | None = None,
        frontend: Frontend | str | os.PathLike | None = None,
        K: np.ndarray | None = None,
        rooms=(),
        *,
        place: PlaceConfig | None = None,
        search: SearchConfig | None = None,
        budget: BudgetConfig | None = None,
        change: ChangeConfig | None = None,
        verify: VerifyConfig | None = None,
        learn: bool = True,
        odometry: OdometryConfig | None = None,
    ) -> None:
        self.place_config = place or PlaceConfig()
        self.search_config = search or SearchConfig()
        self.budget_config = budget or BudgetConfig()
        self.change_config = change or ChangeConfig()
        self.verify_config = verify or VerifyConfig(descriptor_bits=DESCRIPTOR_BITS)
        self.learn = bool(learn)
        self.odometry_config = odometry
        # the robot's belief from odometry; not saved: a reload is a kidnap
        self.prior: PosePrior | None = None
        # how much worse than its model the odometry's heading is (OdometryConfig.adapt_max_scale);
        # saved with the map: the robot's wheels do not change with a reboot
        self.noise = NoiseScale()
        self._previous: Features | None = None  # the frame before (OdometryConfig.still_m); not saved
        self.K = None if K is None else np.asarray(K, np.float64).reshape(3, 3)
        self.rooms = rooms if isinstance(rooms, Rooms) else Rooms(rooms)
        self._models = MapModels(global_model, frontend)
        self._t = Tables()
        self._changes = ChangeMonitor(self.change_config)
        self.clock = 0  # one tick per localization
        self.last_room: int | None = None  # room of the last localization (the search prior)
        self._next_place = 0
        self._models.check(None)

    def __len__(self) -> int:
        return len(self._t)

    @property
    def dim(self) -> int | None:
        return None if self._t.descriptors is None else int(self._t.descriptors.shape[1])

    @property
    def keyframe_ids(self) -> np.ndarray:
        return self._t.cols["ids"].copy()

    def experience(self, kf_id: int) -> dict:
        """The columns of one experience (place, pose, created, last_used, matches, stale)."""
        p = self._t.position(int(kf_id))
        return {name: a[p].copy() for name, a in self._t.cols.items()}

    def places_of_room(self, room: int) -> np.ndarray:
        return self._t.places["place_ids"][self._t.places["place_room"] == room]

    # ---------------------------------------------------------------------------- inputs
    def _inputs(self, x: np.ndarray, features: Features | None) -> tuple[np.ndarray, Features]:
        if not isinstance(x, np.ndarray):
            raise ValueError(f"expected an image or a 1-D descriptor array, got {type(x).__name__}")
        # global_model="frontend": an image becomes the frontend's own descriptor (one forward pass)
        x, features = self._models.one_pass(x, features, self.dim)
        if x.ndim == 1:
            if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all() or not np.any(x):
                raise ValueError("a descriptor must be a finite, non-zero float vector")
            if features is None:
                raise ValueError("a frame given as a descriptor needs its features= (local features)")
            d = normalize(x[None].astype(np.float32))[0]
        else:
            d = self._models.places_model(self.dim).describe(x)[0]
            if features is None:
                features = self._models.keypoint_model(self.dim).extract(x)
        if not isinstance(features, Features):
            raise ValueError(f"features must be runtime.features.Features, got {type(features).__name__}")
        if self.dim is not None and len(d) != self.dim:
            raise ValueError(f"descriptor has {len(d)} dimensions, the map has {self.dim}")
        return d, features

    def belief(self, mount: np.ndarray) -> np.ndarray | None:
        """Where the robot believes it is: the 4 x 4 camera-to-map pose of the pose prior's position
        and heading (:attr:`prior`), with the height and tilt of ``mount`` (the camera's mounting,
        as a camera-to-map pose: :func:`.odometry.mounted`); None without a prior (lost, or no
        OdometryConfig)."""
        return None if self.prior is None else mounted(self.prior.pose, _checked_pose(mount))

    def dock(self, pose: np.ndarray) -> None:
        """The robot is at its charging dock, a known camera-to-map pose (4 x 4 / 3 x 4): the pose
        prior restarts there with ``OdometryConfig.dock_sigma_m`` / ``dock_sigma_deg`` (the next
        frame's motion is the odometry since leaving the dock). Needs an OdometryConfig."""
        if self.odometry_config is None:
            raise ValueError("dock() needs the pose prior: construct the map with odometry=OdometryConfig()")
        self.prior = PosePrior.docked(_checked_pose(pose), self.odometry_config)
        self._previous = None  # the last frame was not taken at the dock

    # ---------------------------------------------------------------------------- localize
    def localize(
        self, x: np.ndarray, features: Features | None = None, room: int | None = None, motion: Motion | None = None
    ) -> Localization | None:  # fmt: skip
        """Localize one frame (image, or global descriptor + ``features``); None when no experience
        verifies (reject rather than guess). Ticks the map clock; a match updates the experience's
        usage statistics. room: search prior (default: the room of the last localization); motion:
        odometry ``(dx, dy, dyaw)`` since the previous frame in its body frame (metres, radians; None:
        unknown, the pose prior is dropped, as it is when the motion says the robot stood still but the
        frame does not verify against the previous one from the same spot: ``OdometryConfig.still_m``,
        ``still_share``), used with an OdometryConfig only."""
        d, f = self._inputs(x, features)
        self.clock += 1
        o = self.odometry_config
        r = self.place_config.radius_m
        previous, self._previous = self._previous, f
        at_dock = False  # just docked and claims it stood still: the frame must confirm it (below)
        if self.prior is not None and motion is not None and claims_still(motion, o):
            # it stood still by the odometry, yet sees something else: moved unseen. Just docked
            # there is no frame to compare with: the dock's own experiences must confirm it
            at_dock = previous is None and o.still_at_dock
            if not at_dock and (
                previous is None or not sees_again(f, previous, self.verify_config, self.K, o)
            ):
                motion = None
        self.prior = (
            None if o is None or self.prior is None else self.prior.moved(motion, o, self.noise.scale(o))
        )
        if not len(self):
            return None
        if self.prior is not None:
            found: dict = {}  # every loop the search verified (metric localization)
            loop, ambiguous, R, strongest = search_near(self.prior, d, f, self._t, self.verify_config, self.K, o,
                                                        self.place_config, self.search_config.top_k, found)  # fmt: skip
            if at_dock and (ambiguous or not self._stood_at_dock(f, loop, R)):
                self.prior = None  # carried off the dock unseen, as far as the frame tells
                return self._settle(self._global(d, f, room))
            # two places verify: the spot looks like another one (OdometryConfig.ambiguous_keeps:
            # the prior kept, the frame a miss), or the prior is wrong (max_misses drops it)
            self.prior = None if ambiguous and not o.ambiguous_keeps else self.prior
            # weak: no accepted experience verified strictly (OdometryConfig.cross_check_strongest),
            # else the one reported, the nearest, did not
            if (
                loop is not None
                and o.cross_check
                and (strongest if o.cross_check_strongest else loop.confidence)
                < self.verify_config.min_confidence
            ):
                # a weak localization stands on the prior alone; odometry that failed unseen (the
                # robot carried, wheels slipping) shows as a strict localization at another place
                at = self._t.position(loop.kf_id)
                radii = 1.0 if o.cross_check_doubt else o.cross_check_radii
                strict = self._strict_elsewhere(d, f, at, radii)
                if strict is not None and not colocated(f, self._t.features[strict.kf_id].features(),
                                                        strict.inliers, self.verify_config, self.K, o):  # fmt: skip
                    strict = None  # the view seen from elsewhere along its line of sight: no other place
                if strict is not None and not in_gate(self.prior, strict.pose, r, o.strict_gate_sigmas):
                    # too far from the prior to be a slip, yet it contradicts the weak localization:
                    # neither is taken (a miss; contradicted max_misses times, the prior is dropped)
                    return self._settle(None)
                if (
                    strict is not None
                    and o.cross_check_doubt
                    and centre_distance(strict.pose[:3], self._t.cols["pose"][at][:3])
                    <= o.cross_check_radii * self.place_config.radius_m
                ):
                    self.prior = None  # slipped odometry or the spot just driven past: no telling
                    return self._settle(None)
                if strict is not None:
                    return self._settle(strict)  # seeds the prior anew there
            if loop is not None or ambiguous:
                loc = None if loop is None else self._localization(loop, "prior")
                metric = None if loc is None else self._metric(f, found)
                if metric is not None and metric_contradicts(self.prior, metric.pose, o):
                    metric = None  # a reset the prior's heading contradicts (metric_reset_heading_sigmas)
                if metric is not None:
                    loc, R = self._nearest_to(metric, loc, found, R)
                return self._settle(loc, R, metric)
        loc = self._global(d, f, room)
        if loc is not None and o is not None and not in_gate(self.prior, loc.pose, r, o.strict_gate_sigmas):
            loc = None  # too far from a prior that holds (OdometryConfig.strict_gate_sigmas): a miss
        if (
            loc is not None
            and self.prior is not None
            and self.prior.heading_contradicts(loc.pose, getattr(loc.geometry, "R", None), o)
        ):
            loc = None  # facing where a prior that holds says it cannot (strict_heading_sigmas): a miss
        return self._settle(loc)

    def _stood_at_dock(self, f: Features, loop, R: np.ndarray | None) -> bool:
        """Does frame ``f``, localized through the dock's prior to ``loop`` (None: not localized;
        ``R``: the rotation its verification measured), confirm a docked robot's claim to have stood
        still (``OdometryConfig.still_at_dock``): it localizes through the dock's prior to an experience
        of the dock's spot (within ``agree_radius_m`` of it) that a rotation-only fit explains
        (:func:`.odometry.colocated`: taken where the robot claims to stand, not a metre away),
        implying the dock's heading within ``heading_sigmas`` of the prior's and a seed's heading
        error (``seed_sigma_deg``: a verified heading; it claims it did not turn either)?"""
        o = self.odometry_config
        if loop is None:
            return False
        pose = self._t.cols["pose"][self._t.position(loop.kf_id)]
        if not in_gate(self.prior, pose, o.agree_radius_m, 0.0):
            return False  # a view of another spot near the dock: the robot may have been carried there
        if not self.prior.heading_agrees(pose, R, replace(o, fit_sigma_deg=o.seed_sigma_deg)):
            return False  # turned while it claims it did not: carried (and turned) off the dock
        kf = self._t.features[loop.kf_id].features()
        return colocated(f, kf, loop.inliers, self.verify_config, self.K, o, matches=loop.putative)

    def _strict_elsewhere(self, d: np.ndarray, f: Features, at: int, radii: float) -> Localization | None:
        """A strict localization (the global acceptance score) to an experience further than
        ``radii`` place radii from the one at position ``at`` whose global descriptor is closer to ``d``
        than that one's (a place that also looks more like the frame: without this condition the
        check overruled right weak localizations with wrong strict ones, docs/longterm_history.md "Session
        21"): the search of :meth:`_search` over those experiences only."""
        t = self._t
        ok = np.isfinite(t.cols["pose"].reshape(len(self), -1)).all(axis=1)
        far = np.zeros(len(self), bool)
        far[ok] = (
            centre_distance(t.cols["pose"][ok][:, :3], t.cols["pose"][at][:3])
            > radii * self.place_config.radius_m
        )
        scores = t.descriptors @ d
        pool = np.flatnonzero(far & (scores > scores[at]))
        loc = self._search(d, f, pool, t.place_room_of(t.cols["place"]), "all", None)
        return loc if loc is not None and loc.confidence >= self.verify_config.min_confidence else None

    def _global(self, d: np.ndarray, f: Features, room: int | None) -> Localization | None:
        """The strict search without a prior: the rooms around ``room`` (default: the last
        localization's) first, then the rest."""
        prior = self.last_room if room is None else int(room)
        place_rooms = self._t.place_room_of(self._t.cols["place"])
        near = np.ones(len(self), bool)
        if self.search_config.restrict_rooms and prior is not None and len(self.rooms):
            near = np.isin(place_rooms, sorted(self.rooms.neighbours(prior)))
        # agreement of weak verifications counts only where the rooms layer agrees too: in the rooms
        # around the last localization (a map without rooms has no such layer to consult)
        agree_rooms = None
        if self.search_config.agree_in_rooms and len(self.rooms):
            agree_rooms = set() if prior is None else self.rooms.neighbours(prior)
        for pool, searched in ((np.flatnonzero(near), "rooms"), (np.flatnonzero(~near), "all")):
            loc = self._search(d, f, pool, place_rooms, "all" if near.all() else searched, agree_rooms)
            if loc is not None:
                break
        return loc

    def _metric(self, f: Features, found: dict) -> MetricPose | None:
        """The frame's pose from PnP against the experiences in ``found`` (kf id -> loop) that keep
        depth: the one with the most inliers, at least ``OdometryConfig.metric_min_inliers`` (None:
        off, or none); the first of those with the most. PnP reuses each verification's matches,
        and skips an experience whose matches with depth cannot beat the best so far."""
        o = self.odometry_config
        if o is None or o.metric_min_inliers is None:
            return None
        best = None
        for k in sorted(found):
            s = self._t.features.get(k)
            if s is None or s.depth is None:
                continue
            pose = self._t.cols["pose"][self._t.position(k)]
            m = metric_pose(f, k, s, pose, self.K, self.verify_config, o.metric_min_inliers,
                            found[k].putative, 0 if best is None else best.inliers)  # fmt: skip
            if m is not None and (best is None or m.inliers > best.inliers):
                best = m
        return best

    def _nearest_to(self, metric: MetricPose, loc: Localization, found: dict, R: np.ndarray | None):
        """The verified experience (``found``) nearest the frame's metric position, viewing within
        ``PlaceConfig.angle_deg`` of its metric heading, as (localization, R): ``loc`` and ``R`` when
        it is already that one or none views so (R of another experience is unknown here: None)."""
        best, at = None, None
        for k in sorted(found):
            e = planar(self._t.cols["pose"][self._t.position(k)])
            turn = abs(float(np.degrees(wrap(e[2] - metric.pose[2]))))
            dist = float(np.hypot(e[0] - metric.pose[0], e[1] - metric.pose[1]))
            if turn <= self.place_config.angle_deg and (best is None or dist < best):
                best, at = dist, k
        if at is None or at == loc.kf_id:
            return loc, R
        return self._localization(found[at], "prior"), None

    def _settle(
        self, loc: Localization | None, R: np.ndarray | None = None, metric: MetricPose | None = None
    ) -> Localization | None:
        """Record a localization (usage statistics) and update the pose prior: only a strict one
        (at the global acceptance score) seeds it; a weaker one through the prior corrects it (R: the
        rotation its verification measured); a frame not localized counts as a miss. metric: the
        frame's own pose (PnP), a measurement of the prior after that (:func:`.odometry.metric_update`)."""
        if loc is not None:
            self._matched(loc)
        if self.odometry_config is not None:
            strict = self.verify_config.min_confidence
            if self.prior is not None and loc is not None and loc.confidence >= strict:
                R_loc = getattr(loc.geometry, "R", None)
                self.noise = self.noise.observed(self.prior, loc.pose, R_loc, self.odometry_config)
            self.prior = next_prior(self.prior, loc, strict, self.odometry_config, R)
            if metric is not None and self.prior is not None:
                self.prior = metric_update(self.prior, metric.pose, self.odometry_config)
        return loc

    def _localization(self, loop, searched: str) -> Localization:
        p = self._t.position(loop.kf_id)
        return Localization(loop.kf_id, int(self._t.cols["place"][p]), int(self._t.place_room_of(self._t.cols["place"][p:p + 1])[0]),
                            loop.score, loop.inliers, float(loop.confidence), loop.geometry,
                            self._t.cols["pose"][p].copy(), searched)  # fmt: skip

    def _search(
        self, d, f, pool: np.ndarray, place_rooms: np.ndarray, searched: str, agree_rooms: set[int] | None
    ) -> Localization | None:
        """The best verified experience of ``pool`` (positions), accepted alone or on agreement
        (of a place in ``agree_rooms``; None: any room)."""
        if not len(pool):
            return None
        s = self.search_config
        scores = self._t.descriptors[pool] @ d
        order = np.argsort(-scores, kind="stable")
        if (
            s.per_place
        ):  # the best experience of each place: one place's many experiences cannot crowd out the rest
            _, first = np.unique(self._t.cols["place"][pool[order]], return_index=True)
            order = order[np.sort(first)]
        order = order[: s.top_k]
        cands = [
            Candidate(int(self._t.cols["ids"][pool[i]]), float(scores[i]))
            for i in order
            if scores[i] >= s.min_score
        ]
        v, agree_at = self.verify_config, s.agree_confidence
        if agree_at is not None:  # weaker single verifications are candidates for agreement
            v = replace(v, min_confidence=min(v.min_confidence, agree_at))
        # one candidate at a time: agreement needs the geometry of every accepted one, not just the best
        loops, log = [], []
        for c in cands[: v.top]:
            one, lg = verify_all(f, [c], self._t.features, v, self.K)
            loops += [] if one is None else [one]
            log += lg
        if not loops:
            return None
        loop = max(loops, key=lambda x: x.confidence)  # the first of the most confident, as verify_all
        p = self._t.position(loop.kf_id)
        if agree_rooms is not None and int(place_rooms[p]) not in agree_rooms:
            agree_at = None  # the rooms layer disagrees: the best must be strong on its own
        place_of = {x.kf_id: int(self._t.cols["place"][self._t.position(x.kf_id)]) for x in log}
        rotations = {x.kf_id: frame_rotation(self._t.cols["pose"][self._t.position(x.kf_id)],
                                             getattr(x.geometry, "R", None)) for x in loops}  # fmt: skip
        strict = [x.kf_id for x in loops if x.confidence >= self.verify_config.min_confidence]
        if s.strict_deg is not None and disagree(strict, rotations, s.strict_deg):
            return None  # a lookalike among the strict matches, and no telling which
        if not accepts(log, loop.confidence, place_of[loop.kf_id], place_of, self.verify_config.min_confidence,
                       agree_at, s.agree_count, rotations, s.agree_deg):  # fmt: skip
            return None
        return self._localization(loop, searched)

    def _matched(self, loc: Localization) -> None:
        p = self._t.position(loc.kf_id)
        c = self._t.cols
        c["matches"][p] += 1
        c["last_used"][p] = self.clock
        c["stale"][p] = 0
        self.last_room = loc.room

    # ---------------------------------------------------------------------------- learn
    def observe(
        self, x: np.ndarray, features: Features | None = None, pose: np.ndarray | None = None, kf_id: int | None = None,
        motion: Motion | None = None, colour: np.ndarray | None = None, mount: np.ndarray | None = None,
        depth: np.ndarray | None = None,
    ) -> Update:  # fmt: skip
        """Localize a frame and update the map as a robot does on every keyframe.

        pose: the robot's current camera-to-map pose estimate (4 x 4, e.g. its SLAM's), used to file a
        new experience under a place and a room and to find the places whose remembered colours its
        colour is compared with; kf_id: the id a new experience gets (default: one more than the
        largest so far); motion: the odometry since the previous frame (:meth:`localize`); colour:
        the frame's :func:`.colour.colour_signature` (default: computed when ``x`` is an RGB image;
        None for a descriptor: no colour check); mount: without ``pose``, the map's own belief after
        this frame's localization stands for it (:meth:`belief` with this camera mounting: a robot
        with only odometry and this map; None while the prior is dropped, when a new experience is
        filed without a pose: it can be found globally, never through a prior); depth: per keypoint of
        the frame's local features, the z-depth (metres; NaN: unknown) a new experience keeps for
        metric localization (``OdometryConfig.metric_min_inliers``; :class:`.StoredFeatures`)."""
        colour = _colour_of(x, colour)
        d, f = self._inputs(x, features)
        pose = _checked_pose(pose)
        loc = self.localize(d, f, motion=motion)
        if pose is None and mount is not None:
            pose = self.belief(mount)
        # failing at a known place hints at a change; at a new one it does not (localize adds no place)
        known = self._known_place(pose)
        room = self.rooms.room_of(pose) if pose is not None else (self.last_room if loc is None else loc.room)
        room = NO_ROOM if room is None else room
        since = self._changes.record(room, loc is not None, self.clock) if loc is not None or known else None
        signal = None if since is None else "failures"
        shift = self._colour_shift(colour, pose, room)
        if since is None and shift is not None:
            since = self._changes.record_colour(room, shift, self.clock)
            signal = None if since is None else "colour"
        if since is not None:
            self._mark_stale(room, since)
        added = place = None
        weak = loc is not None and loc.confidence < self.place_config.refresh_below
        if (loc is None or weak) and self.learn and len(f) >= self.place_config.min_keypoints:
            added = self._next_id() if kf_id is None else kf_id
            at = self._refresh_place(loc, pose, room) if weak else None
            place = self.add_experience(added, d, f, pose, place=at, colour=colour, depth=depth)
        elif colour is not None and self.learn:
            self._remember_colour(colour, pose, room, None if loc is None else loc.place)
        forgotten = self.forget()
        return Update(loc, added, place, tuple(forgotten), None if since is None else room, signal)

    def _refresh_place(self, loc: Localization, pose: np.ndarray | None, room: int) -> int | None:
        """The place a weakly localized frame's new experience joins: the localization's when the
        frame's pose is unknown or lies within that place (``PlaceConfig.radius_m`` and
        ``angle_deg`` of its anchor); else None, the place nearest the pose or a new one there.
        Filed by the localization alone, a patrol whose every frame localizes weakly to the last
        one chains a whole home into one place (sessions 19-37: the odometry map held one place on
        three of six rendered homes), and the places layer (rooms, colours, forgetting) is lost."""
        if pose is None:
            return loc.place
        pl = self._t.places
        near = places_near(pl["place_anchor"], pl["place_room"], pose, room, self.place_config)
        return loc.place if loc.place in set(pl["place_ids"][near].tolist()) else None

    def _colour_shift(self, colour: np.ndarray | None, pose: np.ndarray | None, room: int) -> float | None:
        """Distance of ``colour`` to the closest signature remembered at the places around ``pose``
        (:func:`.rooms.places_near`) at least ``ChangeConfig.colour_min_age`` frames ago; None
        without signature or pose, or with fewer than
        ``ChangeConfig.colour_min_refs`` signatures there, or there since the room's last declaration."""
        c, cols = self.change_config, self._t.colours
        if colour is None or pose is None or c.colour_shift is None:
            return None
        pl = self._t.places
        around = pl["place_ids"][
            places_near(pl["place_anchor"], pl["place_room"], pose, room, self.place_config)
        ]
        old = cols["colour_clock"] <= self.clock - c.colour_min_age  # not this patrol's own (ChangeConfig)
        near = np.isin(cols["colour_place"], around) & old
        # after a declaration, only once the new look is remembered (a false declaration keeps the
        # old memory and needs no more; a true one would fire again under each light not seen since)
        since = cols["colour_clock"] >= self._changes.declared.get(room, -1)
        if near.sum() < c.colour_min_refs or (near & since).sum() < c.colour_min_refs:
            return None
        return float(colour_distance(colour, cols["colour_signature"][near]).min())

    def _remember_colour(
        self, colour: np.ndarray, pose: np.ndarray | None, room: int, place: int | None
    ) -> None:
        """Remember the frame's colour at the place nearest ``pose`` (else ``place``, its localization's)."""
        pl = self._t.places
        at = (
            None
            if pose is None
            else nearest_place(pl["place_anchor"], pl["place_room"], pose, room, self.place_config)
        )
        place = place if at is None else int(pl["place_ids"][at])
        if place is not None and self.change_config.colour_shift is not None:
            self._t.add_colour(place, self.clock, colour, self.change_config.colour_per_place)

    def _known_place(self, pose: np.ndarray | None) -> bool:
        if pose is None:
            return False
        pl = self._t.places
        return (
            nearest_place(
                pl["place_anchor"], pl["place_room"], pose, self.rooms.room_of(pose), self.place_config
            )
            is not None
        )

    def _next_id(self) -> int:
        return int(self._t.cols["ids"].max()) + 1 if len(self) else 0

    def _mark_stale(self, room: int, since: int) -> None:
        """The experiences of ``room`` not used since ``since`` (the change) turn stale; those
        added or matched since show the room as it is now."""
        c = self._t.cols
        in_room = self._t.place_room_of(c["place"]) == room
        c["stale"][in_room & (c["last_used"] < since)] = 1

    def add_experience(
        self,
        kf_id: int,
        x: np.ndarray,
        features: Features | None = None,
        pose: np.ndarray | None = None,
        place: int | None = None,
        colour: np.ndarray | None = None,
        depth: np.ndarray | None = None,
    ) -> int:
        """Add a keyframe as an experience (a mapping run, or what :meth:`observe` does when a frame
        fails to localize); returns its place id: ``place`` when given (an existing place), else an
        existing place near ``pose``, else a new one. colour, depth: as for :meth:`observe`, colour
        remembered at that place, depth kept only by a map that localizes metrically (bytes spent
        only where used)."""
        kf_id = int(check_ids([kf_id])[0])
        if np.any(self._t.cols["ids"] == kf_id):
            raise ValueError(f"keyframe {kf_id} is already in the map")
        colour = _colour_of(x, colour)
        d, f = self._inputs(x, features)
        pose = _checked_pose(pose)
        room = self.rooms.room_of(pose)
        pl = self._t.places
        if place is not None:
            if not np.any(pl["place_ids"] == place):
                raise ValueError(f"place {place} is not in the map")
            at = int(np.flatnonzero(pl["place_ids"] == place)[0])
        else:
            at = nearest_place(pl["place_anchor"], pl["place_room"], pose, room, self.place_config)
        if at is None:
            place = self._next_place
            self._next_place += 1
            self._t.add_place(place, pose, room)
        else:
            place = int(pl["place_ids"][at])
        row = {"ids": kf_id, "place": place, "pose": np.full((3, 4), np.nan) if pose is None else pose[:3],
               "created": self.clock, "last_used": self.clock, "matches": 0, "stale": 0}  # fmt: skip
        v = self.verify_config
        o = self.odometry_config
        depth = depth if o is not None and o.metric_min_inliers is not None else None
        stored = (
            StoredFeatures.compress(f, v.max_stored_features, v.descriptor_bits, depth)
            if v.store_features
            else None
        )
        self._t.append(row, d, stored)
        if colour is not None and self.change_config.colour_shift is not None:
            self._t.add_colour(place, self.clock, colour, self.change_config.colour_per_place)
        return place

    # ---------------------------------------------------------------------------- budget
    def forget(self, max_bytes: int | None = None) -> list[int]:
        """Forget the least useful experiences until the map fits ``max_bytes`` (default: the
        budget); returns the forgotten keyframe ids."""
        b = self.budget_config
        limit = b.max_bytes if max_bytes is None else int(max_bytes)
        if limit is None or not len(self):
            return []
        c = self._t.cols
        score = usefulness(c["matches"], c["last_used"], c["stale"], self.clock, b.half_life, b.stale_penalty,
                           c["created"], b.grace)  # fmt: skip
        plan = plan_forget(c["place"], self._t.sizes(), score, self._t.fixed_bytes, limit)
        return self._t.drop(plan.drop) if len(plan.drop) else []

    def stats(self) -> LongTermStats:
        t = self._t
        sizes = t.sizes()
        return LongTermStats(experiences=len(t), places=len(t.places["place_ids"]), rooms=len(self.rooms),
                             stale=int(t.cols["stale"].sum()), with_features=len(t.features),
                             fixed_bytes=t.fixed_bytes, bytes_per_experience=float(sizes.mean()) if len(t) else 0.0,
                             total_bytes=int(t.fixed_bytes + sizes.sum()), budget_bytes=self.budget_config.max_bytes,
                             clock=self.clock)  # fmt: skip

    # ---------------------------------------------------------------------------- persist
    def save(self, path: str | os.PathLike) -> Path:
        """Write the map atomically in the checksummed map format (:mod:`.persist`)."""
        from homeloc.runtime.longterm import persist

        return persist.save(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, global_model=None, frontend=None, check_model: bool = True
    ) -> LongTermMap:
        """Read a map written by :meth:`save`, or a loop-closure map (each keyframe becomes the one
        experience of its own place). MapFormatError (a ValueError naming the file) when damaged;
        ValueError when ``check_model`` and a given model is not the map's."""
        from homeloc.runtime.longterm import persist

        return persist.load(cls, path, global_model, frontend, check_model)

    def settings(self) -> dict:
        """The settings as plain data (what the map file stores)."""
        groups = {"place": self.place_config, "search": self.search_config, "budget": self.budget_config,
                  "change": self.change_config, "verify": self.verify_config, "odometry": self.odometry_config}  # fmt: skip
        out = {name: None if cfg is None else {f.name: getattr(cfg, f.name) for f in fields(cfg)}
               for name, cfg in groups.items()}  # fmt: skip
        return out | {"learn": self.learn}

    def __repr__(self) -> str:
        s = self.stats()
        return f"LongTermMap({s.experiences} experiences, {s.places} places, {s.total_bytes} bytes)"


def _colour_of(x, colour: np.ndarray | None) -> np.ndarray | None:
    """The frame's colour signature: ``colour`` checked, else computed from an RGB image ``x``."""
    if colour is None:
        rgb = isinstance(x, np.ndarray) and x.ndim == 3 and x.shape[2] == 3 and x.dtype == np.uint8
        return colour_signature(x) if rgb else None
    c = np.asarray(colour)
    if c.shape != NONE.shape or c.dtype != NONE.dtype or not c.any():
        raise ValueError(
            f"colour must be a colour_signature (uint16 {NONE.shape}, not all zeros), got {c.dtype} {c.shape}"
        )
    return c


def _checked_pose(pose) -> np.ndarray | None:
    if pose is None:
        return None
    p = np.asarray(pose, np.float64)
    if p.shape not in ((4, 4), (3, 4)) or not np.isfinite(p).all():
        raise ValueError(f"pose must be a finite 4 x 4 or 3 x 4 camera-to-map matrix, got shape {p.shape}")
    return p

"""Sequence-aware localization: a pose prior from the last strict localization plus wheel odometry.

A patrolling robot knows its planar motion between frames (wheel odometry, drifting with distance
and turning). After a strict localization (a verification at the global acceptance score) the
frame's planar pose is known to within the place radius (position) and a few degrees (the verified
relative rotation composed with the experience's stored pose); odometry carries it to the next
frames with growing uncertainty. While the prior holds, only experiences consistent with it are
candidates, and a weaker verification is accepted among them (the lookalike rooms that make weak
verifications unsafe globally are excluded), when the heading its geometry implies is the one the
odometry predicts. The prior is dropped (kidnapped: global localization only) when its uncertainty
exceeds a bound, after ``max_misses`` frames in a row it did not localize (a frame whose
candidates of two places verify, ambiguous, is one; before session 32 it dropped the prior:
``OdometryConfig.ambiguous_keeps``), or when the motion is unknown (None) or claims the robot
stood still while the frame does not show it (:func:`claims_still`, :func:`sees_again`: a robot carried
unseen). Only a strict localization seeds it, never one the prior made possible: a weak one only
corrects it, by a Kalman update of the position and heading that takes the frame as near its
experience and viewing as its verification measured (:func:`next_prior`; see :class:`.config.OdometryConfig` ``recentre``), and a
strict one found through the prior updates it likewise, as a measurement with the seed's sigmas
(``fuse_strict``): a prior surer than a seed keeps what it knew. A robot at
its charging dock (a pose known since the map was made) restarts the prior there, tightly
(:meth:`PosePrior.docked`): the first frames of a round need no strict localization. Odometry
worse than its model shows in the heading innovations of strict localizations: the map learns a
scale on the model's noise from them (:class:`NoiseScale`, ``OdometryConfig.adapt_max_scale``) and
the prior grows at it.

Poses are planar ``(x, y, yaw)`` (metres, radians): the camera centre on the floor plane and the
heading of its optical axis (camera-to-map poses, OpenCV axes, map z up). A motion is
``(dx, dy, dyaw)`` in the body frame of the previous pose, optionally followed by the distance driven
and the total turning on the way (``path_m``, ``turned_rad``: a robot's odometry integrates them; the
noise grows with them, not with the straight line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.frontend import estimate_rotation, match_features
from homeloc.runtime.longterm.agree import frame_rotation
from homeloc.runtime.longterm.config import OdometryConfig, PlaceConfig
from homeloc.runtime.longterm.within import p_within_angle, p_within_radius
from homeloc.runtime.loop_closure.config import VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate, LoopClosure
from homeloc.runtime.loop_closure.verify import (
    frame_matches,
    in_frame,
    query_features,
    verify_all,
    verify_one,
)

Motion = tuple[float, ...]  # (dx, dy, dyaw) or (dx, dy, dyaw, path_m, turned_rad)
MIN_ROTATION_INLIERS = 6  # a rotation-only fit below it says nothing (2-point samples)


def planar(poses: np.ndarray) -> np.ndarray:
    """N x 3 ``(x, y, yaw)`` of N camera-to-map poses (N x 3 x 4 / N x 4 x 4, or one: 3)."""
    p = np.asarray(poses, np.float64)
    one = p.ndim == 2
    p = p.reshape(-1, *p.shape[-2:])
    out = np.stack([p[:, 0, 3], p[:, 1, 3], np.arctan2(p[:, 1, 2], p[:, 0, 2])], axis=1)
    return out[0] if one else out


def mounted(p: np.ndarray, mount: np.ndarray) -> np.ndarray:
    """The 4 x 4 camera-to-map pose at planar pose ``p`` (``(x, y, yaw)``) of a camera mounted as in
    ``mount`` (a camera-to-map pose of it, 4 x 4 / 3 x 4): its height and its tilt about the
    horizontal axes come from ``mount``, its position and heading from ``p``
    (``planar(mounted(p, m)) == p``). A robot knows how its camera is mounted, not where it is."""
    m = np.asarray(mount, np.float64)
    turn = float(wrap(p[2] - planar(m)[2]))
    c, s = math.cos(turn), math.sin(turn)
    out = np.eye(4)
    out[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ m[:3, :3]
    out[:3, 3] = (p[0], p[1], m[2, 3])
    return out


def wrap(a):
    """Angles (radians) in [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def relative_motion(a: np.ndarray, b: np.ndarray) -> Motion:
    """The motion from planar pose ``a`` to ``b`` in ``a``'s body frame."""
    c, s = math.cos(a[2]), math.sin(a[2])
    dx, dy = b[0] - a[0], b[1] - a[1]
    return (c * dx + s * dy, -s * dx + c * dy, float(wrap(b[2] - a[2])))


def compose(a: np.ndarray, m: Motion) -> np.ndarray:
    """Planar pose ``a`` moved by ``m`` (inverse of :func:`relative_motion`)."""
    c, s = math.cos(a[2]), math.sin(a[2])
    return np.array([a[0] + c * m[0] - s * m[1], a[1] + s * m[0] + c * m[1], float(wrap(a[2] + m[2]))])


def path_of(m: Motion) -> tuple[float, float]:
    """(distance driven in metres, total turning in radians) of motion ``m``: at least the straight
    line and the net rotation."""
    d, turn = math.hypot(m[0], m[1]), abs(float(wrap(m[2])))
    return (max(d, m[3]), max(turn, m[4])) if len(m) >= 5 else (d, turn)


def claims_still(m: Motion, cfg: OdometryConfig) -> bool:
    """Does odometry ``m`` say the robot stood still (``cfg.still_m`` / ``still_deg``; None: never)?"""
    if cfg.still_m is None:
        return False
    d, turn = path_of(m)
    return d <= cfg.still_m and math.degrees(turn) <= cfg.still_deg


def sees_again(
    f: Features, previous: Features, verify: VerifyConfig, K, cfg: OdometryConfig | None = None
) -> bool:
    """Does frame ``f`` verify at the strict score against ``previous``, the frame before it (what a
    robot that stood still sees again), and, with ``cfg.still_share`` set (and K, ``cfg.rotation_px``),
    from the same spot: a rotation-only fit over its matches explains at least ``cfg.still_share``
    of the verification's inliers (a robot carried a metre along its line of sight sees the same
    things, with parallax)?"""
    q, order = query_features(f, verify)
    p, _ = query_features(previous, verify)
    m = match_features(q, p, verify.max_distance)
    v, _, _ = verify_one(q, Candidate(0, 1.0), p, verify, K, m)
    if not v.accepted or cfg is None or cfg.still_share is None:
        return v.accepted
    return colocated(f, p, v.inliers, verify, K, cfg, cfg.still_share, in_frame(m, order))


def _sigmas(m: Motion, cfg: OdometryConfig) -> tuple[float, float]:
    """(metres, degrees): one standard deviation of the odometry error over motion ``m``."""
    d, turn = path_of(m)
    return cfg.trans_frac * d, math.hypot(cfg.rot_frac * math.degrees(turn), cfg.yaw_per_m_deg * d)


def noisy_motion(m: Motion, cfg: OdometryConfig, rng: np.random.Generator, scale: float = 1.0) -> Motion:
    """Motion ``m`` as a robot's odometry would report it: the noise model of ``cfg`` (times
    ``scale``) drawn from ``rng`` (the evaluator adds it to the true relative motion)."""
    s_m, s_deg = _sigmas(m, cfg)
    e = rng.standard_normal(3)
    return (m[0] + scale * s_m / math.sqrt(2) * e[0], m[1] + scale * s_m / math.sqrt(2) * e[1],
            float(wrap(m[2] + math.radians(scale * s_deg) * e[2])), *m[3:])  # fmt: skip


def _implied_yaw(experience_pose: np.ndarray, R: np.ndarray | None) -> float | None:
    """Heading of the frame implied by a verification (:func:`.agree.frame_rotation`)."""
    rot = frame_rotation(np.asarray(experience_pose, np.float64), R)
    return None if rot is None else math.atan2(rot[1, 2], rot[0, 2])


@dataclass(frozen=True)
class PosePrior:
    """Where the robot is (planar ``pose``), one standard deviation of its position (``sigma_m``)
    and heading (``sigma_deg``), the frames in a row it did not localize (``misses``) and the
    model's odometry heading variance (degrees squared, before :class:`NoiseScale`'s scale) added
    since its heading was last measured (``since_deg2``: what a heading innovation tests)."""

    pose: np.ndarray
    sigma_m: float
    sigma_deg: float
    misses: int = 0
    since_deg2: float = 0.0

    @classmethod
    def seed(cls, experience_pose: np.ndarray, R: np.ndarray | None, cfg: OdometryConfig) -> PosePrior | None:
        """The prior after a strict localization to an experience (3 x 4 pose, NaN: unknown) whose
        verification gave rotation ``R`` (frame -> experience camera; None: unknown)."""
        yaw = _implied_yaw(experience_pose, R)
        if yaw is None:  # without the verified rotation the heading is only known to the view angle
            return None
        p = planar(experience_pose)
        p[2] = yaw
        return cls(p, cfg.seed_sigma_m, cfg.seed_sigma_deg)

    @classmethod
    def docked(cls, dock_pose: np.ndarray, cfg: OdometryConfig) -> PosePrior:
        """The prior of a robot at its dock (camera-to-map pose, known when the map was made)."""
        return cls(planar(dock_pose), cfg.dock_sigma_m, cfg.dock_sigma_deg)

    def moved(self, m: Motion | None, cfg: OdometryConfig, scale: float = 1.0) -> PosePrior | None:
        """The prior after odometry ``m`` (None: unknown motion, dropped); None when its
        uncertainty exceeds the bounds. Position error grows by the odometry's (the model's times
        ``scale``: :class:`NoiseScale`) and by the heading error swept over the distance. With
        ``cfg.lost_heading_confidence`` a heading sigma past ``max_sigma_deg`` keeps the prior
        (heading lost, :meth:`heading_lost`; its sigma at most 180 deg) until its position sigma
        passes ``max_sigma_m``."""
        if m is None:
            return None
        s_m, s_deg = _sigmas(m, cfg)
        d = path_of(m)[0]  # the heading error sweeps over the path driven
        sigma_m = math.sqrt(self.sigma_m**2 + (scale * s_m) ** 2 + (d * math.radians(self.sigma_deg)) ** 2)
        sigma_deg = math.hypot(self.sigma_deg, scale * s_deg)
        keeps = cfg.lost_heading_confidence is not None  # the position, past the heading's bound
        if sigma_m > cfg.max_sigma_m or (sigma_deg > cfg.max_sigma_deg and not keeps):
            return None
        sigma_deg = min(sigma_deg, 180.0)  # a lost heading: at most every direction
        return replace(self, pose=compose(self.pose, m), sigma_m=sigma_m, sigma_deg=sigma_deg,
                       since_deg2=self.since_deg2 + s_deg**2)  # fmt: skip

    def heading_lost(self, cfg: OdometryConfig) -> bool:
        """Is the heading unknown (sigma past ``cfg.max_sigma_deg``) while the position is kept
        (``cfg.lost_heading_confidence``)?"""
        return cfg.lost_heading_confidence is not None and self.sigma_deg > cfg.max_sigma_deg

    def missed(self, cfg: OdometryConfig) -> PosePrior | None:
        """The prior after a frame it did not localize (None: too many in a row)."""
        return None if self.misses + 1 >= cfg.max_misses else replace(self, misses=self.misses + 1)

    def candidates(self, poses: np.ndarray, cfg: OdometryConfig, place: PlaceConfig) -> np.ndarray:
        """Bool mask over N experience poses (N x 3 x 4; NaN: never a candidate): consistent with
        the prior (centre and view direction within the place's tolerance widened by the
        uncertainty)."""
        ok = np.isfinite(np.asarray(poses, np.float64).reshape(len(poses), -1)).all(axis=1)
        out = np.zeros(len(poses), bool)
        if not ok.any():
            return out
        q = planar(np.asarray(poses)[ok])
        near = (
            np.hypot(q[:, 0] - self.pose[0], q[:, 1] - self.pose[1])
            <= place.radius_m + cfg.gate_sigmas * self.sigma_m
        )
        ang = np.degrees(np.abs(wrap(q[:, 2] - self.pose[2])))
        out[ok] = near & (ang <= place.angle_deg + cfg.gate_sigmas * self.sigma_deg)
        return out

    def heading_contradicts(
        self, experience_pose: np.ndarray, R: np.ndarray | None, cfg: OdometryConfig
    ) -> bool:
        """Does a strict verification (rotation ``R`` against an experience) imply a heading further
        than ``cfg.strict_heading_sigmas`` x hypot(the prior's heading sigma, ``fit_sigma_deg``) from
        the predicted one? False when the bound is off (None) or the heading unknown."""
        off = self._heading_off_deg(experience_pose, R)
        if cfg.strict_heading_sigmas is None or off is None:
            return False
        return off > cfg.strict_heading_sigmas * math.hypot(self.sigma_deg, cfg.fit_sigma_deg)

    def heading_agrees(self, experience_pose: np.ndarray, R: np.ndarray | None, cfg: OdometryConfig) -> bool:
        """Does a verification (rotation ``R`` against an experience) imply the predicted heading,
        within ``heading_sigmas`` of the prior's and the fit's own error (``fit_sigma_deg``)?"""
        off = self._heading_off_deg(experience_pose, R)
        return off is not None and off <= cfg.heading_sigmas * math.hypot(self.sigma_deg, cfg.fit_sigma_deg)

    def _heading_off_deg(self, experience_pose: np.ndarray, R: np.ndarray | None) -> float | None:
        """Degrees between the predicted heading and the one a verification implies (None: unknown)."""
        yaw = _implied_yaw(experience_pose, R)
        return None if yaw is None else math.degrees(abs(float(wrap(yaw - self.pose[2]))))


@dataclass(frozen=True)
class NoiseScale:
    """By how much the odometry's heading error exceeds its model, from the heading innovations of
    strict localizations (``OdometryConfig.adapt_max_scale``; an adaptive Kalman filter's process
    noise). Each innovation estimates the square of the scale: its square less the parts the
    odometry did not cause, over the model's odometry variance since the prior's heading was last
    measured; it is weighted by u^2, u the share of its expected variance that is the odometry's
    (the least-variance weighting: after one frame's drive an innovation says almost nothing about
    the odometry, after a long drive from the dock nearly only that). ``excess``: the weighted sum
    of the estimates, ``model``: of the weights. The scale is sqrt((excess + w) / (model + w)) in
    [1, ``adapt_max_scale``], w = ``adapt_weight``: a robot whose odometry is as modelled keeps the
    model (1), never a narrower one."""

    excess: float = 0.0
    model: float = 0.0

    def scale(self, cfg: OdometryConfig | None) -> float:
        """The factor on the model's odometry noise (1 when adapting is off)."""
        if cfg is None or cfg.adapt_max_scale is None:
            return 1.0
        w = cfg.adapt_weight
        if self.model + w <= 0:
            return 1.0
        k2 = (self.excess + w) / (self.model + w)
        return float(min(max(math.sqrt(max(k2, 0.0)), 1.0), cfg.adapt_max_scale))

    def observed(
        self, prior: PosePrior, experience_pose: np.ndarray, R: np.ndarray | None, cfg: OdometryConfig
    ) -> NoiseScale:
        """After a strict localization to an experience (3 x 4 pose) whose verification gave
        rotation ``R`` (None: the heading unknown, no evidence) while ``prior`` held (its sigma
        grown at today's :meth:`scale` since its heading was last measured). An innovation counts
        at most ``cfg.adapt_clip_sigmas`` sigmas (of the prior's and a strict heading's error)."""
        off = None if cfg.adapt_max_scale is None else prior._heading_off_deg(experience_pose, R)
        if off is None or prior.since_deg2 <= 0:
            return self
        k = self.scale(cfg)
        # the prior's variance when its heading was last measured, plus a strict heading's error
        rest = max(prior.sigma_deg**2 - k**2 * prior.since_deg2, 0.0) + cfg.seed_sigma_deg**2
        # clipped at adapt_clip_sigmas of the prior's own sigma: a wrong place's heading counts as a
        # bad innovation, not as a hundred (at 2.5 sigmas the clip keeps 0.98 of a normal's variance)
        expected = rest + k**2 * prior.since_deg2
        innov2 = min(off**2, cfg.adapt_clip_sigmas**2 * expected)
        u2 = (k**2 * prior.since_deg2 / expected) ** 2
        return NoiseScale(self.excess + u2 * (innov2 - rest) / prior.since_deg2, self.model + u2)


def search_near(prior: PosePrior, d: np.ndarray, f: Features, t, verify: VerifyConfig, K, cfg: OdometryConfig,
                place: PlaceConfig, top_k: int, found: dict | None = None,
                ) -> tuple[LoopClosure | None, bool, np.ndarray | None, float | None]:  # fmt: skip
    """The best experience among the prior's candidates (:meth:`PosePrior.candidates`, the
    ``top_k`` closest by global descriptor ``d``; ``verify.top`` of them verified) accepted at
    ``cfg.min_confidence`` with the predicted heading or, when none is, on agreement: at least
    ``cfg.agree_count`` experiences within ``cfg.agree_radius_m`` of each other (views of one spot)
    each verifying at ``cfg.agree_confidence`` with the predicted heading and :func:`agree_floor`
    inliers. Returns (loop or None,
    ambiguous: another accepted experience is not the same place as the best, i.e. its pose is
    further than ``cfg.conflict_radii`` place radii (or the view angle) from the best's, or a verification of another
    place's experience implying another heading scored higher than the best, or on agreement
    reached ``cfg.agree_confidence``,
    the rotation the loop's verification implies (:func:`measured_rotation`; None without a loop),
    the best score among the accepted experiences, all within ``cfg.conflict_radii`` place radii
    of the loop's (None without a loop): the loop reported is the nearest, not always the best).
    A loop below ``verify.min_confidence`` (no accepted experience verified strictly) whose
    experience lies outside the weak gate (:func:`in_gate`, ``cfg.weak_gate_sigmas``) is not
    reported (None, not ambiguous). Under a prior whose heading is lost
    (:meth:`PosePrior.heading_lost`) only a loop whose best accepted score reaches
    ``cfg.lost_heading_confidence`` is reported: the prior then vouches for the position alone.
    t: the map's :class:`.store.Tables`; found: when given, filled with every loop verified (kf id ->
    :class:`LoopClosure`, at the search's floors: any heading, any place)."""
    loop, ambiguous, rotations, strongest = _search_near(prior, d, f, t, verify, K, cfg, place, top_k, found)
    if loop is not None and prior.heading_lost(cfg) and strongest < cfg.lost_heading_confidence:
        return None, False, None, None  # weak evidence needs a heading to agree with
    if (
        loop is not None
        and strongest < verify.min_confidence
        and not in_gate(prior, t.cols["pose"][t.position(loop.kf_id)], place.radius_m, cfg.weak_gate_sigmas)
    ):
        return None, False, None, None  # a place the robot is more likely outside than in
    return loop, ambiguous, None if loop is None else rotations.get(loop.kf_id), strongest


def in_gate(
    prior: PosePrior | None, experience_pose: np.ndarray, radius_m: float, sigmas: float | None
) -> bool:
    """Does the experience at ``experience_pose`` (3 x 4) lie within ``radius_m + sigmas *
    prior.sigma_m`` of the predicted position? True without a prior or a gate (``sigmas`` None),
    and for an experience without a pose (NaN: nothing to tell): ``OdometryConfig.weak_gate_sigmas``
    and ``strict_gate_sigmas``."""
    if prior is None or sigmas is None:
        return True
    e = planar(experience_pose)
    if not np.isfinite(e[:2]).all():
        return True
    return bool(math.hypot(e[0] - prior.pose[0], e[1] - prior.pose[1]) <= radius_m + sigmas * prior.sigma_m)


def _search_near(prior: PosePrior, d: np.ndarray, f: Features, t, verify: VerifyConfig, K, cfg: OdometryConfig,
                 place: PlaceConfig, top_k: int, found: dict | None = None,
                 ) -> tuple[LoopClosure | None, bool, dict, float | None]:  # fmt: skip
    """:func:`search_near`, with the measured rotation of every loop it verified (kf id -> R)."""
    rotations: dict = {}
    pool = np.flatnonzero(prior.candidates(t.cols["pose"], cfg, place))
    if not len(pool):
        return None, False, rotations, None
    scores = t.descriptors[pool] @ d
    order = np.argsort(-scores, kind="stable")[: min(top_k, verify.top)]
    strict = min(verify.min_confidence, cfg.min_confidence)  # accepted alone among the candidates
    v = replace(
        verify, min_confidence=strict if cfg.agree_confidence is None else min(strict, cfg.agree_confidence)
    )
    v = relaxed(v, cfg, prior)
    ok, weak, other = [], [], []  # other: accepted verifications implying another heading
    passed = []  # every experience whose verification passed the floors, at any score
    agreed = False
    for i in order:
        p = int(pool[i])
        loop, log = verify_all(f, [Candidate(int(t.cols["ids"][p]), float(scores[i]))], t.features, v, K)
        if log and log[0].passed:
            passed.append(p)
        if loop is None:
            continue
        if found is not None:
            found[loop.kf_id] = loop
        R = rotations[loop.kf_id] = measured_rotation(f, t.features[loop.kf_id].features(), loop, v, K, cfg)
        # under the verifier's inlier floor a verification is evidence only for agreement
        strong = loop.confidence >= strict and loop.inliers >= verify.min_inliers
        if not prior.heading_agrees(t.cols["pose"][p], R, cfg):
            other.append((loop, p))
        elif strong:
            ok.append((loop, p))
        elif cfg.agree_confidence is not None and loop.confidence >= cfg.agree_confidence:
            weak.append((loop, p))
    if not ok and len(weak) >= cfg.agree_count:
        # views of one spot agreeing: experiences within agree_radius_m of the strongest weak one
        # (on a walk along a line of sight the spots behind verify weakly too, each a metre apart)
        b = planar(t.cols["pose"][max(weak, key=lambda x: x[0].confidence)[1]])
        q = planar(t.cols["pose"][[p for _, p in weak]])
        if (
            np.count_nonzero(np.hypot(q[:, 0] - b[0], q[:, 1] - b[1]) <= cfg.agree_radius_m)
            >= cfg.agree_count
        ):
            ok, agreed = weak, True  # every weak one then counts in the checks below (one place)
    elif ok:  # a strong match conflicts only with a stronger one (below the floor: weak evidence)
        other = [(lp, p) for lp, p in other if lp.confidence >= strict]
    if not ok:
        single = _single(prior, weak, passed, t, cfg, place)
        return single, False, rotations, None if single is None else single.confidence
    best, at = max(ok, key=lambda x: x[0].confidence)
    strongest = best.confidence

    def elsewhere(q: np.ndarray, a: np.ndarray) -> np.ndarray:  # poses q not at the place of pose a
        far = _dist(q, a) > cfg.conflict_radii * place.radius_m
        # cfg.conflict_by_position: at one position another view direction is not another spot
        return far if cfg.conflict_by_position else far | (_turn_deg(q[:, 2], a[2]) > place.angle_deg)

    # A better match implying another heading conflicts only when it is another place's
    # experience: one of the same place says nothing about where the robot is, and weak fits
    # often trade rotation for translation (OdometryConfig.fit_sigma_deg).
    better = [p for lp, p in other if agreed or lp.confidence > best.confidence]
    if better and elsewhere(planar(t.cols["pose"][better]), planar(t.cols["pose"][at])).any():
        return None, True, rotations, None
    q = planar(t.cols["pose"][[p for _, p in ok]])
    if cfg.nearest:  # all verify the heading: the score ranks appearance, the prior says where
        best, at = _nearest(ok, t, prior, cfg, place)
    if np.any(elsewhere(q, planar(t.cols["pose"][at]))):
        return None, True, rotations, None
    if cfg.nearest and cfg.nearest_weak and not agreed and weak:
        # the place is settled: its weaker views count too (a strong match a metre away does not
        # make the robot stand there; OdometryConfig.nearest_weak)
        far = elsewhere(planar(t.cols["pose"][[p for _, p in weak]]), planar(t.cols["pose"][at]))
        ok = ok + [x for x, out in zip(weak, far, strict=True) if not out]
        q = planar(t.cols["pose"][[p for _, p in ok]])
        best, at = _nearest(ok, t, prior, cfg, place)
    if cfg.conflict_by_position and _turn_deg(planar(t.cols["pose"][at])[2], prior.pose[2]) > place.angle_deg:
        # one position seen in several directions: the one viewing nearest the predicted heading
        best = ok[int(np.argmin(_turn_deg(q[:, 2], prior.pose[2])))][0]
    return best, False, rotations, strongest


def measured_rotation(f: Features, kf: Features, loop: LoopClosure, v: VerifyConfig, K, cfg: OdometryConfig):
    """The rotation (frame -> experience camera) that ``loop``, a verification of frame ``f``
    against keyframe ``kf`` with ``v``, implies: a rotation-only fit over all its matches
    (``cfg.rotation_px``; see :class:`.config.OdometryConfig`), else (off, fewer than
    ``MIN_ROTATION_INLIERS`` inliers, no K) the essential matrix's R (None: unknown). The fit
    takes the verification's own matches (``loop.putative``) when the loop keeps them."""
    R = getattr(loop.geometry, "R", None)
    rot = _rotation_fit(f, kf, v, K, cfg.rotation_px, loop.putative)
    return rot.R if rot is not None and rot.num_inliers >= MIN_ROTATION_INLIERS else R


def colocated(
    f: Features,
    kf: Features,
    inliers: int,
    v: VerifyConfig,
    K,
    cfg: OdometryConfig,
    share: float | None = None,
    matches: np.ndarray | None = None,
) -> bool:
    """Does a strict verification of frame ``f`` against keyframe ``kf`` (``inliers`` inliers,
    verified with ``v``) say the frame was taken where the keyframe was: a rotation-only fit
    (``cfg.rotation_px``) over its matches explains at least ``share`` of the inliers (None:
    ``cfg.cross_check_colocated``)? True when the check is off (None) or cannot be made (no K,
    ``rotation_px`` None). matches: the verification's own (indices of ``f``; None: match again)."""
    share = cfg.cross_check_colocated if share is None else share
    if share is None or K is None or cfg.rotation_px is None:
        return True
    rot = _rotation_fit(f, kf, v, K, cfg.rotation_px, matches)
    return rot is not None and rot.num_inliers >= share * max(int(inliers), 1)


def _rotation_fit(f: Features, kf: Features, v: VerifyConfig, K, px: float | None,
                  matches: np.ndarray | None = None):  # fmt: skip
    """The rotation-only fit (``px`` pixels) over the matches a verification with ``v`` makes
    between frame ``f`` and keyframe ``kf`` (``matches``: those the verification made, indices of
    ``f``; None: match again); None without K or ``px``, with fewer than ``MIN_ROTATION_INLIERS``
    matches, or when the fit fails."""
    if px is None or K is None:
        return None
    matches = frame_matches(f, kf, v) if matches is None else matches
    if len(matches) < MIN_ROTATION_INLIERS:
        return None
    rot = estimate_rotation(f, kf, matches, K, px)
    return rot if rot.ok else None


def _dist(q: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Planar distances (metres) of poses ``q`` (N x 3: x, y, yaw) from the position of ``a``."""
    return np.hypot(q[:, 0] - a[0], q[:, 1] - a[1])


def _nearest(found: list, t, prior: PosePrior, cfg: OdometryConfig, place: PlaceConfig):
    """The (loop, position) pair of ``found`` whose experience lies nearest the prior's pose: in
    position, and with ``cfg.nearest_heading`` in position and heading, each in units of the
    prior's sigma, widened by how revisits of one spot spread (``cfg.view_sigma_m``,
    ``cfg.view_sigma_deg``; see :class:`.config.OdometryConfig`). With ``cfg.nearest_place`` the
    one most probably within the place's box of the frame under the prior
    (:func:`.within.p_within_radius` x :func:`.within.p_within_angle`, the prior's own sigmas),
    that distance breaking ties."""
    q = planar(t.cols["pose"][[p for _, p in found]])
    dist, turn = _dist(q, prior.pose), _turn_deg(q[:, 2], prior.pose[2])
    # an experience's position is not the frame's either: keyframes stand apart along the patrol
    sm = math.hypot(prior.sigma_m, cfg.view_sigma_m)
    cost = (dist / max(sm, 1e-9)) ** 2
    if cfg.nearest_heading:
        # an experience's heading is not the frame's: one spot is revisited from other directions
        sd = math.hypot(prior.sigma_deg, cfg.view_sigma_deg)
        cost = cost + (turn / max(sd, 1e-9)) ** 2
    if cfg.nearest_place:
        # the place is a box (radius AND angle), the cost an ellipse: rank by the box's probability
        p = p_within_radius(dist, place.radius_m, prior.sigma_m) * p_within_angle(
            turn, place.angle_deg, prior.sigma_deg
        )
        cost = np.where(p >= p.max() * (1.0 - 1e-6), cost, np.inf)  # equally probable: the nearer
    return found[int(np.argmin(cost))]


def _turn_deg(a, b):
    """Absolute angle (degrees) between headings ``a`` and ``b`` (radians; arrays broadcast)."""
    return np.degrees(np.abs(wrap(np.asarray(a) - b)))


def _single(prior: PosePrior, weak: list, passed: list[int], t, cfg: OdometryConfig,
            place: PlaceConfig) -> LoopClosure | None:  # fmt: skip
    """The last resort of :func:`search_near` when nothing else localized: the weak verification
    (``weak``: (loop, position) pairs implying the predicted heading) nearest the predicted position
    that scores ``cfg.single_confidence``, while the prior's position is known to
    ``cfg.agree_max_sigma_m`` and no experience further than ``cfg.single_doubt_m`` from it passed
    the verifier's floors at any score (a second spot that verifies at all is reason to doubt)."""
    c = cfg.single_confidence
    if c is None or prior.sigma_m > cfg.agree_max_sigma_m:
        return None
    singles = [(lp, p) for lp, p in weak if lp.confidence >= c]
    if not singles:
        return None
    loop, at = _nearest(singles, t, prior, cfg, place)
    doubt = _dist(planar(t.cols["pose"][passed]), planar(t.cols["pose"][at])) > cfg.single_doubt_m
    return None if doubt.any() else loop


def relaxed(verify: VerifyConfig, cfg: OdometryConfig, prior: PosePrior | None = None) -> VerifyConfig:
    """The verifier's floors among the prior's candidates: the inlier ratio ``cfg.min_inlier_ratio``
    and the inliers of :func:`agree_floor` under ``prior`` (None: the loosest, under a prior whose
    position is known; the evaluator's noise floor is measured with it)."""
    if cfg.min_inlier_ratio is not None:
        verify = replace(verify, min_inlier_ratio=min(verify.min_inlier_ratio, cfg.min_inlier_ratio))
    known = PosePrior(np.zeros(3), 0.0, 0.0) if prior is None else prior
    return replace(verify, min_inliers=agree_floor(known, verify.min_inliers, cfg))


def agree_floor(prior: PosePrior, min_inliers: int, cfg: OdometryConfig) -> int:
    """The inliers an agreeing verification needs under ``prior``: ``cfg.agree_min_inliers`` while
    the prior's position is known to ``cfg.agree_max_sigma_m``, else the verifier's
    ``min_inliers``. Weaker single pieces of evidence are safe only when the prior leaves no other
    spot among the candidates."""
    low = cfg.agree_min_inliers
    if low is None or cfg.agree_confidence is None or prior.sigma_m > cfg.agree_max_sigma_m:
        return min_inliers
    return min(min_inliers, low)


def _measured(prior: PosePrior, xy: np.ndarray, sigma_m: float, yaw: float | None, sigma_deg: float):
    """The Kalman update of ``prior`` by a measured position ``xy`` (one sigma ``sigma_m``) and,
    unless None (or the prior's heading is exact), heading ``yaw`` (``sigma_deg``): (pose,
    sigma_m, sigma_deg) after it."""
    g = prior.sigma_m**2 / (prior.sigma_m**2 + sigma_m**2)
    pose = prior.pose.copy()
    pose[:2] += g * (xy - pose[:2])
    out_deg = prior.sigma_deg
    if yaw is not None and prior.sigma_deg > 0:
        h = prior.sigma_deg**2 / (prior.sigma_deg**2 + sigma_deg**2)
        pose[2] = float(wrap(pose[2] + h * float(wrap(yaw - pose[2]))))
        out_deg = prior.sigma_deg * math.sqrt(1.0 - h)
    return pose, prior.sigma_m * math.sqrt(1.0 - g), out_deg


def _fused(prior: PosePrior, loc, cfg: OdometryConfig) -> PosePrior:
    """The prior after a strict localization through it (``OdometryConfig.fuse_strict``): the seed
    :meth:`PosePrior.seed` would give, as a measurement (``seed_sigma_m``, ``seed_sigma_deg``)
    fused with the prior by the Kalman update; a prior surer than a seed keeps most of what it
    knew (a seed would put the robot at the experience, which can be a metre from the frame)."""
    seed = PosePrior.seed(loc.pose, getattr(loc.geometry, "R", None), cfg)
    if seed is None or not np.isfinite(seed.pose).all():
        return replace(prior, misses=0)
    return PosePrior(*_measured(prior, seed.pose[:2], seed.sigma_m, float(seed.pose[2]), seed.sigma_deg))


def metric_update(prior: PosePrior, pose: np.ndarray, cfg: OdometryConfig) -> PosePrior:
    """The prior after the frame's metric pose ``pose`` (``(x, y, yaw)``, PnP:
    :mod:`.metric`), a measurement with ``cfg.metric_sigma_m`` / ``metric_sigma_deg`` of error:
    fused by the Kalman update, or, further than ``cfg.metric_reset_sigmas`` x hypot(the prior's
    sigma, the measurement's) from the prior's position, taken as the pose (the odometry failed
    unseen: a confident prior would keep most of its error through a Kalman update)."""
    p = np.asarray(pose, np.float64)
    if _resets(prior, p, cfg):
        return replace(prior, pose=p.copy(), sigma_m=cfg.metric_sigma_m,
                       sigma_deg=min(prior.sigma_deg, cfg.metric_sigma_deg), misses=0, since_deg2=0.0)  # fmt: skip
    xy_yaw, s_m, s_deg = _measured(prior, p[:2], cfg.metric_sigma_m, float(p[2]), cfg.metric_sigma_deg)
    return replace(prior, pose=xy_yaw, sigma_m=s_m, sigma_deg=s_deg, misses=0, since_deg2=0.0)


def metric_contradicts(prior: PosePrior, pose: np.ndarray, cfg: OdometryConfig) -> bool:
    """Would the frame's metric pose ``pose`` (``(x, y, yaw)``) reset the prior
    (:func:`metric_update`) while its heading lies more than ``cfg.metric_reset_heading_sigmas`` x
    hypot(the prior's heading sigma, ``cfg.metric_sigma_deg``) from the prior's? False when either
    setting is off. With a factor of 1 or more a lost heading (sigma 180 deg) contradicts nothing."""
    k = cfg.metric_reset_heading_sigmas
    p = np.asarray(pose, np.float64)
    if k is None or not _resets(prior, p, cfg):
        return False  # off, or fused: the Kalman update weighs it
    turn = math.degrees(abs(float(wrap(p[2] - prior.pose[2]))))
    return turn > k * math.hypot(prior.sigma_deg, cfg.metric_sigma_deg)


def _resets(prior: PosePrior, p: np.ndarray, cfg: OdometryConfig) -> bool:
    """Is metric position ``p`` further than ``cfg.metric_reset_sigmas`` x hypot(the prior's sigma,
    the measurement's) from the prior's (:func:`metric_update` then takes it as the pose)?"""
    r = cfg.metric_reset_sigmas
    return r is not None and math.hypot(p[0] - prior.pose[0], p[1] - prior.pose[1]) > r * math.hypot(
        prior.sigma_m, cfg.metric_sigma_m
    )


def heading_sigma(
    loc, cfg: OdometryConfig, prior: PosePrior | None = None, yaw: float | None = None
) -> float:
    """Degrees (one sigma) of heading ``yaw`` (radians) that a weak localization ``loc`` implies,
    as a measurement: ``cfg.seed_sigma_deg`` when its verification has ``cfg.sure_inliers`` inliers
    or more (a rotation fit over that many is about as good as a strict one's) and ``yaw`` lies
    within ``cfg.sure_gate_sigmas`` x hypot(``prior``'s heading sigma, ``seed_sigma_deg``) of the
    prior's heading (a fit that absorbed parallax is an outlier: the fit's error then), else
    ``cfg.fit_sigma_deg``."""
    sure = cfg.sure_inliers is not None and int(getattr(loc, "inliers", 0)) >= cfg.sure_inliers
    if sure and prior is not None and yaw is not None:
        bound = cfg.sure_gate_sigmas * math.hypot(prior.sigma_deg, cfg.seed_sigma_deg)
        sure = float(_turn_deg(yaw, prior.pose[2])) <= bound
    return cfg.seed_sigma_deg if sure else cfg.fit_sigma_deg


def next_prior(
    prior: PosePrior | None, loc, strict: float, cfg: OdometryConfig, R: np.ndarray | None = None
) -> PosePrior | None:
    """The prior after a frame: seeded anew by a strict localization ``loc`` (a
    :class:`.results.Localization` with confidence >= ``strict``; with ``cfg.fuse_strict`` one
    found through the prior is fused with it instead, :func:`_fused`), kept by a weaker one (misses
    reset; with ``cfg.recentre`` its position moves toward the experience's, with
    ``cfg.recentre_shrinks`` its sigma shrinks by the same Kalman update, and with
    ``cfg.recentre_heading`` its heading is updated likewise from the heading that ``R``, the
    rotation the weak verification measured (:func:`search_near`), implies, with the error of
    :func:`heading_sigma`), one miss more when the
    frame did not localize (None)."""
    if loc is not None and loc.confidence >= strict:
        if cfg.fuse_strict and prior is not None and getattr(loc, "searched", None) == "prior":
            return _fused(prior, loc, cfg)
        return PosePrior.seed(loc.pose, getattr(loc.geometry, "R", None), cfg)
    if prior is None:
        return None
    if loc is None:
        return prior.missed(cfg)
    e = planar(np.asarray(loc.pose, np.float64))
    if not cfg.recentre or not np.isfinite(e).all():
        return replace(prior, misses=0)
    # the weak localization as a measurement of the position (sigma seed_sigma_m: the frame is
    # somewhere around its experience): the mean moves by the Kalman gain; with cfg.recentre_shrinks
    # the variance shrinks by it too (the Kalman update), else the sigma is kept (before session 11)
    # the heading the verification implies, as a measurement with the fit's own error
    # (heading_sigma: fit_sigma_deg, or a strict one's for a fit over sure_inliers inliers); it
    # passed the heading check, so it is within a few sigma of the prior's
    yaw = _implied_yaw(loc.pose, R) if cfg.recentre_heading and R is not None else None
    pose, sigma, sigma_deg = _measured(
        prior, e[:2], cfg.seed_sigma_m, yaw, heading_sigma(loc, cfg, prior, yaw)
    )
    sigma = sigma if cfg.recentre_shrinks else prior.sigma_m
    since = prior.since_deg2 if yaw is None else 0.0  # the heading measured: a new start
    return replace(prior, pose=pose, sigma_m=sigma, sigma_deg=sigma_deg, misses=0, since_deg2=since)

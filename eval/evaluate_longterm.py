"""`homeloc-evaluate longterm`: months of a home replayed through the long-term map, day by day.

Loop 1 (:func:`run_home`) runs the product path as the robot would: for every frame in day order
``Frontend.extract`` + ``GlobalDescriptor.describe`` (timed once, shared), then each map under
test (:mod:`.longterm_methods`: the long-term map, a static map of the first day, an
append-everything map pruned to the same budget) localizes the frame and updates itself. After
each day every map is saved with the records so far (``OUT/state/<home>/``): a killed run
resumes at the next day and reproduces the same records (timings aside, which are measured anew).
Every localization is judged as it is recorded (:class:`PlaceJudge`, the rendered poses and
depth); between them :func:`add_evidence` measures each frame's noise floor and which
localizations are seen above it (:mod:`.longterm_evidence`); loop 2 (:func:`day_rows`, pure) turns
the records into the per-day rows.

Correct place (the GT tolerance, reported in summary.json): the keyframe's camera centre is
within ``tolerance_m`` (1 m) of the frame's, its view direction within ``tolerance_deg`` (45 deg:
the rendered cameras see 75 deg across, so two views 45 deg apart still share their middle; the
renderer's patrol turns the camera by up to ~30 deg between visits of one waypoint), and both are
in the same room or, across a doorway, the views overlap (:class:`PlaceJudge`). Any other
localization is false. ``success`` and ``false`` are fractions of the
day's frames; ``covered`` is the share of frames for which the map held a keyframe within the
tolerance when the frame arrived (the best any map could do).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.longterm import LongTermHome, read_longterm
from homeloc.data_synthesis.render.products import covisibility
from homeloc.eval.config import LongTermEvalConfig, prepare_out, set_threads
from homeloc.eval.errors import EvalError
from homeloc.eval.longterm_belief import belief_line, belief_summary
from homeloc.eval.longterm_evidence import FAR_M, floor_frame, noise_floors, seen
from homeloc.eval.longterm_kidnaps import FAULTS, kidnap_line, kidnap_summary
from homeloc.eval.longterm_methods import (
    METHODS,
    Method,
    dock_pose,
    is_kidnapped,
    is_slipped,
    keypoint_depth,
    kidnapped,
    make_methods,
    simulated_motion,
    slipped,
    starts_docked,
)
from homeloc.eval.longterm_targets import target_check, targets_line
from homeloc.eval.longterm_timing import timing_line, timing_summary
from homeloc.eval.longterm_visibility import VISIBLE_SHARE, event_visibility, visible
from homeloc.eval.plots import plot_changes, plot_longterm
from homeloc.eval.report import markdown_table, write_json, write_pairs_csv, write_table
from homeloc.runtime.io import atomic_write, read_image
from homeloc.runtime.longterm import ChangeConfig, OdometryConfig, PlaceConfig, SearchConfig
from homeloc.runtime.longterm.colour import colour_signature
from homeloc.runtime.longterm.config import MIN_FIT_INLIERS
from homeloc.runtime.longterm.odometry import Motion, relaxed
from homeloc.runtime.longterm.rooms import Rooms, centre_distance, view_angle_deg
from homeloc.runtime.loop_closure import VerifyConfig

log = logging.getLogger(__name__)

ONE_PASS = "frontend"  # --places-model: the frontend's own global descriptor (MapModels.FRONTEND)
MIN_OVERLAP = 0.3  # co-visibility that makes two views across a doorway one place (the loop export's)


# ------------------------------------------------------------------------------------ judging
def within(query: np.ndarray, kf_poses: np.ndarray, tol_m: float, tol_deg: float) -> np.ndarray:
    """For each keyframe pose (N x 4 x 4 or N x 3 x 4): camera centre within ``tol_m`` of the
    query's and view direction within ``tol_deg``."""
    kf_poses = np.asarray(kf_poses, np.float64).reshape(-1, *np.shape(kf_poses)[-2:])
    if not len(kf_poses):
        return np.zeros(0, bool)
    return (centre_distance(kf_poses, query[:3]) <= tol_m) & (view_angle_deg(kf_poses, query[:3]) <= tol_deg)


class PlaceJudge:
    """Is keyframe k (a frame index) the place of frame i? Within the pose tolerance and in the same
    room, or, when the rooms differ (a doorway: the two camera centres straddle the line between
    two room rectangles), the frame's view overlaps the keyframe's by ``min_overlap`` (share of
    the frame's pixels seen unoccluded by the keyframe, from the rendered depth:
    ``render.products.covisibility``)."""

    def __init__(
        self, home: LongTermHome, tol_m: float, tol_deg: float, min_overlap: float = MIN_OVERLAP
    ) -> None:
        self.frames, self.tol_m, self.tol_deg, self.min_overlap = home.frames, tol_m, tol_deg, min_overlap
        self.poses = np.stack([f.pose for f in home.frames])
        rooms = Rooms(home.rooms)
        self.room = np.array([rooms.room_of(p) for p in self.poses])
        self._overlap: dict[tuple[int, int], float] = {}

    def same(self, i: int, kfs: np.ndarray) -> np.ndarray:
        """Per keyframe index of ``kfs``: the place of frame ``i``?"""
        kfs = np.asarray(kfs, np.int64)
        near = within(self.poses[i], self.poses[kfs], self.tol_m, self.tol_deg)
        out = near & (self.room[kfs] == self.room[i])
        for j in np.flatnonzero(near & ~out):
            out[j] = self.overlap(i, int(kfs[j])) >= self.min_overlap
        return out

    def overlap(self, i: int, k: int) -> float:
        if (i, k) not in self._overlap:
            self._overlap[(i, k)] = covisibility(self.frames[i], self.frames[k])
        return self._overlap[(i, k)]

    def verdict(self, i: int, kf: int | None) -> str | None:
        """ "correct" / "false" for a localization of frame ``i`` to keyframe ``kf``, None when rejected."""
        if kf is None:
            return None
        return "correct" if self.same(i, np.array([kf]))[0] else "false"


# ------------------------------------------------------------------------------------ loop 1
def _models(config: LongTermEvalConfig):
    """(place model, frontend); ``--places-model frontend`` (the default): ("frontend", the one-pass
    frontend), whose ``Features.global_descriptor`` is every map's place descriptor; ``places``: the
    shipped separate place model; else a place ONNX."""
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.places import GlobalDescriptor

    if config.places_model == ONE_PASS:
        return ONE_PASS, Frontend(config.keypoints_model, threads=config.threads, global_descriptor=True)
    model = None if config.places_model in (None, "places") else config.places_model
    return GlobalDescriptor(model, threads=config.threads), Frontend(
        config.keypoints_model, threads=config.threads
    )


def _verify(config: LongTermEvalConfig) -> VerifyConfig:
    """Every map's verification: the runtime defaults with the evaluation's overrides."""
    v = VerifyConfig(
        top=config.verify_top, rotation=config.verify_rotation, descriptor_bits=config.descriptor_bits
    )
    if config.max_stored_features is not None:
        v = replace(v, max_stored_features=config.max_stored_features)
    return v if config.min_confidence is None else replace(v, min_confidence=config.min_confidence)


def _search(config: LongTermEvalConfig) -> SearchConfig:
    """The long-term map's retrieval and acceptance: the runtime defaults with the evaluation's
    overrides (at least 5 candidates, at least as many as are verified)."""
    s = SearchConfig(top_k=max(5, config.verify_top), per_place=config.per_place,
                     agree_confidence=config.agree_confidence, agree_count=config.agree_count,
                     agree_deg=config.agree_deg)  # fmt: skip
    return s if config.strict_deg is None else replace(s, strict_deg=config.strict_deg)


# --prior-<name> options that override OdometryConfig.<name> as given (None: the runtime's)
PRIOR_OPTIONS = ("agree_confidence", "single_confidence", "single_doubt_m", "conflict_by_position",
                 "conflict_radii", "view_sigma_deg", "nearest_weak", "fuse_strict", "view_sigma_m",
                 "cross_check_radii", "cross_check_doubt", "recentre", "recentre_shrinks", "recentre_heading",
                 "nearest_heading", "nearest_place", "cross_check", "cross_check_strongest", "still_at_dock",
                 "ambiguous_keeps", "max_sigma_m", "max_sigma_deg")  # fmt: skip
# ... and those where 0 turns the setting off (None): the verifier's inlier floor, E's R, any strict match
PRIOR_ZERO_OFF = ("agree_min_inliers", "rotation_px", "cross_check_colocated", "still_share", "sure_inliers",
                  "adapt_max_scale", "metric_min_inliers")  # fmt: skip
# ... and those where inf turns it off (None; 0 is a setting): no gate beyond the candidates'
PRIOR_INF_OFF = ("weak_gate_sigmas", "strict_gate_sigmas", "strict_heading_sigmas", "lost_heading_confidence",
                 "metric_reset_heading_sigmas")  # fmt: skip


def _off(name: str, v):
    """An override of ``OdometryConfig.<name>``, None where its value means off (PRIOR_ZERO_OFF, PRIOR_INF_OFF)."""
    if name in PRIOR_ZERO_OFF:
        return v or None
    return None if name in PRIOR_INF_OFF and v == math.inf else v


def _odometry(config: LongTermEvalConfig) -> OdometryConfig | None:
    """The ``odometry`` map's pose prior (None: ``--odometry`` off): the runtime defaults with the
    evaluation's overrides (``--prior-single-confidence 1`` is off too: no verification scores 1)."""
    if not config.odometry:
        return None
    o = OdometryConfig()
    o = o if config.fit_sigma_deg is None else replace(o, fit_sigma_deg=config.fit_sigma_deg)
    given = {
        name: getattr(config, f"prior_{name}") for name in PRIOR_OPTIONS + PRIOR_ZERO_OFF + PRIOR_INF_OFF
    }
    given = {name: _off(name, v) for name, v in given.items() if v is not None}
    try:
        o = replace(o, **given)
    except ValueError as e:  # name the option, not the runtime's field (its message: "<field> must ...")
        named = [n for n in given if str(e).startswith(f"{n} must ")]
        raise EvalError(f"--prior-{named[0].replace('_', '-')}: {e}" if named else str(e)) from None
    if config.prior_still_check is False:
        o = replace(o, still_m=None)
    return o if config.prior_confidence is None else replace(o, min_confidence=config.prior_confidence)


def _load_state(state: Path) -> dict | None:
    p = state / "progress.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _checkpoint(state: Path, day: int, methods: dict[str, Method], progress: dict) -> None:
    """Save every map for ``day``, then the records (atomically, last: they name the maps), then
    remove the previous day's maps."""
    old = dict(progress.get("maps", {}))
    maps = {name: f"day{day:04d}_{name}.hlmap" for name in methods}
    for name, m in methods.items():
        m.save(state / maps[name])
    progress.update(day=day, maps=maps)
    atomic_write(state / "progress.json", json.dumps(progress, sort_keys=True))
    for f in set(old.values()) - set(maps.values()):
        (state / f).unlink(missing_ok=True)


def run_home(home: LongTermHome, config: LongTermEvalConfig, places, frontend, state: Path) -> dict:
    """Replay one home; returns {"frames": [record per frame], "days": [map info per (day, method)]}."""
    state.mkdir(parents=True, exist_ok=True)
    judge = PlaceJudge(home, config.tolerance_m, config.tolerance_deg)
    days = home.days[: config.max_days]
    progress = _load_state(state) or {"frames": [], "days": []}
    saved = {k: state / v for k, v in progress.get("maps", {}).items()}
    place = None if config.refresh_below is None else PlaceConfig(refresh_below=config.refresh_below)
    odo = _odometry(config)
    methods = make_methods(
        places,
        frontend,
        home.K,
        home.rooms,
        config.budget_bytes,
        days[0],
        saved,
        place,
        _verify(config),
        _search(config),
        config.stale_penalty,
        odo,
        None if config.change_failures is None else ChangeConfig(major_share=config.change_failures),
        belief=config.odometry_map_poses == "belief",
    )
    done = progress.get("day", -1)
    todo = [i for i, f in enumerate(home.frames) if f.day in days and f.day > done]
    if done >= 0:
        log.info("%s: resuming after day %d (%d frames left)", home.name, done, len(todo))
    # the dock: the renderer's, or assumed where the map's first frame was taken (the map's origin)
    dock = dock_pose(home, config.odometry_path) if odo is not None and config.odometry_dock else None
    # a kidnap / a wheel slip since the last dock (--odometry-kidnap / --odometry-slip), carried over a resume
    last = progress["frames"][-1] if progress["frames"] else {}
    carried, slips = bool(last.get("carried")), bool(last.get("slipped_since"))
    for day in sorted({home.frames[i].day for i in todo}):
        idx = [i for i in todo if home.frames[i].day == day]
        for i in tqdm(idx, desc=f"{home.name} day {day}", unit="frame", leave=False):
            motion = _odometry_step(home, i, config, odo, dock, methods)
            noise = config.odometry_depth_noise if odo is not None and odo.metric_min_inliers else None
            rec = _frame(home, i, judge, methods, places, frontend, motion, noise, config.odometry_seed)
            if odo is not None and (
                motion is None or (dock is not None and starts_docked(home, i, config.odometry_gap))
            ):
                carried = slips = False  # the prior is dropped (motion unknown) or re-seeded at the dock
            # the frames the robot was carried to / the wheels slipped on the way to; a kidnap on the
            # same step as a slip reports no motion at all: not a slip
            kid = motion is not None and is_kidnapped(i, config.odometry_seed, config.odometry_kidnap)
            slip = (
                motion is not None and is_slipped(i, config.odometry_seed, config.odometry_slip) and not kid
            )
            if odo is not None and config.odometry_kidnap > 0:
                rec["kidnapped"] = kid
                carried = rec["carried"] = carried or kid  # a kidnap since the last dock
            if odo is not None and config.odometry_slip > 0:
                rec["slipped"] = slip
                slips = rec["slipped_since"] = slips or slip
            progress["frames"].append(rec)
        news = {d["day"]: d.get("new_large_changes", []) for d in home.info.get("days", [])}.get(day, [])
        progress["days"] += [
            {
                "home": home.name,
                "day": day,
                "method": n,
                "map_bytes": m.nbytes(),
                "new_large_changes": news,
                **m.info(),
            }
            for n, m in methods.items()
        ]
        _checkpoint(state, day, methods, progress)
        log.info("%s day %d: %s", home.name, day, _day_line(progress["frames"], day))
    for row in progress["days"]:
        row["file_bytes"] = None
    for name, f in progress["maps"].items():  # the last day's map files, as saved
        [r for r in progress["days"] if r["method"] == name][-1]["file_bytes"] = (state / f).stat().st_size
    return progress


def _odometry_step(home, i, config: LongTermEvalConfig, odo, dock, methods: dict[str, Method]) -> Motion | None:  # fmt: skip
    """The simulated odometry to frame ``i`` (None: no odometry map, or the motion is unknown); at
    the first frame after the dock (``dock``: its pose, None: no dock) the odometry map docks first."""
    if odo is None:
        return None
    if dock is not None and starts_docked(home, i, config.odometry_gap):
        methods["odometry"].map.dock(dock)
    m = simulated_motion(home, i, odo, config.odometry_noise, config.odometry_seed, config.odometry_gap, dock,
                         config.odometry_path)  # fmt: skip
    m = slipped(m, i, config.odometry_seed, config.odometry_slip)
    return kidnapped(m, i, config.odometry_seed, config.odometry_kidnap)


def _frame(home, i, judge, methods, places, frontend, motion: Motion | None = None,
           depth_noise: float | None = None, seed: int = 0) -> dict:  # fmt: skip
    """Frame ``i`` through every map; depth_noise: the keypoints' depth the maps get
    (:func:`.longterm_methods.keypoint_depth`; None: none)."""
    f = home.frames[i]
    image = read_image(f.root / "rgb" / f"{f.name}.png")
    t0 = time.perf_counter()
    features = frontend.extract(image)
    desc = features.global_descriptor if places == ONE_PASS else places.describe(image)[0]
    colour = colour_signature(image)  # the long-term maps' change layer (repaints)
    ms_features = (time.perf_counter() - t0) * 1000
    # the robot's depth sensor or SLAM map points, read from the render: not timed
    depth = None if depth_noise is None else keypoint_depth(f, features, depth_noise, seed, i)
    rec = {"home": home.name, "index": i, "name": f.name, "day": f.day, "lighting": f.lighting,
           "room": int(judge.room[i]), "keypoints": len(features), "ms_features": ms_features,
           "causes": " ".join(features.causes or ())}  # fmt: skip
    for name, m in methods.items():
        covered = bool(judge.same(i, m.keyframe_ids()).any())
        t1 = time.perf_counter()
        kf = m.step(i, f.day, desc, features, f.pose, motion, colour, depth)
        ms = ms_features + (time.perf_counter() - t1) * 1000
        v = judge.verdict(i, kf)
        # a false localization that still shares the view (a spot further along the line of sight) or not
        overlap = judge.overlap(i, kf) if v == "false" else None
        rec[name] = {"kf": kf, "verdict": v, "covered": covered, "ms": ms, "false_overlap": overlap,
                     "via": getattr(m, "via", None), "confidence": m.confidence}  # fmt: skip
        if getattr(m, "map", None) is not None and m.map.odometry_config is not None:
            # where the pose prior puts the robot after the frame (None: no prior), against the truth
            err = m.belief_error
            rec[name] |= {
                "belief_m": None if err is None else err[0],
                "belief_deg": None if err is None else err[1],
            }
    return rec


def _names(frames: list[dict]) -> list[str]:
    """The maps the records hold, in table order."""
    return [m for m in METHODS if frames and m in frames[0]]


def _day_line(frames: list[dict], day: int) -> str:
    rows = [r for r in frames if r["day"] == day]
    return ", ".join(f"{m} {sum(r[m]['verdict'] == 'correct' for r in rows)}/{len(rows)} right "
                     f"{sum(r[m]['verdict'] == 'false' for r in rows)} false" for m in _names(rows))  # fmt: skip


def _floor_verify(config: LongTermEvalConfig) -> VerifyConfig:
    """The verification the noise floor is measured with: the loosest floors any map accepts at
    (the odometry map's among its prior's candidates, when it runs: :func:`.odometry.relaxed`), so
    that a wrong place's matches get the same essential-matrix fit as the weak localizations they
    are compared with."""
    v, odo = _verify(config), _odometry(config)
    return v if odo is None else relaxed(v, odo)


def add_evidence(
    home: LongTermHome, records: list[dict], config: LongTermEvalConfig, places, frontend
) -> None:
    """Adds the frame's noise floor (``floor``, :mod:`.longterm_evidence`) to every record of
    ``home`` after the mapping day, and ``seen`` (score above the floor; None when not localized)
    to each map's entry. The frames are extracted again (deterministic): loop 1 keeps no features."""
    days = home.days[: config.max_days]
    idx = [i for i, f in enumerate(home.frames) if f.day in days]
    if not records or not idx:
        return
    judge, v = PlaceJudge(home, config.tolerance_m, config.tolerance_deg), _floor_verify(config)
    frames = []
    for i in tqdm(idx, desc=f"{home.name} features", unit="frame", leave=False):
        f = home.frames[i]
        image = read_image(f.root / "rgb" / f"{f.name}.png")
        features = frontend.extract(image)
        d = features.global_descriptor if places == ONE_PASS else places.describe(image)[0]
        frames.append(floor_frame(features, d, v))
    sub = np.array(idx)
    day = np.array([home.frames[i].day for i in idx])
    centres = np.stack([home.frames[i].pose[:3, 3] for i in idx])

    def same(k: int, others: np.ndarray) -> np.ndarray:  # positions in idx -> judged the same place
        return judge.same(int(sub[k]), sub[others])

    floors = noise_floors(
        frames, day, centres, same, v, home.K, config.evidence_negatives, days[0], home.name
    )
    at = {int(i): k for k, i in enumerate(idx)}
    for r in records:
        r["floor"] = floors.get(at.get(r["index"], -1))
        for m in _names([r]):
            r[m]["seen"] = seen(r[m].get("confidence"), r["floor"])


# ------------------------------------------------------------------------------------ loop 2
def day_rows(frames: list[dict], infos: list[dict], method: str) -> list[dict]:
    """Per day (over every home): success, false, covered (fractions of the day's frames), map_bytes
    (largest home map at the end of the day), ms (mean per frame), and the map's extras."""
    rows = []
    for day in sorted({r["day"] for r in frames}):
        rs = [r for r in frames if r["day"] == day]
        v = [r[method]["verdict"] for r in rs]
        info = [x for x in infos if x["day"] == day and x["method"] == method]
        row = {"day": int(day), "success": v.count("correct") / len(rs), "false": v.count("false") / len(rs),
               "map_bytes": int(max(x["map_bytes"] for x in info)), "ms": float(np.mean([r[method]["ms"] for r in rs])),
               "frames": len(rs), "false_count": v.count("false"),
               "false_sharing_view": sum((r[method].get("false_overlap") or 0) >= MIN_OVERLAP for r in rs),
               "covered": float(np.mean([r[method]["covered"] for r in rs])),
               "ms_median": float(np.median([r[method]["ms"] for r in rs])),
               "lightings": sorted({r["lighting"] for r in rs}), "keyframes": int(sum(x["keyframes"] for x in info))}  # fmt: skip
        if any(r.get("floor") is not None for r in rs):  # add_evidence ran: seen above the noise floor
            seen_v = [r[method]["verdict"] for r in rs if r[method].get("seen")]
            row["seen"], row["false_seen"] = seen_v.count("correct") / len(rs), seen_v.count("false")
        row["success_by_lighting"] = {
            light: float(np.mean([r[method]["verdict"] == "correct" for r in rs if r["lighting"] == light]))
            for light in row["lightings"]
        }
        for key in ("places", "stale"):
            if key in info[0]:
                row[key] = int(sum(x[key] for x in info))
        if "major_changes" in info[0]:
            row["major_changes"] = [c for x in info for c in x["major_changes"]]
            row["major_change_signals"] = [c for x in info for c in _signals(x)]
        row["new_large_changes"] = [c for x in info for c in x.get("new_large_changes", [])]
        rows.append(row)
    return rows


def _signals(info: dict) -> list[str]:
    """What declared each of a day's major changes (runtime ``Update.change_signal``; a progress
    file from before session 24 names none: the failures, the only signal then)."""
    return info.get("major_change_signals") or ["failures"] * len(info["major_changes"])


# a major change declared up to this many days after a scheduled one starts (or ends) detects it
CHANGE_DAYS = 3


def change_detection(
    schedules: dict[str, list[dict]], infos: list[dict], within_days: int = CHANGE_DAYS,
    rooms: dict[str, int] | None = None, method: str = "longterm", visibility: dict[tuple, float | None] | None = None,
) -> dict:  # fmt: skip
    """The long-term map's declared major changes against the renderer's schedule of large changes
    (cameras.json ``schedule``: kind, room, start, end): an event (a change starting, or decorations
    taken down) on a replayed day (between a home's first and last replayed day: the end of
    decorations after the last day is no event of the replay) is detected when the map declares a
    change of its room on its day or up to ``within_days`` later; a declaration no event explains is
    ``unexplained`` (e.g. a night round the map has no experience of yet). ``by_kind``: [detected,
    events] per kind. ``chance`` (with ``rooms``, the rooms of each home): the events expected detected
    when each home's declarations fall on days and rooms drawn uniformly at random (with
    replacement) from its replayed days and rooms, the baseline a detector must beat. ``method``: the
    map whose declarations count (``longterm`` or ``odometry``). ``by_signal``: per signal that
    declared (failures, colour), its declarations, those no event explains, and the events they
    detect. ``visibility`` ((home, kind, room, day) -> changed share of the room's view or None,
    :func:`.longterm_visibility.event_visibility`): each row gets ``view_change`` and ``visible``
    (None: not measured), and ``visible`` counts the events the patrol could see, detected and
    by chance, as above."""
    days = {}
    for x in infos:
        if x["method"] == method:
            days.setdefault(x["home"], set()).add(int(x["day"]))
    events = [(home, c["kind"], c["room"], day) for home, sched in schedules.items() for c in sched
              for day in (c["start"], c.get("end"))
              if day is not None and home in days and min(days[home]) <= day <= max(days[home])]  # fmt: skip
    declared = [(x["home"], x["day"], room, signal) for x in infos if x["method"] == method
                for room, signal in zip(x["major_changes"], _signals(x), strict=True)]  # fmt: skip

    def explains(e, d) -> bool:
        return e[0] == d[0] and e[2] == d[2] and e[3] <= d[1] <= e[3] + within_days

    rows = [{"home": e[0], "kind": e[1], "room": e[2], "day": e[3], "detected": any(explains(e, d) for d in declared)}
            for e in events]  # fmt: skip
    by_kind = {}
    for r in rows:
        k = by_kind.setdefault(r["kind"], [0, 0])
        k[0] += int(r["detected"])
        k[1] += 1
    out = {"events": len(events), "detected": sum(r["detected"] for r in rows), "declared": len(declared),
           "unexplained": sum(not any(explains(e, d) for e in events) for d in declared),
           "within_days": within_days, "by_kind": by_kind, "rows": rows}  # fmt: skip
    out["by_signal"] = {
        signal: {"declared": len(ds), "unexplained": sum(not any(explains(e, d) for e in events) for d in ds),
                 "detected": sum(any(explains(e, d) for d in ds) for e in events)}
        for signal in sorted({d[3] for d in declared}) for ds in [[d for d in declared if d[3] == signal]]
    }  # fmt: skip
    if rooms is not None:
        out["chance"] = round(chance_detected(events, declared, days, rooms, within_days), 3)
    if visibility is not None:
        for r, e in zip(rows, events, strict=True):
            known = e in visibility
            ch = visibility.get(e)
            r["view_change"] = None if ch is None else round(ch, 3)
            r["visible"] = visible(e[1], ch) if known else None
        seen = [(e, r) for e, r in zip(events, rows, strict=True) if r["visible"]]
        if any(r["visible"] is not None for r in rows):
            out["visible"] = {"share": VISIBLE_SHARE, "events": len(seen), "detected": sum(r["detected"] for _, r in seen),
                              "unknown": sum(r["visible"] is None for r in rows)}  # fmt: skip
            if rooms is not None:
                vis = [e for e, _ in seen]
                out["visible"]["chance"] = round(chance_detected(vis, declared, days, rooms, within_days), 3)
    return out


def change_line(cd: dict, method: str) -> str:
    """The table.md line of a :func:`change_detection`."""
    kinds = ", ".join(f"{k} {d} of {n}" for k, (d, n) in sorted(cd["by_kind"].items()))
    chance = (
        ""
        if cd.get("chance") is None
        else (f"; as many declarations on random days and rooms would detect {cd['chance']:.1f} (expected)")
    )
    signals = "; ".join(f"{k}: {v['declared']} declared, {v['unexplained']} unexplained, {v['detected']} detected"
                        for k, v in cd.get("by_signal", {}).items())  # fmt: skip
    v = cd.get("visible")
    seen = (
        ""
        if v is None
        else (f" In view (a repaint of a room seen before it, or the room's view changed by >= {v['share']:.2f} of its pixels): {v['detected']} of "
              f"{v['events']} detected" + (f", {v['chance']:.1f} by chance" if v.get("chance") is not None else "")
              + (f"; {v['unknown']} not measured (no changed masks)" if v.get("unknown") else "") + ".")
    )  # fmt: skip
    return (f"Major changes ({method} map): {cd['detected']} of {cd['events']} scheduled large-change events detected "
            f"within {cd['within_days']} days ({kinds or 'none scheduled'}); {cd['declared']} declared, "
            f"{cd['unexplained']} with no scheduled event{chance}." + seen + (f" By signal: {signals}." if signals else ""))  # fmt: skip


def chance_detected(
    events: list[tuple],
    declared: list[tuple],
    days: dict[str, set[int]],
    rooms: dict[str, int],
    within_days: int,
) -> float:
    """Events (home, kind, room, day) expected detected by as many declarations per home as
    ``declared`` (home, day, room, ...) holds, each on a day of ``days[home]`` and a room of
    ``rooms[home]`` drawn uniformly at random: 1 - (1 - w / N) ** D per event, with w the cells
    (days of its window, its room) that detect it, N the home's days x rooms, D its declarations."""
    total = 0.0
    for home, _kind, _room, day in events:
        n = len(days[home]) * max(int(rooms[home]), 1)
        w = sum(day <= d <= day + within_days for d in days[home])
        total += 1.0 - (1.0 - w / n) ** sum(d[0] == home for d in declared)
    return total


def odometry_only_options(config: LongTermEvalConfig) -> list[str]:
    """The options given (not at their defaults) that only the odometry map uses, as flags: without
    ``--odometry`` they would change nothing, a run that looks like it used them."""
    defaults = {f.name: f.default for f in fields(LongTermEvalConfig)}
    names = [n for n in defaults if n.startswith(("odometry_", "prior_")) or n == "fit_sigma_deg"]
    return ["--" + n.replace("_", "-") for n in names if getattr(config, n) != defaults[n]]


def run_longterm(config: LongTermEvalConfig) -> Path:
    """Replay every home of ``config.data``; writes summary.json, table.md, longterm.png,
    frames.csv and config.yaml into ``config.out`` (map checkpoints in ``out/state``)."""
    out = Path(config.out)
    homes = read_longterm(config.data)
    if config.max_days is not None and config.max_days < 1:
        raise EvalError(f"--max-days must be >= 1, got {config.max_days}")
    if config.agree_count < 2:
        raise EvalError(
            f"--agree-count must be >= 2 (one experience is no agreement), got {config.agree_count}"
        )
    m = config.prior_agree_min_inliers
    if m is not None and 0 < m < MIN_FIT_INLIERS:
        raise EvalError(
            f"--prior-agree-min-inliers must be 0 (off) or >= {MIN_FIT_INLIERS} (a two-view fit), got {m}"
        )
    if not config.odometry and (given := odometry_only_options(config)):
        raise EvalError(f"only the odometry map uses {', '.join(given)}: add --odometry, or leave them out")
    _odometry(config)  # a --prior-* value the runtime refuses fails here, before DIR is written
    prepare_out(out, config, "longterm")
    if config.overwrite:  # start over: the checkpoints belong to the configuration replaced
        shutil.rmtree(out / "state", ignore_errors=True)
    set_threads(config.threads)
    places, frontend = _models(config)
    frames, infos = [], []
    for home in homes:
        p = run_home(home, config, places, frontend, out / "state" / home.name)
        if config.evidence_negatives:
            add_evidence(home, p["frames"], config, places, frontend)
        frames += p["frames"]
        infos += p["days"]
    schedules = {h.name: h.info.get("schedule", []) for h in homes}
    rooms = {h.name: len(h.rooms) for h in homes}
    visibility = event_visibility(homes, CHANGE_DAYS)
    summary = {
        "days": day_rows(frames, infos, "longterm"),
        "baselines": {
            m: day_rows(frames, infos, m) for m in _names(frames) if m not in ("longterm", "odometry")
        },
        **({"odometry": day_rows(frames, infos, "odometry")} if "odometry" in _names(frames) else {}),
        "tolerance": {
            "centre_m": config.tolerance_m,
            "view_deg": config.tolerance_deg,
            "same_room_or_overlap": MIN_OVERLAP,
        },  # fmt: skip
        "budget_bytes": config.budget_bytes,
        "homes": [h.name for h in homes],
        "first_day": "mapping: every map starts empty; the static map keeps this day's frames",
        "map_file_bytes": {x["method"]: x["file_bytes"] for x in infos if x.get("file_bytes") is not None},
        "change_detection": change_detection(schedules, infos, rooms=rooms, visibility=visibility),
        **(
            {
                "odometry_change_detection": change_detection(
                    schedules, infos, rooms=rooms, method="odometry", visibility=visibility
                )
            }
            if "odometry" in _names(frames)
            else {}
        ),
        **(
            {"noise_floor": floor_summary(frames, config.evidence_negatives)}
            if config.evidence_negatives
            else {}
        ),
    }
    for fault, share in (("kidnaps", config.odometry_kidnap), ("slips", config.odometry_slip)):
        if any(
            FAULTS[fault][0] in r for r in frames
        ):  # --odometry-kidnap / --odometry-slip: the frames they led to
            summary[fault] = kidnap_summary(frames, share, first_day=summary["days"][0]["day"], fault=fault)
    # the odometry map: how far its prior is from the truth (and, in belief mode, its filing)
    belief = belief_summary(frames, first_day=summary["days"][0]["day"])
    if belief is not None:
        summary["belief"] = belief | {"map_poses": config.odometry_map_poses}
    summary["ms_per_frame"] = timing_summary(
        frames, [m for m, _ in _table_maps(summary)], summary["days"][0]["day"]
    )
    summary["targets"] = {
        m: target_check(frames, rows, m, config.budget_bytes) for m, rows in _table_maps(summary)
    }
    write_json(out / "summary.json", summary)
    curves = {
        "longterm": summary["days"],
        **({"odometry": summary["odometry"]} if "odometry" in summary else {}),
    }
    plot_longterm(out / "longterm.png", curves | summary["baselines"], config.budget_bytes)
    if len(summary["homes"]) == 1:  # rooms are a home's own: several homes would share the rows
        declared = {m: [(r["day"], room, sig) for r in rows
                        for room, sig in zip(r["major_changes"], r["major_change_signals"], strict=True)]
                    for m, rows in curves.items()}  # fmt: skip
        plot_changes(out / "changes.png", summary["change_detection"]["rows"], declared)
    write_pairs_csv(out / "frames.csv", [_flat(r) for r in frames])
    write_table(out / "table.md", longterm_table(summary))
    return out


def floor_summary(frames: list[dict], negatives: int) -> dict:
    """The noise floors over the frames that have one, and per map the correct localizations, those
    of them seen above the floor, and the false ones seen (:mod:`.longterm_evidence`); the same for
    the frames the frontend's reliability names dark (``runtime.reliability.CAUSES``)."""
    rs = [r for r in frames if r.get("floor") is not None]
    f = np.array([r["floor"] for r in rs])
    dark = [r for r in rs if "dark" in r.get("causes", "").split()]

    def count(rows: list[dict], verdict: str, seen_only: bool) -> dict[str, int]:
        return {m: sum(r[m]["verdict"] == verdict and (not seen_only or bool(r[m].get("seen"))) for r in rows)
                for m in _names(rs)}  # fmt: skip

    def stat(fn) -> float | None:
        return float(fn(f)) if rs else None

    return {
        "negatives": negatives, "far_m": FAR_M, "frames": len(rs),
        "median": stat(np.median), "p90": stat(lambda x: np.percentile(x, 90)), "max": stat(np.max),
        "correct": count(rs, "correct", False), "seen": count(rs, "correct", True),
        "false_seen": count(rs, "false", True),
        "dark": {"frames": len(dark), "correct": count(dark, "correct", False), "seen": count(dark, "correct", True)},
    }  # fmt: skip


def _flat(r: dict) -> dict:
    base = {k: v for k, v in r.items() if k not in METHODS}
    return base | {f"{m}_{k}": v for m in METHODS if m in r for k, v in r[m].items()}


def _table_maps(summary: dict) -> list[tuple[str, list[dict]]]:
    odo = [("odometry", summary["odometry"])] if "odometry" in summary else []
    return [("longterm", summary["days"]), *odo, *summary["baselines"].items()]


def longterm_table(summary: dict) -> str:
    rows = []
    for i, lt in enumerate(summary["days"]):
        row = {"day": lt["day"], "frames": lt["frames"], "lighting": " ".join(lt["lightings"])}
        for m, days in _table_maps(summary):
            d = days[i]
            row |= {f"{m}_s": d["success"], f"{m}_seen": d.get("seen"), f"{m}_f": d["false_count"],
                    f"{m}_kb": d["map_bytes"] / 1024}  # fmt: skip
        row["ms"], row["kf"] = lt["ms"], lt["keyframes"]
        row["declared"] = " ".join(f"room{r}" for r in lt.get("major_changes", [])) or None
        row["scheduled"] = " ".join(lt.get("new_large_changes", [])) or None
        rows.append(row)
    cols = [("frames", "frames", "d"), ("lighting", "lighting", "")]
    nf = summary.get("noise_floor")
    for m, _ in _table_maps(summary):
        cols += [(f"{m}_s", f"{m} success", ".3f"), *([(f"{m}_seen", "seen", ".3f")] if nf else []),
                 (f"{m}_f", "false", "d"), (f"{m}_kb", "KB", ".0f")]  # fmt: skip
    cols += [("ms", "ms/frame", ".1f"), ("kf", "experiences", "d"), ("declared", "major changes declared", ""),
             ("scheduled", "large changes (renderer)", "")]  # fmt: skip
    tol, cd = summary["tolerance"], summary["change_detection"]
    head = [f"## Long-term localization per day (budget {summary['budget_bytes']} B; correct: centre within "
            f"{tol['centre_m']} m, view within {tol['view_deg']} deg, same room or co-visibility >= "
            f"{tol['same_room_or_overlap']}; day {summary['days'][0]['day']} is the mapping day)", ""]  # fmt: skip
    foot = [targets_line(summary["targets"], summary["budget_bytes"]), ""] if "targets" in summary else []
    foot += [timing_line(summary["ms_per_frame"]), ""] if summary.get("ms_per_frame") else []
    foot += [change_line(cd, "longterm")]
    if "odometry_change_detection" in summary:
        foot += ["", change_line(summary["odometry_change_detection"], "odometry")]
    foot += [
        x for fault in ("kidnaps", "slips") if fault in summary for x in ("", kidnap_line(summary[fault]))
    ]
    if "belief" in summary:
        foot += ["", belief_line(summary["belief"], summary["belief"]["map_poses"])]
    if nf and nf["frames"]:
        foot += ["", f"Seen: correct localizations whose verification score is above the frame's noise floor (its highest "
                 f"score against the {nf['negatives']} most similar earlier frames of other places at least {nf['far_m']} m "
                 f"away; median {nf['median']:.3f}, 90th percentile {nf['p90']:.3f}, max {nf['max']:.3f} over "
                 f"{nf['frames']} frames). Correct / seen: "
                 + ", ".join(f"{m} {nf['correct'][m]} / {nf['seen'][m]}" for m in nf["correct"]) + f". Of them on the "
                 f"{nf['dark']['frames']} frames named dark: "
                 + ", ".join(f"{m} {nf['dark']['correct'][m]} / {nf['dark']['seen'][m]}" for m in nf["correct"]) + "."]  # fmt: skip
    return "\n".join([*head, markdown_table(rows, cols, ["day"]), "", *foot, ""])

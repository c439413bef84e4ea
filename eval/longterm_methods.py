"""The three maps `homeloc-evaluate longterm` replays side by side, behind one small interface.

- ``longterm``: :class:`homeloc.runtime.longterm.LongTermMap` (experiences, rooms, budget); every
  frame is ``observe``d with the robot's pose (here the rendered pose: exact odometry, used only to
  file a new experience under a place and a room, never to localize).
- ``odometry`` (with ``--odometry``): the same long-term map with the pose prior from odometry
  (:mod:`homeloc.runtime.longterm.odometry`): each frame also gets the robot's noisy relative motion
  since the previous frame of its round (the evaluator's simulated wheel odometry; with
  ``--odometry-dock`` the map is docked before a round and gets the drive from the dock,
  :func:`simulated_motion`); it needs the
  experiences' stored poses, which the loop-closure maps below do not keep, so they run without it.
- ``static``: a :class:`LoopClosureDetector` (flat index) holding every frame of the first day,
  never updated afterwards.
- ``append``: a :class:`LoopClosureDetector` (flat index) that adds every frame and, when over the
  same byte budget, prunes by its plain pruning (``prune(max_bytes=..., duplicate_score=1.0)``:
  the most similar pairs merge until the map fits).

All three localize with the same verification settings (the runtime's VerifyConfig defaults:
calibrated acceptance score, min_confidence 0.6) and the same features; the loop-closure maps
localize single frames (``temporal_k=1``: patrol frames are far apart). Keyframe ids are frame
indices, so a localization is judged by the pose of the frame the keyframe came from.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.longterm import LongTermHome
from homeloc.data_synthesis.render.layout import Frame
from homeloc.data_synthesis.render.patrol_path import driven
from homeloc.data_synthesis.shards import DatasetError
from homeloc.eval.errors import EvalError
from homeloc.runtime.features import Features
from homeloc.runtime.longterm import (
    BudgetConfig,
    ChangeConfig,
    LongTermMap,
    OdometryConfig,
    PlaceConfig,
    SearchConfig,
)
from homeloc.runtime.longterm.odometry import Motion, noisy_motion, planar, relative_motion, wrap
from homeloc.runtime.loop_closure import LoopClosureDetector, VerifyConfig

METHODS = ("longterm", "odometry", "static", "append")  # the order of tables and plots


class Method(ABC):
    """One map under test: ``step`` localizes frame ``i`` (None: rejected) and updates the map;
    ``motion``: the odometry since the previous frame (None: unknown), used by the maps with a pose prior."""

    name = ""
    confidence: float | None = None  # the verification score of the last localization (None: rejected)

    @abstractmethod
    def step(self, i: int, day: int, desc: np.ndarray, features: Features, pose: np.ndarray,
             motion: Motion | None = None, colour: np.ndarray | None = None,
             depth: np.ndarray | None = None) -> int | None:  # fmt: skip
        """The keyframe frame ``i`` localized to (None: rejected), after updating the map; ``colour``:
        the frame's colour signature (None: none), used by the long-term maps' change layer;
        ``depth``: per keypoint of ``features`` (:func:`keypoint_depth`; None: none), kept by the
        long-term maps that localize metrically (``OdometryConfig.metric_min_inliers``)."""

    @abstractmethod
    def keyframe_ids(self) -> np.ndarray:
        """Ids (frame indices) of the keyframes in the map."""

    @abstractmethod
    def nbytes(self) -> int:
        """The map's own memory accounting (``stats().total_bytes``)."""

    @abstractmethod
    def save(self, path: Path) -> Path:
        """Write the map file (the resume checkpoint)."""

    def info(self) -> dict:
        """Per-day extras (experiences, places, ...) for the summary."""
        return {"keyframes": len(self.keyframe_ids())}


class LongTerm(Method):
    name = "longterm"

    def __init__(self, places, frontend, K, rooms, budget: int | None, path: Path | None = None,
                 place: PlaceConfig | None = None, verify: VerifyConfig | None = None,
                 search: SearchConfig | None = None, stale_penalty: float | None = None,
                 odometry: OdometryConfig | None = None, change: ChangeConfig | None = None,
                 belief: bool = False) -> None:  # fmt: skip
        self.belief = belief  # file experiences where the map's prior puts the robot, not at the given pose
        if path is not None:
            self.map = LongTermMap.load(path, places, frontend)
        else:
            verify = verify or VerifyConfig()
            search = search or SearchConfig(top_k=max(5, verify.top))
            b = BudgetConfig(max_bytes=budget)
            b = b if stale_penalty is None else replace(b, stale_penalty=stale_penalty)
            self.map = LongTermMap(places, frontend, K=K, rooms=rooms, budget=b, place=place, verify=verify,
                                   search=search, odometry=odometry, change=change)  # fmt: skip
        self.major_changes: list[int] = []
        self.change_signals: list[str] = []  # what declared each (runtime Update.change_signal)

    def step(self, i, day, desc, features, pose, motion=None, colour=None, depth=None):
        # belief: the rendered pose lends only the camera's mounting (height, tilt), not where it is
        at = dict(mount=pose) if self.belief else dict(pose=pose)
        u = self.map.observe(
            desc, features=features, kf_id=i, motion=motion, colour=colour, depth=depth, **at
        )
        self.belief_error = belief_error(self.map.prior, pose)
        self.via = None if u.localization is None else u.localization.searched  # "prior": the pose prior's
        self.confidence = None if u.localization is None else float(u.localization.confidence)
        if u.major_change is not None:
            self.major_changes.append(u.major_change)
            self.change_signals.append(u.change_signal)
        return None if u.localization is None else u.localization.kf_id

    def keyframe_ids(self):
        return self.map.keyframe_ids

    def nbytes(self):
        return self.map.stats().total_bytes

    def save(self, path):
        return self.map.save(path)

    def info(self):
        s = self.map.stats()
        changes, self.major_changes = self.major_changes, []
        signals, self.change_signals = self.change_signals, []
        return {"keyframes": s.experiences, "places": s.places, "stale": s.stale, "major_changes": changes,
                "major_change_signals": signals}  # fmt: skip


def belief_error(prior, pose: np.ndarray) -> tuple[float, float] | None:
    """How far a pose prior (None: none) lies from the true camera-to-map ``pose``: (metres,
    degrees of heading); None without a prior."""
    if prior is None:
        return None
    t = planar(pose)
    turn = abs(float(np.degrees(wrap(prior.pose[2] - t[2]))))
    return float(np.hypot(*(prior.pose[:2] - t[:2]))), turn


class _Detector(Method):
    """A LoopClosureDetector used as a localization map."""

    def __init__(self, places, frontend, K, budget: int | None, path: Path | None = None,
                 verify: VerifyConfig | None = None) -> None:  # fmt: skip
        if path is not None:
            self.det = LoopClosureDetector.load(path, places, frontend)
        else:
            v = verify or VerifyConfig()
            self.det = LoopClosureDetector(places, frontend, index="flat", train_size=None, temporal_k=1, K=K,
                                           top_k=max(5, v.top), verify=v)  # fmt: skip
        self.budget = budget

    def localize(self, desc, features):
        self.confidence = None
        if not len(self.det):
            return None
        loop = self.det.detect(desc, features=features)
        self.confidence = None if loop is None else float(loop.confidence)
        return None if loop is None else loop.kf_id

    def keyframe_ids(self):
        return self.det.keyframe_ids

    def nbytes(self):
        return self.det.stats().total_bytes

    def save(self, path):
        return self.det.save(path)


class Static(_Detector):
    name = "static"

    def __init__(self, *args, first_day: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first_day = first_day

    def step(self, i, day, desc, features, pose, motion=None, colour=None, depth=None):
        kf = self.localize(desc, features)
        if day == self.first_day:
            self.det.add_keyframe(i, desc, features=features)
        return kf


class Append(_Detector):
    name = "append"

    def step(self, i, day, desc, features, pose, motion=None, colour=None, depth=None):
        kf = self.localize(desc, features)
        self.det.add_keyframe(i, desc, features=features)
        if self.budget is not None and self.det.stats().total_bytes > self.budget:
            # only to meet the budget: near-duplicate merging at every frame would make it a different map
            self.det.prune(max_bytes=self.budget, duplicate_score=1.0)
        return kf


def make_methods(places, frontend, K, rooms, budget: int | None, first_day: int,
                 saved: dict[str, str | os.PathLike] | None = None, place: PlaceConfig | None = None,
                 verify: VerifyConfig | None = None, search: SearchConfig | None = None,
                 stale_penalty: float | None = None, odometry: OdometryConfig | None = None,
                 change: ChangeConfig | None = None, belief: bool = False) -> dict[str, Method]:  # fmt: skip
    """The three maps, new or restored from ``saved`` (method name -> map file); ``place``: the
    long-term map's PlaceConfig; ``verify``: every map's verification (each retrieves at least 5
    candidates); None: the runtime defaults; ``search``: the long-term map's SearchConfig (None:
    the default with ``top_k`` = max(5, verify.top)); ``stale_penalty``: its
    BudgetConfig.stale_penalty (None: the default); ``odometry``: also the ``odometry`` map, the
    long-term map with this pose prior (None: not run); ``change``: both long-term maps'
    ChangeConfig (None: the default); ``belief``: the odometry map files experiences at its own
    belief (``--odometry-map-poses belief``: :meth:`LongTermMap.observe` ``mount``), not at the
    rendered pose."""
    saved = saved or {}
    settings = dict(place=place, verify=verify, search=search, stale_penalty=stale_penalty, change=change)
    methods = {
        "longterm": LongTerm(places, frontend, K, rooms, budget, saved.get("longterm"), **settings),
        "static": Static(places, frontend, K, budget, saved.get("static"), verify, first_day=first_day),
        "append": Append(places, frontend, K, budget, saved.get("append"), verify),
    }
    if odometry is not None:
        methods["odometry"] = LongTerm(places, frontend, K, rooms, budget, saved.get("odometry"), odometry=odometry,
                                       belief=belief, **settings)  # fmt: skip
    return {name: methods[name] for name in METHODS if name in methods}


UNDOCK_M = 1.0  # leaving the dock: back off, turn around and come back, on top of the straight line


def patrol_path(home: LongTermHome) -> np.ndarray | None:
    """The path the renderer's patrol drives (N x 2), when cameras.json has it and every frame its
    position on it (render.patrol_path), else None."""
    rec = home.info.get("patrol_path")
    if rec is None or not all("path_m" in e for e in home.extras):
        return None
    return np.asarray(rec["points"], np.float64)


def dock_pose(home: LongTermHome, use_path: bool = True) -> np.ndarray:
    """The robot's dock (camera-to-map): the renderer's (``patrol_path``) with ``use_path`` when the
    home has one, else assumed at the first frame of the first day (the map's origin)."""
    if use_path and patrol_path(home) is not None:
        return np.asarray(home.info["patrol_path"]["dock_c2w"], np.float64)
    return home.frames[0].pose


def starts_docked(home: LongTermHome, i: int, gap_factor: float | None) -> bool:
    """Whether frame ``i`` is the first after the dock: the first frame of a day, and of every round
    unless ``gap_factor`` connects the rounds of a day (:func:`simulated_motion`)."""
    a, b = home.frames[max(i - 1, 0)], home.frames[i]
    return i == 0 or a.day != b.day or (a.sequence != b.sequence and gap_factor is None)


def _on_path(home: LongTermHome, i: int) -> tuple[float, float]:
    """(position along the patrol path, camera heading) of frame ``i``."""
    return float(home.extras[i]["path_m"]), float(planar(home.frames[i].pose)[2])


def simulated_motion(home: LongTermHome, i: int, cfg: OdometryConfig, scale: float, seed: int,
                     gap_factor: float | None = None, dock: np.ndarray | None = None,
                     use_path: bool = True) -> Motion | None:  # fmt: skip
    """The robot's wheel odometry from frame ``i - 1`` to frame ``i``: the true planar relative motion
    (rendered poses) plus the noise model of ``cfg`` times ``scale``, drawn from a generator of
    (``seed``, ``i``) alone (a resumed run draws the same). The noise grows with the distance driven
    and the turning: with ``use_path`` and the renderer's patrol path (:func:`patrol_path`), those of
    the path between the two frames, or between the dock (its start) and the first frame
    (render.patrol_path.driven); without it, the straight line and the net rotation, and from the
    ``dock`` (its pose, None: no dock) a path ``UNDOCK_M`` longer with half a turn more (an assumed
    undocking). None at the first frame of a day, and of a round unless ``gap_factor``: then the
    robot is assumed to drive between the rounds of a day (to its dock and out again: a path
    ``gap_factor`` times the straight line, turning around once), which the renderer does not show.
    With a ``dock``, those first frames get the motion from the dock instead (:func:`starts_docked`)."""
    a, b = home.frames[i - 1], home.frames[i]
    first = starts_docked(home, i, gap_factor)
    if first and dock is None:
        return None
    path = patrol_path(home) if use_path else None
    if first:
        m = relative_motion(planar(dock), planar(b.pose))
        if path is None:
            m = (*m, float(np.hypot(m[0], m[1])) + UNDOCK_M, abs(m[2]) + np.pi)
        else:
            m = (*m, *driven(path, (0.0, float(planar(dock)[2])), _on_path(home, i)))
    else:
        m = relative_motion(planar(a.pose), planar(b.pose))
        if a.sequence != b.sequence:
            m = (*m, gap_factor * float(np.hypot(m[0], m[1])), abs(m[2]) + np.pi)
        elif path is not None:
            m = (*m, *driven(path, _on_path(home, i - 1), _on_path(home, i)))
    return noisy_motion(m, cfg, np.random.default_rng([int(seed), int(i)]), scale)


KIDNAP_STREAM = 7  # the kidnap draws' own stream beside each frame's noise (seed, frame index)


def _drawn(i: int, seed: int, share: float, stream: int) -> bool:
    """A fault at the odometry step to frame ``i`` with probability ``share``, drawn from (``seed``,
    ``i``, ``stream``) alone, so a resumed run draws the same."""
    return share > 0 and np.random.default_rng([int(seed), int(i), stream]).random() < share


def is_kidnapped(i: int, seed: int, share: float) -> bool:
    """Is the odometry step to frame ``i`` one at which the robot is carried (:func:`kidnapped`)?"""
    return _drawn(i, seed, share, KIDNAP_STREAM)


def kidnapped(m: Motion | None, i: int, seed: int, share: float) -> Motion | None:
    """Odometry ``m`` to frame ``i``, or, with probability ``share`` (:func:`is_kidnapped`), none at
    all: the robot was carried (or its wheels slipped) to the frame's pose and the odometry saw no
    motion. Unknown motion (None) stays unknown: a robot that knows it was lifted drops its prior
    already."""
    return m if m is None or not is_kidnapped(i, seed, share) else (0.0, 0.0, 0.0, 0.0, 0.0)


SLIP_STREAM = 8  # the slip draws' own stream (seed, frame index)
SLIP_RANGE = (0.5, 1.5)  # the factor a slipping step's translation and turn are reported at


def is_slipped(i: int, seed: int, share: float) -> bool:
    """Do the wheels slip on the odometry step to frame ``i`` (:func:`slipped`)?"""
    return _drawn(i, seed, share, SLIP_STREAM)


def slipped(m: Motion | None, i: int, seed: int, share: float) -> Motion | None:
    """Odometry ``m`` to frame ``i``, or, with probability ``share`` (:func:`is_slipped`), the wheels'
    slip: its translation (and path driven) and its turn (and turning) each reported at a factor
    drawn uniformly from ``SLIP_RANGE`` (wheels spinning on a rug or a threshold report more than
    the robot moved, a robot pushed or skidding reports less). The robot does not know: it reports
    the step as usual. Unknown motion (None) stays unknown."""
    if m is None or not is_slipped(i, seed, share):
        return m
    ft, fr = np.random.default_rng([int(seed), int(i), SLIP_STREAM, 1]).uniform(*SLIP_RANGE, 2)
    out = [m[0] * ft, m[1] * ft, m[2] * fr]
    if len(m) > 3:
        out += [m[3] * ft, m[4] * fr]
    return tuple(float(v) for v in out)


DEPTH_STREAM = 9  # the depth noise draws' own stream (seed, frame index)


def keypoint_depth(frame: Frame, features: Features, noise: float, seed: int, i: int) -> np.ndarray:
    """Per keypoint of ``features`` (frame ``i``), the rendered z-depth in metres at its nearest
    pixel (:meth:`.layout.Frame.depth`; NaN where the render has none) times (1 + ``noise`` x a
    standard normal draw from (``seed``, ``i``)): what a robot's SLAM map points or depth camera
    would give, with their error. EvalError naming the file when it is missing or unreadable."""
    try:
        d = frame.depth()
    except DatasetError:
        path = frame.root / "depth" / f"{frame.name}.png"
        raise EvalError(f"{path}: no uint16 depth map there (the renderer writes one per frame; metric localization needs it)") from None  # fmt: skip
    uv = np.rint(np.asarray(features.keypoints, np.float64)).astype(np.int64)
    z = d[np.clip(uv[:, 1], 0, d.shape[0] - 1), np.clip(uv[:, 0], 0, d.shape[1] - 1)].astype(np.float64)
    z = np.where(z > 0, z, np.nan)
    draw = np.random.default_rng([int(seed), int(i), DEPTH_STREAM]).standard_normal(len(z))
    return z * (1.0 + noise * draw)

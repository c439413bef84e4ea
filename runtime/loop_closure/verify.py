"""Accepting a loop: temporal consistency of the retrieved candidates over consecutive queries,
then geometric verification of the best candidates with local features (mutual nearest
neighbours + MAGSAC++ homography, fundamental or essential matrix)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.frontend import (
    Geometry,
    estimate_fundamental,
    estimate_homography,
    estimate_relative_pose,
    estimate_rotation,
    match_features,
)
from homeloc.runtime.geometry import RANSAC, Ransac
from homeloc.runtime.loop_closure.config import TemporalConfig, VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate, LoopClosure, Verification
from homeloc.runtime.loop_closure.stored_features import StoredFeatures

POOL_MARGIN = 0.1  # cosine below the best candidate that still counts as "the same place" for the streak


class TemporalFilter:
    """Accepts a query's best candidate only after ``config.k`` consecutive queries that agree:
    each query's best candidate lies within ``config.window`` map positions (insertion order) of
    one of the previous query's retrieved candidates (its best one, or another it retrieved
    within ``POOL_MARGIN`` cosine of the best: near-duplicate keyframes of one place swap ranks
    from frame to frame)."""

    def __init__(self, config: TemporalConfig) -> None:
        self.config = config
        self._streak, self._last_pool = 0, ()

    def reset(self) -> None:
        """Forget the history (e.g. after tracking was lost)."""
        self._streak, self._last_pool = 0, ()

    def accept(
        self, top: Candidate | None, positions: Mapping[int, int], pool: Sequence[Candidate] = ()
    ) -> bool:
        """Record this query's best candidate (None: nothing retrieved, which breaks the streak)
        and the other candidates it retrieved (``pool``); True when the streak is long enough.
        positions: kf_id -> map position."""
        if top is None:
            self.reset()
            return False
        p = positions[top.kf_id]
        # keyframes of the previous pool may have been pruned since: they no longer count
        near = [positions[k] for k in self._last_pool if k in positions]
        if any(abs(q - p) <= self.config.window for q in near):
            self._streak += 1
        else:
            self._streak = 1
        close = (c.kf_id for c in pool if c.kf_id != top.kf_id and c.score >= top.score - POOL_MARGIN)
        self._last_pool = (top.kf_id, *close)
        return self._streak >= self.config.k


# Loop verification runs on every frame, within the frame budget: the protocol's confidence with at
# most 2000 iterations (a true loop's consensus is found in a few hundred; on unrelated frames the
# 10 000-iteration cap cost 10 ms for F and 90 ms for E per candidate).
LOOP_RANSAC = Ransac(confidence=RANSAC.confidence, max_iters=2000)


def estimate_geometry(
    f0: Features, f1: Features, matches: np.ndarray, config: VerifyConfig, K: np.ndarray | None,
    ransac: Ransac = RANSAC,
) -> Geometry:  # fmt: skip
    """The two-view model of ``config.method`` ("auto": essential with K, else fundamental)
    fitted to the matches, view 0 -> view 1."""
    mode = method_of(config, K)
    t = config.ransac_threshold
    if mode == "homography":
        return estimate_homography(f0, f1, matches, 3.0 if t is None else t, ransac)
    if mode == "fundamental":
        return estimate_fundamental(f0, f1, matches, 1.0 if t is None else t, ransac)
    if K is None:
        raise ValueError("essential-matrix verification needs K (constructor or detect(K=...))")
    t = 1.0 if t is None else t
    pose = estimate_relative_pose(f0, f1, matches, K, t, ransac)
    if not config.rotation:
        return pose
    # A revisit from the same spot (a patrol's) has no baseline: E is undefined there and the
    # cheirality check drops its points at infinity (docs/longterm_history.md, "Session 20"). The
    # rotation-only model is the stricter one (3 degrees of freedom, same threshold), so it
    # wins only where it explains more matches.
    rot = estimate_rotation(f0, f1, matches, K, t)
    return rot if rot.num_inliers > pose.num_inliers else pose


def method_of(config: VerifyConfig, K: np.ndarray | None) -> str:
    if config.method == "auto":
        return "essential" if K is not None else "fundamental"
    return config.method


SPREAD_GRID = 4  # inlier spread is measured on a SPREAD_GRID x SPREAD_GRID grid
CONFIDENCE_SCALE = 40.0  # spread-weighted inliers at which confidence reaches 1 - 1/e


def confidence(inliers: int, inlier_ratio: float, spread: float) -> float:
    """The acceptance score of a verified candidate, in [0, 1): ``1 - exp(-n / 40)`` with
    ``n = inliers * spread * min(1, 2 * inlier_ratio)``, the inliers discounted when they cover
    little of the image or are a small share of the matches. Monotone in each input, so one
    threshold (``min_confidence``) trades recall for precision."""
    n = inliers * spread * min(1.0, 2.0 * inlier_ratio)
    return float(1.0 - np.exp(-n / CONFIDENCE_SCALE))


def spread(points: np.ndarray, frame_points: np.ndarray, grid: int = SPREAD_GRID) -> float:
    """Share of the cells of a ``grid`` x ``grid`` partition of the bounding box of
    ``frame_points`` (all keypoints of the frame) that hold at least one of ``points``."""
    if len(points) == 0 or len(frame_points) == 0:
        return 0.0
    lo, hi = frame_points.min(axis=0), frame_points.max(axis=0)
    cell = np.floor((points - lo) / np.maximum(hi - lo, 1e-6) * grid).astype(np.int64).clip(0, grid - 1)
    return len(np.unique(cell[:, 1] * grid + cell[:, 0])) / float(grid * grid)


def verify_one(
    features: Features, candidate: Candidate, kf: Features, config: VerifyConfig, K: np.ndarray | None,
    matches: np.ndarray | None = None,
) -> tuple[Verification, Geometry | None, np.ndarray]:  # fmt: skip
    """Match the frame (view 0) with one keyframe (view 1) and score the geometry. With the
    essential matrix, a fundamental-matrix fit must pass the floors first (an essential matrix is
    a fundamental matrix with constraints, so it cannot find more support; it is 10x dearer).
    matches: the pair's mutual-NN matches when already made (:func:`match_features` with
    ``config.max_distance``), else they are made here."""
    if matches is None:
        matches = match_features(features, kf, config.max_distance)
    if len(matches) < max(config.min_inliers, 1):
        return _scored(candidate, matches, None, features, kf, config), None, matches[:0]
    if method_of(config, K) == "essential":
        gate = estimate_fundamental(features, kf, matches, 1.0 if config.ransac_threshold is None
                                    else config.ransac_threshold, LOOP_RANSAC)  # fmt: skip
        v = _scored(candidate, matches, gate, features, kf, config)
        if not v.passed:
            return v, gate, matches[gate.inliers] if gate.ok else matches[:0]
    geom = estimate_geometry(features, kf, matches, config, K, LOOP_RANSAC)
    v = _scored(candidate, matches, geom, features, kf, config)
    return v, geom, matches[geom.inliers] if geom.ok else matches[:0]


def _scored(
    candidate: Candidate, matches: np.ndarray, geom: Geometry | None, f0: Features, f1: Features, config: VerifyConfig
) -> Verification:  # fmt: skip
    ok = geom is not None and geom.ok
    n = geom.num_inliers if ok else 0
    inl = matches[geom.inliers] if ok else matches[:0]
    ratio = n / len(matches) if len(matches) else 0.0
    spr = min(spread(f0.keypoints[inl[:, 0]], f0.keypoints), spread(f1.keypoints[inl[:, 1]], f1.keypoints))
    conf = confidence(n, ratio, spr)
    passed = n >= max(config.min_inliers, 1) and ratio >= config.min_inlier_ratio and spr >= config.min_spread
    return Verification(candidate.kf_id, candidate.score, len(matches), n, ratio, spr, conf, passed,
                        passed and conf >= config.min_confidence)  # fmt: skip


def verify_all(
    features: Features,
    candidates: Sequence[Candidate],
    stored: Mapping[int, StoredFeatures],
    config: VerifyConfig,
    K: np.ndarray | None,
) -> tuple[LoopClosure | None, list[Verification]]:
    """Verify every candidate that has stored features; the loop is the accepted one with the
    highest confidence (None if none is accepted), with every verification made."""
    best, log = None, []
    q, order = query_features(features, config)
    for c in candidates:
        s = stored.get(c.kf_id)
        if s is None:
            continue
        kf = s.features()
        m = match_features(q, kf, config.max_distance)
        v, geom, inl = verify_one(q, c, kf, config, K, m)
        log.append(v)
        if v.accepted and (best is None or v.confidence > best.confidence):
            best = LoopClosure(c.kf_id, c.score, v.inliers, geom.matrix, geom, in_frame(inl, order),
                               v.confidence, in_frame(m, order))  # fmt: skip
    return best, log


def in_frame(matches: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Matches (query index, keyframe index) of the query features :func:`query_features` made
    (``order``: their indices in the frame's features) as indices of the frame's features: the
    same rows in the same order, so a fit to them sees the same points."""
    return np.stack([order[matches[:, 0]], matches[:, 1]], axis=1).astype(np.int64)


def frame_matches(features: Features, kf: Features, config: VerifyConfig) -> np.ndarray:
    """The mutual-NN matches a verification with ``config`` makes between the frame's
    ``features`` and keyframe ``kf`` (its best ``max_stored_features`` keypoints, within
    ``max_distance``), as indices of ``features``: what :attr:`LoopClosure.putative` keeps."""
    q, order = query_features(features, config)
    return in_frame(match_features(q, kf, config.max_distance), order)


def query_features(features: Features, config: VerifyConfig) -> tuple[Features, np.ndarray]:
    """The frame's features a verification matches: its best keypoints, as many as a keyframe
    keeps (matching 1024 x 512 cost 10x more), and their indices in ``features``."""
    order = np.argsort(-features.scores, kind="stable")[: config.max_stored_features]
    kp, sc, de = features.keypoints[order], features.scores[order], features.descriptors[order]
    return Features(kp, sc, de, features.image_size), order


def verify_candidates(
    features: Features,
    candidates: Sequence[Candidate],
    stored: Mapping[int, StoredFeatures],
    config: VerifyConfig,
    K: np.ndarray | None,
) -> LoopClosure | None:
    """The accepted candidate with the highest confidence, as a LoopClosure from the query
    (view 0); None if none is accepted (see :func:`verify_all`)."""
    return verify_all(features, candidates, stored, config, K)[0]

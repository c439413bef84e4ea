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
    match_features,
)
from homeloc.runtime.loop_closure.config import TemporalConfig, VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate, LoopClosure
from homeloc.runtime.loop_closure.stored_features import StoredFeatures


class TemporalFilter:
    """Accepts a query's best candidate only after ``config.k`` consecutive queries whose best
    candidates lie within ``config.window`` map positions (insertion order) of each other."""

    def __init__(self, config: TemporalConfig) -> None:
        self.config = config
        self._streak, self._last_top = 0, None

    def reset(self) -> None:
        """Forget the history (e.g. after tracking was lost)."""
        self._streak, self._last_top = 0, None

    def accept(self, top: Candidate | None, positions: Mapping[int, int]) -> bool:
        """Record this query's best candidate (None: nothing retrieved, which breaks the streak);
        True when the streak is long enough. positions: kf_id -> map position."""
        if top is None:
            self.reset()
            return False
        prev = self._last_top
        p = positions[top.kf_id]
        # the previous best may have been pruned since: then the streak restarts
        if prev is not None and prev in positions and abs(positions[prev] - p) <= self.config.window:
            self._streak += 1
        else:
            self._streak = 1
        self._last_top = top.kf_id
        return self._streak >= self.config.k


def estimate_geometry(
    f0: Features, f1: Features, matches: np.ndarray, config: VerifyConfig, K: np.ndarray | None
) -> Geometry:
    """The two-view model of ``config.method`` ("auto": essential with K, else fundamental)
    fitted to the matches, view 0 -> view 1."""
    mode = config.method
    if mode == "auto":
        mode = "essential" if K is not None else "fundamental"
    t = config.ransac_threshold
    if mode == "homography":
        return estimate_homography(f0, f1, matches, 3.0 if t is None else t)
    if mode == "fundamental":
        return estimate_fundamental(f0, f1, matches, 1.0 if t is None else t)
    if K is None:
        raise ValueError("essential-matrix verification needs K (constructor or detect(K=...))")
    return estimate_relative_pose(f0, f1, matches, K, 1.0 if t is None else t)


def verify_candidates(
    features: Features,
    candidates: Sequence[Candidate],
    stored: Mapping[int, StoredFeatures],
    config: VerifyConfig,
    K: np.ndarray | None,
) -> LoopClosure | None:
    """The first of ``candidates`` (in order) with stored features whose geometry has at least
    ``config.min_inliers`` inliers, as a LoopClosure from the query (view 0); None if none has."""
    for c in candidates:
        s = stored.get(c.kf_id)
        if s is None:
            continue
        kf = s.features()
        matches = match_features(features, kf, config.max_distance)
        geom = estimate_geometry(features, kf, matches, config, K)
        if geom.ok and geom.num_inliers >= config.min_inliers:
            return LoopClosure(c.kf_id, c.score, geom.num_inliers, geom.matrix, geom, matches[geom.inliers])
    return None

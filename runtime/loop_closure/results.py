"""What the loop-closure detector returns: retrieval candidates, verified loops, map memory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from homeloc.runtime.frontend import Geometry

if TYPE_CHECKING:
    from homeloc.runtime.loop_closure.index import DescriptorIndex
    from homeloc.runtime.loop_closure.stored_features import StoredFeatures


@dataclass(frozen=True)
class Candidate:
    """A retrieved keyframe: its id and the cosine similarity of its global descriptor."""

    kf_id: int
    score: float


@dataclass(frozen=True)
class LoopClosure:
    """A verified loop: the query matches keyframe ``kf_id``.

    inliers: number of geometrically consistent matches; transform: 3 x 3 float64 homography,
    fundamental or essential matrix mapping the query image (view 0) to the keyframe (view 1), or
    the homography K R K^-1 of a "rotation" (two views from one spot), None when verification was
    disabled (``min_inliers=0``); geometry: the full estimate (R, t for "essential"; R and t = 0
    for "rotation"); matches: M x 2 int64 inlier matches (query index, keyframe index);
    confidence: the acceptance score (:func:`.verify.confidence`; None without verification);
    putative: every mutual-NN match the geometry was fitted to (query index, keyframe index), in
    the order they were fitted (None without verification), so that later fits to the same pair
    (the long-term map's measured rotation and PnP) need not match it again.
    """

    kf_id: int
    score: float
    inliers: int
    transform: np.ndarray | None
    geometry: Geometry | None = None
    matches: np.ndarray | None = None
    confidence: float | None = None
    putative: np.ndarray | None = None


@dataclass(frozen=True)
class Verification:
    """One geometrically verified candidate, accepted or not (``detect()`` keeps those of the last
    frame in ``LoopClosureDetector.last_verifications``; the loop evaluation sweeps their
    confidence into a precision-recall curve).

    score: retrieval cosine; matches: mutual-NN matches; inliers: geometric inliers; inlier_ratio:
    inliers / matches; spread: share of a 4 x 4 grid holding inliers (the smaller of both
    images); confidence: the acceptance score in [0, 1); passed: the floors (min_inliers,
    min_inlier_ratio, min_spread) hold; accepted: passed and confidence >= min_confidence.
    """

    kf_id: int
    score: float
    matches: int
    inliers: int
    inlier_ratio: float
    spread: float
    confidence: float
    passed: bool
    accepted: bool


@dataclass(frozen=True)
class MapStats:
    """Memory of the map. ``bytes_per_keyframe`` = global descriptor code + stored local features
    (mean); ``overhead_bytes_per_keyframe`` = keyframe id (8) and, for IVF, the list entry id (8);
    ``fixed_bytes`` = PCA matrix, codebooks and coarse centroids."""

    keyframes: int
    index: str
    trained: bool
    dim: int
    index_dim: int
    code_bytes: int
    local_bytes_per_keyframe: float
    bytes_per_keyframe: float
    overhead_bytes_per_keyframe: int
    fixed_bytes: int
    total_bytes: int
    keyframes_with_features: int

    @classmethod
    def measure(
        cls, index: DescriptorIndex, keyframes: int, features: Mapping[int, StoredFeatures]
    ) -> MapStats:
        """The stats of a map of ``keyframes`` entries in ``index`` with these stored features."""
        n = keyframes
        local = sum(s.nbytes for s in features.values())
        code, fixed, overhead = index.code_bytes, index.fixed_bytes, index.entry_overhead
        local_mean = local / n if n else 0.0
        return cls(
            keyframes=n,
            index=index.config.kind,
            trained=index.trained,
            dim=index.dim or 0,
            index_dim=index.index_dim,
            code_bytes=code,
            local_bytes_per_keyframe=local_mean,
            bytes_per_keyframe=code + local_mean,
            overhead_bytes_per_keyframe=overhead,
            fixed_bytes=fixed,
            total_bytes=fixed + n * (code + overhead) + local,
            keyframes_with_features=len(features),
        )

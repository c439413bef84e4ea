"""Loop-closure detection for visual SLAM: global-descriptor retrieval over a compact keyframe map,
optional temporal consistency, geometric verification with local features. numpy/faiss/OpenCV.

    from homeloc.runtime.loop_closure import LoopClosureDetector, IndexConfig, VerifyConfig

    lcd = LoopClosureDetector(index=IndexConfig("ivfpq", pq_bytes=64),  # the one-pass frontend
                              verify=VerifyConfig(min_inliers=20), K=K)
    # the same with the flat keywords: LoopClosureDetector(..., index="ivfpq", pq_bytes=64, min_inliers=20, K=K)

Modules (one job each):

- :mod:`.detector`: :class:`LoopClosureDetector`, composing the parts below.
- :mod:`.config`: the settings, grouped (IndexConfig, RetrievalConfig, TemporalConfig,
  VerifyConfig, PruneConfig), and the flat keyword form maps save.
- :mod:`.index`: the compressed global-descriptor index (flat / PCA + PQ / IVF-PQ) and its byte
  accounting (the map memory layout is described there).
- :mod:`.stored_features`: local features of keyframes, compressed for verification.
- :mod:`.verify`: temporal consistency and geometric verification.
- :mod:`.prune`: the pruning plan (which keyframes merge), a pure function.
- :mod:`.persist`: the map file (a :mod:`homeloc.runtime.mapstore` container).
- :mod:`.models`: lazy model loading and the check that a map's models did not change.
- :mod:`.results`: Candidate, LoopClosure, MapStats, Verification (one verified candidate).
"""

from __future__ import annotations

from homeloc.runtime.loop_closure.config import (
    INDEX_TYPES,
    VERIFICATIONS,
    IndexConfig,
    PruneConfig,
    RetrievalConfig,
    TemporalConfig,
    VerifyConfig,
)
from homeloc.runtime.loop_closure.detector import LoopClosureDetector
from homeloc.runtime.loop_closure.index import PQ_MIN_TRAIN
from homeloc.runtime.loop_closure.persist import FORMAT
from homeloc.runtime.loop_closure.prune import PruneBudget, PrunePlan, plan_prune
from homeloc.runtime.loop_closure.results import Candidate, LoopClosure, MapStats, Verification
from homeloc.runtime.loop_closure.stored_features import KEYPOINT_SCALE, StoredFeatures

_StoredFeatures = StoredFeatures  # the name tests and older code import from the single-module version

__all__ = [
    "FORMAT",
    "INDEX_TYPES",
    "KEYPOINT_SCALE",
    "PQ_MIN_TRAIN",
    "VERIFICATIONS",
    "Candidate",
    "IndexConfig",
    "LoopClosure",
    "LoopClosureDetector",
    "MapStats",
    "PruneBudget",
    "PruneConfig",
    "PrunePlan",
    "RetrievalConfig",
    "TemporalConfig",
    "Verification",
    "VerifyConfig",
    "plan_prune",
]

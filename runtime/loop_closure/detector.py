"""`LoopClosureDetector`: the keyframe map (ids, descriptor index, stored local features) and the
loop-closure pipeline over it; the parts live in the sibling modules (index, verify, prune,
persist, models, ids). Slightly over 400 lines on purpose: what is left is the public API a SLAM
system calls, one documented method per call, each a few lines composing those parts."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from homeloc.runtime import mapstore
from homeloc.runtime.features import Features
from homeloc.runtime.frontend import Frontend
from homeloc.runtime.loop_closure import persist
from homeloc.runtime.loop_closure.config import (
    GROUPS,
    LEGACY_OPTIONS,
    MIN_CONFIDENCE,
    FlatOptions,
    IndexConfig,
    PruneConfig,
    RetrievalConfig,
    TemporalConfig,
    VerifyConfig,
    check_duplicate_score,
    flatten,
    resolve,
)
from homeloc.runtime.loop_closure.ids import check_ids, int_at_least
from homeloc.runtime.loop_closure.index import DescriptorIndex, normalize
from homeloc.runtime.loop_closure.models import MapModels
from homeloc.runtime.loop_closure.prune import PruneBudget, PrunePlan, plan_prune
from homeloc.runtime.loop_closure.results import Candidate, LoopClosure, MapStats, Verification
from homeloc.runtime.loop_closure.stored_features import StoredFeatures
from homeloc.runtime.loop_closure.verify import TemporalFilter, verify_all
from homeloc.runtime.places import GlobalDescriptor

log = logging.getLogger(__name__)


class LoopClosureDetector(FlatOptions):
    """Keyframe map + loop-closure detection.

    Settings come as config objects (``index=IndexConfig(...)``, ``retrieval=``, ``temporal=``,
    ``verify=``, ``pruning=``; see :mod:`.config` for each field) or as the flat keywords below,
    which fill the groups not given as objects (a flat keyword that contradicts a given object
    raises ValueError). Either way they are readable as ``det.index_config`` ... and as the flat
    attributes (``det.min_inliers``; :class:`.config.FlatOptions`), and :attr:`config` is the
    flat form that maps save.

    Args:
        global_model: "frontend": the frontend's own global output (one forward pass, no place
            model); "places": the shipped place model; a GlobalDescriptor or a place ONNX path;
            None (default): "frontend", or "places" when the given ``frontend`` has no global
            output. Shipped models load when an image first needs them (descriptor-only use never
            loads one).
        frontend: Frontend, a keypoint ONNX path, or None (the shipped model, loaded when local
            features are first needed for an image).
        index: an IndexConfig, or its ``kind``: "flat", "pq" or "ivfpq" (see :mod:`.index`).
        K: 3 x 3 camera intrinsics for "essential"/"auto" verification (also per call in
            :meth:`detect`).
        other keywords: the fields of the config groups (``LEGACY_OPTIONS`` in :mod:`.config`
            maps each to its group and field, e.g. ``verify_top`` is VerifyConfig ``top``).
    """

    def __init__(
        self,
        global_model: GlobalDescriptor | str | os.PathLike | None = None,
        frontend: Frontend | str | os.PathLike | None = None,
        index: str | IndexConfig = "ivfpq",
        pca_dim: int | None = None,
        pca_whiten: bool = False,
        pq_bytes: int = 64,
        nlist: int | None = None,
        nprobe: int = 16,
        train_size: int | None = 1000,
        min_score: float = 0.0,
        min_inliers: int = 20,
        temporal_k: int = 2,
        temporal_window: int = 3,
        top_k: int = 5,
        verify_top: int = 3,
        exclude_recent: int = 0,
        verification: str = "auto",
        K: np.ndarray | None = None,
        ransac_threshold: float | None = None,
        max_distance: float | None = None,
        store_features: bool = True,
        max_stored_features: int = 512,
        duplicate_score: float = 0.9,
        min_inlier_ratio: float = 0.2,
        min_spread: float = 0.25,
        min_confidence: float = MIN_CONFIDENCE,
        verify_rotation: bool = True,
        descriptor_bits: int = 4,
        *,
        retrieval: RetrievalConfig | None = None,
        temporal: TemporalConfig | None = None,
        verify: VerifyConfig | None = None,
        pruning: PruneConfig | None = None,
    ) -> None:
        # the flat options exactly as given (first statement: locals() holds only the parameters)
        options = {name: value for name, value in locals().items() if name in LEGACY_OPTIONS}
        given = {"retrieval": retrieval, "temporal": temporal, "verify": verify, "pruning": pruning}
        if isinstance(index, IndexConfig):
            given["index"] = options.pop("index")
        groups = resolve(given, options)  # validates before any model is opened
        self.retrieval_config: RetrievalConfig = groups["retrieval"]
        self.verify_config: VerifyConfig = groups["verify"]
        self.pruning_config: PruneConfig = groups["pruning"]
        self.K = None if K is None else np.asarray(K, np.float64)
        self._map = DescriptorIndex(groups["index"])
        self._temporal = TemporalFilter(groups["temporal"])
        self._models = MapModels(global_model, frontend)
        self._ids = np.zeros(0, np.int64)  # kf_id of each index position, insertion order
        self._pos: dict[int, int] = {}  # kf_id -> index position
        self._features: dict[int, StoredFeatures] = {}
        self.last_verifications: tuple[Verification, ...] = ()  # of the last detect(), accepted or not
        self._models.check(None)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def index_config(self) -> IndexConfig:
        return self._map.config

    @index_config.setter
    def index_config(self, value: IndexConfig) -> None:
        self._map.config = value

    @property
    def temporal_config(self) -> TemporalConfig:
        return self._temporal.config

    @temporal_config.setter
    def temporal_config(self, value: TemporalConfig) -> None:
        self._temporal.config = value

    @property
    def config(self) -> dict:
        """The settings in the flat form of the old constructor (what :meth:`save` stores),
        without models and K."""
        return flatten({group: getattr(self, f"{group}_config") for group in GROUPS})

    @property
    def keyframe_ids(self) -> np.ndarray:
        """kf_ids in insertion order (a copy)."""
        return self._ids.copy()

    @property
    def trained(self) -> bool:
        """True once the map is in its final (compressed) index."""
        return self._map.trained

    @property
    def dim(self) -> int | None:
        """Global descriptor dimension D (None before the first keyframe)."""
        return self._map.dim

    def features_of(self, kf_id: int) -> Features | None:
        """Stored (decompressed) local features of a keyframe, or None."""
        s = self._features.get(int(kf_id))
        return None if s is None else s.features()

    def describe(self, x: np.ndarray) -> np.ndarray:
        """Global descriptor (D float32, unit norm) of an image (2-D/3-D array) or a descriptor (1-D)."""
        if not isinstance(x, np.ndarray):
            raise ValueError(f"expected an image or a 1-D descriptor array, got {type(x).__name__}")
        if x.ndim == 1:
            if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all() or not np.any(x):
                raise ValueError("a descriptor must be a finite, non-zero float vector")
            d = normalize(x[None])[0]
        else:
            d = self._models.describe_image(x, self.dim)
        if self.dim is not None and len(d) != self.dim:
            raise ValueError(f"descriptor has {len(d)} dimensions, the map has {self.dim}")
        return d

    def add_keyframe(self, kf_id: int, x: np.ndarray, features: Features | None = None) -> None:
        """Add a keyframe.

        Args:
            kf_id: unique integer id.
            x: the keyframe image (H x W [x 3] uint8) or its global descriptor (1-D float, D).
            features: its local features; default: extracted from the image with the frontend
                when ``store_features`` and ``min_inliers > 0`` (not possible from a descriptor).
        """
        kf_id = self._check_new_id(kf_id)
        x, features = self._models.one_pass(x, features, self.dim)
        desc = self.describe(x)
        v = self.verify_config
        if features is None and x.ndim > 1 and v.store_features and v.min_inliers > 0:
            features = self._models.keypoint_model(self.dim).extract(x)
        if features is not None and not isinstance(features, Features):
            raise ValueError(f"features must be runtime.frontend.Features, got {type(features).__name__}")
        self._add(np.array([kf_id], np.int64), desc[None])
        if features is not None and v.store_features:
            self._features[kf_id] = StoredFeatures.compress(
                features, v.max_stored_features, v.descriptor_bits
            )

    def add_descriptors(self, kf_ids, descriptors: np.ndarray) -> None:
        """Add many keyframes from their global descriptors (N ids, N x D float)."""
        ids = check_ids(kf_ids)
        x = np.asarray(descriptors)
        if x.ndim != 2 or len(x) != len(ids) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"descriptors must be N x D float with N = {len(ids)} ids, got {x.dtype} {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("descriptors must be finite")
        if len(np.unique(ids)) != len(ids) or any(int(i) in self._pos for i in ids):
            raise ValueError("kf_ids must be unique and not already in the map")
        if self.dim is not None and x.shape[1] != self.dim:
            raise ValueError(f"descriptors have {x.shape[1]} dimensions, the map has {self.dim}")
        self._add(ids, normalize(x))

    def _check_new_id(self, kf_id) -> int:
        kf_id = int(check_ids([kf_id])[0])
        if kf_id in self._pos:
            raise ValueError(f"keyframe {kf_id} is already in the map")
        return kf_id

    def _add(self, ids: np.ndarray, x: np.ndarray) -> None:
        """Append keyframes; all or nothing: if training the index fails (e.g. too few vectors
        for PQ), the map is left exactly as it was and the error propagates."""
        if len(ids) == 0:
            return
        n0 = len(self._ids)
        self._map.add(x)
        try:
            self._map.train_when_due()
        except BaseException:
            self._map.truncate(n0)
            raise
        self._ids = np.concatenate([self._ids, ids])
        self._pos.update((int(k), n0 + i) for i, k in enumerate(ids))

    def train(self, descriptors: np.ndarray | None = None) -> None:
        """Train PCA / PQ / IVF on ``descriptors`` (N x D; default: the map's keyframes) and move
        the map into the compressed index. Only possible once (the raw descriptors are then gone)."""
        self._map.train(descriptors)

    def search(
        self, descriptors: np.ndarray, k: int = 5, exclude_recent: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch retrieval: (scores N x k float32, kf_ids N x k int64), -1 ids where fewer found."""
        q = np.asarray(descriptors)
        if q.ndim != 2 or not np.issubdtype(q.dtype, np.floating):
            raise ValueError(f"descriptors must be N x D float, got {q.dtype} {q.shape}")
        if not np.isfinite(q).all():
            raise ValueError("descriptors must be finite")
        k = int_at_least("k", k, low=1)
        exclude_recent = int_at_least("exclude_recent", exclude_recent)
        if self.dim is not None and q.shape[1] != self.dim:
            raise ValueError(f"descriptors have {q.shape[1]} dimensions, the map has {self.dim}")
        scores, pos = self._map.search(normalize(q), k, exclude_recent)
        ids = np.full(pos.shape, -1, np.int64)
        ids[pos >= 0] = self._ids[pos[pos >= 0]]
        return scores, ids

    def query(
        self, x: np.ndarray, exclude_recent: int | None = None, k: int | None = None
    ) -> list[Candidate]:
        """Most similar keyframes to an image or a descriptor, best first.

        exclude_recent: ignore the N most recently added keyframes (default: the constructor's);
        k: how many candidates (default ``top_k``).
        """
        r = self.retrieval_config
        exclude = r.exclude_recent
        if exclude_recent is not None:
            exclude = int_at_least("exclude_recent", exclude_recent)
        k = r.top_k if k is None else int_at_least("k", k, low=1)
        d = self.describe(x)
        if not len(self):
            return []
        scores, ids = self.search(d[None], k, exclude)
        return [Candidate(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if np.isfinite(s)]

    def reset_temporal(self) -> None:
        """Forget the temporal-consistency history (e.g. after tracking was lost)."""
        self._temporal.reset()

    def detect(
        self,
        x: np.ndarray,
        features: Features | None = None,
        K: np.ndarray | None = None,
        exclude_recent: int | None = None,
    ) -> LoopClosure | None:
        """Loop closure for the current frame, or None.

        Retrieves ``top_k`` candidates (score >= ``min_score``), applies temporal consistency
        (``temporal_k`` consecutive agreeing queries), then verifies the best ``verify_top``
        candidates by matching local features (mutual NN) and fitting a homography, fundamental
        or essential matrix with MAGSAC++; of those that pass the floors (``min_inliers``,
        ``min_inlier_ratio``, ``min_spread``) with a confidence >= ``min_confidence`` the most
        confident is returned (:mod:`.verify`). Every candidate verified is in
        ``last_verifications``.

        Args:
            x: the current image, or its global descriptor (then ``features`` are needed for
                verification).
            features: the current frame's local features (default: extracted from the image).
            K: intrinsics for essential-matrix verification (default: the constructor's).
            exclude_recent: as in :meth:`query` (keyframes just before this frame always look alike).
        """
        self.last_verifications = ()
        x, features = self._models.one_pass(x, features, self.dim)
        min_score = self.retrieval_config.min_score
        candidates = [c for c in self.query(x, exclude_recent) if c.score >= min_score]
        top = candidates[0] if candidates else None
        if not self._temporal.accept(top, self._pos, candidates) or top is None:
            return None
        v = self.verify_config
        if v.min_inliers == 0:
            top = candidates[0]
            return LoopClosure(top.kf_id, top.score, 0, None)
        if features is None:
            if x.ndim == 1:
                raise ValueError(
                    "detect() with a descriptor needs the frame's features= for geometric verification"
                )
            features = self._models.keypoint_model(self.dim).extract(x)
        K = self.K if K is None else np.asarray(K, np.float64)
        loop, log = verify_all(features, candidates[: v.top], self._features, v, K)
        self.last_verifications = tuple(log)
        return loop

    def stats(self) -> MapStats:
        """Memory accounting of the map (see :class:`MapStats`)."""
        return MapStats.measure(self._map, len(self), self._features)

    def prune(
        self,
        max_bytes: int | None = None,
        max_keyframes: int | None = None,
        duplicate_score: float | None = None,
    ) -> dict[int, int]:
        """Merge redundant keyframes; returns {removed kf_id: kf_id that now represents it}.

        Always merges nearest-neighbour pairs with cosine >= ``duplicate_score`` (default: the
        constructor's); with ``max_keyframes`` and/or ``max_bytes`` (``stats().total_bytes``)
        keeps merging the most similar remaining pairs until the map fits (see :mod:`.prune`).
        """
        budget = PruneBudget(max_keyframes=max_keyframes, max_bytes=max_bytes)
        thr = self.pruning_config.duplicate_score
        if duplicate_score is not None:
            thr = check_duplicate_score(duplicate_score)
        if len(self) < 2:
            return {}
        m = self._map
        local = [self._features.get(int(i)) for i in self._ids]
        nfeat = np.array([0 if s is None else len(s.scores) for s in local])
        size = np.array([m.code_bytes + m.entry_overhead + (0 if s is None else s.nbytes) for s in local])
        plan = plan_prune(m.decode_all(), nfeat, size, m.fixed_bytes, thr, budget)
        if not plan.merged:
            return {}
        mapping = self._apply(plan)
        if plan.over_budget:
            log.warning(
                "prune: the map still exceeds the budget (%d keyframes, %d bytes)",
                plan.keyframes,
                plan.nbytes,
            )
        log.info("prune: merged %d keyframes, %d remain", len(mapping), len(self))
        return mapping

    def _apply(self, plan: PrunePlan) -> dict[int, int]:
        """Carry out a prune plan; returns {removed kf_id: kf_id that now represents it}."""
        codes = self._map.codes()
        for p, prototype in plan.prototypes.items():
            codes[p] = self._map.encode(prototype[None])[0]
        old_ids = self._ids.copy()
        alive = np.ones(len(old_ids), bool)
        alive[plan.drop] = False
        mapping = {int(old_ids[d]): int(old_ids[keep]) for d, keep in plan.merged.items()}
        for d in plan.merged:
            self._features.pop(int(old_ids[d]), None)
        self._map.rebuild(np.ascontiguousarray(codes[alive]))
        self._ids = old_ids[alive]
        self._pos = {int(k): i for i, k in enumerate(self._ids)}
        return mapping

    def save(self, path: str | os.PathLike) -> Path:
        """Write the map (index, ids, local features, configuration, model identity) atomically
        in the versioned, checksummed format of :mod:`runtime.mapstore` (see :mod:`.persist`)."""
        return persist.save_map(path, ids=self._ids, index=self._map, features=self._features,
                                config=self.config, K=self.K, models=self._models.info)  # fmt: skip

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        global_model: GlobalDescriptor | str | os.PathLike | None = None,
        frontend: Frontend | str | os.PathLike | None = None,
        check_model: bool = True,
    ) -> LoopClosureDetector:
        """Read a map written by :meth:`save`. ``global_model=None``: the kind the map was built
        with ("frontend" or "places", see :meth:`.models.MapModels.built_with`).

        Raises MapFormatError (a ValueError naming the file) for a damaged or foreign file, and
        ValueError when ``check_model`` and a given model differs from the one the map was
        built with.
        """
        saved = persist.read_map(path)
        if global_model is None:  # the models the map was built with (maps from before the one pass: places)
            global_model = MapModels.built_with(saved.meta.get("models", {}))
        try:
            det = cls(global_model, frontend, K=saved.meta.get("K"), **saved.config)
        except (TypeError, KeyError) as e:
            raise mapstore.MapFormatError(f"{path}: map configuration not understood ({e})") from None
        det._models.info = dict(saved.meta.get("models", {}))
        if not check_model:  # the given models become the map's
            det._models.adopt_given()
        det._ids = persist.restore_ids(saved)
        det._pos = {int(k): i for i, k in enumerate(det._ids)}
        det._map = persist.restore_index(saved, det._map, len(det._ids))
        det._features = persist.restore_features(saved, det._ids)
        # now, not at the first query: refuse given models that do not fit the map (check_model), or
        # record them as the map's models (check_model=False)
        det._models.check(det.dim, again=True)
        return det

    def __repr__(self) -> str:
        return f"LoopClosureDetector({len(self)} keyframes, index={self.index!r}, trained={self.trained})"

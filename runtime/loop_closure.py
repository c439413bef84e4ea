"""Loop-closure detection for visual SLAM: global-descriptor retrieval over a compact keyframe map,
optional temporal consistency, geometric verification with local features. numpy/faiss/OpenCV.

Map memory
----------
Each keyframe's global descriptor (unit L2, D floats) lives in a faiss index, in insertion order:

- ``index="flat"``: exact inner product on the raw (or PCA-reduced) descriptors, 4·D bytes each.
- ``index="pq"``: optional PCA (``faiss.PCAMatrix`` with a random rotation so the product
  quantizer's sub-spaces carry balanced energy, then re-normalisation) + ``faiss.IndexPQ``
  (L2, 8-bit codes, ``pq_bytes`` sub-quantizers): ``pq_bytes`` bytes each, exhaustive
  asymmetric-distance search.
- ``index="ivfpq"`` (default): the same, inside ``faiss.IndexIVFPQ`` with the L2 metric and
  residual encoding (the coarse centroid is implied by the list, so the same bytes quantize a
  smaller residual: better recall than IndexPQ at equal code size, and only ``nprobe`` of
  ``nlist`` lists are scanned). L2, not inner product: IVF-PQ with inner product and residuals
  gave recall 0 on unit-norm descriptors in an earlier trial (issue 6), and L2 on unit vectors
  ranks exactly like cosine.

PCA and PQ need training. Until the map holds ``train_size`` keyframes (or :meth:`train` is
called, e.g. with descriptors of a calibration sequence), keyframes sit in an exact flat index
(4·D bytes each); the keyframe that reaches ``train_size`` trains the quantizer on all keyframes
so far (a few seconds once) and from then on the map is compressed and the raw descriptors are
gone, so it cannot be retrained. Scores are cosine similarities in the index space (``1 - d²/2``
for L2 codes).

Local features (for geometric verification) are stored per keyframe, compressed: at most
``max_stored_features`` keypoints as uint16 quarter pixels, descriptors as int8 and scores as
uint8: ``5 + D`` bytes per keypoint.

:meth:`LoopClosureDetector.prune` merges near-duplicate keyframes (consecutive ones or revisits):
nearest-neighbour pairs are taken most similar first, and two groups merge when every view of
one has cosine >= ``duplicate_score`` with every view of the other (complete linkage: merging by
the pair alone let merged prototypes drift towards their room's centre until whole rooms
collapsed). Under a ``max_keyframes`` / ``max_bytes`` budget the most similar pairs keep merging
until the map fits. A merge keeps the keyframe with more stored features (ties: the more central
one, then the older one), drops the other's local features, and gives the survivor the
re-encoded mean of its group's descriptors: on the synthetic revisit set this keeps recall@1
(it even rises a little: the mean of several views is a better place prototype).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from homeloc.runtime import __version__, mapstore
from homeloc.runtime.assets import file_sha256
from homeloc.runtime.frontend import (
    Features,
    Frontend,
    Geometry,
    estimate_fundamental,
    estimate_homography,
    estimate_relative_pose,
    match_features,
)
from homeloc.runtime.places import GlobalDescriptor

log = logging.getLogger(__name__)

INDEX_TYPES = ("flat", "pq", "ivfpq")
VERIFICATIONS = ("auto", "fundamental", "homography", "essential")
KEYPOINT_SCALE = 4.0  # stored keypoints: uint16 in 1/4 px (images up to 16383 px)
PQ_MIN_TRAIN = 256  # 8-bit codebooks need at least one training vector per centroid
FORMAT = "homeloc-loop-closure-map"


@dataclass(frozen=True)
class Candidate:
    """A retrieved keyframe: its id and the cosine similarity of its global descriptor."""

    kf_id: int
    score: float


@dataclass(frozen=True)
class LoopClosure:
    """A verified loop: the query matches keyframe ``kf_id``.

    inliers: number of geometrically consistent matches; transform: 3 x 3 float64 homography,
    fundamental or essential matrix mapping the query image (view 0) to the keyframe (view 1),
    None when verification was disabled (``min_inliers=0``); geometry: the full estimate (R, t
    for "essential"); matches: M x 2 int64 inlier matches (query index, keyframe index).
    """

    kf_id: int
    score: float
    inliers: int
    transform: np.ndarray | None
    geometry: Geometry | None = None
    matches: np.ndarray | None = None


@dataclass(frozen=True)
class MapStats:
    """Memory of the map. ``bytes_per_keyframe`` = global descriptor code + stored local features
    (mean); ``overhead_bytes_per_keyframe`` = keyframe id (8) and, for IVF, the list entry id (8); ``fixed_bytes`` = PCA matrix, codebooks and coarse centroids."""

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


@dataclass
class _StoredFeatures:
    keypoints: np.ndarray  # n x 2 uint16, 1/KEYPOINT_SCALE px
    descriptors: np.ndarray  # n x D int8, round(127 * d)
    scores: np.ndarray  # n uint8, round(255 * s)

    @classmethod
    def compress(cls, f: Features, max_features: int) -> _StoredFeatures:
        order = np.argsort(-f.scores, kind="stable")[:max_features]
        kp = np.clip(np.rint(f.keypoints[order] * KEYPOINT_SCALE), 0, 65535).astype(np.uint16)
        desc = np.clip(np.rint(f.descriptors[order] * 127.0), -127, 127).astype(np.int8)
        sc = np.clip(np.rint(f.scores[order] * 255.0), 0, 255).astype(np.uint8)
        return cls(kp, desc, sc)

    def features(self) -> Features:
        d = self.descriptors.astype(np.float32)
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return Features(
            self.keypoints.astype(np.float32) / KEYPOINT_SCALE, self.scores.astype(np.float32) / 255.0, d
        )

    @property
    def nbytes(self) -> int:
        return self.keypoints.nbytes + self.descriptors.nbytes + self.scores.nbytes


def _normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _largest_divisor(d: int, at_most: int) -> int:
    return max(m for m in range(1, min(d, at_most) + 1) if d % m == 0)


class LoopClosureDetector:
    """Keyframe map + loop-closure detection.

    Args:
        global_model: GlobalDescriptor, a place ONNX path, or None (the shipped model, loaded
            when an image first needs describing; descriptor-only use never loads it).
        frontend: Frontend, a keypoint ONNX path, or None (the shipped model, loaded when local
            features are first needed for an image).
        index: "flat", "pq" or "ivfpq" (see the module docstring).
        pca_dim: reduce descriptors to this many dimensions by PCA before coding (None: keep D).
        pca_whiten: PCA-whitening (components scaled to unit variance, then re-normalised): on
            real image descriptors (Nordland thumbnails) it raised recall, as it does for NetVLAD.
        pq_bytes: code bytes per keyframe for "pq"/"ivfpq" (8-bit sub-quantizers; the largest
            divisor of the coded dimension not above pq_bytes is used).
        nlist, nprobe: IVF lists (None: about training size / 16, a power of two) and lists
            scanned per query.
        train_size: keyframe count that triggers training of PCA/PQ (None: only :meth:`train`).
        min_score: candidates below this cosine similarity are ignored by :meth:`detect`.
        min_inliers: geometric inliers a loop needs (0: no verification, retrieval only).
        temporal_k: :meth:`detect` accepts a loop only after this many consecutive queries whose
            best candidates lie within ``temporal_window`` keyframes of each other (1: off).
        top_k: candidates retrieved per query; verify_top: how many of them are verified.
        exclude_recent: default number of most recent keyframes a query ignores.
        verification: "auto" (essential with K, else fundamental), "fundamental",
            "homography" or "essential" (needs K).
        K: 3 x 3 camera intrinsics for "essential"/"auto" (also per call in :meth:`detect`).
        ransac_threshold: pixels (None: 3 for homography, 1 for fundamental/essential).
        max_distance: descriptor distance limit of the local matches (None: mutual NN only).
        store_features: keep local features of keyframes for verification.
        max_stored_features: keypoints kept per keyframe (best scores).
        duplicate_score: cosine similarity above which :meth:`prune` merges two keyframes.
    """

    def __init__(
        self,
        global_model: GlobalDescriptor | str | os.PathLike | None = None,
        frontend: Frontend | str | os.PathLike | None = None,
        index: str = "ivfpq",
        pca_dim: int | None = None,
        pca_whiten: bool = False,
        pq_bytes: int = 64,
        nlist: int | None = None,
        nprobe: int = 16,
        train_size: int | None = 1000,
        min_score: float = 0.0,
        min_inliers: int = 20,
        temporal_k: int = 1,
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
    ) -> None:
        if index not in INDEX_TYPES:
            raise ValueError(f"unknown index {index!r}; choose one of {INDEX_TYPES}")
        if verification not in VERIFICATIONS:
            raise ValueError(f"unknown verification {verification!r}; choose one of {VERIFICATIONS}")
        if pca_dim is not None and pca_dim < 1:
            raise ValueError(f"pca_dim must be >= 1, got {pca_dim}")
        if pq_bytes < 1 or nprobe < 1 or temporal_k < 1 or temporal_window < 0 or top_k < 1 or verify_top < 0:
            raise ValueError(
                "pq_bytes, nprobe, temporal_k, top_k must be >= 1; temporal_window, verify_top >= 0"
            )
        if min_inliers < 0 or exclude_recent < 0 or max_stored_features < 1:
            raise ValueError("min_inliers and exclude_recent must be >= 0, max_stored_features >= 1")
        if train_size is not None and train_size < 1:
            raise ValueError(f"train_size must be >= 1 or None, got {train_size}")
        self.index = index
        self.pca_dim = pca_dim
        self.pca_whiten = bool(pca_whiten)
        self.pq_bytes = pq_bytes
        self.nlist = nlist
        self.nprobe = nprobe
        self.train_size = train_size
        self.min_score = float(min_score)
        self.min_inliers = min_inliers
        self.temporal_k = temporal_k
        self.temporal_window = temporal_window
        self.top_k = top_k
        self.verify_top = verify_top
        self.exclude_recent = exclude_recent
        self.verification = verification
        self.ransac_threshold = ransac_threshold
        self.max_distance = max_distance
        self.store_features = store_features
        self.max_stored_features = max_stored_features
        self.duplicate_score = float(duplicate_score)
        self.K = None if K is None else np.asarray(K, np.float64)
        self._global = (
            GlobalDescriptor(global_model) if isinstance(global_model, (str, os.PathLike)) else global_model
        )
        self._frontend = Frontend(frontend) if isinstance(frontend, (str, os.PathLike)) else frontend
        self._model_info: dict[str, dict] = {}
        self._dim: int | None = None
        self._ids = np.zeros(0, np.int64)  # kf_id of each index position, insertion order
        self._pos: dict[int, int] = {}
        self._features: dict[int, _StoredFeatures] = {}
        self._index: faiss.Index | None = None
        self._proj: tuple[np.ndarray, np.ndarray] | None = None  # PCA (A, b): y = A x + b
        self._trained = False
        self._streak, self._last_top = 0, None
        self._checked: set[int] = set()  # id() of the model objects already checked against the map
        self._check_models()

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return len(self._ids)

    _CONFIG = ("index", "pca_dim", "pca_whiten", "pq_bytes", "nlist", "nprobe", "train_size", "min_score", "min_inliers",
               "temporal_k", "temporal_window", "top_k", "verify_top", "exclude_recent", "verification",
               "ransac_threshold", "max_distance", "store_features", "max_stored_features", "duplicate_score")  # fmt: skip

    @property
    def config(self) -> dict:
        """The constructor's settings (what :meth:`save` stores), without models and K."""
        return {name: getattr(self, name) for name in self._CONFIG}

    @property
    def keyframe_ids(self) -> np.ndarray:
        """kf_ids in insertion order (a copy)."""
        return self._ids.copy()

    @property
    def trained(self) -> bool:
        """True once the map is in its final (compressed) index."""
        return self._trained

    @property
    def dim(self) -> int | None:
        """Global descriptor dimension D (None before the first keyframe)."""
        return self._dim

    def features_of(self, kf_id: int) -> Features | None:
        """Stored (decompressed) local features of a keyframe, or None."""
        s = self._features.get(int(kf_id))
        return None if s is None else s.features()

    # ------------------------------------------------------------------ models
    def _global_model(self) -> GlobalDescriptor:
        if self._global is None:
            self._global = GlobalDescriptor(None)
            self._check_models()
        return self._global

    def _frontend_model(self) -> Frontend:
        if self._frontend is None:
            self._frontend = Frontend(None)
            self._check_models()
        return self._frontend

    def _check_models(self) -> None:
        """Record the identity of the models in use, or refuse one that differs from the map's."""
        if self._global is not None and id(self._global) not in self._checked:
            self._note_model("places", self._global.model_path, self._global.metadata)
            if self._dim is not None and self._global.dim != self._dim:
                raise ValueError(
                    f"{self._global.model_path}: gives {self._global.dim}-d descriptors, the map holds {self._dim}-d"
                )
            self._checked.add(id(self._global))
        if self._frontend is not None and id(self._frontend) not in self._checked:
            self._note_model("keypoints", self._frontend.model_path, self._frontend.metadata)
            self._checked.add(id(self._frontend))

    def _note_model(self, kind: str, path: Path, metadata: dict[str, str]) -> None:
        # identity: the trained weights (homeloc.weights_sha256, the same for the fp32 and int8
        # exports of one checkpoint), else the file itself
        weights = metadata.get("homeloc.weights_sha256")
        info = {"identity": f"weights:{weights}" if weights else f"file:{file_sha256(path)}",
                "model_version": metadata.get("homeloc.model_version"),
                "precision": metadata.get("homeloc.precision")}  # fmt: skip
        known = self._model_info.get(kind)
        if known is None:
            self._model_info[kind] = info
        elif known.get("identity") != info["identity"]:
            raise ValueError(
                f"{path}: this {kind} model differs from the one the map was built with "
                f"({info['identity'][:20]} vs {str(known.get('identity'))[:20]}); its descriptors are not "
                "comparable. Rebuild the map, or load it with check_model=False if you know they are compatible"
            )

    def describe(self, x: np.ndarray) -> np.ndarray:
        """Global descriptor (D float32, unit norm) of an image (2-D/3-D array) or a descriptor (1-D)."""
        if not isinstance(x, np.ndarray):
            raise ValueError(f"expected an image or a 1-D descriptor array, got {type(x).__name__}")
        if x.ndim == 1:
            if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all() or not np.any(x):
                raise ValueError("a descriptor must be a finite, non-zero float vector")
            d = _normalize(x[None])[0]
        else:
            d = self._global_model().describe(x)[0]
        if self._dim is not None and len(d) != self._dim:
            raise ValueError(f"descriptor has {len(d)} dimensions, the map has {self._dim}")
        return d

    # ------------------------------------------------------------------ building the map
    def add_keyframe(self, kf_id: int, x: np.ndarray, features: Features | None = None) -> None:
        """Add a keyframe.

        Args:
            kf_id: unique integer id.
            x: the keyframe image (H x W [x 3] uint8) or its global descriptor (1-D float, D).
            features: its local features; default: extracted from the image with the frontend
                when ``store_features`` and ``min_inliers > 0`` (not possible from a descriptor).
        """
        kf_id = self._check_new_id(kf_id)
        desc = self.describe(x)
        if features is None and x.ndim > 1 and self.store_features and self.min_inliers > 0:
            features = self._frontend_model().extract(x)
        if features is not None and not isinstance(features, Features):
            raise ValueError(f"features must be runtime.frontend.Features, got {type(features).__name__}")
        self._add(np.array([kf_id], np.int64), desc[None])
        if features is not None and self.store_features:
            self._features[kf_id] = _StoredFeatures.compress(features, self.max_stored_features)

    def add_descriptors(self, kf_ids, descriptors: np.ndarray) -> None:
        """Add many keyframes from their global descriptors (N ids, N x D float)."""
        ids = np.asarray(kf_ids, dtype=np.int64).reshape(-1)
        x = np.asarray(descriptors)
        if x.ndim != 2 or len(x) != len(ids) or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(
                f"descriptors must be N x D float with N = {len(ids)} ids, got {x.dtype} {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("descriptors must be finite")
        if len(np.unique(ids)) != len(ids) or any(int(i) in self._pos for i in ids):
            raise ValueError("kf_ids must be unique and not already in the map")
        if self._dim is not None and x.shape[1] != self._dim:
            raise ValueError(f"descriptors have {x.shape[1]} dimensions, the map has {self._dim}")
        self._add(ids, _normalize(x))

    def _check_new_id(self, kf_id) -> int:
        if isinstance(kf_id, bool) or not isinstance(kf_id, (int, np.integer)):
            raise ValueError(f"kf_id must be an int, got {type(kf_id).__name__}")
        kf_id = int(kf_id)
        if kf_id in self._pos:
            raise ValueError(f"keyframe {kf_id} is already in the map")
        return kf_id

    def _add(self, ids: np.ndarray, x: np.ndarray) -> None:
        if len(ids) == 0:
            return
        if self._index is None:
            self._dim = x.shape[1]
            self._index = faiss.IndexFlatIP(self._dim)
            self._trained = not self._needs_training()
        n0 = len(self._ids)
        self._index_add(self._to_index_space(x), n0)
        self._ids = np.concatenate([self._ids, ids])
        self._pos.update((int(k), n0 + i) for i, k in enumerate(ids))
        ts = self.train_size
        if not self._trained and ts is not None and len(self._ids) >= ts:
            log.info("training the %s map index on %d keyframes", self.index, len(self._ids))
            self.train()

    def _index_add(self, y: np.ndarray, first_position: int) -> None:
        if isinstance(self._index, faiss.IndexIVF):
            self._index.add_with_ids(y, np.arange(first_position, first_position + len(y), dtype=np.int64))
        else:
            self._index.add(y)

    def _needs_training(self) -> bool:
        return self.index != "flat" or self.pca_dim is not None

    def _to_index_space(self, x: np.ndarray) -> np.ndarray:
        if self._proj is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        A, b = self._proj
        return _normalize(x @ A.T + b)

    def train(self, descriptors: np.ndarray | None = None) -> None:
        """Train PCA / PQ / IVF on ``descriptors`` (N x D; default: the map's keyframes) and move
        the map into the compressed index. Only possible once (the raw descriptors are then gone)."""
        if self._trained and self._index is not None:
            raise ValueError(
                "the map index is already trained; retraining needs raw descriptors it no longer has"
            )
        if descriptors is None:
            if not len(self):
                raise ValueError("nothing to train on: add keyframes or pass descriptors")
            X = self._decode_all()
        else:
            X = np.asarray(descriptors)
            if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating) or not np.isfinite(X).all():
                raise ValueError(
                    f"training descriptors must be a finite N x D float array, got {X.dtype} {X.shape}"
                )
            if self._dim is not None and X.shape[1] != self._dim:
                raise ValueError(
                    f"training descriptors have {X.shape[1]} dimensions, the map has {self._dim}"
                )
            X = _normalize(X)
        n, d = X.shape
        existing = self._decode_all() if len(self) else np.zeros((0, d), np.float32)
        proj = None
        if self.pca_dim is not None:
            if self.pca_dim > d or n < self.pca_dim:
                raise ValueError(
                    f"PCA to {self.pca_dim} dims needs pca_dim <= D={d} and >= {self.pca_dim} training vectors (got {n})"
                )
            pca = faiss.PCAMatrix(d, self.pca_dim, -0.5 if self.pca_whiten else 0.0, self.index != "flat")
            pca.train(X)
            A = faiss.vector_to_array(pca.A).reshape(self.pca_dim, d).astype(np.float32)
            proj = (A, faiss.vector_to_array(pca.b).astype(np.float32))
        self._proj = proj
        Y = self._to_index_space(X)
        self._index = self._make_index(Y.shape[1], n)
        if not self._index.is_trained:
            self._index.train(Y)
        self._dim = d
        self._trained = True
        if len(existing):
            self._index_add(self._to_index_space(existing), 0)

    def _make_index(self, d: int, n_train: int) -> faiss.Index:
        if self.index == "flat":
            return faiss.IndexFlatIP(d)
        if n_train < PQ_MIN_TRAIN:
            raise ValueError(
                f"product quantization needs at least {PQ_MIN_TRAIN} training descriptors, got {n_train}"
            )
        m = _largest_divisor(d, self.pq_bytes)
        if self.index == "pq":
            idx = faiss.IndexPQ(d, m, 8, faiss.METRIC_L2)
            idx.pq.cp.min_points_per_centroid = 1  # small maps: train anyway, without faiss's warning
            return idx
        # many small lists: the residuals get smaller (better codes) while nprobe bounds the scan
        nlist = self.nlist or int(2 ** round(math.log2(max(n_train / 16, 1))))
        nlist = int(min(max(nlist, 1), max(n_train // 8, 1), 65536))
        idx = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, nlist, m, 8, faiss.METRIC_L2)
        idx.by_residual = True
        idx.pq.cp.min_points_per_centroid = 1
        idx.cp.min_points_per_centroid = 1
        idx.nprobe = min(self.nprobe, nlist)
        return idx

    # ------------------------------------------------------------------ codes
    def _codes(self) -> np.ndarray:
        """Standalone codes (faiss sa_encode format) of every position, in insertion order."""
        idx, n = self._index, len(self)
        if not isinstance(idx, faiss.IndexIVF):
            return faiss.vector_to_array(idx.codes).reshape(n, idx.sa_code_size())
        cc, cs = idx.coarse_code_size(), idx.code_size
        out = np.zeros((n, cc + cs), np.uint8)
        inv = idx.invlists
        for lst in range(idx.nlist):
            size = inv.list_size(lst)
            if not size:
                continue
            pos = faiss.rev_swig_ptr(inv.get_ids(lst), size).copy()
            out[pos, :cc] = np.frombuffer(np.int64(lst).astype("<i8").tobytes(), np.uint8)[:cc]
            out[pos, cc:] = faiss.rev_swig_ptr(inv.get_codes(lst), size * cs).reshape(size, cs)
        return out

    def _decode_all(self) -> np.ndarray:
        """Every keyframe's vector in index space (raw D before training), unit norm."""
        return (
            _normalize(self._index.sa_decode(self._codes()))
            if len(self)
            else np.zeros((0, self._dim), np.float32)
        )

    def _rebuild(self, codes: np.ndarray) -> None:
        self._index.reset()
        if len(codes) == 0:
            return
        if isinstance(self._index, faiss.IndexIVF):
            self._index.add_sa_codes(codes, np.arange(len(codes), dtype=np.int64))
        else:
            self._index.add_sa_codes(codes)

    # ------------------------------------------------------------------ retrieval
    def search(
        self, descriptors: np.ndarray, k: int = 5, exclude_recent: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch retrieval: (scores N x k float32, kf_ids N x k int64), -1 ids where fewer found."""
        q = np.asarray(descriptors)
        if q.ndim != 2 or not np.issubdtype(q.dtype, np.floating):
            raise ValueError(f"descriptors must be N x D float, got {q.dtype} {q.shape}")
        if self._dim is not None and q.shape[1] != self._dim:
            raise ValueError(f"descriptors have {q.shape[1]} dimensions, the map has {self._dim}")
        n = len(self)
        scores = np.full((len(q), k), -np.inf, np.float32)
        ids = np.full((len(q), k), -1, np.int64)
        limit = n - exclude_recent
        if limit <= 0 or len(q) == 0:
            return scores, ids
        kk = min(k + exclude_recent, n)
        D, pos = self._index.search(self._to_index_space(_normalize(q)), kk)
        sim = D if self._index.metric_type == faiss.METRIC_INNER_PRODUCT else 1.0 - D / 2.0
        for r in range(len(q)):
            keep = (pos[r] >= 0) & (pos[r] < limit)
            p, s = pos[r][keep][:k], sim[r][keep][:k]
            scores[r, : len(p)], ids[r, : len(p)] = s, self._ids[p]
        return scores, ids

    def query(
        self, x: np.ndarray, exclude_recent: int | None = None, k: int | None = None
    ) -> list[Candidate]:
        """Most similar keyframes to an image or a descriptor, best first.

        exclude_recent: ignore the N most recently added keyframes (default: the constructor's);
        k: how many candidates (default ``top_k``).
        """
        exclude = self.exclude_recent if exclude_recent is None else int(exclude_recent)
        if exclude < 0:
            raise ValueError(f"exclude_recent must be >= 0, got {exclude}")
        d = self.describe(x)
        if not len(self):
            return []
        scores, ids = self.search(d[None], k or self.top_k, exclude)
        return [Candidate(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def reset_temporal(self) -> None:
        """Forget the temporal-consistency history (e.g. after tracking was lost)."""
        self._streak, self._last_top = 0, None

    def _temporal_ok(self, top: Candidate | None) -> bool:
        if top is None:
            self.reset_temporal()
            return False
        prev = self._last_top
        p = self._pos[top.kf_id]
        if prev is not None and prev in self._pos and abs(self._pos[prev] - p) <= self.temporal_window:
            self._streak += 1
        else:
            self._streak = 1
        self._last_top = top.kf_id
        return self._streak >= self.temporal_k

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
        or essential matrix with MAGSAC++; the first with >= ``min_inliers`` inliers is returned.

        Args:
            x: the current image, or its global descriptor (then ``features`` are needed for
                verification).
            features: the current frame's local features (default: extracted from the image).
            K: intrinsics for essential-matrix verification (default: the constructor's).
            exclude_recent: as in :meth:`query` (keyframes just before this frame always look alike).
        """
        candidates = [c for c in self.query(x, exclude_recent) if c.score >= self.min_score]
        if not self._temporal_ok(candidates[0] if candidates else None) or not candidates:
            return None
        if self.min_inliers == 0:
            top = candidates[0]
            return LoopClosure(top.kf_id, top.score, 0, None)
        if features is None:
            if x.ndim == 1:
                raise ValueError(
                    "detect() with a descriptor needs the frame's features= for geometric verification"
                )
            features = self._frontend_model().extract(x)
        K = self.K if K is None else np.asarray(K, np.float64)
        for c in candidates[: self.verify_top]:
            stored = self._features.get(c.kf_id)
            if stored is None:
                continue
            kf = stored.features()
            matches = match_features(features, kf, self.max_distance)
            geom = self._verify(features, kf, matches, K)
            if geom.ok and geom.num_inliers >= self.min_inliers:
                return LoopClosure(
                    c.kf_id, c.score, geom.num_inliers, geom.matrix, geom, matches[geom.inliers]
                )
        return None

    def _verify(self, f0: Features, f1: Features, matches: np.ndarray, K: np.ndarray | None) -> Geometry:
        mode = self.verification
        if mode == "auto":
            mode = "essential" if K is not None else "fundamental"
        t = self.ransac_threshold
        if mode == "homography":
            return estimate_homography(f0, f1, matches, 3.0 if t is None else t)
        if mode == "fundamental":
            return estimate_fundamental(f0, f1, matches, 1.0 if t is None else t)
        if K is None:
            raise ValueError("essential-matrix verification needs K (constructor or detect(K=...))")
        return estimate_relative_pose(f0, f1, matches, K, 1.0 if t is None else t)

    # ------------------------------------------------------------------ memory
    def _entry_overhead(self) -> int:
        return 8 + (8 if isinstance(self._index, faiss.IndexIVF) else 0)

    def _code_bytes(self) -> int:
        if self._index is None:
            return 0
        return (
            self._index.code_size if isinstance(self._index, faiss.IndexIVF) else self._index.sa_code_size()
        )

    def _fixed_bytes(self) -> int:
        total = 0 if self._proj is None else self._proj[0].nbytes + self._proj[1].nbytes
        idx = self._index
        if isinstance(idx, (faiss.IndexPQ, faiss.IndexIVFPQ)):
            total += idx.pq.M * idx.pq.ksub * idx.pq.dsub * 4
        if isinstance(idx, faiss.IndexIVF):
            total += idx.nlist * idx.d * 4
        return total

    def stats(self) -> MapStats:
        """Memory accounting of the map (see :class:`MapStats`)."""
        n = len(self)
        local = sum(s.nbytes for s in self._features.values())
        code = self._code_bytes()
        fixed = self._fixed_bytes()
        local_mean = local / n if n else 0.0
        return MapStats(
            keyframes=n,
            index=self.index,
            trained=self._trained,
            dim=self._dim or 0,
            index_dim=0 if self._index is None else int(self._index.d),
            code_bytes=code,
            local_bytes_per_keyframe=local_mean,
            bytes_per_keyframe=code + local_mean,
            overhead_bytes_per_keyframe=self._entry_overhead(),
            fixed_bytes=fixed,
            total_bytes=fixed + n * (code + self._entry_overhead()) + local,
            keyframes_with_features=len(self._features),
        )

    def prune(
        self,
        max_bytes: int | None = None,
        max_keyframes: int | None = None,
        duplicate_score: float | None = None,
    ) -> dict[int, int]:
        """Merge redundant keyframes; returns {removed kf_id: kf_id that now represents it}.

        Always merges nearest-neighbour pairs with cosine >= ``duplicate_score`` (default: the
        constructor's); with ``max_keyframes`` and/or ``max_bytes`` (``stats().total_bytes``)
        keeps merging the most similar remaining pairs until the map fits.
        """
        if max_keyframes is not None and max_keyframes < 1:
            raise ValueError(f"max_keyframes must be >= 1, got {max_keyframes}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        thr = self.duplicate_score if duplicate_score is None else float(duplicate_score)
        n = len(self)
        if n < 2:
            return {}
        X0 = self._decode_all()
        X = X0.copy()
        members: dict[int, list[int]] = {}
        nfeat = np.array(
            [len(self._features[int(i)].scores) if int(i) in self._features else 0 for i in self._ids]
        )
        entry = self._code_bytes() + self._entry_overhead()
        size = np.array(
            [entry + (self._features[int(i)].nbytes if int(i) in self._features else 0) for i in self._ids]
        )
        alive = np.ones(n, bool)
        parent: dict[int, int] = {}
        fixed = self._fixed_bytes()
        state = {"count": n, "bytes": fixed + int(size.sum())}

        def over_budget() -> bool:
            return (max_keyframes is not None and state["count"] > max_keyframes) or (
                max_bytes is not None and state["bytes"] > max_bytes
            )

        centrality = None  # mean similarity to the nearest neighbours: the tie-break keeps the medoid
        while state["count"] > 1:
            merged = 0
            pairs = self._neighbour_pairs(X, alive)
            if centrality is None:
                total, count = np.zeros(n), np.zeros(n)
                for score, a, b in pairs:
                    total[[a, b]] += score
                    count[[a, b]] += 1
                centrality = total / np.maximum(count, 1)
            for score, a, b in pairs:
                if score < thr and not over_budget():
                    break  # pairs come most similar first: no duplicates left and within budget
                if not (alive[a] and alive[b]):
                    continue
                ga, gb = members.get(a, [a]), members.get(b, [b])
                if not over_budget() and (X0[ga] @ X0[gb].T).min() < thr:
                    continue  # complete linkage: every view of the two groups must be a duplicate
                keep, drop = (
                    (a, b) if (nfeat[a], centrality[a], -a) >= (nfeat[b], centrality[b], -b) else (b, a)
                )
                members[keep] = ga + gb
                members.pop(drop, None)
                X[keep] = _normalize(X0[members[keep]].mean(axis=0, keepdims=True))[0]
                alive[drop] = False
                parent[drop] = keep
                state["count"] -= 1
                state["bytes"] -= int(size[drop])
                merged += 1
                if state["count"] <= 1:
                    break
            if merged == 0:
                break
        if not parent:
            return {}
        codes = self._codes()
        for p, group in members.items():
            if alive[p] and len(group) > 1:
                codes[p] = self._index.sa_encode(X[p][None])[0]
        old_ids = self._ids.copy()

        def root(p: int) -> int:
            while p in parent:
                p = parent[p]
            return p

        mapping = {int(old_ids[d]): int(old_ids[root(d)]) for d in parent}
        for d in parent:
            self._features.pop(int(old_ids[d]), None)
        self._rebuild(np.ascontiguousarray(codes[alive]))
        self._ids = old_ids[alive]
        self._pos = {int(k): i for i, k in enumerate(self._ids)}
        if over_budget():
            log.warning(
                "prune: the map still exceeds the budget (%d keyframes, %d bytes)",
                state["count"],
                state["bytes"],
            )
        log.info("prune: merged %d keyframes, %d remain", len(mapping), len(self))
        return mapping

    @staticmethod
    def _neighbour_pairs(X: np.ndarray, alive: np.ndarray, k: int = 8) -> list[tuple[float, int, int]]:
        """(score, a, b) nearest-neighbour pairs among alive positions, most similar first
        (exact k-NN up to 20k keyframes, IVF-flat with 8 probes above)."""
        pos = np.flatnonzero(alive)
        k = min(k, len(pos) - 1)
        Y = np.ascontiguousarray(X[pos])
        if len(pos) <= 20_000:
            knn = faiss.IndexFlatIP(X.shape[1])
        else:
            knn = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(X.shape[1]),
                X.shape[1],
                int(math.sqrt(len(pos))),
                faiss.METRIC_INNER_PRODUCT,
            )
            knn.train(Y)
            knn.nprobe = 8
        knn.add(Y)
        S, N = knn.search(Y, k + 1)
        best: dict[tuple[int, int], float] = {}
        for r, a in enumerate(pos):
            for s, j in zip(S[r], N[r], strict=True):
                if j < 0 or pos[j] == a:
                    continue
                key = (int(min(a, pos[j])), int(max(a, pos[j])))
                best[key] = max(best.get(key, -np.inf), float(s))
        return sorted(((s, a, b) for (a, b), s in best.items()), key=lambda t: (-t[0], t[1], t[2]))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> Path:
        """Write the map (index, ids, local features, configuration, model identity) atomically
        in the versioned, checksummed format of :mod:`runtime.mapstore`."""
        arrays: dict[str, np.ndarray] = {"ids": self._ids}
        if self._index is not None:
            arrays["index"] = faiss.serialize_index(self._index)
        if self._proj is not None:
            arrays["pca_A"], arrays["pca_b"] = self._proj
        with_feat = [i for i, k in enumerate(self._ids) if int(k) in self._features]
        feats = [self._features[int(self._ids[i])] for i in with_feat]
        arrays["feat_positions"] = np.array(with_feat, np.int64)
        arrays["feat_counts"] = np.array([len(f.scores) for f in feats], np.int64)
        if feats:
            arrays["feat_keypoints"] = np.concatenate([f.keypoints for f in feats])
            arrays["feat_descriptors"] = np.concatenate([f.descriptors for f in feats])
            arrays["feat_scores"] = np.concatenate([f.scores for f in feats])
        cfg = dict(self.config)
        meta = {
            "format": FORMAT,
            "runtime_version": __version__,
            "config": cfg,
            "K": None if self.K is None else self.K.tolist(),
            "dim": self._dim,
            "trained": self._trained,
            "models": self._model_info,
        }
        return mapstore.write(path, meta, arrays)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        global_model: GlobalDescriptor | str | os.PathLike | None = None,
        frontend: Frontend | str | os.PathLike | None = None,
        check_model: bool = True,
    ) -> LoopClosureDetector:
        """Read a map written by :meth:`save`.

        Raises MapFormatError (a ValueError naming the file) for a damaged or foreign file, and
        ValueError when ``check_model`` and a given model differs from the one the map was
        built with.
        """
        meta, arrays = mapstore.read(path)
        if meta.get("format") != FORMAT:
            raise mapstore.MapFormatError(f"{path}: not a loop-closure map (format {meta.get('format')!r})")
        try:
            det = cls(global_model, frontend, K=meta.get("K"), **meta["config"])
        except (TypeError, KeyError) as e:
            raise mapstore.MapFormatError(f"{path}: map configuration not understood ({e})") from None
        det._dim = meta["dim"]
        det._trained = bool(meta["trained"])
        det._model_info = dict(meta.get("models", {}))
        if not check_model:  # the given models become the map's
            for kind, model in (("places", det._global), ("keypoints", det._frontend)):
                if model is not None:
                    det._model_info.pop(kind, None)
        det._ids = arrays["ids"].astype(np.int64)
        det._pos = {int(k): i for i, k in enumerate(det._ids)}
        if "index" in arrays:
            det._index = faiss.deserialize_index(arrays["index"])
            if det._index.ntotal != len(det._ids):
                raise mapstore.MapFormatError(
                    f"{path}: index holds {det._index.ntotal} entries for {len(det._ids)} ids"
                )
        if "pca_A" in arrays:
            det._proj = (arrays["pca_A"], arrays["pca_b"])
        if len(arrays["feat_positions"]):
            ends = np.cumsum(arrays["feat_counts"])
            starts = ends - arrays["feat_counts"]
            for p, s, e in zip(arrays["feat_positions"], starts, ends, strict=True):
                det._features[int(det._ids[p])] = _StoredFeatures(
                    arrays["feat_keypoints"][s:e], arrays["feat_descriptors"][s:e], arrays["feat_scores"][s:e]
                )
        # now, not at the first query: refuse given models that do not fit the map (check_model), or
        # record them as the map's models (check_model=False)
        det._checked.clear()
        det._check_models()
        return det

    def __repr__(self) -> str:
        return f"LoopClosureDetector({len(self)} keyframes, index={self.index!r}, trained={self._trained})"

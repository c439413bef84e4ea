"""The compressed global-descriptor index of the keyframe map, and its byte accounting.

Map memory
----------
Each keyframe's global descriptor (unit L2, D floats) lives in a faiss index, in insertion order
(entry ``i`` is the ``i``-th keyframe added; the detector keeps the kf_id of each position):

- ``kind="flat"``: exact inner product on the raw (or PCA-reduced) descriptors, 4·D bytes each.
- ``kind="pq"``: optional PCA (``faiss.PCAMatrix`` with a random rotation so the product
  quantizer's sub-spaces carry balanced energy, then re-normalisation) + ``faiss.IndexPQ``
  (L2, 8-bit codes, ``pq_bytes`` sub-quantizers): ``pq_bytes`` bytes each, exhaustive
  asymmetric-distance search.
- ``kind="ivfpq"`` (default): the same, inside ``faiss.IndexIVFPQ`` with the L2 metric and
  residual encoding (the coarse centroid is implied by the list, so the same bytes quantize a
  smaller residual: better recall than IndexPQ at equal code size, and only ``nprobe`` of
  ``nlist`` lists are scanned). L2, not inner product: IVF-PQ with inner product and residuals
  gave recall 0 on unit-norm descriptors in an earlier trial (issue 6), and L2 on unit vectors
  ranks exactly like cosine.
- ``kind="sq8"`` / ``"sq6"`` / ``"sq4"``: optional PCA, then ``faiss.IndexScalarQuantizer`` (L2):
  each dimension coded with 8 / 6 / 4 bits over its range in the training keyframes; D, 3·D/4 or
  D/2 bytes each. Many more bytes than PQ's 64, but on held-out places the 64-byte codes lose
  recall that the scalar codes keep (docs/runtime.md, "Map compression on held-out places").

PCA and PQ need training. Until the map holds ``train_size`` keyframes (or :meth:`DescriptorIndex.train`
is called, e.g. with descriptors of a calibration sequence), keyframes sit in an exact flat index
(4·D bytes each); the keyframe that reaches ``train_size`` trains the quantizer on all keyframes
so far (a few seconds once) and from then on the map is compressed and the raw descriptors are
gone, so it cannot be retrained. Scores are cosine similarities in the index space (``1 - d²/2``
for L2 codes).
"""

from __future__ import annotations

import logging
import math

import faiss
import numpy as np

from homeloc.runtime.loop_closure.config import IndexConfig

log = logging.getLogger(__name__)

PQ_MIN_TRAIN = 256  # 8-bit codebooks need at least one training vector per centroid
Projection = tuple[np.ndarray, np.ndarray]  # PCA (A, b): y = A x + b
SQ_TYPES = {
    "sq8": faiss.ScalarQuantizer.QT_8bit,
    "sq6": faiss.ScalarQuantizer.QT_6bit,
    "sq4": faiss.ScalarQuantizer.QT_4bit,
}


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def largest_divisor(d: int, at_most: int) -> int:
    """The largest divisor of ``d`` that is <= ``at_most`` (PQ sub-quantizers must divide d)."""
    return max(m for m in range(1, min(d, at_most) + 1) if d % m == 0)


class DescriptorIndex:
    """The faiss index of the map's global descriptors, addressed by position (insertion order).

    ``dim`` is the descriptor dimension D (None before the first descriptor); ``trained`` is True
    once the index is in its final (compressed) form. Descriptors given to :meth:`add`,
    :meth:`train` and :meth:`search` are unit-norm float32 N x D.
    """

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.dim: int | None = None
        self.trained = False
        self.faiss_index: faiss.Index | None = None
        self.projection: Projection | None = None

    @classmethod
    def restore(
        cls,
        config: IndexConfig,
        dim: int | None,
        trained: bool,
        faiss_index: faiss.Index | None,
        projection: Projection | None,
    ) -> DescriptorIndex:
        """An index in a saved state (see :mod:`.persist`)."""
        idx = cls(config)
        idx.dim, idx.trained, idx.faiss_index, idx.projection = dim, trained, faiss_index, projection
        return idx

    def __len__(self) -> int:
        return 0 if self.faiss_index is None else int(self.faiss_index.ntotal)

    @property
    def needs_training(self) -> bool:
        return self.config.kind != "flat" or self.config.pca_dim is not None

    # ------------------------------------------------------------------ adding / training
    def add(self, x: np.ndarray) -> None:
        """Append descriptors (positions len(self)...). Call :meth:`train_when_due` after."""
        if self.faiss_index is None:
            self.dim = x.shape[1]
            self.faiss_index = faiss.IndexFlatIP(self.dim)
            self.trained = not self.needs_training
        self._add_encoded(self.to_index_space(x))

    def train_when_due(self) -> None:
        """Train on the indexed descriptors once they reach ``train_size``. Separate from
        :meth:`add` so that the caller records the new entries first: if training fails, the
        entries are still in the (flat) index and accounted for."""
        ts = self.config.train_size
        if not self.trained and ts is not None and len(self) >= ts:
            log.info("training the %s map index on %d keyframes", self.config.kind, len(self))
            self.train()

    def _add_encoded(self, y: np.ndarray) -> None:
        first = len(self)
        if isinstance(self.faiss_index, faiss.IndexIVF):
            # IVF entries carry their position as id: codes() needs it to restore insertion order
            self.faiss_index.add_with_ids(y, np.arange(first, first + len(y), dtype=np.int64))
        else:
            self.faiss_index.add(y)

    def to_index_space(self, x: np.ndarray) -> np.ndarray:
        if self.projection is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        A, b = self.projection
        return normalize(x @ A.T + b)

    def train(self, descriptors: np.ndarray | None = None) -> None:
        """Train PCA / PQ / IVF on ``descriptors`` (N x D; default: the indexed ones) and move the
        entries into the compressed index. Only possible once (the raw descriptors are then gone)."""
        if self.trained and self.faiss_index is not None:
            raise ValueError(
                "the map index is already trained; retraining needs raw descriptors it no longer has"
            )
        X = self._training_set(descriptors)
        n, d = X.shape
        existing = self.decode_all() if len(self) else np.zeros((0, d), np.float32)
        # everything is built aside and swapped in at the end: a failed training (too few
        # vectors, bad PCA size) leaves the index as it was
        old = (self.projection, self.faiss_index)
        self.projection = self._train_pca(X) if self.config.pca_dim is not None else None
        try:
            Y = self.to_index_space(X)
            index = self._make_index(Y.shape[1], n)
            if not index.is_trained:
                index.train(Y)
            coded = self.to_index_space(existing) if len(existing) else None
        except BaseException:
            self.projection, self.faiss_index = old
            raise
        self.faiss_index = index
        self.dim = d
        self.trained = True
        if coded is not None:
            self._add_encoded(coded)

    def truncate(self, n: int) -> None:
        """Drop the entries from position ``n`` on (undo of an :meth:`add` before training)."""
        if self.faiss_index is None or n >= len(self):
            return
        if n == 0 and not self.trained:
            self.faiss_index, self.dim, self.trained = None, None, False
            return
        self.faiss_index.remove_ids(faiss.IDSelectorRange(n, len(self)))

    def _training_set(self, descriptors: np.ndarray | None) -> np.ndarray:
        if descriptors is None:
            if not len(self):
                raise ValueError("nothing to train on: add keyframes or pass descriptors")
            return self.decode_all()
        X = np.asarray(descriptors)
        if X.ndim != 2 or not np.issubdtype(X.dtype, np.floating) or not np.isfinite(X).all():
            raise ValueError(
                f"training descriptors must be a finite N x D float array, got {X.dtype} {X.shape}"
            )
        if self.dim is not None and X.shape[1] != self.dim:
            raise ValueError(f"training descriptors have {X.shape[1]} dimensions, the map has {self.dim}")
        return normalize(X)

    def _train_pca(self, X: np.ndarray) -> Projection:
        n, d = X.shape
        k = self.config.pca_dim
        if k > d or n < k:
            raise ValueError(f"PCA to {k} dims needs pca_dim <= D={d} and >= {k} training vectors (got {n})")
        pca = faiss.PCAMatrix(d, k, -0.5 if self.config.pca_whiten else 0.0, self.config.kind != "flat")
        pca.train(X)
        A = faiss.vector_to_array(pca.A).reshape(k, d).astype(np.float32)
        return A, faiss.vector_to_array(pca.b).astype(np.float32)

    def _make_index(self, d: int, n_train: int) -> faiss.Index:
        cfg = self.config
        if cfg.kind == "flat":
            return faiss.IndexFlatIP(d)
        if cfg.kind in SQ_TYPES:  # trains on any number of vectors (a range per dimension)
            return faiss.IndexScalarQuantizer(d, SQ_TYPES[cfg.kind], faiss.METRIC_L2)
        if n_train < PQ_MIN_TRAIN:
            raise ValueError(
                f"product quantization needs at least {PQ_MIN_TRAIN} training descriptors, got {n_train}"
            )
        m = largest_divisor(d, cfg.pq_bytes)
        if cfg.kind == "pq":
            idx = faiss.IndexPQ(d, m, 8, faiss.METRIC_L2)
            idx.pq.cp.min_points_per_centroid = 1  # small maps: train anyway, without faiss's warning
            return idx
        # many small lists: the residuals get smaller (better codes) while nprobe bounds the scan
        nlist = cfg.nlist or int(2 ** round(math.log2(max(n_train / 16, 1))))
        nlist = int(min(max(nlist, 1), max(n_train // 8, 1), 65536))
        idx = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, nlist, m, 8, faiss.METRIC_L2)
        idx.by_residual = True
        idx.pq.cp.min_points_per_centroid = 1
        idx.cp.min_points_per_centroid = 1
        idx.nprobe = min(cfg.nprobe, nlist)
        return idx

    # ------------------------------------------------------------------ search
    def search(self, q: np.ndarray, k: int, exclude_last: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` entries nearest to each unit query, best first, ignoring the ``exclude_last``
        most recent: (cosine similarities N x k float32, -inf where fewer found; positions
        N x k int64, -1 where fewer found)."""
        n = len(self)
        scores = np.full((len(q), k), -np.inf, np.float32)
        found = np.full((len(q), k), -1, np.int64)
        limit = n - exclude_last
        if limit <= 0 or len(q) == 0:
            return scores, found
        D, pos = self.faiss_index.search(self.to_index_space(q), min(k + exclude_last, n))
        sim = D if self.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT else 1.0 - D / 2.0
        for r in range(len(q)):
            keep = (pos[r] >= 0) & (pos[r] < limit)
            p, s = pos[r][keep][:k], sim[r][keep][:k]
            scores[r, : len(p)], found[r, : len(p)] = s, p
        return scores, found

    # ------------------------------------------------------------------ codes
    def codes(self) -> np.ndarray:
        """Standalone codes (faiss sa_encode format) of every position, in insertion order."""
        idx, n = self.faiss_index, len(self)
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

    def decode_all(self) -> np.ndarray:
        """Every entry's vector in index space (raw D before training), unit norm."""
        if not len(self):
            return np.zeros((0, self.dim), np.float32)
        return normalize(self.faiss_index.sa_decode(self.codes()))

    def encode(self, y: np.ndarray) -> np.ndarray:
        """Standalone codes of vectors already in index space (N x index dim)."""
        return self.faiss_index.sa_encode(y)

    def rebuild(self, codes: np.ndarray) -> None:
        """Replace all entries by ``codes`` (positions 0..len(codes)-1)."""
        self.faiss_index.reset()
        if len(codes) == 0:
            return
        if isinstance(self.faiss_index, faiss.IndexIVF):
            self.faiss_index.add_sa_codes(codes, np.arange(len(codes), dtype=np.int64))
        else:
            self.faiss_index.add_sa_codes(codes)

    # ------------------------------------------------------------------ memory
    @property
    def index_dim(self) -> int:
        """Dimension of the coded vectors (pca_dim or D; 0 before the first descriptor)."""
        return 0 if self.faiss_index is None else int(self.faiss_index.d)

    @property
    def code_bytes(self) -> int:
        """Bytes of one entry's code (4·index_dim for flat)."""
        idx = self.faiss_index
        if idx is None:
            return 0
        return idx.code_size if isinstance(idx, faiss.IndexIVF) else idx.sa_code_size()

    @property
    def entry_overhead(self) -> int:
        """Bytes per entry besides its code: the keyframe id (8) and, for IVF, the list entry id (8)."""
        return 8 + (8 if isinstance(self.faiss_index, faiss.IndexIVF) else 0)

    @property
    def fixed_bytes(self) -> int:
        """Bytes independent of the entry count: PCA matrix, PQ codebooks, IVF coarse centroids."""
        total = 0 if self.projection is None else self.projection[0].nbytes + self.projection[1].nbytes
        idx = self.faiss_index
        if isinstance(idx, (faiss.IndexPQ, faiss.IndexIVFPQ)):
            total += idx.pq.M * idx.pq.ksub * idx.pq.dsub * 4
        if isinstance(idx, faiss.IndexIVF):
            total += idx.nlist * idx.d * 4
        if isinstance(idx, faiss.IndexScalarQuantizer):
            total += idx.sq.trained.size() * 4  # per-dimension minimum and range
        return total

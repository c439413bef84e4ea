"""Local features of a keyframe as the map stores them for geometric verification.

At most ``max_stored_features`` keypoints (best scores) are kept, compressed: positions as uint16
quarter pixels, scores as uint8 and descriptors as int8 (``5 + D`` bytes per keypoint) or, with
``bits`` 4, as two 4-bit levels per byte (``5 + D / 2`` bytes: a map holds about 1.8x the keyframes
in the same bytes). The 4-bit levels are steps of :func:`step4` of the unit-norm descriptor, in
[-8, 7]: ``STEP4`` for the frontend's 64-D descriptors, which have 99.9 % of their components within
0.41 (a dense rendered home's day-0 frames, session 39), so few are clipped at 0.56; for larger
descriptors (D > 64) the step shrinks with a component's spread, ``1 / sqrt(D)`` (session 43: on
HPatches pairs, the 64-D descriptors embedded isometrically in 128 / 256 dims lose 1.8 % / 0.6 %
of the correct matches with the scaled step, 4.2 % / 4.1 % with 0.08; the 64-D ones lose 3.4 %).
Smaller ones keep ``STEP4``, already finer than their spread (random unit 16-D descriptors: mean
cosine to the original 0.996 with 0.08, 0.985 with a step scaled up to 0.16). Decoding normalizes,
so the step never needs storing and maps coded with another step read the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from homeloc.runtime.features import Features

KEYPOINT_SCALE = 4.0  # stored keypoints: uint16 in 1/4 px (images up to 16383 px)
STEP4 = 0.08  # a 4-bit descriptor level of 64-D descriptors, in units of the unit-norm descriptor
STEP4_DIM = 64  # the descriptor size STEP4 was fitted to (the shipped frontend's)
MIN_DISTINCT4 = 0.5  # below this fraction of distinct 4-bit codes a keyframe's descriptors collapsed
log = logging.getLogger(__name__)
_warned = False  # the collapse warning was given (once a process)
BITS = (8, 4)  # descriptor codings a map can store


def step4(dim: int) -> float:
    """The 4-bit level of ``dim``-D unit-norm descriptors: ``STEP4`` up to 64-D (exactly), scaled by
    ``sqrt(64 / dim)`` above."""
    return STEP4 if dim <= STEP4_DIM else STEP4 * float(np.sqrt(STEP4_DIM / dim))


def _pack4(d: np.ndarray) -> np.ndarray:
    """n x D unit-norm float descriptors (D even) -> n x D/2 uint8, two 4-bit levels per byte."""
    q = (np.clip(np.rint(d / step4(d.shape[1])), -8, 7) + 8).astype(np.uint8)
    return (q[:, 0::2] << 4) | q[:, 1::2]


def _unpack4(packed: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_pack4` (up to the levels): n x D float32."""
    q = np.empty((len(packed), 2 * packed.shape[1]), np.float32)
    q[:, 0::2], q[:, 1::2] = packed >> 4, packed & 15
    return (q - 8.0) * step4(q.shape[1])


@dataclass
class StoredFeatures:
    keypoints: np.ndarray  # n x 2 uint16, 1/KEYPOINT_SCALE px
    descriptors: np.ndarray  # bits 8: n x D int8, round(127 * d); bits 4: n x D/2 uint8 (_pack4)
    scores: np.ndarray  # n uint8, round(255 * s)
    bits: int = 8
    depth: np.ndarray | None = None  # n float16: z-depth (metres) in the keyframe's camera; NaN: unknown

    @classmethod
    def compress(
        cls, f: Features, max_features: int, bits: int = 8, depth: np.ndarray | None = None
    ) -> StoredFeatures:
        """The ``max_features`` best-scoring keypoints of ``f``, descriptors coded in ``bits`` (8 or 4;
        4 needs an even descriptor size). depth: per keypoint of ``f`` (N), the z-depth in metres of
        the point it sees in the keyframe's camera (NaN or <= 0: unknown; None: none kept), e.g. a
        SLAM map point's or a depth camera's; kept as float16 (2 bytes a keypoint) for
        metric localization (:mod:`homeloc.runtime.longterm.metric`)."""
        if bits not in BITS:
            raise ValueError(f"descriptor bits must be one of {BITS}, got {bits!r}")
        if depth is not None and np.shape(depth) != (len(f),):
            raise ValueError(
                f"depth must hold one value per keypoint ({len(f)}), got shape {np.shape(depth)}"
            )
        order = np.argsort(-f.scores, kind="stable")[:max_features]
        kp = np.clip(np.rint(f.keypoints[order] * KEYPOINT_SCALE), 0, 65535).astype(np.uint16)
        if bits == 4:
            if f.descriptors.shape[1] % 2:
                raise ValueError(f"4-bit descriptors need an even size, got {f.descriptors.shape[1]}")
            desc = _pack4(f.descriptors[order])
            _check_distinct(desc)
        else:
            desc = np.clip(np.rint(f.descriptors[order] * 127.0), -127, 127).astype(np.int8)
        sc = np.clip(np.rint(f.scores[order] * 255.0), 0, 255).astype(np.uint8)
        z = None
        if depth is not None:
            z = np.asarray(depth, np.float64)[order]
            z = np.where(np.isfinite(z) & (z > 0), z, np.nan).astype(np.float16)
        return cls(kp, desc, sc, bits, z)

    def features(self) -> Features:
        d = _unpack4(self.descriptors) if self.bits == 4 else self.descriptors.astype(np.float32)
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        return Features(
            self.keypoints.astype(np.float32) / KEYPOINT_SCALE, self.scores.astype(np.float32) / 255.0, d
        )

    @property
    def nbytes(self) -> int:
        z = 0 if self.depth is None else self.depth.nbytes
        return self.keypoints.nbytes + self.descriptors.nbytes + self.scores.nbytes + z


def pack_features(ids: np.ndarray, features: dict[int, StoredFeatures]) -> dict[str, np.ndarray]:
    """The map-file arrays of the keyframes (in `ids` order) that have stored features:
    ``feat_positions`` (positions in `ids`), ``feat_counts`` and, when any, the concatenated
    ``feat_keypoints`` / ``feat_descriptors`` / ``feat_scores``, and ``feat_bits`` (one value:
    the descriptors' coding) when it is 4 (files without it hold int8: every map before session 39),
    and ``feat_depth`` (float16, NaN: unknown) when any keyframe keeps depth (session 47; files
    without it keep none, and runtimes before it ignore it)."""
    with_feat = [i for i, k in enumerate(ids) if int(k) in features]
    feats = [features[int(ids[i])] for i in with_feat]
    bits = {f.bits for f in feats}
    if len(bits) > 1:  # a map codes every keyframe alike (its VerifyConfig.descriptor_bits)
        raise ValueError(f"keyframes with descriptors coded in {sorted(bits)} bits cannot share a map file")
    arrays = {
        "feat_positions": np.array(with_feat, np.int64),
        "feat_counts": np.array([len(f.scores) for f in feats], np.int64),
    }
    if feats:
        arrays["feat_keypoints"] = np.concatenate([f.keypoints for f in feats])
        arrays["feat_descriptors"] = np.concatenate([f.descriptors for f in feats])
        arrays["feat_scores"] = np.concatenate([f.scores for f in feats])
        if bits == {4}:
            arrays["feat_bits"] = np.array([4], np.int64)
        if any(f.depth is not None for f in feats):
            nan = np.float16(np.nan)
            arrays["feat_depth"] = np.concatenate(
                [np.full(len(f.scores), nan, np.float16) if f.depth is None else f.depth for f in feats]
            )
    return arrays


def saved_bits(arrays: dict[str, np.ndarray]) -> int:
    """The coding of a map file's stored descriptors (``feat_bits``; files without it hold int8);
    ValueError for one this runtime does not read."""
    bits = int(arrays["feat_bits"][0]) if "feat_bits" in arrays else 8
    if bits not in BITS:
        raise ValueError(f"stored descriptors coded in {bits} bits (this runtime reads {BITS})")
    return bits


def unpack_features(arrays: dict[str, np.ndarray], ids: np.ndarray) -> dict[int, StoredFeatures]:
    """Inverse of `pack_features`: kf_id -> stored features."""
    out: dict[int, StoredFeatures] = {}
    bits = saved_bits(arrays)
    depth = arrays.get("feat_depth")
    if len(arrays["feat_positions"]):
        ends = np.cumsum(arrays["feat_counts"])
        for p, s, e in zip(arrays["feat_positions"], ends - arrays["feat_counts"], ends, strict=True):
            out[int(ids[p])] = StoredFeatures(
                arrays["feat_keypoints"][s:e],
                arrays["feat_descriptors"][s:e],
                arrays["feat_scores"][s:e],
                bits,
                None if depth is None or np.isnan(depth[s:e]).all() else depth[s:e],
            )
    return out


def _check_distinct(packed: np.ndarray) -> None:
    """Warn (once a process) when fewer than ``MIN_DISTINCT4`` of a keyframe's 4-bit codes differ:
    the descriptors are too alike for 4 bits and verification loses most matches. Measured on the
    random-weight 16-D test model (session 43): its descriptors are near-identical (median cosine
    0.9997 to the nearest other), 90 of 424 codes are distinct, and an image verified against itself
    shifted 8 px keeps 0 of int8's 359 inliers, at any 4-bit step tried."""
    global _warned
    n = len(packed)
    if n < 20 or _warned:
        return
    distinct = len(np.unique(np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))))
    if distinct < MIN_DISTINCT4 * n:
        _warned = True
        log.warning("4-bit stored descriptors collapsed: %d of %d keypoints' codes are distinct, so "
                    "verification will lose most matches; keep int8 (descriptor_bits=8)", distinct, n)  # fmt: skip

"""Local features of a keyframe as the map stores them for geometric verification.

At most ``max_stored_features`` keypoints (best scores) are kept, compressed: positions as uint16
quarter pixels, descriptors as int8 and scores as uint8: ``5 + D`` bytes per keypoint.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homeloc.runtime.features import Features

KEYPOINT_SCALE = 4.0  # stored keypoints: uint16 in 1/4 px (images up to 16383 px)


@dataclass
class StoredFeatures:
    keypoints: np.ndarray  # n x 2 uint16, 1/KEYPOINT_SCALE px
    descriptors: np.ndarray  # n x D int8, round(127 * d)
    scores: np.ndarray  # n uint8, round(255 * s)

    @classmethod
    def compress(cls, f: Features, max_features: int) -> StoredFeatures:
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


def pack_features(ids: np.ndarray, features: dict[int, StoredFeatures]) -> dict[str, np.ndarray]:
    """The map-file arrays of the keyframes (in `ids` order) that have stored features:
    ``feat_positions`` (positions in `ids`), ``feat_counts`` and, when any, the concatenated
    ``feat_keypoints`` / ``feat_descriptors`` / ``feat_scores``."""
    with_feat = [i for i, k in enumerate(ids) if int(k) in features]
    feats = [features[int(ids[i])] for i in with_feat]
    arrays = {
        "feat_positions": np.array(with_feat, np.int64),
        "feat_counts": np.array([len(f.scores) for f in feats], np.int64),
    }
    if feats:
        arrays["feat_keypoints"] = np.concatenate([f.keypoints for f in feats])
        arrays["feat_descriptors"] = np.concatenate([f.descriptors for f in feats])
        arrays["feat_scores"] = np.concatenate([f.scores for f in feats])
    return arrays


def unpack_features(arrays: dict[str, np.ndarray], ids: np.ndarray) -> dict[int, StoredFeatures]:
    """Inverse of `pack_features`: kf_id -> stored features."""
    out: dict[int, StoredFeatures] = {}
    if len(arrays["feat_positions"]):
        ends = np.cumsum(arrays["feat_counts"])
        for p, s, e in zip(arrays["feat_positions"], ends - arrays["feat_counts"], ends, strict=True):
            out[int(ids[p])] = StoredFeatures(
                arrays["feat_keypoints"][s:e], arrays["feat_descriptors"][s:e], arrays["feat_scores"][s:e]
            )
    return out

"""Mutual nearest-neighbour matching, the same for every method (pure numpy)."""

from __future__ import annotations

import numpy as np

from homeloc.eval.features import Distance


def distance_matrix(desc0: np.ndarray, desc1: np.ndarray, distance: Distance) -> np.ndarray:
    """(N0, N1) float32 distances: Euclidean for float descriptors, Hamming for uint8 packed bits."""
    if distance == "hamming":
        if desc0.dtype != np.uint8 or desc1.dtype != np.uint8:
            raise ValueError("Hamming distance needs uint8 (packed-bit) descriptors")
        b0 = np.unpackbits(desc0, axis=1).astype(np.float32)
        b1 = np.unpackbits(desc1, axis=1).astype(np.float32)
        return b0.sum(1)[:, None] + b1.sum(1)[None, :] - 2.0 * (b0 @ b1.T)
    if distance == "l2":
        d0 = desc0.astype(np.float32)
        d1 = desc1.astype(np.float32)
        sq = (d0 * d0).sum(1)[:, None] + (d1 * d1).sum(1)[None, :] - 2.0 * (d0 @ d1.T)
        return np.sqrt(np.maximum(sq, 0.0))
    raise ValueError(f"unknown distance {distance!r} (expected 'l2' or 'hamming')")


def mutual_nearest_neighbours(desc0: np.ndarray, desc1: np.ndarray, distance: Distance) -> np.ndarray:
    """Index pairs (M, 2) int64 (i in desc0, j in desc1) that are each other's nearest neighbour.

    Ties resolve to the lowest index. Empty inputs give an empty (0, 2) array.
    """
    if len(desc0) == 0 or len(desc1) == 0:
        return np.zeros((0, 2), np.int64)
    if desc0.shape[1] != desc1.shape[1]:
        raise ValueError(f"descriptor sizes differ: {desc0.shape[1]} vs {desc1.shape[1]}")
    d = distance_matrix(desc0, desc1, distance)
    nn01 = np.argmin(d, axis=1)
    nn10 = np.argmin(d, axis=0)
    i = np.arange(len(desc0))
    mutual = nn10[nn01] == i
    return np.stack([i[mutual], nn01[mutual]], axis=1).astype(np.int64)

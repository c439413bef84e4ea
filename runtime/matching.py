"""Mutual nearest-neighbour matching: the one implementation for the runtime and every evaluation
method (pure numpy)."""

from __future__ import annotations

from typing import Literal

import numpy as np

# l2: float descriptors of any norm; hamming: uint8 packed bits; cosine: unit-norm float
# descriptors, matched on the inner product (same neighbours as l2 for unit vectors, one matmul).
Distance = Literal["l2", "hamming", "cosine"]


def distance_matrix(desc0: np.ndarray, desc1: np.ndarray, distance: Distance) -> np.ndarray:
    """(N0, N1) float32 distances: Euclidean for float descriptors, Hamming for uint8 packed bits,
    sqrt(2 - 2 cos) for unit-norm descriptors ("cosine", the L2 distance of unit vectors)."""
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
    if distance == "cosine":
        return np.sqrt(np.maximum(2.0 - 2.0 * (desc0 @ desc1.T), 0.0))
    raise ValueError(f"unknown distance {distance!r} (expected 'l2', 'hamming' or 'cosine')")


def mutual_nearest_neighbours(
    desc0: np.ndarray, desc1: np.ndarray, distance: Distance = "l2", max_distance: float | None = None
) -> np.ndarray:
    """Index pairs (M, 2) int64 (i in desc0, j in desc1), sorted by i, that are each other's
    nearest neighbour; with ``max_distance`` only pairs whose distance is <= max_distance.

    Ties resolve to the lowest index. Empty inputs give an empty (0, 2) array.
    """
    if len(desc0) == 0 or len(desc1) == 0:
        return np.zeros((0, 2), np.int64)
    if desc0.shape[1] != desc1.shape[1]:
        raise ValueError(f"descriptor sizes differ: {desc0.shape[1]} vs {desc1.shape[1]}")
    i = np.arange(len(desc0))
    if distance == "cosine":
        # Neighbours from the similarity itself: no sqrt over the whole matrix (the frontend's hot path).
        sim = desc0 @ desc1.T
        nn01 = sim.argmax(axis=1)
        nn10 = np.ascontiguousarray(sim.T).argmax(axis=1)  # 10x faster than a strided argmax(axis=0)
        keep = nn10[nn01] == i
        if max_distance is not None:
            keep &= np.sqrt(np.maximum(2.0 - 2.0 * sim[i, nn01], 0.0)) <= max_distance
    else:
        d = distance_matrix(desc0, desc1, distance)
        nn01 = np.argmin(d, axis=1)
        nn10 = np.argmin(d, axis=0)
        keep = nn10[nn01] == i
        if max_distance is not None:
            keep &= d[i, nn01] <= max_distance
    return np.stack([i[keep], nn01[keep]], axis=1).astype(np.int64)

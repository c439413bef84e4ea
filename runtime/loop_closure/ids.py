"""Keyframe ids and integer options of the loop-closure map, checked: integers in range, never
truncated or wrapped."""

from __future__ import annotations

import numpy as np


def int_at_least(name: str, value, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def check_ids(kf_ids) -> np.ndarray:
    """Keyframe ids as int64: integers in [0, 2**63 - 1] (negative ids are refused: -1 is the
    "nothing found" of :meth:`LoopClosureDetector.search`); floats, bools and larger values raise
    ValueError instead of being truncated or wrapped."""
    a = np.asarray(kf_ids, dtype=object if isinstance(kf_ids, (list, tuple)) else None).reshape(-1)
    if a.dtype == object:
        if any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in a):
            bad = next(i for i in a if isinstance(i, bool) or not isinstance(i, (int, np.integer)))
            raise ValueError(f"kf_ids must be integers, got {type(bad).__name__} {bad!r}")
        if any(int(i) < 0 or int(i) > np.iinfo(np.int64).max for i in a):
            bad = next(i for i in a if int(i) < 0 or int(i) > np.iinfo(np.int64).max)
            raise ValueError(f"kf_ids must be in [0, 2**63 - 1], got {bad}")
        return a.astype(np.int64)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"kf_ids must be integers, got {a.dtype}")
    if a.dtype == np.uint64 and len(a) and a.max() > np.iinfo(np.int64).max:
        raise ValueError(f"kf_ids must be in [0, 2**63 - 1], got {a.max()}")
    a = a.astype(np.int64)
    if len(a) and a.min() < 0:
        raise ValueError(f"kf_ids must be in [0, 2**63 - 1] (-1 means 'nothing found'), got {a.min()}")
    return a

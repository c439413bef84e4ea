"""Fair latency measurement on a shared CPU: warm-up, then round-robin (interleaved) timing.

Interleaving runs one call of every candidate per round, so load from other processes hits all of
them alike; the median of the rounds is reported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def ort_session(path: str | Path, threads: int = 1):
    """CPU ``InferenceSession`` with ``threads`` intra-op threads, one inter-op thread, sequential."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads)
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def time_interleaved(fns: Mapping[str, Callable[[], Any]], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median milliseconds per call of each function: ``warmup`` untimed calls each, then ``runs``
    rounds calling every function once per round."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def time_sessions(
    paths: Mapping[str, Path], image: np.ndarray, runs: int, warmup: int = 3, threads: int = 1
) -> dict[str, float]:
    """Median ms per run of each ONNX model on ``image`` (input ``image``), timed round-robin."""
    sessions = {k: ort_session(p, threads) for k, p in paths.items()}
    feed = {"image": image}
    return time_interleaved({k: (lambda s=s: s.run(None, feed)) for k, s in sessions.items()}, runs, warmup)

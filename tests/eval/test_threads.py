"""eval.config.set_threads: timings at --threads N use N threads in every pool, numpy's BLAS included."""

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from homeloc.eval.config import set_threads


def test_set_threads_limits_numpys_blas():
    np.ones((2, 2), np.float32) @ np.ones((2, 2), np.float32)  # BLAS loaded
    with threadpool_limits(limits=None):  # restores every pool when the test ends
        set_threads(1)
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)

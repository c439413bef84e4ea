"""Shared fixtures of the training tests."""

from pathlib import Path

import pytest


def tiny_pairs(tmp_path_factory: pytest.TempPathFactory, size: tuple[int, int]) -> Path:
    """3 seeded homography pairs from scikit-image's photos at ``size`` (H, W), a ``pairs`` folder."""
    from homeloc.data_synthesis.jobs import synthesize_pairs
    from homeloc.data_synthesis.pairs import PairConfig

    out = tmp_path_factory.mktemp("pairs") / "ds"
    synthesize_pairs(["skimage"], out, 3, seed=5, config=PairConfig(size=size))
    return out

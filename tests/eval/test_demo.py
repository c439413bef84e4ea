"""eval.demo helpers: relit copies of a sequence (the demo's night revisits)."""

import numpy as np

from homeloc.eval.demo import RELIGHT_PRESETS, relit_copies
from homeloc.runtime.example import Frame


def test_relit_copies_are_seeded_darker_and_named():
    rng = np.random.default_rng(0)
    frames = [Frame(f"{i}.png", (rng.random((48, 64, 3)) * 155 + 100).astype(np.uint8)) for i in range(3)]
    a, b = relit_copies(frames, seed=3), relit_copies(frames, seed=3)
    assert [f.name for f in a] == [f"{i}.png [{RELIGHT_PRESETS[i % 2]}]" for i in range(3)]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert all(
        x.image.shape == f.image.shape and x.image.dtype == np.uint8 for x, f in zip(a, frames, strict=True)
    )
    assert all(x.image.mean() < f.image.mean() for x, f in zip(a, frames, strict=True))

"""The two method protocols (local features, place descriptors). The result type is
``homeloc.runtime.features.Features``; descriptor distances are ``homeloc.runtime.matching.Distance``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.matching import Distance


@runtime_checkable
class LocalFeatureExtractor(Protocol):
    """What `matching` needs from a method.

    `extract(image)` takes uint8 HxW (gray) or HxWx3 (RGB) and returns at most the configured
    keypoint budget, in the pixel coordinates of the image it was given (the evaluation resizes
    and maps coordinates back itself). `distance` says how descriptors are compared.
    `model_file` (or None) is hashed into the feature cache key.
    """

    distance: Distance
    model_file: Path | None

    def extract(self, image: np.ndarray) -> Features: ...


@runtime_checkable
class PlaceDescriber(Protocol):
    """What `places` needs from a method.

    `fit(database_images)` is called once before `describe` (a no-op for methods without a
    learned codebook); `describe(images)` returns float32 (N, D) L2-normalised rows, compared by
    cosine similarity (inner product). Images are uint8 HxW or HxWx3 RGB.
    """

    model_file: Path | None

    def fit(self, database_images: Sequence[np.ndarray]) -> None: ...

    def describe(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

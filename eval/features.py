"""Result types and the two method protocols (local features, place descriptors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Distance = Literal["l2", "hamming"]


@dataclass(frozen=True)
class Features:
    """Sparse local features of one image.

    keypoints: float32 (N, 2) pixel coordinates (x right, y down, OpenCV convention: the centre of
    the top-left pixel is (0, 0)); scores: float32 (N,) higher is better; descriptors: (N, D) float32
    (compared with L2) or uint8 packed bits (compared with Hamming).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray

    def __post_init__(self) -> None:
        kp, sc, de = self.keypoints, self.scores, self.descriptors
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"keypoints must be (N, 2), got {kp.shape}")
        if sc.shape != (kp.shape[0],):
            raise ValueError(f"scores must be ({kp.shape[0]},), got {sc.shape}")
        if de.ndim != 2 or de.shape[0] != kp.shape[0]:
            raise ValueError(f"descriptors must be ({kp.shape[0]}, D), got {de.shape}")
        if de.dtype not in (np.float32, np.uint8):
            raise ValueError(f"descriptors must be float32 or uint8, got {de.dtype}")
        object.__setattr__(self, "keypoints", np.ascontiguousarray(kp, dtype=np.float32))
        object.__setattr__(self, "scores", np.ascontiguousarray(sc, dtype=np.float32))

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @classmethod
    def empty(cls, dim: int = 128, dtype: type = np.float32) -> Features:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, dim), dtype))

    def top_k(self, k: int) -> Features:
        """The k highest-scoring features (all when k <= 0), ordered by score descending (stable)."""
        order = np.argsort(-self.scores, kind="stable")
        if k > 0:
            order = order[:k]
        return Features(self.keypoints[order], self.scores[order], self.descriptors[order])

    def rescaled(self, sx: float, sy: float) -> Features:
        """Keypoints of a resized image mapped back: x_orig = (x + 0.5) * sx - 0.5 (same for y)."""
        kp = (self.keypoints + 0.5) * np.array([sx, sy], np.float32) - 0.5
        return Features(kp.astype(np.float32), self.scores, self.descriptors)


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


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 HxW from uint8 HxW or HxWx3 RGB (checked, with a clear error otherwise)."""
    import cv2

    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    raise ValueError(f"images must be HxW or HxWx3, got shape {image.shape}")

"""`Features`: the one numpy type for sparse local features, used by the runtime and every
evaluation method (the torch twin used in training is ``homeloc.models.postprocess.TorchFeatures``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Features:
    """Sparse local features of one image.

    keypoints: N x 2 float32 (x right, y down; OpenCV convention: the centre of the top-left
    pixel is (0, 0)); scores: N float32, higher is better; descriptors: N x D, float32 (compared
    with L2; unit norm for our models) or uint8 packed bits (compared with Hamming);
    image_size: (H, W) of the image they came from, or None; reliability: probability in [0, 1]
    that this frame registers correctly to an overlapping frame (None when not estimated);
    causes: names of the failure causes found (``homeloc.runtime.reliability.CAUSES``);
    global_descriptor: G float32 unit-norm place descriptor of the whole image, when the model
    computes one in the same forward pass (the ``frontend`` model), else None.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    descriptors: np.ndarray
    image_size: tuple[int, int] | None = None
    reliability: float | None = None
    causes: tuple[str, ...] = ()
    global_descriptor: np.ndarray | None = None

    def __post_init__(self) -> None:
        kp = np.asarray(self.keypoints, dtype=np.float32)
        if kp.size == 0:
            kp = kp.reshape(0, 2)
        if kp.ndim != 2 or kp.shape[1] != 2:
            raise ValueError(f"keypoints must be N x 2, got shape {kp.shape}")
        kp = np.ascontiguousarray(kp)
        sc = np.ascontiguousarray(np.asarray(self.scores, dtype=np.float32).reshape(-1))
        de = np.asarray(self.descriptors)
        if de.ndim != 2:
            raise ValueError(f"descriptors must be N x D, got shape {de.shape}")
        if de.dtype != np.uint8:  # packed binary descriptors stay uint8; everything else is float32
            de = de.astype(np.float32, copy=False)
        if not (len(kp) == len(sc) == len(de)):
            raise ValueError(
                f"keypoints ({len(kp)}), scores ({len(sc)}) and descriptors ({len(de)}) differ in length"
            )
        object.__setattr__(self, "keypoints", kp)
        object.__setattr__(self, "scores", sc)
        object.__setattr__(self, "descriptors", de)
        if self.image_size is not None:
            object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))
        if self.global_descriptor is not None:
            g = np.asarray(self.global_descriptor, dtype=np.float32).reshape(-1)
            if g.size == 0 or not np.isfinite(g).all():
                raise ValueError(f"global_descriptor must be a finite, non-empty vector, got shape {g.shape}")
            object.__setattr__(self, "global_descriptor", g)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def descriptor_dim(self) -> int:
        return int(self.descriptors.shape[1])

    @classmethod
    def empty(cls, dim: int = 128, dtype: type = np.float32) -> Features:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, dim), dtype))

    def top_k(self, k: int) -> Features:
        """The k highest-scoring features (all when k <= 0), ordered by score descending (stable)."""
        order = np.argsort(-self.scores, kind="stable")
        if k > 0:
            order = order[:k]
        return Features(self.keypoints[order], self.scores[order], self.descriptors[order], self.image_size,
                        self.reliability, self.causes, self.global_descriptor)  # fmt: skip

    def rescaled(self, sx: float, sy: float) -> Features:
        """Keypoints of a resized image mapped back: x_orig = (x + 0.5) * sx - 0.5 (same for y).

        ``image_size`` is dropped: the caller knows the original size, this type cannot."""
        kp = (self.keypoints + 0.5) * np.array([sx, sy], np.float32) - 0.5
        return Features(kp.astype(np.float32), self.scores, self.descriptors, None, self.reliability, self.causes,
                        self.global_descriptor)  # fmt: skip

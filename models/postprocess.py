"""Sparse keypoint post-processing in torch: pure functions outside the dense core.

The numpy twin ``runtime.postprocess`` (used on the robot with the ONNX outputs) gives the same
keypoints; both share its defaults and conventions: keypoints are ``(x, y)`` float32 pixel
coordinates of the original image, x right, y down, pixel centres at integer coordinates
(OpenCV); scores are heatmap probabilities; keypoints sorted by decreasing score, ties in raster
order. Everything here is differentiable where it makes sense (heatmap, refinement, sampling),
so training code can reuse it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from homeloc.runtime import postprocess as _np_pp
from homeloc.runtime.postprocess import (
    BORDER,
    CELL,
    MAX_KEYPOINTS,
    MIN_CONTRAST,
    NMS_RADIUS,
    REFINE_RADIUS,
    THRESHOLD,
)

__all__ = [
    "BORDER",
    "MAX_KEYPOINTS",
    "MIN_CONTRAST",
    "NMS_RADIUS",
    "REFINE_RADIUS",
    "THRESHOLD",
    "TorchFeatures",
    "extract",
    "heatmap_from_logits",
    "nms",
    "postprocess",
    "prepare_image",
    "remove_borders",
    "sample_descriptors",
    "subpixel_refine",
    "topk_keypoints",
]


class TorchFeatures(NamedTuple):
    """Sparse features of one image (tensors on the model's device); the numpy type is
    ``homeloc.runtime.features.Features``."""

    keypoints: Tensor  # N x 2 float32 (x, y)
    scores: Tensor  # N float32, decreasing
    descriptors: Tensor  # N x D float32, unit L2 norm


def heatmap_from_logits(logits: Tensor) -> Tensor:
    """Per-pixel keypoint probability: softmax over the 65 channels, dustbin dropped, depth-to-space.

    ``B x 65 x h x w`` -> ``B x 8h x 8w`` float32 (``65 x h x w`` -> ``8h x 8w``).
    """
    single = logits.ndim == 3
    x = logits[None] if single else logits
    if x.ndim != 4 or x.shape[1] != CELL * CELL + 1:
        raise ValueError(f"logits must be B x {CELL * CELL + 1} x h x w, got {tuple(logits.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"logits must be floating point, got {x.dtype}")
    prob = x.float().softmax(dim=1)[:, :-1]
    heat = F.pixel_shuffle(prob, CELL)[:, 0]
    return heat[0] if single else heat


def nms(heatmap: Tensor, radius: int) -> Tensor:
    """Max-pool non-maximum suppression: zero every value that is not the maximum of its
    ``(2*radius+1)^2`` neighbourhood (plateaus of equal maxima all survive). H x W or B x H x W."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0:
        return heatmap.clone()
    x = heatmap[None, None] if heatmap.ndim == 2 else heatmap[:, None]
    mx = F.max_pool2d(x, kernel_size=2 * radius + 1, stride=1, padding=radius)
    mx = mx[0, 0] if heatmap.ndim == 2 else mx[:, 0]
    return torch.where(heatmap == mx, heatmap, torch.zeros_like(heatmap))


def remove_borders(heatmap: Tensor, border: int, image_size: tuple[int, int] | None = None) -> Tensor:
    """Zero everything closer than ``border`` pixels to the edge of the valid image region.

    ``image_size=(h, w)`` is the unpadded size (the padded area is zeroed too); default: the
    heatmap's own size. H x W or B x H x W.
    """
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    h, w = heatmap.shape[-2:] if image_size is None else image_size
    mask = torch.zeros(heatmap.shape[-2:], dtype=torch.bool, device=heatmap.device)
    mask[border : max(h - border, border), border : max(w - border, border)] = True
    return torch.where(mask, heatmap, torch.zeros_like(heatmap))


def topk_keypoints(heatmap: Tensor, k: int | None, threshold: float = 0.0) -> list[tuple[Tensor, Tensor]]:
    """Keypoints with score > threshold, best first (ties in raster order), at most ``k``.

    Returns one ``(keypoints N x 2 float32 (x, y), scores N float32)`` per heatmap
    (H x W counts as a batch of one).
    """
    heat = heatmap[None] if heatmap.ndim == 2 else heatmap
    out = []
    for h in heat:
        flat = h.reshape(-1)
        idx = torch.nonzero(flat > threshold).squeeze(1)
        order = torch.sort(flat[idx], descending=True, stable=True).indices
        if k is not None:
            order = order[:k]
        idx = idx[order]
        w = h.shape[1]
        xy = torch.stack([idx % w, idx // w], dim=-1).float()
        out.append((xy, flat[idx].float()))
    return out


def subpixel_refine(heatmap: Tensor, keypoints: Tensor, radius: int = REFINE_RADIUS) -> Tensor:
    """Soft-argmax refinement: each keypoint moves to the probability-weighted centroid of the
    heatmap in the ``(2*radius+1)^2`` window around its pixel (outside the image counts as 0).

    heatmap H x W (before NMS), keypoints N x 2 (x, y) -> N x 2 float32.
    """
    kp = keypoints.float().reshape(-1, 2)
    if radius <= 0 or len(kp) == 0:
        return kp.clone()
    padded = F.pad(heatmap.float(), (radius, radius, radius, radius))
    ix = torch.round(kp[:, 0]).long()
    iy = torch.round(kp[:, 1]).long()
    d = torch.arange(-radius, radius + 1, device=heatmap.device)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    dy, dx = dy.reshape(-1), dx.reshape(-1)
    win = padded[iy[:, None] + radius + dy, ix[:, None] + radius + dx].clamp(min=0)  # N x (2r+1)^2
    total = win.sum(dim=1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    off_x = (win * dx.float()).sum(dim=1) / safe
    off_y = (win * dy.float()).sum(dim=1) / safe
    return torch.stack([ix + off_x, iy + off_y], dim=-1)


def sample_descriptors(descriptors: Tensor, keypoints: Tensor, cell: int = CELL) -> Tensor:
    """Bilinear descriptor at each keypoint, re-normalised.

    descriptors D x h x w (or 1 x D x h x w) whose cell (i, j) describes pixel
    ``(cell*j + (cell-1)/2, cell*i + (cell-1)/2)``; keypoints N x 2 (x, y) -> N x D float32.
    Outside the cell-centre grid the nearest edge value is used (grid_sample "border").
    """
    desc = descriptors[None] if descriptors.ndim == 3 else descriptors
    if desc.ndim != 4 or desc.shape[0] != 1:
        raise ValueError(f"descriptors must be D x h x w or 1 x D x h x w, got {tuple(descriptors.shape)}")
    _, dim, h, w = desc.shape
    kp = keypoints.float().reshape(-1, 2)
    if len(kp) == 0:
        return desc.new_zeros((0, dim), dtype=torch.float32)
    # align_corners=False maps pixel x to grid coordinate (x + 0.5) / (cell * w) * 2 - 1, i.e.
    # descriptor column (x - (cell - 1) / 2) / cell: cell centres land exactly on their pixels.
    size = torch.tensor([cell * w, cell * h], dtype=torch.float32, device=kp.device)
    grid = ((kp + 0.5) / size * 2 - 1).view(1, 1, -1, 2)
    out = F.grid_sample(desc.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return F.normalize(out[0, :, 0].t(), p=2.0, dim=1, eps=1e-12)


def postprocess(
    logits: Tensor,
    descriptors: Tensor,
    image_size: tuple[int, int] | None = None,
    max_keypoints: int | None = MAX_KEYPOINTS,
    nms_radius: int = NMS_RADIUS,
    threshold: float = THRESHOLD,
    border: int = BORDER,
    refine_radius: int = REFINE_RADIUS,
    image: Tensor | None = None,
    min_contrast: float = MIN_CONTRAST,
) -> TorchFeatures:
    """The whole sparse step for one image: heatmap, NMS, borders, contrast, top-k, refinement,
    sampling.

    Args:
        logits: 1 x 65 x h x w (or 65 x h x w) detector logits.
        descriptors: 1 x D x h x w (or D x h x w) dense descriptors.
        image_size: (H, W) of the original, unpadded image; default 8h x 8w.
        image: the network input (1 x 1 x 8h x 8w float32 in [0, 1]); when given, peaks where
            its local contrast is below ``min_contrast`` are dropped (the mask is the numpy
            twin's ``contrast_mask``, so both paths drop exactly the same peaks).
    """
    heat = heatmap_from_logits(logits[0] if logits.ndim == 4 else logits)
    peaks = remove_borders(nms(heat, nms_radius), border, image_size)
    if image is not None and min_contrast > 0:
        mask = _np_pp.contrast_mask(image.detach().float().cpu().numpy(), min_contrast)
        peaks = torch.where(torch.from_numpy(mask).to(peaks.device), peaks, torch.zeros_like(peaks))
    kp, scores = topk_keypoints(peaks, max_keypoints, threshold)[0]
    kp = subpixel_refine(heat, kp, refine_radius)
    return TorchFeatures(kp, scores, sample_descriptors(descriptors, kp))


def prepare_image(image: np.ndarray | Tensor) -> tuple[Tensor, tuple[int, int]]:
    """Gray float32 ``1 x 1 x H' x W'`` network input (H', W' multiples of 8) and the original (H, W).

    Accepts numpy arrays or CPU/GPU tensors laid out as images: H x W or H x W x 1 gray, or
    H x W x 3 RGB, uint8 (0..255) or float32 in [0, 1]. Conversion and padding (bottom/right,
    edge replication) are ``runtime.postprocess.prepare_image``, shared with the robot runtime.
    """
    if isinstance(image, Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array or a torch tensor, got {type(image).__name__}")
    x, size = _np_pp.prepare_image(image)
    return torch.from_numpy(x), size


@torch.inference_mode()
def extract(
    model: nn.Module,
    image: np.ndarray | Tensor,
    max_keypoints: int | None = MAX_KEYPOINTS,
    nms_radius: int = NMS_RADIUS,
    threshold: float = THRESHOLD,
    border: int = BORDER,
    refine_radius: int = REFINE_RADIUS,
    min_contrast: float = MIN_CONTRAST,
) -> TorchFeatures:
    """Keypoints, scores and descriptors of one image, in its original pixel coordinates.

    Args:
        model: a dense core ``image -> (logits, descriptors)`` such as ``KeypointNet`` (put in
            eval mode by the caller; this function does not change the mode).
        image: H x W (x 1) gray or H x W x 3 RGB, uint8 or float32 in [0, 1], numpy or tensor;
            any size (padded to multiples of 8 internally).
        max_keypoints: keep at most this many (None: all).
        nms_radius: suppression radius in pixels (window 2r+1).
        threshold: minimum heatmap probability.
        border: pixels at the image edge where no keypoint is kept.
        refine_radius: soft-argmax window radius (0: integer keypoints).
        min_contrast: local gray-level std a keypoint needs (0: off); see ``runtime.postprocess``.

    Returns:
        ``TorchFeatures(keypoints N x 2 float32 (x, y), scores N float32, descriptors N x D float32)``
        on the model's device, best first.
    """
    x, size = prepare_image(image)
    param = next(iter(model.parameters()), None)
    if param is not None:
        x = x.to(param.device)
    logits, desc = model(x)
    return postprocess(
        logits, desc, size, max_keypoints, nms_radius, threshold, border, refine_radius, x, min_contrast
    )

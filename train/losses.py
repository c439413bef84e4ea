"""Keypoint losses as pure functions over dense network outputs (no module state)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.geometry.transform import warp_perspective
from torch import Tensor

from homeloc.models import postprocess as pp

CELL = 8


def cells_from_heatmap(heat: Tensor, valid: Tensor | None = None) -> Tensor:
    """Full-res keypoint probability B×1×H×W -> per-cell 65-class target distribution B×65×H/8×W/8.

    The 64 in-cell probabilities are kept as they are (rescaled if they sum past 1); the dustbin
    takes the rest. Cells outside `valid` (B×H×W bool) become pure dustbin.
    """
    if valid is not None:
        heat = heat * valid[:, None].to(heat.dtype)
    cells = F.pixel_unshuffle(heat, CELL)  # B×64×h×w, channel = dy*8+dx as in pixel_shuffle
    total = cells.sum(1, keepdim=True)
    cells = cells / total.clamp(min=1.0)
    return torch.cat([cells, (1 - cells.sum(1, keepdim=True)).clamp(min=0)], 1)


def cells_from_keypoint_map(kp_map: Tensor) -> Tensor:
    """Exact keypoints (B×H×W, 1 at keypoints) -> hard labels B×h×w in [0, 64] (64 = no keypoint).

    A cell with several keypoints keeps one of them at random (SuperPoint's rule)."""
    cells = F.pixel_unshuffle(kp_map[:, None].float(), CELL)
    noise = torch.rand_like(cells) * 0.1  # random tie-break among several keypoints in a cell
    cells = torch.cat([2 * cells + noise, torch.ones_like(cells[:, :1])], 1)
    return cells.argmax(1)


def detector_loss_hard(logits: Tensor, labels: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy of B×65×h×w logits against B×h×w labels; mask B×h×w selects cells."""
    loss = F.cross_entropy(logits, labels, reduction="none")
    if mask is None:
        return loss.mean()
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp(min=1)


def detector_loss_soft(logits: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Cross-entropy against a soft 65-class target distribution (distillation)."""
    loss = -(target * F.log_softmax(logits, 1)).sum(1)
    if mask is None:
        return loss.mean()
    m = mask.to(loss.dtype)
    return (loss * m).sum() / m.sum().clamp(min=1)


def cell_mask(valid: Tensor) -> Tensor:
    """B×H×W pixel mask -> B×h×w cells that are fully valid."""
    return F.max_pool2d((~valid)[:, None].float(), CELL)[:, 0] < 0.5


def warp_heatmap(heat: Tensor, H: Tensor, size: tuple[int, int]) -> Tensor:
    """Warp B×1×H×W maps from image0 to image1 with H_0to1 (B×3×3, OpenCV pixel coords)."""
    return warp_perspective(heat, H, size, mode="bilinear", padding_mode="zeros", align_corners=True)


def fuse_views(heat0: Tensor, heat1: Tensor, H: Tensor, valid0: Tensor) -> Tensor:
    """Average two views' heatmaps in image0's frame where image1 sees the same scene.

    Keypoints that a teacher finds in both views (day and night) are reinforced and ones it finds
    in one only are halved: the student learns points that survive the lighting change."""
    back = warp_heatmap(heat1, torch.linalg.inv(H), heat0.shape[-2:])
    v = valid0[:, None].to(heat0.dtype)
    return heat0 * (1 - v) + 0.5 * (heat0 + back) * v


def cell_centres(h: int, w: int, device=None) -> Tensor:
    """(h*w)×2 pixel coordinates (x, y) of the centres of the cells of a 1/8 map."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).float() * CELL + (CELL - 1) / 2


def correspondences(H: Tensor, valid1: Tensor, change1: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Cell centres of image0, their GT positions in image1, and which are usable.

    Usable: lands inside image1, on a pixel valid in image1 and not changed by a scene recipe."""
    B = H.shape[0]
    h, w = shape[0] // CELL, shape[1] // CELL
    p0 = cell_centres(h, w, H.device)[None].expand(B, -1, -1)
    ph = torch.cat([p0, torch.ones_like(p0[..., :1])], -1) @ H.transpose(1, 2)
    p1 = ph[..., :2] / ph[..., 2:].clamp(min=1e-8)
    xi, yi = p1[..., 0].round().long(), p1[..., 1].round().long()
    inside = (xi >= 0) & (xi < shape[1]) & (yi >= 0) & (yi < shape[0]) & (ph[..., 2] > 0)
    xi, yi = xi.clamp(0, shape[1] - 1), yi.clamp(0, shape[0] - 1)
    b = torch.arange(B, device=H.device)[:, None]
    ok = inside & valid1[b, yi, xi] & ~change1[b, yi, xi]
    return p0, p1, ok


def descriptor_loss(
    desc0: Tensor, desc1: Tensor, H: Tensor, valid1: Tensor, change1: Tensor,
    temperature: float = 0.05, max_points: int = 512,
) -> tuple[Tensor, Tensor]:
    """Dual-softmax InfoNCE over ground-truth correspondences (XFeat/LoFTR style).

    desc0/desc1: B×D×h×w L2-normalised; H: B×3×3 image0->image1. Every sampled image0 cell's
    positive is the image1 descriptor at its true position; all other sampled points are negatives.
    Returns (loss, accuracy of the nearest neighbour)."""
    shape = (desc0.shape[-2] * CELL, desc0.shape[-1] * CELL)
    p0, p1, ok = correspondences(H, valid1, change1, shape)
    losses, accs = [], []
    d0_all = desc0.flatten(2).transpose(1, 2)  # B×(h*w)×D: cell centres in order
    for b in range(desc0.shape[0]):
        idx = ok[b].nonzero()[:, 0]
        if len(idx) < 8:
            continue
        if len(idx) > max_points:
            idx = idx[torch.randperm(len(idx), device=idx.device)[:max_points]]
        a = d0_all[b, idx]
        c = pp.sample_descriptors(desc1[b], p1[b, idx])
        sim = a @ c.t() / temperature
        target = torch.arange(len(idx), device=sim.device)
        losses.append(0.5 * (F.cross_entropy(sim, target) + F.cross_entropy(sim.t(), target)))
        accs.append((sim.argmax(1) == target).float().mean())
    if not losses:
        zero = desc0.sum() * 0
        return zero, zero.detach()
    return torch.stack(losses).mean(), torch.stack(accs).mean().detach()

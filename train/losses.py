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


def cells_from_score_map(score: Tensor, temperature: float = 0.1) -> Tensor:
    """Independent per-pixel detection scores B×1×H×W in (0, 1) (ALIKED's sigmoid score map) ->
    B×65×H/8×W/8 cell distribution, SuperPoint style.

    P(a keypoint in the cell) = the cell's peak score; where in the cell = softmax(score /
    temperature) over its 64 pixels; the dustbin takes 1 - peak. Summing the raw scores instead
    would give textured cells a mass > 1 (ALIKED's scores are high along whole edges)."""
    cells = F.pixel_unshuffle(score, CELL)
    peak = cells.amax(1, keepdim=True)
    where = torch.softmax(cells / temperature, 1)
    return torch.cat([where * peak, 1 - peak], 1)


def _mass_and_where(cells: Tensor) -> tuple[Tensor, Tensor]:
    """B×65×h×w cell distribution -> (B×1×h×w keypoint mass, B×64×h×w in-cell distribution)."""
    mass = cells[:, :-1].sum(1, keepdim=True)
    return mass, cells[:, :-1] / mass.clamp(min=1e-12)


def lift_cell_mass(cells: Tensor, power: float) -> Tensor:
    """B×65×h×w target distribution -> the same with each cell's keypoint mass m raised to m**power
    (power < 1 lifts weak cells), the in-cell distribution kept and the dustbin taking the rest.

    ALIKED's peak scores are low on most textured cells (its points are sparse), so its targets put
    most cells in the dustbin and a student taught by them keeps too few points above the runtime's
    detection threshold; lifting the mass keeps ALIKED's choice of where, not how few."""
    if power == 1.0:
        return cells
    mass, where = _mass_and_where(cells)
    lifted = mass.clamp(min=1e-12) ** power
    return torch.cat([where * lifted, 1 - lifted], 1)


def sharpen_cells(cells: Tensor, power: float) -> Tensor:
    """B×65×h×w target distribution -> the same with each cell's in-cell distribution raised to
    ``power`` and renormalised, the cell's keypoint mass and the dustbin kept.

    A teacher heat made by a softmax over the cell (:func:`cells_from_score_map`, temperature T)
    sharpened by ``power`` is the softmax at T / power: along an edge, where the teacher's scores are
    nearly flat, the target then points at one pixel instead of spreading over several, which is
    what a student's keypoint position (its in-cell argmax) is judged by."""
    if power == 1.0:
        return cells
    mass, where = _mass_and_where(cells)
    where = where.clamp(min=0) ** power
    where = where / where.sum(1, keepdim=True).clamp(min=1e-30)  # an empty cell stays 0, not NaN
    return torch.cat([where * mass, cells[:, -1:]], 1)


def descriptor_anchor_loss(desc: Tensor, anchor: Tensor) -> Tensor:
    """Mean (1 - cosine) between two B×D×h×w L2-normalised descriptor maps: how far the student's
    dense descriptors moved from a frozen reference's (whatever reads the map, e.g. the one-pass
    frontend's global head trained on the shipped model's, sees that change)."""
    return (1 - (desc * anchor).sum(1)).mean()


def heatmap_from_cells(cells: Tensor) -> Tensor:
    """B×65×h×w cell distribution -> B×1×8h×8w per-pixel keypoint probability (dustbin dropped):
    the inverse of cells_from_heatmap for a distribution."""
    return F.pixel_shuffle(cells[:, :-1], CELL)


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


def cell_centres(h: int, w: int, device=None) -> Tensor:
    """(h*w)×2 pixel coordinates (x, y) of the centres of the cells of a 1/8 map."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(-1, 2).float() * CELL + (CELL - 1) / 2


def warp_from_homography(H: Tensor, valid0: Tensor) -> Tensor:
    """Dense correspondences of a homography pair, in the pairs3d form: H_0to1 B×3×3, valid0 B×H×W
    (image0 pixels that image1 shows) -> warp_0to1 B×H×W×2 float (x, y) in image1, -1 where not
    valid0, outside image1 or behind the camera. One loss path then serves homography and 3-D pairs."""
    B, h, w = valid0.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=H.device), torch.arange(w, device=H.device), indexing="ij")
    p = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(1, -1, 3).float() @ H.float().transpose(1, 2)
    xy = (p[..., :2] / p[..., 2:].clamp(min=1e-8)).reshape(B, h, w, 2)
    inside = (xy[..., 0] > -0.5) & (xy[..., 0] < w - 0.5) & (xy[..., 1] > -0.5) & (xy[..., 1] < h - 0.5)
    ok = valid0 & inside & (p[..., 2].reshape(B, h, w) > 0)
    return torch.where(ok[..., None], xy, torch.full_like(xy, -1.0))


def sample_warp(warp: Tensor, points: Tensor, max_spread: float = 2.0) -> tuple[Tensor, Tensor]:
    """Positions in image1 of sub-pixel points of image0: warp B×H×W×2 (-1 invalid), points B×N×2
    (x, y) -> (B×N×2, B×N bool ok). Bilinear over the 4 neighbouring pixels; not ok if one of them
    is invalid or they map more than max_spread px apart (an occlusion edge: no interpolation)."""
    B, h, w, _ = warp.shape
    x0 = points[..., 0].floor().long().clamp(0, w - 2)
    y0 = points[..., 1].floor().long().clamp(0, h - 2)
    fx, fy = (points[..., 0] - x0).clamp(0, 1)[..., None], (points[..., 1] - y0).clamp(0, 1)[..., None]
    b = torch.arange(B, device=warp.device)[:, None]
    c = [warp[b, y0 + dy, x0 + dx] for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    ok = torch.stack([(q >= 0).all(-1) for q in c]).all(0)
    corners = torch.stack(c)
    ok &= (corners.amax(0) - corners.amin(0)).amax(-1) <= max_spread
    xy = (c[0] * (1 - fx) + c[1] * fx) * (1 - fy) + (c[2] * (1 - fx) + c[3] * fx) * fy
    return xy, ok


def pull(map1: Tensor, warp: Tensor) -> tuple[Tensor, Tensor]:
    """map1 B×C×H×W sampled at each image0 pixel's position in image1 (bilinear) -> (B×C×H×W in
    image0's frame, B×H×W bool: the warp is valid there)."""
    h1, w1 = map1.shape[-2:]
    ok = (warp >= 0).all(-1)
    grid = torch.stack([warp[..., 0] / (w1 - 1), warp[..., 1] / (h1 - 1)], -1) * 2 - 1
    out = F.grid_sample(map1, grid.to(map1.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
    return out * ok[:, None].to(out.dtype), ok


def fused_targets(
    heat0: Tensor,
    heat1: Tensor,
    warp_0to1: Tensor,
    warp_1to0: Tensor,
    valid0: Tensor,
    valid1: Tensor,
    change1: Tensor,
) -> tuple[Tensor, Tensor]:
    """Teacher heatmaps (B×1×H×W) of both views -> 65-cell targets of both views.

    Each view's target averages its own heatmap with the other view's, pulled through the dense
    correspondences, where the views overlap and the scene did not change: points the teacher
    finds by day and by night are reinforced, ones it finds in one view only are halved."""
    change0 = pull(change1[:, None].float(), warp_0to1)[0][:, 0] > 0.5
    back1, ok0 = pull(heat1, warp_0to1)
    v0 = (ok0 & valid0 & ~change0)[:, None].to(heat0.dtype)
    fused0 = heat0 * (1 - v0) + 0.5 * (heat0 + back1) * v0
    back0, ok1 = pull(fused0, warp_1to0)
    v1 = (ok1 & valid1 & ~change1)[:, None].to(heat1.dtype)
    return cells_from_heatmap(fused0), cells_from_heatmap(back0 * v1 + heat1 * (1 - v1))


def correspondences(warp_0to1: Tensor, valid1: Tensor, change1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Cell centres of image0, their GT positions in image1 (from the dense warp), and which are
    usable: a valid, non-occluded correspondence onto an image1 pixel that is valid and unchanged."""
    B, h, w, _ = warp_0to1.shape
    p0 = cell_centres(h // CELL, w // CELL, warp_0to1.device)[None].expand(B, -1, -1)
    p1, ok = sample_warp(warp_0to1, p0)
    xi, yi = p1[..., 0].round().long().clamp(0, w - 1), p1[..., 1].round().long().clamp(0, h - 1)
    b = torch.arange(B, device=p1.device)[:, None]
    return p0, p1, ok & valid1[b, yi, xi] & ~change1[b, yi, xi]


def descriptor_loss(
    desc0: Tensor,
    desc1: Tensor,
    warp_0to1: Tensor,
    valid1: Tensor,
    change1: Tensor,
    temperature: float = 0.05,
    max_points: int = 512,
    teacher: tuple[Tensor, Tensor] | None = None,
    near_px: float = 0.0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Dual-softmax InfoNCE over ground-truth correspondences (XFeat/LoFTR style), plus optional
    distillation of a teacher's similarity structure over the same points.

    desc0/desc1: B×D×h×w L2-normalised; warp_0to1: B×H×W×2 (homography pairs: warp_from_homography).
    Every sampled image0 cell's positive is the image1 descriptor at its true position; all other
    sampled points are negatives. teacher: (B×Dt×h×w, B×Dt×h×w) unit descriptors of both views:
    the student's row-softmax over the same similarity matrix is pulled to the teacher's (KL).
    near_px > 0: each row also gets ``NEAR_NEGATIVES`` negatives from image1 at ``near_px / 2`` to
    ``near_px`` pixels from its true position, in random directions (a descriptor that varies
    slowly matches the neighbour of a point the other view did not detect).
    Returns (InfoNCE loss, nearest-neighbour accuracy, distillation loss (0 without teacher))."""
    p0, p1, ok = correspondences(warp_0to1, valid1, change1)
    losses, accs, kls = [], [], []
    d0_all = desc0.flatten(2).transpose(1, 2)  # B×(h*w)×D: cell centres in order
    for b in range(desc0.shape[0]):
        idx = ok[b].nonzero()[:, 0]
        if len(idx) < 8:
            continue
        if len(idx) > max_points:
            idx = idx[torch.randperm(len(idx), device=idx.device)[:max_points]]
        sim = d0_all[b, idx] @ pp.sample_descriptors(desc1[b], p1[b, idx]).t() / temperature
        target = torch.arange(len(idx), device=sim.device)
        rows = sim
        if near_px > 0:
            rows = torch.cat(
                [sim, _near_logits(d0_all[b, idx], desc1[b], p1[b, idx], near_px, temperature)], 1
            )
        losses.append(0.5 * (F.cross_entropy(rows, target) + F.cross_entropy(sim.t(), target)))
        accs.append((sim.argmax(1) == target).float().mean())
        if teacher is not None:
            t0 = teacher[0][b].float().flatten(1).t()[idx]
            tsim = t0 @ pp.sample_descriptors(teacher[1][b].float(), p1[b, idx]).t() / temperature
            kls.append(
                F.kl_div(
                    F.log_softmax(sim, 1), F.log_softmax(tsim, 1), log_target=True, reduction="batchmean"
                )
            )
    zero = desc0.sum() * 0
    if not losses:
        return zero, zero.detach(), zero
    return (
        torch.stack(losses).mean(),
        torch.stack(accs).mean().detach(),
        torch.stack(kls).mean() if kls else zero,
    )


NEAR_NEGATIVES = 4  # negatives per point around its true position (descriptor_loss near_px)


def _near_logits(d0: Tensor, desc1: Tensor, p1: Tensor, near_px: float, temperature: float) -> Tensor:
    """N x NEAR_NEGATIVES similarities / temperature of descriptors d0 (N x D) to image1's
    descriptor map at random points ``near_px / 2`` to ``near_px`` from their true positions p1."""
    n = len(p1)
    r = near_px * (0.5 + 0.5 * torch.rand(n, NEAR_NEGATIVES, device=p1.device))
    a = 2 * torch.pi * torch.rand(n, NEAR_NEGATIVES, device=p1.device)
    q = p1[:, None] + torch.stack([r * torch.cos(a), r * torch.sin(a)], -1)
    d1 = pp.sample_descriptors(desc1, q.reshape(-1, 2)).reshape(n, NEAR_NEGATIVES, -1)
    return (d0[:, None] * d1).sum(-1) / temperature

"""Metric-learning losses for global descriptors (pure functions)."""

from __future__ import annotations

import torch
from torch import Tensor


def pair_masks(
    labels: Tensor, domains: Tensor | None = None, tolerance: int = 0, overlap: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Positive and negative pair masks (N×N bool) from integer place labels.

    Places of the same domain whose labels differ by at most `tolerance` (neighbouring frames of
    one route) are neither positive nor negative: they overlap, so pushing them apart is wrong.
    `overlap` (N×N bool) marks other pairs known to show the same scene region (synthesized
    crops of one source image that overlap): also neither."""
    same = labels[:, None] == labels[None]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    neg = ~same
    if tolerance > 0:
        dom = torch.ones_like(same) if domains is None else domains[:, None] == domains[None]
        near = dom & ((labels[:, None] - labels[None]).abs() <= tolerance)
        neg = neg & ~near
    if overlap is not None:
        neg = neg & ~overlap
    return pos, neg


def multi_similarity_loss(
    emb: Tensor,
    pos: Tensor,
    neg: Tensor,
    alpha: float = 2.0,
    beta: float = 50.0,
    base: float = 0.5,
    eps: float = 0.1,
) -> Tensor:
    """Multi-similarity loss with its pair mining (Wang et al., CVPR 2019).

    emb: N×D L2-normalised. Negatives harder than the easiest positive - eps and positives harder
    than the hardest negative + eps are kept; anchors without both contribute nothing."""
    sim = emb @ emb.t()
    big = torch.finfo(sim.dtype).max
    min_pos = torch.where(pos, sim, torch.full_like(sim, big)).min(1, keepdim=True).values
    max_neg = torch.where(neg, sim, torch.full_like(sim, -big)).max(1, keepdim=True).values
    hard_neg = neg & (sim + eps > min_pos)
    hard_pos = pos & (sim - eps < max_neg)
    pos_term = torch.log1p((torch.exp(-alpha * (sim - base)) * hard_pos).sum(1)) / alpha
    neg_term = torch.log1p((torch.exp(beta * (sim - base)) * hard_neg).sum(1)) / beta
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return emb.sum() * 0
    return (pos_term + neg_term)[valid].mean()


def triplet_loss(emb: Tensor, pos: Tensor, neg: Tensor, margin: float = 0.1) -> Tensor:
    """Batch-hard triplet loss on distances (hardest positive vs hardest negative per anchor)."""
    dist = torch.cdist(emb, emb)
    big = dist.max().detach() + 1
    hardest_pos = torch.where(pos, dist, torch.zeros_like(dist)).max(1).values
    hardest_neg = torch.where(neg, dist, torch.full_like(dist, big)).min(1).values
    valid = pos.any(1) & neg.any(1)
    if not valid.any():
        return emb.sum() * 0
    return torch.relu(hardest_pos - hardest_neg + margin)[valid].mean()


def contrastive_loss(emb: Tensor, pos: Tensor, neg: Tensor, margin: float = 0.5) -> Tensor:
    """Classic contrastive loss on similarities: pull positives to 1, push negatives below margin."""
    sim = emb @ emb.t()
    lp = ((1 - sim) * pos).sum() / pos.sum().clamp(min=1)
    ln = (torch.relu(sim - margin) * neg).sum() / neg.sum().clamp(min=1)
    return lp + ln


LOSSES = {"multi_similarity": multi_similarity_loss, "triplet": triplet_loss, "contrastive": contrastive_loss}

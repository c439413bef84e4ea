"""torch Dataset over a `render-export --product pairs3d` folder (what PairsData reads for kind "pairs3d")."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from homeloc.data_synthesis.datasets import _decode, _ShardIndex, pair_to_tensors
from homeloc.data_synthesis.pairs import unpack_masks
from homeloc.runtime.geometry import depth_correspondences


def fit_homography(xy: np.ndarray, valid: np.ndarray, max_points: int = 2000) -> np.ndarray:
    """Least-squares homography of the valid dense correspondences (identity if < 4): an
    approximation for losses that only take H; exact correspondences are `warp_0to1`."""
    ys, xs = np.nonzero(valid)
    if len(ys) < 4:
        return np.eye(3)
    idx = np.linspace(0, len(ys) - 1, min(max_points, len(ys))).astype(int)
    src = np.stack([xs[idx], ys[idx]], 1).astype(np.float64)
    H, _ = cv2.findHomography(src, xy[ys[idx], xs[idx]].astype(np.float64), 0)
    return np.eye(3) if H is None else H / H[2, 2]


class Pairs3DShardDataset(torch.utils.data.Dataset):
    """Items: the PairShardDataset keys (image0, image1, H_0to1 (least-squares fit), valid1, change1,
    valid0) plus warp_0to1 (HxWx2 float32 pixel positions in image1, -1 where not valid0),
    depth0/depth1 (HxW float32 metres), K0/K1 (3x3), T_0to1 (4x4: x1 = T x0, metres)."""

    def __init__(self, root: str | Path, gray: bool = True):
        self.index = _ShardIndex(root, "pairs3d")
        self.gray = gray

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        m = self.index.read(i)
        img0, img1 = _decode(m["img0.png"]), _decode(m["img1.png"])
        d0, d1 = (_decode(m[k]).astype(np.float32) / 1000.0 for k in ("depth0.png", "depth1.png"))
        valid1, change1, valid0 = unpack_masks(_decode(m["masks.png"]))
        meta = json.loads(m["json"])
        K0, K1, p0, p1 = (np.array(meta[k]) for k in ("K0", "K1", "pose0", "pose1"))
        xy, ok = depth_correspondences(d0, d1, K0, p0, K1, p1)
        H = fit_homography(xy, ok)
        item = pair_to_tensors(img0, img1, H, valid1, change1, valid0, self.gray)
        item["warp_0to1"] = torch.from_numpy(np.where(ok[..., None], xy, -1.0).astype(np.float32))
        item.update(
            {
                "depth0": torch.from_numpy(d0),
                "depth1": torch.from_numpy(d1),
                "K0": torch.as_tensor(K0, dtype=torch.float32),
                "K1": torch.as_tensor(K1, dtype=torch.float32),
                "T_0to1": torch.as_tensor(meta["T_0to1"], dtype=torch.float32),
            }
        )
        return item


def open_pair_dataset(root: str | Path, gray: bool = True):
    """PairShardDataset or Pairs3DShardDataset, by the manifest's kind."""
    from homeloc.data_synthesis import shards
    from homeloc.data_synthesis.datasets import PairShardDataset

    manifest = shards.read_manifest(Path(root)) or {}
    return (
        Pairs3DShardDataset(root, gray) if manifest.get("kind") == "pairs3d" else PairShardDataset(root, gray)
    )

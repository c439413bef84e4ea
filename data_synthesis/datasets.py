"""torch Datasets over synthesized shards, and on-the-fly twins that generate in DataLoader workers."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.pairs import PairConfig, make_pair, sample_rng, unpack_masks
from homeloc.data_synthesis.shapes import render_shapes
from homeloc.data_synthesis.sources import SourceMix


def _decode(data: bytes, flags=cv2.IMREAD_UNCHANGED) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise shards.DatasetError("undecodable image member")
    return img if img.ndim == 2 else img[..., ::-1]


def _image_tensor(img: np.ndarray, gray: bool) -> torch.Tensor:
    if gray and img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    t = torch.from_numpy(np.ascontiguousarray(img)).float() / 255.0
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def pair_to_tensors(image0, image1, h, valid1, change1, valid0, gray=True) -> dict:
    return {
        "image0": _image_tensor(image0, gray),
        "image1": _image_tensor(image1, gray),
        "H_0to1": torch.as_tensor(np.asarray(h), dtype=torch.float32),
        "valid1": torch.from_numpy(np.asarray(valid1, bool)),
        "change1": torch.from_numpy(np.asarray(change1, bool)),
        "valid0": torch.from_numpy(np.asarray(valid0, bool)),
    }


class _ShardIndex:
    """Random access into tar shards: (shard path, member name -> (offset, size)) per sample."""

    def __init__(self, root: str | Path, kind: str):
        self.root = Path(root)
        manifest = shards.verify(self.root)
        if manifest["kind"] != kind:
            raise shards.DatasetError(f"{self.root}: holds a {manifest['kind']!r} dataset, expected {kind!r}")
        self.items: list[tuple[Path, dict[str, tuple[int, int]]]] = []
        for name in sorted(manifest["shards"]):
            path = self.root / name
            with tarfile.open(path) as tf:
                current, members = None, {}
                for m in tf.getmembers():
                    key, _, suffix = m.name.partition(".")
                    if current is not None and key != current:
                        self.items.append((path, members))
                        members = {}
                    current, members[suffix] = key, (m.offset_data, m.size)
                if current is not None:
                    self.items.append((path, members))

    def __len__(self):
        return len(self.items)

    def read(self, i: int) -> dict[str, bytes]:
        path, members = self.items[i]
        out = {}
        with open(path, "rb") as f:
            for suffix, (off, size) in members.items():
                f.seek(off)
                out[suffix] = f.read(size)
        return out


class PairShardDataset(Dataset):
    """A `homeloc-synthesize pairs` folder. Items: image0/image1 (1xHxW gray or 3xHxW float [0,1]),
    H_0to1 (3x3 float32), valid1/change1/valid0 (HxW bool)."""

    def __init__(self, root: str | Path, gray: bool = True):
        self.index = _ShardIndex(root, "pairs")
        self.gray = gray

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        m = self.index.read(i)
        img0 = _decode(next(v for k, v in m.items() if k.startswith("img0.")))
        img1 = _decode(next(v for k, v in m.items() if k.startswith("img1.")))
        valid1, change1, valid0 = unpack_masks(_decode(m["masks.png"]))
        meta = json.loads(m["json"])
        return pair_to_tensors(img0, img1, meta["H_0to1"], valid1, change1, valid0, self.gray)


class OnTheFlyPairs(Dataset):
    """The same pairs, generated on demand (index -> make_pair(seed, index)) in DataLoader workers."""

    def __init__(
        self,
        sources: list[str],
        length: int,
        seed: int = 0,
        config: PairConfig | dict | None = None,
        gray: bool = True,
    ):
        self.sources, self.length, self.seed, self.gray = list(sources), int(length), int(seed), gray
        self.config = config if isinstance(config, PairConfig) else PairConfig(**(config or {}))
        self._mix = None

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if self._mix is None:  # opened lazily so each worker has its own caches
            self._mix = SourceMix(self.sources)
        s = make_pair(self._mix, self.config, self.seed, i)
        return pair_to_tensors(s.image0, s.image1, s.h_0to1, s.valid1, s.change1, s.valid0, self.gray)


def keypoint_map(kps: np.ndarray, shape) -> torch.Tensor:
    """HxW float map with 1 at the rounded location of each keypoint."""
    m = torch.zeros(shape, dtype=torch.float32)
    if len(kps):
        k = np.round(kps).astype(int)
        k = k[(k[:, 0] >= 0) & (k[:, 0] < shape[1]) & (k[:, 1] >= 0) & (k[:, 1] < shape[0])]
        m[k[:, 1], k[:, 0]] = 1.0
    return m


class ShapesShardDataset(Dataset):
    """A `homeloc-synthesize shapes` folder. Items: image 1xHxW float, keypoint_map HxW, keypoints Nx2."""

    def __init__(self, root: str | Path):
        self.index = _ShardIndex(root, "shapes")

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        m = self.index.read(i)
        img = _decode(m["img.png"])
        kps = np.asarray(json.loads(m["json"])["keypoints"], np.float32).reshape(-1, 2)
        return {"image": _image_tensor(img, True), "keypoint_map": keypoint_map(kps, img.shape[:2])}


class OnTheFlyShapes(Dataset):
    def __init__(self, length: int, seed: int = 0, size: tuple[int, int] = (240, 320)):
        self.length, self.seed, self.size = int(length), int(seed), tuple(size)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        img, kps, _ = render_shapes(sample_rng(self.seed, i), self.size)
        return {"image": _image_tensor(img, True), "keypoint_map": keypoint_map(kps, img.shape[:2])}

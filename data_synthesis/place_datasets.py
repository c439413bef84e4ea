"""torch Datasets over place shards, and the on-the-fly twin that generates in DataLoader workers
(the places counterpart of datasets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from homeloc.data_synthesis.datasets import _decode, _image_tensor, _ShardIndex
from homeloc.data_synthesis.places import KIND, PlaceConfig, _iou, make_place
from homeloc.data_synthesis.sources import SourceMix


def place_item(views: torch.Tensor, hs: Sequence, place: int, group: int) -> dict:
    """One dataset item; shared by the shard and on-the-fly datasets so they cannot drift apart."""
    return {
        "views": views,
        "H": torch.as_tensor(np.asarray(hs), dtype=torch.float32),
        "place": int(place),
        "group": int(group),
    }


class PlaceShardDataset(Dataset):
    """A `homeloc-synthesize places` folder. Items: views (V x 1 x H x W float [0,1], or V x 3 x H x W
    with gray=False), H (V x 3 x 3 float32, place crop -> view), place (int), group (int; places of
    one group are hard negatives of each other)."""

    def __init__(self, root: str | Path, gray: bool = True):
        self.index = _ShardIndex(root, KIND)
        self.gray = gray

    def __len__(self) -> int:
        return len(self.index)

    def meta(self, i: int) -> dict:
        """The place's json (group, source_image, crop, per-view presets) without decoding images."""
        path, members = self.index.items[i]
        off, size = members["json"]
        with open(path, "rb") as f:
            f.seek(off)
            return json.loads(f.read(size))

    def same_place(self, iou: float = 0.3) -> list[list[int]]:
        """Per place, the *other* places that show the same scene region: cropped from the same
        source image (or webcam scene) with crop IoU >= iou. Groups are built far apart, but two
        groups may draw the same source; exclude these from negatives when mining."""
        metas = [self.meta(i) for i in range(len(self))]
        by_image: dict[str, list[int]] = {}
        for i, m in enumerate(metas):
            by_image.setdefault(m["source_image"], []).append(i)
        return [
            [j for j in by_image[m["source_image"]] if j != i and _iou(m["crop"], metas[j]["crop"]) >= iou]
            for i, m in enumerate(metas)
        ]

    def __getitem__(self, i: int) -> dict:
        m = self.index.read(i)
        meta = json.loads(m["json"])
        names = sorted((k for k in m if k.startswith("view")), key=lambda k: int(k[4:].split(".")[0]))
        views = torch.stack([_image_tensor(_decode(m[k]), self.gray) for k in names])
        return place_item(views, [v["H"] for v in meta["views"]], meta["place"], meta["group"])


class OnTheFlyPlaces(Dataset):
    """The same places generated on demand (index -> make_place(seed, index)) in DataLoader workers."""

    def __init__(
        self,
        sources: list[str],
        length: int,
        seed: int = 0,
        views: int = 4,
        places_per_source: int = 4,
        size: tuple[int, int] = (240, 320),
        config: PlaceConfig | dict | None = None,
        gray: bool = True,
    ):
        self.sources, self.length, self.seed, self.gray = list(sources), int(length), int(seed), gray
        self.views, self.places_per_source, self.size = int(views), int(places_per_source), tuple(size)
        self.config = config if isinstance(config, PlaceConfig) else PlaceConfig(**(config or {}))
        self._mix: SourceMix | None = None

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict:
        if self._mix is None:  # opened lazily so each worker has its own caches
            self._mix = SourceMix(self.sources)
        s = make_place(self._mix, self.config, self.seed, i, self.views, self.places_per_source, self.size)
        views = torch.stack([_image_tensor(v, self.gray) for v in s.views])
        return place_item(views, s.homographies, s.meta["place"], s.meta["group"])

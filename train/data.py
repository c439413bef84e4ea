"""LightningDataModules for keypoint training: synthetic shapes, synthesized pairs, real val pairs."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from homeloc.data_synthesis.datasets import (
    OnTheFlyPairs,
    OnTheFlyShapes,
    ShapesShardDataset,
)
from homeloc.data_synthesis.pairs import PairConfig
from homeloc.data_synthesis.render.datasets import open_pair_dataset

log = logging.getLogger(__name__)
DEFAULT_WEBCAM = "../shared/data/webcam"


def one_thread_per_worker(worker_id: int) -> None:
    """DataLoader workers run OpenCV on one thread each. PyTorch already sets its own threads to 1
    in workers, but OpenCV's pool starts one thread per core in every worker: 14 workers on a
    16-core GPU machine would run 224 threads on 16 cores. (Session 16's GPU run, without this,
    was fed 443 images/s at 31-82 % GPU utilisation; whether this was the cause is not measured.)"""
    cv2.setNumThreads(1)


def _load_synth_config(path: str | None) -> PairConfig:
    """A `synth:` block from a configs/synth YAML (the same file homeloc-synthesize reads)."""
    if not path:
        return PairConfig()
    import yaml

    with open(path) as f:
        d = yaml.safe_load(f) or {}
    return PairConfig(**d.get("synth", d))


class WebcamValPairs(Dataset):
    """Fixed real lighting-change pairs for validation: ../shared/data/webcam scenes, reference day
    image vs other captures (bucketed day/dusk/night), seeded random H on the second image, resized
    to `size`. Built once (deterministic); empty when the folder is absent."""

    def __init__(
        self,
        root: str = DEFAULT_WEBCAM,
        size: tuple[int, int] = (240, 320),
        max_pairs: int = 48,
        seed: int = 0,
        scenes: list[str] | None = None,
    ):
        self.items: list[dict] = []
        if not Path(root).is_dir():
            log.warning("validation pairs: %s not found; validation metrics are skipped", root)
            return
        from homeloc.data_synthesis.formats.matching import WebcamOptions, load_webcam

        pairs = load_webcam(Path(root), WebcamOptions(homography=True, seed=seed)).pairs
        if scenes:  # e.g. only scenes held out of training
            pairs = [p for p in pairs if p.name.split("/")[0] in scenes]
        by_bucket: dict[str, list] = {}
        for p in pairs:
            by_bucket.setdefault(p.bucket, []).append(p)
        # Balanced across buckets, spread across scenes: every k-th pair of each bucket.
        per = max(1, max_pairs // max(len(by_bucket), 1))
        chosen = [
            q for b in sorted(by_bucket) for q in by_bucket[b][:: max(1, len(by_bucket[b]) // per)][:per]
        ]
        for p in chosen:
            self.items.append(self._prepare(p, size))

    @staticmethod
    def _prepare(pair, size) -> dict:
        imgs, scales = [], []
        for ref in (pair.image0, pair.image1):
            img = ref.load()
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
            s = np.diag([size[1] / img.shape[1], size[0] / img.shape[0], 1.0])
            imgs.append(cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA))
            scales.append(s)
        H = scales[1] @ pair.H @ np.linalg.inv(scales[0])
        return {
            "image0": torch.from_numpy(imgs[0]).float()[None] / 255,
            "image1": torch.from_numpy(imgs[1]).float()[None] / 255,
            "H_0to1": torch.as_tensor(H / H[2, 2], dtype=torch.float32),
            "bucket": pair.bucket,
        }

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _Base(L.LightningDataModule):
    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        val_root: str | None,
        val_size: tuple[int, int],
        val_pairs: int,
        val_scenes: list[str] | None = None,
    ):
        super().__init__()
        self.val_scenes = val_scenes
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_root, self.val_size, self.val_pairs = val_root, tuple(val_size), val_pairs
        self.val = None

    def _loader(self, ds, shuffle):
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle,
            worker_init_fn=one_thread_per_worker,
        )

    def val_dataloader(self):
        if self.val is None:
            self.val = (
                WebcamValPairs(
                    self.val_root or DEFAULT_WEBCAM, self.val_size, self.val_pairs, scenes=self.val_scenes
                )
                if self.val_root != ""
                else []
            )
        if len(self.val) == 0:
            return []
        return DataLoader(self.val, batch_size=1, shuffle=False, num_workers=0)

    test_dataloader = val_dataloader


class ShapesData(_Base):
    """Synthetic shapes for detector pretraining: a `homeloc-synthesize shapes` folder, or on the fly."""

    def __init__(
        self,
        data: str | None = None,
        length: int = 20000,
        seed: int = 0,
        size: tuple[int, int] = (240, 320),
        batch_size: int = 16,
        num_workers: int = 1,
        val_root: str | None = None,
        val_size: tuple[int, int] = (240, 320),
        val_pairs: int = 48,
        val_scenes: list[str] | None = None,
    ):
        super().__init__(batch_size, num_workers, val_root, val_size, val_pairs, val_scenes)
        self.data, self.length, self.seed, self.size = data, length, seed, tuple(size)

    def train_dataloader(self):
        ds = ShapesShardDataset(self.data) if self.data else OnTheFlyShapes(self.length, self.seed, self.size)
        return self._loader(ds, True)


class TrainingPairs(Dataset):
    """One item format for every pair source, so homography, webcam and rendered 3-D pairs mix in
    one batch: image0/image1, H_0to1, valid0/valid1/change1, and dense correspondences both ways
    warp_0to1 / warp_1to0 (HxWx2 float32, -1 where invalid or occluded). With a teacher cache, also
    teacher_heat0/1 (1xHxW float32) and teacher_desc0/1 (D x H/8 x W/8 float16), read by image key."""

    KEYS = ("image0", "image1", "H_0to1", "valid0", "valid1", "change1")

    def __init__(self, base: Dataset, cache: str | None = None, descriptors: bool = False):
        from homeloc.train.teacher_cache import TeacherCache

        self.base, self.descriptors = base, descriptors
        self.cache = TeacherCache(cache) if cache else None

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        item = self.base[i]
        out = {k: item[k] for k in self.KEYS}
        if "warp_0to1" in item:  # rendered pair: exact 3-D correspondences, the way back from depth
            out["warp_0to1"], out["warp_1to0"] = item["warp_0to1"], _warp_1to0(item)
        else:
            from homeloc.train.losses import warp_from_homography

            H = item["H_0to1"][None]
            out["warp_0to1"] = warp_from_homography(H, item["valid0"][None])[0]
            out["warp_1to0"] = warp_from_homography(torch.linalg.inv(H), item["valid1"][None])[0]
        if self.cache is not None:
            from homeloc.train.teacher_cache import image_key

            for v in ("0", "1"):
                t = self.cache.get(image_key(item["image" + v]), self.descriptors)
                out["teacher_heat" + v] = torch.from_numpy(t.heat.astype(np.float32))[None]
                if self.descriptors:  # only for the distillation loss: ~2/3 of an entry's bytes
                    out["teacher_desc" + v] = torch.from_numpy(
                        np.ascontiguousarray(t.desc.transpose(2, 0, 1))
                    )
        return out


def _warp_1to0(item: dict) -> torch.Tensor:
    """warp_1to0 of a rendered pair from its depths and relative pose (view 1 as the world frame)."""
    from homeloc.runtime.geometry import depth_correspondences

    K0, K1, T = (item[k].double().numpy() for k in ("K0", "K1", "T_0to1"))
    xy, ok = depth_correspondences(item["depth1"].numpy(), item["depth0"].numpy(), K1, np.eye(4), K0, T)
    return torch.from_numpy(np.where(ok[..., None], xy, -1.0).astype(np.float32))


class PairsData(_Base):
    """Day/night pairs: `homeloc-synthesize pairs` and/or rendered `render-export --product pairs3d`
    folders (`data`: one or a list, mixed in proportion to their sizes), or generated on the fly
    from sources with the same sampling code (`synth_config`: a configs/synth YAML).
    teacher_cache: a `homeloc-train cache-teacher` folder covering every image of `data` (then the
    model's teacher is 'cached' and no teacher network runs in training).
    A `homeloc-train pack-pairs` folder in `data` is read as is (train.packed_pairs: warps and the
    teacher's outputs stored with the pair, the fast path); it takes no teacher_cache.
    teacher_descriptors: also read the cached teacher descriptors (for KeypointSystem's distill_weight).
    augment_p: probability that each training view is relit on the fly by one of `augment_presets`
    (train.augment.RelitPairs; 0 = off): new lighting on every pass over fixed folders."""

    def __init__(
        self,
        data: str | list[str] | None = None,
        sources: list[str] | None = None,
        synth_config: str | None = None,
        length: int = 20000,
        seed: int = 0,
        batch_size: int = 16,
        num_workers: int = 1,
        val_root: str | None = None,
        val_size: tuple[int, int] = (240, 320),
        val_pairs: int = 48,
        val_scenes: list[str] | None = None,
        teacher_cache: str | None = None,
        teacher_descriptors: bool = False,
        augment_p: float = 0.0,
        augment_presets: list[str] | None = None,
    ):
        super().__init__(batch_size, num_workers, val_root, val_size, val_pairs, val_scenes)
        self.augment = None
        if augment_p > 0:
            from homeloc.train.augment import DEFAULT_PRESETS, RelitPairs

            presets = list(augment_presets or DEFAULT_PRESETS)
            RelitPairs([], presets, augment_p)  # refuses unknown presets before anything runs
            self.augment = (presets, augment_p)
        self.data = [data] if isinstance(data, str) else list(data or [])
        self.sources, self.synth_config = sources or ["skimage"], synth_config
        self.length, self.seed, self.teacher_cache = length, seed, teacher_cache
        self.teacher_descriptors = teacher_descriptors
        if teacher_cache and not self.data:
            raise ValueError(
                "teacher_cache needs precomputed pair folders in `data` (on-the-fly pairs are not cached)"
            )
        for root in self.data + ([teacher_cache] if teacher_cache else []):
            if not Path(root).is_dir():
                raise ValueError(f"{root}: no such folder")
        from homeloc.train.packed_pairs import is_packed

        self._packed = [is_packed(root) for root in self.data]
        if teacher_cache and any(self._packed):
            raise ValueError(
                f"{self.data[self._packed.index(True)]}: packed pairs carry their teacher outputs "
                "(homeloc-train pack-pairs --teacher_cache); drop teacher_cache or pass unpacked folders"
            )

    def _open(self, root: str, packed: bool) -> Dataset:
        if packed:  # everything precomputed: no decode, no warps, no cache reads in the workers
            from homeloc.train.packed_pairs import PackedPairs

            return PackedPairs(root)
        return TrainingPairs(open_pair_dataset(root), self.teacher_cache, self.teacher_descriptors)

    def train_dataloader(self):
        if self.data:
            parts = [self._open(root, packed) for root, packed in zip(self.data, self._packed, strict=True)]
            ds = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        else:
            # A new seed per epoch would need the epoch here; a long `length` serves the same end.
            ds = OnTheFlyPairs(self.sources, self.length, self.seed, _load_synth_config(self.synth_config))
        if self.augment is not None:
            from homeloc.train.augment import RelitPairs

            ds = RelitPairs(ds, *self.augment)
        return self._loader(ds, True)

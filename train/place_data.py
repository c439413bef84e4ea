"""Data for the global descriptor: place groups (several views of one place), batch sampling with
faiss-mined hard negatives, and held-apart recall sets for validation."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from homeloc.runtime.io import read_image
from homeloc.runtime.places import prepare_place_image

log = logging.getLogger(__name__)


def load_tensor(path: Path, size: tuple[int, int]) -> torch.Tensor:
    """RGB float 3×H×W in [0,1] at the network's fixed input size (H, W)."""
    return torch.from_numpy(prepare_place_image(read_image(path), size, 3))


class NordlandPlaces(Dataset):
    """Nordland places of one split; item = {"views": 2×3×H×W (summer, winter), "label", "domain"}.

    Labels are positions along the route, so neighbouring frames (the same stretch of track) can
    be excluded as negatives by the loss's tolerance."""

    domain = 0

    def __init__(
        self,
        root: str,
        split: str = "first2of3",
        size: tuple[int, int] = (128, 160),
        limit: int | None = None,
    ):
        from homeloc.data_synthesis.formats.places import load_nordland

        ds = load_nordland(Path(root), split)
        self.pairs = list(zip(ds.database, ds.queries, strict=True))[:limit]
        self.size = tuple(size)
        self._cache: dict[int, torch.Tensor] = {}  # 64x32 images: the whole split fits in memory

    def __len__(self):
        return len(self.pairs)

    def views(self, i: int) -> torch.Tensor:
        if i not in self._cache:
            self._cache[i] = torch.stack([load_tensor(p, self.size) for p in self.pairs[i]])
        return self._cache[i]

    def __getitem__(self, i):
        return {"views": self.views(i), "label": i, "domain": self.domain}


class SynthesizedPlaces(Dataset):
    """A `homeloc-synthesize places` folder as place groups (domain 1; labels offset by 10^6 so they
    never collide with route positions)."""

    domain = 1

    def __init__(self, root: str, size: tuple[int, int] = (128, 160), max_views: int = 4):
        from homeloc.data_synthesis.place_datasets import PlaceShardDataset

        self.ds = PlaceShardDataset(root, gray=False)
        self.size, self.max_views = tuple(size), max_views
        # Groups may draw the same source image again: crops that overlap show one scene region.
        self.overlaps = {
            self.label(i): {self.label(j) for j in js} for i, js in enumerate(self.ds.same_place()) if js
        }

    @staticmethod
    def label(i: int) -> int:
        # Spaced wider than any route tolerance: synthesized places are never "neighbours".
        return 1_000_000 + 10 * i

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        item = self.ds[i]
        v = item["views"][: self.max_views].float()
        if v.shape[1] == 1:
            v = v.expand(-1, 3, -1, -1)
        v = torch.nn.functional.interpolate(v, size=self.size, mode="area")
        return {"views": v, "label": self.label(i), "domain": self.domain}


class HardNegativeBatchSampler(Sampler[list[int]]):
    """Batches of `places_per_batch` place indices: half drawn at random, each followed by one of
    its mined hard negatives (set by `HardNegativeMiner`) when known, else another random place.
    `weights` (one per place, >= 0; None: uniform) makes the anchors a weighted draw, e.g. a small
    source that looks like the product drawn more often than its size alone would.

    Under DDP each process draws its own batches from the (seed, rank) stream, so Lightning must
    not wrap this sampler: the place configs set `trainer.use_distributed_sampler: false`."""

    def __init__(self, num_places: int, places_per_batch: int, batches: int, seed: int = 0, rank: int = 0,
                 weights: np.ndarray | None = None) -> None:  # fmt: skip
        self.n, self.p, self.batches = num_places, places_per_batch, batches
        self.rng = np.random.default_rng([seed, rank])
        self.hard: dict[int, list[int]] = {}
        self.probs = None
        if weights is not None:
            w = np.asarray(weights, np.float64)
            if w.shape != (num_places,) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"weights must be {num_places} finite values >= 0 with a positive sum")
            if np.count_nonzero(w) < self.p // 2:
                raise ValueError(
                    f"weights: {np.count_nonzero(w)} places can be drawn, a batch needs {self.p // 2}"
                )
            self.probs = w / w.sum()

    def __len__(self):
        return self.batches

    def __iter__(self):
        for _ in range(self.batches):
            anchors = self.rng.choice(self.n, self.p // 2, replace=False, p=self.probs)
            batch = []
            for a in anchors:
                batch.append(int(a))
                cands = self.hard.get(int(a))
                batch.append(int(self.rng.choice(cands)) if cands else int(self.rng.integers(self.n)))
            yield list(dict.fromkeys(batch))  # a place twice in a batch would be its own positive


def collate_places(items):
    """Stack views (all items must have the same view count) and per-view labels/domains."""
    v = min(it["views"].shape[0] for it in items)
    views = torch.stack([it["views"][:v] for it in items])  # P×V×3×H×W
    labels = torch.tensor([it["label"] for it in items]).repeat_interleave(v)
    domains = torch.tensor([it["domain"] for it in items]).repeat_interleave(v)
    return {"images": views.flatten(0, 1), "labels": labels, "domains": domains}


class RecallSet:
    """A database/queries recall set held in memory (Nordland last third, a places folder)."""

    def __init__(self, name: str, database: torch.Tensor, queries: torch.Tensor, positives: list[set[int]]):
        self.name, self.database, self.queries, self.positives = name, database, queries, positives

    @classmethod
    def from_spec(cls, name: str, spec: str, size, limit: int | None = None) -> RecallSet:
        from homeloc.data_synthesis.formats.places import load_places_dataset

        ds = load_places_dataset(spec)
        db, q, pos = ds.database, ds.queries, ds.positives
        if limit:  # the first `limit` places of both sides (tests, quick checks)
            db, q = db[:limit], q[:limit]
            pos = [{j for j in p if j < limit} for p in pos[:limit]]
        return cls(
            name,
            torch.stack([load_tensor(p, size) for p in db]),
            torch.stack([load_tensor(p, size) for p in q]),
            pos,
        )


class PlacesData(L.LightningDataModule):
    """Training place groups (Nordland first two thirds and/or synthesized indoor places) with
    hard-negative batches; validation recall sets given as {name: places SPEC}."""

    def __init__(
        self,
        nordland: str | None = "../shared/data/nordland_64x32_summer_winter",
        synthesized: str | None = None,
        size: tuple[int, int] = (128, 160),
        places_per_batch: int = 32,
        batches_per_epoch: int = 200,
        num_workers: int = 0,
        seed: int = 0,
        val_sets: dict[str, str] | None = None,
        val_limit: int | None = None,
        train_limit: int | None = None,
    ):
        super().__init__()
        self.nordland, self.synthesized, self.size = nordland, synthesized, tuple(size)
        self.places_per_batch, self.batches_per_epoch = places_per_batch, batches_per_epoch
        self.num_workers, self.seed = num_workers, seed
        self.val_sets_spec = (
            val_sets
            if val_sets is not None
            else {"nordland_last3rd": "nordland:../shared/data/nordland_64x32_summer_winter"}
        )
        self.val_limit, self.train_limit = val_limit, train_limit
        self.train_set = None
        self.sampler = None
        self.overlaps: dict[int, set[int]] = {}  # label -> labels of other places showing the same region
        self.val_sets: list[RecallSet] = []

    def setup(self, stage=None):
        if self.train_set is None and stage in (None, "fit"):
            parts = []
            if self.nordland and Path(self.nordland).is_dir():
                parts.append(NordlandPlaces(self.nordland, "first2of3", self.size, self.train_limit))
            if self.synthesized:
                parts.append(SynthesizedPlaces(self.synthesized, self.size))
                self.overlaps = parts[-1].overlaps
            if not parts:
                raise FileNotFoundError("no place training data: give nordland: DIR and/or synthesized: DIR")
            self.train_set = torch.utils.data.ConcatDataset(parts)
            rank = getattr(self.trainer, "global_rank", 0) if self.trainer is not None else 0
            self.sampler = HardNegativeBatchSampler(
                len(self.train_set), self.places_per_batch, self.batches_per_epoch, self.seed, rank
            )
        if not self.val_sets:
            for name, spec in self.val_sets_spec.items():
                path = spec.split(":", 1)[-1]
                if not Path(path).exists():
                    log.warning("validation set %s: %s not found, skipped", name, path)
                    continue
                self.val_sets.append(RecallSet.from_spec(name, spec, self.size, self.val_limit))

    def train_dataloader(self):
        return DataLoader(
            self.train_set,
            batch_sampler=self.sampler,
            num_workers=self.num_workers,
            collate_fn=collate_places,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self):
        # Recall needs whole sets: the module evaluates self.val_sets itself; one dummy batch drives it.
        return DataLoader([0], batch_size=1) if self.val_sets else []

    def overlap_mask(self, labels: torch.Tensor) -> torch.Tensor | None:
        """N×N bool: pairs of training places that show the same scene region (None if none known)."""
        return overlap_mask(self.overlaps, labels)

    def mining_views(self) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """(reference views, other-condition views, labels) of every training place, for mining."""
        refs, others, labels = [], [], []
        for i in range(len(self.train_set)):
            item = self.train_set[i]
            refs.append(item["views"][0])
            others.append(item["views"][-1])
            labels.append(item["label"])
        return torch.stack(refs), torch.stack(others), np.asarray(labels)


def overlap_mask(overlaps: dict, labels: torch.Tensor) -> torch.Tensor | None:
    """N×N bool on labels' device: pairs whose places are known to overlap (`overlaps`: place ->
    set of places showing the same scene region); None when nothing is known."""
    if not overlaps:
        return None
    lab = labels.tolist()
    m = [[b in overlaps.get(a, ()) for b in lab] for a in lab]
    return torch.tensor(m, dtype=torch.bool, device=labels.device)

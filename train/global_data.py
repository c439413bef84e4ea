"""Training data for the global head: place groups as the frozen keypoint network's dense
descriptor maps, computed once per source and cached (the head is all that trains, so every view
costs one keypoint forward in total, not one per epoch).

Sources (``GlobalHeadData(sources=[...])``):

- ``synthesized:DIR``: a ``homeloc-synthesize places`` folder (indoor photos, webcam scenes;
  4 views a place, day-like view 0, night/dusk/IR/glare others);
- ``nordland:DIR``: Nordland's first two thirds (summer, winter), upscaled like the evaluation
  (``runtime.postprocess.upscale_longer``);
- ``render:DIR``: rendered homes: frame k of every sequence of a home drives the same camera
  pose (one place, every lighting); the other frames of the home are neither positives nor
  negatives (they may be co-visible), other homes built from the same furniture are the negatives.

Images reach the keypoint network exactly as the evaluation and the robot feed it: gray, downscaled
to ``resize`` px longer side, upscaled to ``upscale``, padded to multiples of 8 (``prepare_image``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_open, read_image
from homeloc.runtime.postprocess import prepare_image, resize_longer, upscale_longer
from homeloc.train.place_data import HardNegativeBatchSampler, overlap_mask

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def frontend_input(image: np.ndarray, resize: int = 640, upscale: int = 256) -> np.ndarray:
    """1 x H x W float32 network input of an RGB/gray uint8 image (the evaluation's scaling)."""
    x, _ = prepare_image(upscale_longer(resize_longer(image, resize), upscale))
    return x[0]


@torch.no_grad()
def descriptor_maps(
    net: torch.nn.Module, images: list[np.ndarray], batch: int = 16, desc: str | None = None
) -> np.ndarray:
    """N x D x h x w float16 dense descriptors of same-size 1 x H x W inputs (frozen ``net``)."""
    out = []
    for i in tqdm(range(0, len(images), batch), desc=desc, unit="batch", disable=desc is None):
        x = torch.from_numpy(np.stack(images[i : i + batch]))
        out.append(net(x)[1].half().numpy())
    return np.concatenate(out)


def _synthesized(root: str, prep) -> tuple[list[list[np.ndarray]], list[list[int]]]:
    from homeloc.data_synthesis.place_datasets import PlaceShardDataset

    ds = PlaceShardDataset(root, gray=True)
    views = [
        [prep((v[0].numpy() * 255).round().astype(np.uint8)) for v in ds[i]["views"]] for i in range(len(ds))
    ]
    return views, ds.same_place()


def _nordland(root: str, prep) -> tuple[list[list[np.ndarray]], list[list[int]]]:
    from homeloc.data_synthesis.formats.places import load_nordland

    ds = load_nordland(Path(root), "first2of3")
    return [[prep(read_image(p)) for p in pair] for pair in zip(ds.database, ds.queries, strict=True)], []


def _render(root: str, prep) -> tuple[list[list[np.ndarray]], list[list[int]]]:
    from homeloc.data_synthesis.render.layout import read_home
    from homeloc.data_synthesis.shards import DatasetError

    views, homes = [], []
    for hdir in sorted(Path(root).glob("home_*")):
        try:
            frames = read_home(hdir)
        except DatasetError:  # still rendering (the background job): use the finished homes
            continue
        by_k: dict[str, list] = {}
        for f in frames:
            by_k.setdefault(f.name.rsplit("_", 1)[-1], []).append(f)
        if any(len(fs) != len(next(iter(by_k.values()))) for fs in by_k.values()):
            continue  # a home whose sequences are incomplete
        first = len(views)
        for k in sorted(by_k):
            views.append([prep(f.rgb()) for f in sorted(by_k[k], key=lambda f: f.sequence)])
        homes.append(range(first, len(views)))
    # every other frame of the same home may be co-visible: neither positive nor negative
    same = [[] for _ in views]
    for r in homes:
        for i in r:
            same[i] = [j for j in r if j != i]
    return views, same


READERS = {"synthesized": _synthesized, "nordland": _nordland, "render": _render}


class MapGroups(Dataset):
    """Place groups of one source as descriptor maps; item = {"maps": V x D x h x w float16,
    "label", "domain"}. ``overlaps``: label -> labels of places that must not be negatives."""

    def __init__(self, maps: np.ndarray, domain: int, same: list[list[int]], spacing: int = 10) -> None:
        self.maps, self.domain, self.spacing = torch.from_numpy(maps), int(domain), int(spacing)
        self.overlaps = {self.label(i): {self.label(j) for j in js} for i, js in enumerate(same) if js}

    def label(self, i: int) -> int:
        # a route (Nordland) keeps consecutive labels, so the loss's tolerance skips its neighbours;
        # other places are spaced wider than any tolerance
        return 1_000_000 * (self.domain + 1) + self.spacing * i

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, i: int) -> dict:
        return {"maps": self.maps[i], "label": self.label(i), "domain": self.domain}


def _content_stamp(kind: str, root: Path) -> str:
    """What the source holds now (a render still in progress grows; a re-synthesized folder changes)."""
    if kind == "render":
        return ",".join(sorted(h.name for h in root.glob("home_*") if (h / "cameras.json").is_file()))
    manifest = root / "manifest.json"
    return file_sha256(manifest) if manifest.is_file() else ""


def load_source(
    spec: str, net: torch.nn.Module, weights: str, cache_dir: Path, resize: int, upscale: int, domain: int
) -> MapGroups:
    """The descriptor-map groups of one source SPEC, from ``cache_dir`` when computed before with the
    same keypoint weights (sha256 ``weights``), spec, content and scaling (the cache key)."""
    from homeloc.runtime.hashing import json_sha256

    kind, _, root = spec.partition(":")
    if kind not in READERS or not root:
        raise ValueError(f"source {spec!r}: expected one of {sorted(READERS)} as KIND:DIR")
    if not Path(root).is_dir():
        raise FileNotFoundError(f"source {spec!r}: {root} is not a folder")
    key = json_sha256({"spec": spec, "weights": weights, "resize": resize, "upscale": upscale,
                       "content": _content_stamp(kind, Path(root)), "format": CACHE_FORMAT})  # fmt: skip
    path = cache_dir / f"{kind}-{key[:16]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            maps, pairs = z["maps"], z["same"]
    else:
        views, same = READERS[kind](root, lambda im: frontend_input(im, resize, upscale))
        v = min(len(g) for g in views)
        flat = [im for g in views for im in g[:v]]
        maps = descriptor_maps(net, flat, desc=f"descriptor maps {spec}")
        maps = maps.reshape(len(views), v, *maps.shape[1:])
        pairs = np.array([(i, j) for i, js in enumerate(same) for j in js], np.int64).reshape(-1, 2)
        cache_dir.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            np.savez(f, maps=maps, same=pairs)
    same_lists: list[list[int]] = [[] for _ in range(len(maps))]
    for i, j in pairs:
        same_lists[int(i)].append(int(j))
    log.info(
        "%s: %d places x %d views, maps %s (%s)", spec, maps.shape[0], maps.shape[1], maps.shape[2:], path
    )
    return MapGroups(maps, domain, same_lists, spacing=1 if kind == "nordland" else 10)


def collate_maps(items: list[dict]) -> dict:
    """Items grouped by map size (sources differ): {"groups": [N x D x h x w float32, ...],
    "labels", "domains"} with labels/domains in the order of the concatenated groups' views."""
    by_shape: dict[tuple, list[dict]] = {}
    for it in items:
        by_shape.setdefault(tuple(it["maps"].shape[-2:]), []).append(it)
    groups, labels, domains = [], [], []
    for its in by_shape.values():
        groups.append(torch.cat([it["maps"] for it in its]).float())
        labels += [it["label"] for it in its for _ in range(len(it["maps"]))]
        domains += [it["domain"] for it in its for _ in range(len(it["maps"]))]
    return {"groups": groups, "labels": torch.tensor(labels), "domains": torch.tensor(domains)}


class MapRecallSet:
    """A places SPEC (database/queries/ground truth) as descriptor maps, for validation recall;
    cached in ``cache_dir`` (key: spec, image files, keypoint weights ``weights``, scaling)."""

    def __init__(self, name: str, spec: str, net: torch.nn.Module, resize: int, upscale: int,
                 cache_dir: Path | None = None, weights: str = "") -> None:  # fmt: skip
        from homeloc.data_synthesis.formats.places import load_places_dataset
        from homeloc.runtime.hashing import json_sha256

        ds = load_places_dataset(spec)
        self.name, self.positives = name, ds.positives
        files = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in (*ds.database, *ds.queries)]
        key = json_sha256({"spec": spec, "files": files, "weights": weights, "resize": resize, "upscale": upscale,
                           "format": CACHE_FORMAT})  # fmt: skip
        path = cache_dir / f"val-{name}-{key[:16]}.npz" if cache_dir is not None else None
        n = len(ds.database)
        if path is not None and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                all_maps = [torch.from_numpy(z[f"m{i}"]) for i in range(len(files))]
        else:  # one at a time: a folder's images may differ in size
            all_maps = [
                torch.from_numpy(descriptor_maps(net, [frontend_input(read_image(p), resize, upscale)])[0])
                for p in tqdm([*ds.database, *ds.queries], desc=f"{name} maps", unit="img", leave=False)
            ]
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                with atomic_open(path, "wb") as f:
                    np.savez(f, **{f"m{i}": m.numpy() for i, m in enumerate(all_maps)})
        self.database, self.queries = all_maps[:n], all_maps[n:]


class GlobalHeadData(L.LightningDataModule):
    """Descriptor-map place groups of ``sources`` (see the module docstring) with hard-negative
    batches (``train.place_data.HardNegativeBatchSampler``, mined by ``train.places.HardNegativeMiner``),
    and validation recall sets {name: places SPEC}. The frozen keypoint network comes from the
    module (``GlobalHeadSystem.keypoints``), so the maps are those of the weights being trained on.

    ``source_shares`` (one per source, > 0; None: every place equally likely) is each source's
    share of the batch anchors: rendered homes are few places next to Nordland's route, and
    drawn by size alone they are a few percent of what the head sees."""

    def __init__(
        self,
        sources: list[str],
        val_sets: dict[str, str] | None = None,
        cache_dir: str = "data/global_maps",
        resize: int = 640,
        upscale: int = 256,
        places_per_batch: int = 48,
        batches_per_epoch: int = 100,
        seed: int = 0,
        source_shares: list[float] | None = None,
    ) -> None:
        super().__init__()
        if not sources:
            raise ValueError(
                "GlobalHeadData needs at least one source (synthesized:DIR, nordland:DIR, render:DIR)"
            )
        if source_shares is not None and (
            len(source_shares) != len(sources) or not all(float(x) > 0 for x in source_shares)
        ):
            raise ValueError(
                f"source_shares must be {len(sources)} values > 0 (one per source), got {source_shares}"
            )
        self.source_shares = None if source_shares is None else [float(x) for x in source_shares]
        self.sources, self.val_sets_spec = list(sources), dict(val_sets or {})
        self.cache_dir, self.resize, self.upscale = Path(cache_dir), int(resize), int(upscale)
        self.places_per_batch, self.batches_per_epoch, self.seed = places_per_batch, batches_per_epoch, seed
        self.train_set: torch.utils.data.ConcatDataset | None = None
        self.sampler: HardNegativeBatchSampler | None = None
        self.overlaps: dict[int, set[int]] = {}
        self.val_sets: list[MapRecallSet] = []

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        module = self.trainer.lightning_module
        net, weights = module.keypoints, module.keypoint_weights
        parts = [load_source(s, net, weights, self.cache_dir, self.resize, self.upscale, d)
                 for d, s in enumerate(self.sources)]  # fmt: skip
        for p in parts:
            self.overlaps.update(p.overlaps)
        self.train_set = torch.utils.data.ConcatDataset(parts)
        weights = None
        if self.source_shares is not None:  # each place: its source's share over the source's size
            weights = np.concatenate(
                [np.full(len(p), s / len(p)) for p, s in zip(parts, self.source_shares, strict=True)]
            )
        self.sampler = HardNegativeBatchSampler(len(self.train_set), self.places_per_batch, self.batches_per_epoch,
                                                self.seed, weights=weights)  # fmt: skip
        for name, spec in self.val_sets_spec.items():
            if not Path(spec.split(":", 1)[-1]).exists():
                log.warning("validation set %s: %s not found, skipped", name, spec)
                continue
            self.val_sets.append(
                MapRecallSet(name, spec, net, self.resize, self.upscale, self.cache_dir, weights)
            )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=collate_maps)

    def val_dataloader(self):
        # recall needs whole sets: the module evaluates self.val_sets itself; one dummy batch drives it
        return DataLoader([0], batch_size=1) if self.val_sets else []

    def overlap_mask(self, labels: torch.Tensor) -> torch.Tensor | None:
        """N x N bool: pairs of places known to show the same region (None if none known)."""
        return overlap_mask(self.overlaps, labels)

    def mining_views(self) -> tuple[list[torch.Tensor], list[torch.Tensor], np.ndarray]:
        """(reference view maps, other-view maps, labels) of every training place, for mining."""
        items = [self.train_set[i] for i in range(len(self.train_set))]
        return ([it["maps"][0] for it in items], [it["maps"][-1] for it in items],
                np.asarray([it["label"] for it in items]))  # fmt: skip

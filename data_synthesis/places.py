"""Place datasets for the global (place) descriptor: views of one place under other light and
small viewpoint changes, in groups of hard negatives, plus an export to the evaluator's layout.

A *place* is a crop of a source image. Its views are that crop seen through a small random
homography (view 0: none) under different lighting presets (view 0 day-like, the others drawn
from dusk / night_lamp / night_ir / glare / day), sometimes with a scene change. Places come in
*groups* of `places_per_source` that share one source image (other, far-apart crops of the same
room, street or corridor): they look alike but are other places, i.e. hard negatives for
perceptual aliasing. Every place's json records its `group`. A static-webcam source gives real
lighting: the views of such a place are different captures of the scene (view 0 the brightest).

Sample i depends only on (sources, config, seed, i) like the pair datasets: group g = i //
places_per_source is drawn from (seed, g), the place from (seed, i).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.datasets import _decode, _image_tensor, _ShardIndex
from homeloc.data_synthesis.geometry import HomographyConfig, sample_homography
from homeloc.data_synthesis.pairs import _choose, _render, sample_rng
from homeloc.data_synthesis.photometric import PRESETS, apply_preset, to_uint8
from homeloc.data_synthesis.scene_change import SCENE_RECIPES, apply_scene_changes
from homeloc.data_synthesis.sources import SourceMix, WebcamSource, load_cached
from homeloc.runtime.io import atomic_write, encode_image

log = logging.getLogger(__name__)
KIND = "places"
GROUP_STREAM, PLACE_STREAM = 1, 2  # rng streams: the group's draws and the place's own


def _small_homography() -> HomographyConfig:
    return HomographyConfig(
        patch_ratio=0.9, perspective=0.06, scale=(0.9, 1.1), rotation=6.0, translation=0.04
    )


@dataclass
class PlaceConfig:
    """How places and their views are drawn (the `synth:` block of configs/synth/places.yaml).

    crop_fraction: (min, max) side of a place's crop relative to the largest crop of the output
    aspect that fits in the source (smaller crops leave room for far-apart hard negatives).
    homography: small viewpoint change applied to views 1.. (view 0 is the canonical view).
    view0: presets drawn for view 0 (day-like, the database image); view_presets: for the others.
    real_view_presets: presets on top of real captures (webcam sources; `identity` keeps them).
    scene_change: probability of each scene-change recipe on views 1..
    candidates: candidate crop centres per group; the group's crops are picked farthest-first.
    """

    crop_fraction: tuple[float, float] = (0.35, 0.5)
    homography: HomographyConfig = field(default_factory=_small_homography)
    view0: dict[str, float] = field(default_factory=lambda: {"day": 0.8, "identity": 0.2})
    view_presets: dict[str, float] = field(
        default_factory=lambda: {"day": 0.1, "dusk": 0.2, "night_lamp": 0.3, "night_ir": 0.2, "glare": 0.2}
    )
    real_view_presets: dict[str, float] = field(default_factory=lambda: {"identity": 0.7, "day": 0.3})
    scene_change: dict[str, float] = field(
        default_factory=lambda: {"occluder": 0.1, "moved_object": 0.05, "new_object": 0.15}
    )
    candidates: int = 64

    def __post_init__(self):
        if isinstance(self.homography, dict):
            self.homography = HomographyConfig(**self.homography)
        self.crop_fraction = tuple(float(v) for v in self.crop_fraction)
        lo, hi = self.crop_fraction
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_fraction must satisfy 0 < min <= max <= 1, got {self.crop_fraction}")
        for name in [*self.view0, *self.view_presets, *self.real_view_presets]:
            if name not in PRESETS:
                raise ValueError(f"unknown photometric preset {name!r} in config; known: {sorted(PRESETS)}")
        for name in self.scene_change:
            if name not in SCENE_RECIPES:
                raise ValueError(f"unknown scene-change recipe {name!r}; known: {sorted(SCENE_RECIPES)}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlaceSample:
    views: list[np.ndarray]  # uint8 HxWx3 RGB each; views[0] is the day-like canonical view
    homographies: list[np.ndarray]  # 3x3 float64: place crop (= view 0) pixels -> view v pixels
    meta: dict  # place, group, member, source, crop, per-view presets/parameters


# ------------------------------------------------------------------------------------- sampling


@dataclass
class _Group:
    source_id: str
    source_image: str  # places with the same key and overlapping crops show the same place
    image: np.ndarray | None  # the single source image (None for a webcam scene)
    captures: list[str]  # a webcam scene's capture files, same geometry ([] for single images)
    shape: tuple[int, int]  # source (height, width) in the pixels crops refer to
    crops: list[tuple[float, float, float, float]]  # (x0, y0, x1, y1) in source pixels

    def view_source(self, k: int) -> np.ndarray:
        return self.image if self.image is not None else load_cached(self.captures[k])


@lru_cache(maxsize=4096)
def _mean_luma(path: str) -> float:
    return float(load_cached(path).mean())


def _texture_scores(image: np.ndarray, cand: np.ndarray, cw: float, ch: float) -> np.ndarray:
    """Mean gradient magnitude inside a cw x ch box around each candidate centre (box sums on an
    integral image of a 4x smaller gray copy)."""
    f = 4
    g = cv2.cvtColor(
        cv2.resize(
            image, (max(image.shape[1] // f, 1), max(image.shape[0] // f, 1)), interpolation=cv2.INTER_AREA
        ),
        cv2.COLOR_RGB2GRAY,
    ).astype(np.float32)
    mag = np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1))
    ii = cv2.integral(mag)
    hh, ww = mag.shape
    x0 = np.clip(((cand[:, 0] - cw / 2) / f).astype(int), 0, ww - 1)
    x1 = np.clip(((cand[:, 0] + cw / 2) / f).astype(int), x0 + 1, ww)
    y0 = np.clip(((cand[:, 1] - ch / 2) / f).astype(int), 0, hh - 1)
    y1 = np.clip(((cand[:, 1] + ch / 2) / f).astype(int), y0 + 1, hh)
    return (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]) / ((x1 - x0) * (y1 - y0))


def _crop_boxes(rng, shape, size, n, cfg: PlaceConfig, image: np.ndarray | None = None):
    """n crops (x0, y0, x1, y1) of the output aspect, centres picked farthest-first among random
    candidates; with `image`, only among the better-textured 3/4 of the candidates (no crops of
    plain sky or bare wall: they are no place; keeping 3/4 still leaves room to spread out)."""
    h, w = shape[:2]
    aspect = size[1] / size[0]
    h_max = min(h, w / aspect)
    fracs = rng.uniform(*cfg.crop_fraction, n)
    ch_mean = float(fracs.mean()) * h_max
    cw_mean = ch_mean * aspect
    cand = rng.uniform(
        [cw_mean / 2, ch_mean / 2],
        [max(w - cw_mean / 2, cw_mean / 2), max(h - ch_mean / 2, ch_mean / 2)],
        (max(cfg.candidates, n), 2),
    )
    if image is not None and len(cand) > 2 * n:
        score = _texture_scores(image, cand, cw_mean, ch_mean)
        cand = cand[np.sort(np.argsort(-score, kind="stable")[: max(len(cand) * 3 // 4, n)])]
    chosen = [0]
    dist = np.linalg.norm((cand - cand[0]) / [cw_mean, ch_mean], axis=1)
    while len(chosen) < n:
        k = int(np.argmax(dist))
        chosen.append(k)
        dist = np.minimum(dist, np.linalg.norm((cand - cand[k]) / [cw_mean, ch_mean], axis=1))
    boxes = []
    for f, k in zip(fracs, chosen, strict=True):
        ch, cw = f * h_max, f * h_max * aspect
        cx = float(np.clip(cand[k, 0], cw / 2, w - cw / 2))
        cy = float(np.clip(cand[k, 1], ch / 2, h - ch / 2))
        boxes.append((cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2))
    return boxes


def sample_group(
    sources: SourceMix, cfg: PlaceConfig, seed: int, group: int, places_per_source: int, size: tuple[int, int]
) -> _Group:
    """The source and the far-apart crops shared by the places of one group (from (seed, group))."""
    rng = sample_rng(seed, group, GROUP_STREAM)
    src = sources.sources[int(rng.choice(len(sources.sources), p=sources.p))]
    if isinstance(src, WebcamSource):
        scene = src.names[int(rng.integers(len(src.names)))]
        captures = [str(f) for f in src.scenes[scene]]
        image, sid = None, f"webcam:{scene}"
        first = load_cached(captures[0])
        shape = first.shape[:2]
        key = sid
    else:
        s = src.sample(rng)
        image, sid, captures, shape = s.image0, s.id, [], s.image0.shape[:2]
        key, first = s.id.split("|")[0], s.image0
    crops = _crop_boxes(rng, shape, size, places_per_source, cfg, first)
    return _Group(sid, key, image, captures, tuple(shape), crops)


def _crop_transform(box, size) -> np.ndarray:
    """Similarity mapping source pixels to the place crop rendered at size (h, w)."""
    x0, y0, x1, y1 = box
    s = size[0] / (y1 - y0)
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s], [0, 0, 1]], np.float64)


def make_place(
    sources: SourceMix,
    cfg: PlaceConfig,
    seed: int,
    index: int,
    views: int = 4,
    places_per_source: int = 4,
    size: tuple[int, int] = (240, 320),
) -> PlaceSample:
    """Place `index` of dataset `seed`: `views` images of one crop. Deterministic in its arguments."""
    if views < 2:
        raise ValueError(f"a place needs at least 2 views, got {views}")
    size = tuple(int(v) for v in size)
    group_id, member = divmod(int(index), int(places_per_source))
    group = sample_group(sources, cfg, seed, group_id, places_per_source, size)
    rng = sample_rng(seed, index, PLACE_STREAM)
    t = _crop_transform(group.crops[member], size)
    real = bool(group.captures)
    if real:  # real lighting: distinct captures of the scene, the brightest one as view 0
        n = len(group.captures)
        picks = [int(p) for p in rng.choice(n, min(views, n), replace=False)]
        picks += [int(p) for p in rng.integers(0, n, views - len(picks))]
        best = int(np.argmax([_mean_luma(group.captures[p]) for p in picks]))
        picks[0], picks[best] = picks[best], picks[0]
    else:
        picks = [0] * views
    out, hs, recs = [], [], []
    for v in range(views):
        hv = np.eye(3) if v == 0 else sample_homography(rng, size, cfg.homography)
        img = _render(group.view_source(picks[v]), hv @ t, size)
        if real:
            preset = _choose(rng, cfg.real_view_presets)
        else:
            preset = _choose(rng, cfg.view0 if v == 0 else cfg.view_presets)
        imgf = img.astype(np.float32) * np.float32(1 / 255)
        scene_rec = []
        if v > 0 and cfg.scene_change:
            texture = (lambda: sources.sample_single(rng)) if cfg.scene_change.get("occluder", 0) else None
            imgf, _, scene_rec = apply_scene_changes(imgf, rng, cfg.scene_change, texture)
        imgf, rec = apply_preset(preset, imgf, rng)
        out.append(to_uint8(imgf))
        hs.append(hv)
        recs.append(
            {
                "preset": preset,
                "photometric": rec,
                "scene_change": scene_rec,
                "H": hv.tolist(),
                "capture": Path(group.captures[picks[v]]).name if real else None,
            }
        )
    meta = {
        "seed": int(seed),
        "index": int(index),
        "place": int(index),
        "group": int(group_id),
        "member": int(member),
        "source": group.source_id,
        "source_image": group.source_image,
        "real": real,
        "crop": [float(c) for c in group.crops[member]],
        "source_size": list(group.shape),
        "views": recs,
    }
    return PlaceSample(out, hs, meta)


def encode_place(sample: PlaceSample, image_format: str = ".jpg") -> dict[str, bytes]:
    ext = image_format.lstrip(".")
    out = {f"view{v}.{ext}": encode_image(img, "." + ext) for v, img in enumerate(sample.views)}
    out["json"] = json.dumps(sample.meta, sort_keys=True).encode()
    return out


@dataclass
class PlaceMaker:
    """Picklable per-shard sample factory (sources are opened lazily in each worker)."""

    sources: list[str]
    config: dict
    seed: int
    views: int = 4
    places_per_source: int = 4
    size: tuple[int, int] = (240, 320)
    image_format: str = ".jpg"

    def __call__(self, indices):
        mix, cfg = SourceMix(self.sources), PlaceConfig(**self.config)
        for i in indices:
            s = make_place(mix, cfg, self.seed, i, self.views, self.places_per_source, self.size)
            yield {"__key__": f"{i:09d}", **encode_place(s, self.image_format)}


def synthesize_places(
    sources: list[str],
    out: str | Path,
    num_places: int,
    seed: int = 0,
    views: int = 4,
    places_per_source: int = 4,
    size: tuple[int, int] = (240, 320),
    config: PlaceConfig | None = None,
    workers: int = 1,
    shard_size: int = 200,
    overwrite: bool = False,
    only_shards: list[int] | None = None,
    image_format: str = ".jpg",
) -> Path:
    """Place dataset of `num_places` places x `views` views. Returns the manifest path."""
    config = config or PlaceConfig()
    if views < 2:
        raise ValueError(f"a place needs at least 2 views, got {views}")
    if places_per_source < 1:
        raise ValueError(f"places_per_source must be >= 1, got {places_per_source}")
    SourceMix(sources)  # fail early, in the parent, on a bad source
    size = tuple(int(v) for v in size)
    resolved = {
        "config": config.to_dict(),
        "sources": list(sources),
        "seed": seed,
        "views": views,
        "places_per_source": places_per_source,
        "size": list(size),
        "image_format": image_format,
    }
    maker = PlaceMaker(list(sources), config.to_dict(), seed, views, places_per_source, size, image_format)
    return shards.build(
        Path(out), KIND, resolved, num_places, shard_size, maker, workers, overwrite, only_shards
    )


# ------------------------------------------------------------------------------------- datasets


class PlaceShardDataset(Dataset):
    """A `homeloc-synthesize places` folder. Items: views (V x 1 x H x W float [0,1], or V x 3 x H x W
    with gray=False), H (V x 3 x 3 float32, place crop -> view), place (int), group (int; places of
    one group are hard negatives of each other)."""

    def __init__(self, root: str | Path, gray: bool = True):
        self.index = _ShardIndex(root, KIND)
        self.gray = gray

    def __len__(self):
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

    def __getitem__(self, i):
        m = self.index.read(i)
        meta = json.loads(m["json"])
        names = sorted((k for k in m if k.startswith("view")), key=lambda k: int(k[4:].split(".")[0]))
        views = torch.stack([_image_tensor(_decode(m[k]), self.gray) for k in names])
        return place_item(views, [v["H"] for v in meta["views"]], meta["place"], meta["group"])


def place_item(views: torch.Tensor, hs, place: int, group: int) -> dict:
    return {
        "views": views,
        "H": torch.as_tensor(np.asarray(hs), dtype=torch.float32),
        "place": int(place),
        "group": int(group),
    }


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
        self._mix = None

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        if self._mix is None:  # opened lazily so each worker has its own caches
            self._mix = SourceMix(self.sources)
        s = make_place(self._mix, self.config, self.seed, i, self.views, self.places_per_source, self.size)
        views = torch.stack([_image_tensor(v, self.gray) for v in s.views])
        return place_item(views, s.homographies, s.meta["place"], s.meta["group"])


# ------------------------------------------------------------------------------ evaluation export

EXPORT_INFO = "export.json"


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def export_places_eval(
    data_dir: str | Path,
    out_dir: str | Path,
    query_presets: tuple[str, ...] = ("night_lamp", "night_ir", "dusk"),
    include_real: bool = True,
    same_place_iou: float = 0.3,
    overwrite: bool = False,
) -> Path:
    """Write the generic places folder the evaluator reads: database/ (view 0 of every place),
    queries/ (views 1.. lit by one of `query_presets`, plus real captures when include_real),
    ground_truth.csv (`query,positives`; positives = space-separated database file names: the
    query's own place and any place cropped from the same source image with crop IoU >=
    same_place_iou). Image bytes are copied from the shards. Returns the csv path; a finished
    export of the same dataset and options is kept unless overwrite."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    manifest = shards.verify(data_dir)
    if manifest["kind"] != KIND:
        raise shards.DatasetError(f"{data_dir}: holds a {manifest['kind']!r} dataset, expected {KIND!r}")
    for p in query_presets:
        if p not in PRESETS:
            raise ValueError(f"unknown query preset {p!r}; known: {sorted(PRESETS)}")
    info = {
        "data": str(data_dir.resolve()),
        "config_hash": manifest["config_hash"],
        "query_presets": list(query_presets),
        "include_real": include_real,
        "same_place_iou": same_place_iou,
    }
    gt_path = out_dir / "ground_truth.csv"
    info_path = out_dir / EXPORT_INFO
    if gt_path.exists() and info_path.exists() and not overwrite:
        old = json.loads(info_path.read_text())
        if {k: old.get(k) for k in info} == info:
            log.info("%s: export exists, skipping (overwrite=True to redo)", out_dir)
            return gt_path
        raise shards.DatasetError(
            f"{info_path}: an export with other data or options is here; pass --overwrite"
        )
    if overwrite or gt_path.exists() or info_path.exists():
        for sub in ("database", "queries"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        gt_path.unlink(missing_ok=True)
    places, queries = [], []  # (db name, meta); (query name, place index)
    for name in sorted(manifest["shards"]):
        for _, members in shards.iter_shard(data_dir / name):
            meta = json.loads(members["json"])
            ext = next(k for k in members if k.startswith("view0.")).split(".", 1)[1]
            db_name = f"place_{meta['place']:07d}.{ext}"
            atomic_write(out_dir / "database" / db_name, members[f"view0.{ext}"])
            places.append((db_name, meta))
            for v, rec in enumerate(meta["views"][1:], start=1):
                real = meta["real"] and rec["preset"] in ("identity", "day")
                if rec["preset"] in query_presets or (real and include_real):
                    label = "real" if real else rec["preset"]
                    q_name = f"place_{meta['place']:07d}_v{v}_{label}.{ext}"
                    atomic_write(out_dir / "queries" / q_name, members[f"view{v}.{ext}"])
                    queries.append((q_name, len(places) - 1))
    by_image: dict[str, list[int]] = {}
    for k, (_, meta) in enumerate(places):
        by_image.setdefault(meta["source_image"], []).append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["query", "positives"])
    for q_name, k in queries:
        meta = places[k][1]
        pos = [
            places[j][0]
            for j in by_image[meta["source_image"]]
            if j == k or _iou(meta["crop"], places[j][1]["crop"]) >= same_place_iou
        ]
        w.writerow([q_name, " ".join(sorted(pos))])
    info.update(database=len(places), queries=len(queries))
    atomic_write(info_path, json.dumps(info, indent=1, sort_keys=True))
    atomic_write(gt_path, buf.getvalue())  # last: its presence marks a finished export
    return gt_path


# ------------------------------------------------------------------------------------------ CLI


def add_subcommand(sub) -> None:
    """`places` (synthesize) and `places-eval` (export for homeloc-evaluate) subcommands."""
    from jsonargparse import ArgumentParser

    from homeloc.data_synthesis.cli import _common

    p = ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Groups of far-apart crops of one source are hard negatives."
    )
    _common(p, 200)
    p.add_argument(
        "--source",
        type=str,
        nargs="+",
        default=["skimage"],
        help="sources: skimage | folder:DIR | webcam:DIR | hpatches:DIR, each with optional @WEIGHT",
    )
    p.add_argument("--views", type=int, default=4, help="views per place (view 0 is day-like)")
    p.add_argument(
        "--places_per_source",
        type=int,
        default=4,
        help="places per group sharing one source image (hard negatives of each other)",
    )
    p.add_argument("--size", type=tuple[int, int], default=(240, 320), help="image height, width")
    p.add_argument("--synth", type=PlaceConfig, default=PlaceConfig(), help="place synthesis settings")
    p.add_argument("--image_format", type=str, default=".jpg", help=".jpg (q95, compact) or .png (lossless)")
    sub.add_subcommand("places", p, help="synthesize a place-recognition dataset")

    e = ArgumentParser(
        description="Export a places dataset as database/ + queries/ + ground_truth.csv "
        "(the generic places folder homeloc-evaluate reads)."
    )
    e.add_argument(
        "--data", type=str, required=True, help="places dataset folder (homeloc-synthesize places)"
    )
    e.add_argument("--out", type=str, required=True, help="output folder")
    e.add_argument(
        "--query_presets",
        type=list[str],
        default=["night_lamp", "night_ir", "dusk"],
        help="views lit by these presets become queries",
    )
    e.add_argument(
        "--include_real", type=bool, default=True, help="real webcam captures (views 1..) are queries too"
    )
    e.add_argument(
        "--same_place_iou",
        type=float,
        default=0.3,
        help="crops of one source image overlapping this much count as the same place",
    )
    e.add_argument(
        "--overwrite", type=bool, default=False, help="replace an export made with other data/options"
    )
    sub.add_subcommand("places-eval", e, help="export a places dataset for evaluation")


def _as_dict(ns) -> dict:
    return ns.as_dict() if hasattr(ns, "as_dict") else dict(ns)


def run(args) -> int:
    """`homeloc-synthesize places`."""
    import yaml

    synth = args.synth if isinstance(args.synth, PlaceConfig) else PlaceConfig(**_as_dict(args.synth))
    manifest = synthesize_places(
        args.source,
        args.out,
        args.num,
        args.seed,
        args.views,
        args.places_per_source,
        tuple(args.size),
        synth,
        args.workers,
        args.shard_size,
        args.overwrite,
        args.only_shards,
        args.image_format,
    )
    resolved = {k: v for k, v in _as_dict(args).items() if k not in ("config", "__path__")}
    resolved["synth"] = synth.to_dict()
    atomic_write(Path(args.out) / "config.yaml", yaml.safe_dump(_plain(resolved), sort_keys=False))
    if args.only_shards is None:
        m = shards.verify(manifest.parent)
        print(f"{manifest.parent}: {m['num']} places written and verified")
    else:
        print(f"{manifest}: shards {args.only_shards} written")
    return 0


def run_eval(args) -> int:
    """`homeloc-synthesize places-eval`."""
    gt = export_places_eval(
        args.data, args.out, tuple(args.query_presets), args.include_real, args.same_place_iou, args.overwrite
    )
    info = json.loads((gt.parent / EXPORT_INFO).read_text())
    print(f"{gt.parent}: {info['database']} database images, {info['queries']} queries")
    return 0


def _plain(x):
    """Tuples -> lists etc., so yaml.safe_dump accepts the resolved config."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x

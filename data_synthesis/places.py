"""One synthesized place from (sources, config, seed, index): a crop seen in several views.

A *place* is a crop of a source image. Its views are that crop seen through a small random
homography (view 0: none) under different lighting presets (view 0 day-like, the others drawn
from dusk / night_lamp / night_ir / glare / day), sometimes with a scene change. Places come in
*groups* of `places_per_source` that share one source image (other, far-apart crops of the same
room, street or corridor): they look alike but are other places, i.e. hard negatives for
perceptual aliasing. Every place's json records its `group`. A static-webcam source gives real
lighting: the views of such a place are different captures of the scene (view 0 the brightest).

Sample i depends only on (sources, config, seed, i) like the pair datasets: group g = i //
places_per_source is drawn from (seed, g), the place from (seed, i).

The rest of the place code mirrors the pair modules: place_jobs (shards, like jobs),
place_datasets (torch Datasets, like datasets), export_places (evaluator folder, like
export_pairs); the CLI lives in cli.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.geometry import HomographyConfig, sample_homography
from homeloc.data_synthesis.pairs import _choose, _render, check_probability, check_weights, sample_rng
from homeloc.data_synthesis.photometric import PRESETS, apply_preset, to_uint8
from homeloc.data_synthesis.scene_change import SCENE_RECIPES, apply_scene_changes
from homeloc.data_synthesis.sources import SourceMix, WebcamSource, load_cached
from homeloc.runtime.io import encode_image

KIND = "places"  # the manifest's dataset kind, checked by every reader
GROUP_STREAM, PLACE_STREAM = 1, 2  # rng streams: the group's draws and the place's own

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in source pixels


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

    def __post_init__(self) -> None:
        if isinstance(self.homography, dict):
            self.homography = HomographyConfig(**self.homography)
        self.crop_fraction = tuple(float(v) for v in self.crop_fraction)
        lo, hi = self.crop_fraction
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_fraction must satisfy 0 < min <= max <= 1, got {self.crop_fraction}")
        for name in [*self.view0, *self.view_presets, *self.real_view_presets]:
            if name not in PRESETS:
                raise ValueError(f"unknown photometric preset {name!r} in config; known: {sorted(PRESETS)}")
        for name, p in self.scene_change.items():
            if name not in SCENE_RECIPES:
                raise ValueError(f"unknown scene-change recipe {name!r}; known: {sorted(SCENE_RECIPES)}")
            check_probability(f"scene_change.{name}", p)
        for field_name in ("view0", "view_presets", "real_view_presets"):
            check_weights(field_name, getattr(self, field_name))
        if self.candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {self.candidates}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlaceSample:
    views: list[np.ndarray]  # uint8 HxWx3 RGB each; views[0] is the day-like canonical view
    homographies: list[np.ndarray]  # 3x3 float64: place crop (= view 0) pixels -> view v pixels
    meta: dict  # place, group, member, source, crop, per-view presets/parameters


@dataclass
class _Group:
    source_id: str
    source_image: str  # places with the same key and overlapping crops show the same place
    image: np.ndarray | None  # the single source image (None for a webcam scene)
    captures: list[str]  # a webcam scene's capture files, same geometry ([] for single images)
    shape: tuple[int, int]  # source (height, width) in the pixels crops refer to
    crops: list[Box]  # one per member, in source pixels

    def view_source(self, k: int) -> np.ndarray:
        return self.image if self.image is not None else load_cached(self.captures[k])


@lru_cache(maxsize=4096)
def _mean_luma(path: str) -> float:
    return float(load_cached(path).mean())


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) crops; how `same place` is decided."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ------------------------------------------------------------------------------------- the group


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


def _crop_boxes(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    size: tuple[int, int],
    n: int,
    cfg: PlaceConfig,
    image: np.ndarray | None = None,
) -> list[Box]:
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


# ------------------------------------------------------------------------------------- the place


def _crop_transform(box: Box, size: tuple[int, int]) -> np.ndarray:
    """Similarity mapping source pixels to the place crop rendered at size (h, w)."""
    x0, y0, x1, y1 = box
    s = size[0] / (y1 - y0)
    return np.array([[s, 0, -x0 * s], [0, s, -y0 * s], [0, 0, 1]], np.float64)


def _view_captures(rng: np.random.Generator, group: _Group, views: int) -> list[int]:
    """Capture index per view: distinct captures of a webcam scene while they last, the brightest
    as view 0 (the day-like database image); all 0 for a single source image."""
    if not group.captures:
        return [0] * views
    n = len(group.captures)
    picks = [int(p) for p in rng.choice(n, min(views, n), replace=False)]
    picks += [int(p) for p in rng.integers(0, n, views - len(picks))]
    best = int(np.argmax([_mean_luma(group.captures[p]) for p in picks]))
    picks[0], picks[best] = picks[best], picks[0]
    return picks


def _draw_view(
    sources: SourceMix,
    cfg: PlaceConfig,
    rng: np.random.Generator,
    group: _Group,
    v: int,
    capture: int,
    crop: np.ndarray,
    size: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray, dict]:
    """View v of a place: (uint8 image, 3x3 place crop -> view homography, its json record).
    The draws from `rng` are in a fixed order (homography, preset, scene change, light): keep it,
    or every dataset made so far stops being reproducible."""
    real = bool(group.captures)
    hv = np.eye(3) if v == 0 else sample_homography(rng, size, cfg.homography)
    img = _render(group.view_source(capture), hv @ crop, size)
    if real:
        preset = _choose(rng, cfg.real_view_presets)
    else:
        preset = _choose(rng, cfg.view0 if v == 0 else cfg.view_presets)
    imgf = img.astype(np.float32) * np.float32(1 / 255)
    scene_rec = []
    if v > 0 and cfg.scene_change:
        # Scene changes happen before the light, like in make_pair; an occluder's texture is cut
        # from another source image, drawn only if occluders can happen.
        texture = (lambda: sources.sample_single(rng)) if cfg.scene_change.get("occluder", 0) else None
        imgf, _, scene_rec = apply_scene_changes(imgf, rng, cfg.scene_change, texture)
    imgf, rec = apply_preset(preset, imgf, rng)
    record = {
        "preset": preset,
        "photometric": rec,
        "scene_change": scene_rec,
        "H": hv.tolist(),
        "capture": Path(group.captures[capture]).name if real else None,
    }
    return to_uint8(imgf), hv, record


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
    crop = _crop_transform(group.crops[member], size)
    captures = _view_captures(rng, group, views)
    drawn = [_draw_view(sources, cfg, rng, group, v, captures[v], crop, size) for v in range(views)]
    meta = {
        "seed": int(seed),
        "index": int(index),
        "place": int(index),
        "group": int(group_id),
        "member": int(member),
        "source": group.source_id,
        "source_image": group.source_image,
        "real": bool(group.captures),
        "crop": [float(c) for c in group.crops[member]],
        "source_size": list(group.shape),
        "views": [rec for _, _, rec in drawn],
    }
    return PlaceSample([img for img, _, _ in drawn], [hv for _, hv, _ in drawn], meta)


def encode_place(sample: PlaceSample, image_format: str = ".jpg") -> dict[str, bytes]:
    """Shard members of one place: view{v}.<ext> images and its json. (Here rather than in
    place_jobs, unlike encode_pair in jobs, because bench times make_place + encode_place from
    this module.)"""
    ext = image_format.lstrip(".")
    out = {f"view{v}.{ext}": encode_image(img, "." + ext) for v, img in enumerate(sample.views)}
    out["json"] = json.dumps(sample.meta, sort_keys=True).encode()
    return out

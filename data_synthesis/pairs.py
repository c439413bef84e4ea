"""One synthesized training pair from (sources, config, seed, index): geometry + light + scene change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from homeloc.data_synthesis.geometry import HomographyConfig, sample_homography, valid_mask, warp_image
from homeloc.data_synthesis.photometric import PRESETS, apply_preset, to_uint8
from homeloc.data_synthesis.scene_change import apply_scene_changes
from homeloc.data_synthesis.sources import SourceMix, SourceSample


@dataclass
class PairConfig:
    """What a pair dataset is made of (YAML: configs/synth/*.yaml).

    size: (height, width) of both images. crop_scale: the source is resized so its short side is
    this many times the crop's before a random crop (zoom variety). view0/view1: weights of the
    photometric presets drawn for each view of a single-image pair; swap: probability to swap views
    (so night appears on both sides). real_pair: presets drawn for views of a real (captured) pair.
    real_pair_homography: probability to add a random H on top of a real pair's ground truth.
    scene_change: probability of each scene-change recipe on image1.
    """

    size: tuple[int, int] = (240, 320)
    crop_scale: tuple[float, float] = (1.0, 1.6)
    homography: HomographyConfig = field(default_factory=HomographyConfig)
    view0: dict[str, float] = field(default_factory=lambda: {"day": 0.6, "identity": 0.2, "dusk": 0.2})
    view1: dict[str, float] = field(
        default_factory=lambda: {"day": 0.15, "dusk": 0.2, "night_lamp": 0.3, "night_ir": 0.2, "glare": 0.15}
    )
    swap: float = 0.5
    real_pair: dict[str, float] = field(default_factory=lambda: {"identity": 0.6, "day": 0.4})
    real_pair_homography: float = 0.8
    scene_change: dict[str, float] = field(
        default_factory=lambda: {"occluder": 0.25, "moved_object": 0.15, "new_object": 0.25}
    )

    def __post_init__(self):
        if isinstance(self.homography, dict):
            self.homography = HomographyConfig(**self.homography)
        self.size = tuple(int(v) for v in self.size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"size must be (height, width) >= 1, got {self.size}")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi:
            raise ValueError(f"crop_scale must satisfy 0 < min <= max, got {tuple(self.crop_scale)}")
        check_probability("swap", self.swap)
        check_probability("real_pair_homography", self.real_pair_homography)
        for field_name in ("view0", "view1", "real_pair"):
            check_weights(field_name, getattr(self, field_name))
        for name in [*self.view0, *self.view1, *self.real_pair]:
            if name not in PRESETS:
                raise ValueError(f"unknown photometric preset {name!r} in config; known: {sorted(PRESETS)}")
        for name, p in self.scene_change.items():
            check_probability(f"scene_change.{name}", p)

    def to_dict(self) -> dict:
        return asdict(self)


def check_probability(name: str, p: float) -> None:
    """A probability option: a number in [0, 1] (ValueError naming it otherwise)."""
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} is a probability and must be in [0, 1], got {p}")


def check_weights(name: str, weights: dict[str, float]) -> None:
    """Preset weights: none negative, not all zero."""
    if any(float(w) < 0 for w in weights.values()) or (weights and sum(weights.values()) <= 0):
        raise ValueError(f"{name} weights must be >= 0 and not all 0, got {dict(weights)}")


@dataclass
class PairSample:
    image0: np.ndarray  # uint8 HxWx3 RGB
    image1: np.ndarray  # uint8 HxWx3 RGB
    h_0to1: np.ndarray  # float64 3x3, OpenCV pixel coords of image0 -> image1
    valid1: np.ndarray  # bool HxW over image1: has a correspondence in image0
    valid0: np.ndarray  # bool HxW over image0: has a correspondence in image1
    change1: np.ndarray  # bool HxW over image1: pixels changed by a scene-change recipe
    meta: dict  # recipes with their parameters, source id, seed and index


MASK_BITS = {"valid1": 1, "change1": 2, "valid0": 4}  # masks.png: one uint8 channel of bit flags


def pack_masks(valid1: np.ndarray, change1: np.ndarray, valid0: np.ndarray) -> np.ndarray:
    """The three HxW bool masks as one uint8 image of bit flags (MASK_BITS)."""
    out = valid1.astype(np.uint8)
    out |= change1.astype(np.uint8) << 1
    out |= valid0.astype(np.uint8) << 2
    return out


def unpack_masks(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(valid1, change1, valid0) from pack_masks' image, or from the older 3-channel 0/255 layout."""
    if masks.ndim == 3:
        m = masks > 127
        return m[..., 0], m[..., 1], m[..., 2]
    return (masks & 1) > 0, (masks & 2) > 0, (masks & 4) > 0


def sample_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """Per-sample generator: sample (seed, index) is reproducible alone, whatever the worker."""
    return np.random.default_rng([int(seed), int(index), int(stream)])


def _choose(rng, weights: dict[str, float]) -> str:
    names = sorted(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def crop_transform(rng, src_shape, size, crop_scale) -> np.ndarray:
    """3x3 similarity mapping source pixels to a random size[0]xsize[1] crop of a rescaled source."""
    h, w = src_shape[:2]
    s = max(size[0] / h, size[1] / w) * rng.uniform(*crop_scale)
    x0 = rng.uniform(0, max(w * s - size[1], 0))
    y0 = rng.uniform(0, max(h * s - size[0], 0))
    return np.array([[s, 0, -x0], [0, s, -y0], [0, 0, 1]], np.float64)


def _render(src: np.ndarray, t: np.ndarray, size) -> np.ndarray:
    """src warped by t (3x3, source pixels -> output pixels) to size (h, w), reflecting at borders.

    INTER_AREA is not available for warps, so a source shrunk by more than 2x is first area-resized
    (t compensated exactly, pixel-centre offsets included) to keep bilinear sampling from aliasing.
    An affine t (crops) uses warpAffine, 2x faster than warpPerspective."""
    s = np.sqrt(abs(np.linalg.det(t[:2, :2])))
    if s < 0.5:
        nw, nh = max(round(src.shape[1] * 2 * s), 1), max(round(src.shape[0] * 2 * s), 1)
        fx, fy = src.shape[1] / nw, src.shape[0] / nh
        src = cv2.resize(src, (nw, nh), interpolation=cv2.INTER_AREA)
        # resized pixel x' covers source pixels around x = fx * x' + (fx - 1) / 2
        t = t @ np.array([[fx, 0, (fx - 1) / 2], [0, fy, (fy - 1) / 2], [0, 0, 1.0]])
    dsize, kw = (size[1], size[0]), {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_REFLECT}
    if np.allclose(t[2], [0, 0, 1], rtol=0, atol=1e-12):
        return cv2.warpAffine(src, t[:2] / t[2, 2], dsize, **kw)
    return cv2.warpPerspective(src, t, dsize, **kw)


def make_pair(sources: SourceMix, cfg: PairConfig, seed: int, index: int) -> PairSample:
    """Synthesize pair `index` of dataset `seed`. Deterministic in (sources, cfg, seed, index)."""
    rng = sample_rng(seed, index)
    src: SourceSample = sources.sample(rng)
    size = cfg.size
    t0 = crop_transform(rng, src.image0.shape, size, cfg.crop_scale)
    base0 = _render(src.image0, t0, size)
    if src.image1 is not None:  # a real captured pair: same crop of the second view, exact GT kept
        t1 = (
            t0
            if src.image1.shape == src.image0.shape
            else crop_transform(rng, src.image1.shape, size, (1.0, 1.0))
        )
        h_base = t1 @ src.h_0to1 @ np.linalg.inv(t0)
        h_rand = (
            sample_homography(rng, size, cfg.homography)
            if rng.random() < cfg.real_pair_homography
            else np.eye(3)
        )
        presets = (_choose(rng, cfg.real_pair), _choose(rng, cfg.real_pair))
        # One resampling of the second view: crop and random H in a single warp.
        img1 = _render(src.image1, h_rand @ t1, size)
    else:
        h_base = np.eye(3)
        h_rand = sample_homography(rng, size, cfg.homography)
        presets = (_choose(rng, cfg.view0), _choose(rng, cfg.view1))
        if rng.random() < cfg.swap:
            presets = presets[::-1]
        img1 = warp_image(base0, h_rand, size)
    h = h_rand @ h_base
    h = h / h[2, 2]
    v1 = valid_mask(h, size, size)
    if src.image1 is not None:  # and the second view must have seen the pixel (not reflected border)
        v1 &= valid_mask(h_rand @ t1, src.image1.shape[:2], size)
    v0 = valid_mask(np.linalg.inv(h), size, size)
    out0, rec0 = apply_preset(presets[0], base0, rng)
    # Scene changes happen in the scene, before the light and the camera: an occluder at night is
    # lit like the rest of image1. Its texture is cut from another source image, drawn only if used.
    texture = (lambda: sources.sample_single(rng)) if cfg.scene_change.get("occluder", 0) else None
    img1f = img1.astype(np.float32) * np.float32(1 / 255)
    img1f, change1, rec_scene = apply_scene_changes(img1f, rng, cfg.scene_change, texture)
    out1, rec1 = apply_preset(presets[1], img1f, rng)
    meta = {
        "seed": int(seed),
        "index": int(index),
        "source": src.id,
        "real_pair": src.image1 is not None,
        "presets": list(presets),
        "photometric0": rec0,
        "photometric1": rec1,
        "scene_change": rec_scene,
    }
    return PairSample(to_uint8(out0), to_uint8(out1), h, v1, v0, change1 & v1, meta)

"""Photometric recipes: what changes in a home over a day, as a registry of named, ranged steps.

Every recipe takes an RGB float32 image in [0, 1] and returns one of the same shape and range.
Parameters are drawn from documented ranges by `apply_recipe` with the sample's own rng, and the
drawn values are returned so a dataset records exactly what was applied. Presets (`day`, `dusk`,
`night_lamp`, `night_ir`, `glare`, ...) are lists of (recipe, probability, range overrides).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import albumentations as A
import cv2
import numpy as np

Range = tuple[float, float]


@dataclass
class Recipe:
    fn: Callable[..., np.ndarray]
    ranges: dict[str, Range]  # each parameter is drawn uniformly from its (lo, hi)
    doc: str = ""


RECIPES: dict[str, Recipe] = {}


def register(name: str, doc: str = "", **ranges: Range):
    def deco(fn):
        RECIPES[name] = Recipe(fn, dict(ranges), doc or (fn.__doc__ or "").strip())
        return fn

    return deco


# A gamma of 2 instead of sRGB's ~2.2: square/sqrt are 5x cheaper than pow and the curves differ
# by < 0.03, far below what the recipes' random ranges span.
def to_linear(img: np.ndarray) -> np.ndarray:
    x = np.clip(img, 0, 1).astype(np.float32, copy=False)
    return x * x


def to_srgb(lin: np.ndarray) -> np.ndarray:
    return np.sqrt(np.clip(lin, 0, 1), dtype=np.float32)


def relight(img: np.ndarray, gain, colour=None) -> np.ndarray:
    """to_srgb(to_linear(img) * gain * colour) for img in [0, 1], gain >= 0 (scalar, per-channel or
    HxW) and an optional per-channel colour >= 0, in one pass: with a gamma of 2 that is exactly
    img * sqrt(gain * colour), clipped to 1."""
    g = np.sqrt(np.asarray(gain, np.float32))
    out = img * g[..., None] if g.ndim == 2 else _scale_channels(img, g)
    if colour is not None:
        out = _scale_channels(out, np.sqrt(np.asarray(colour, np.float32)))
    return np.clip(out, 0, 1, out=out)


def _scale_channels(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """img * g for a scalar or per-channel g (OpenCV: 4x faster than numpy's 3-wide broadcast)."""
    if g.ndim == 0 or img.ndim == 2:
        return img * g
    return cv2.multiply(np.ascontiguousarray(img, np.float32), tuple(float(v) for v in g) + (0.0,) * (4 - len(g)))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _grid(shape):
    """Normalised pixel coordinates (xs, ys), each HxW float32 in [0, 1] (cached, read-only)."""
    return _grid_cached(int(shape[0]), int(shape[1]))


@lru_cache(maxsize=8)
def _grid_cached(h: int, w: int):
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs, ys = xs / max(w - 1, 1), ys / max(h - 1, 1)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


COARSE = 4  # smooth light fields are evaluated on a grid this many times coarser, then upsampled


def _coarse_grid(shape):
    """Normalised coordinates (xs, ys) of a grid COARSE times coarser than shape, placed so that
    `_upsample` (bilinear) interpolates between the exact values (cached, read-only)."""
    return _coarse_grid_cached(int(shape[0]), int(shape[1]))


@lru_cache(maxsize=8)
def _coarse_grid_cached(h: int, w: int):
    hc, wc = max(h // COARSE, 2), max(w // COARSE, 2)
    # cv2.resize maps output pixel x to input (x + 0.5) * wc / w - 0.5: input j sits at (j + 0.5) * w / wc - 0.5.
    xs = ((np.arange(wc, dtype=np.float32) + 0.5) * (w / wc) - 0.5) / max(w - 1, 1)
    ys = ((np.arange(hc, dtype=np.float32) + 0.5) * (h / hc) - 0.5) / max(h - 1, 1)
    gx, gy = np.meshgrid(xs, ys)
    gx.flags.writeable = gy.flags.writeable = False
    return gx, gy


def _upsample(field: np.ndarray, shape) -> np.ndarray:
    return cv2.resize(field, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def standard_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """float32 N(0, 1) noise of `shape`, drawn by OpenCV's generator seeded from `rng`: 3x faster
    than numpy's and still reproducible from the sample's rng (OpenCV's generator is per thread)."""
    out = np.empty(int(np.prod(shape)), np.float32)
    cv2.setRNGSeed(_seed(rng))
    cv2.randn(out, 0.0, 1.0)
    return out.reshape(shape)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 (rounded, saturated); 40x faster than numpy's clip/astype chain."""
    return cv2.convertScaleAbs(np.clip(img, 0, 1, dtype=np.float32), alpha=255.0)


# --- global tone and colour -------------------------------------------------------------------


@register("exposure", ev=(-3.0, 1.5))
def exposure(img, rng, ev):
    """Exposure change of `ev` stops in linear light (clips like a sensor)."""
    return relight(img, 2.0**ev)


@register("gamma", gamma=(0.7, 1.4))
def gamma(img, rng, gamma):
    """Tone-curve change: img ** gamma."""
    return cv2.pow(np.ascontiguousarray(img, np.float32), float(gamma))


@register("white_balance", kelvin=(2500.0, 12000.0), strength=(0.0, 1.0))
def white_balance(img, rng, kelvin, strength):
    """Colour cast of a light source of `kelvin` (tungsten 2700 K ... daylight 6500 K ... blue hour,
    shade 8000-12000 K) on a camera balanced for daylight; `strength` < 1 models partial
    auto-white-balance correction. Above 6500 K the cast is cool: blue light, or a camera's AWB
    over-compensating warm lamp light."""
    gains = _kelvin_rgb(kelvin) / _kelvin_rgb(6500.0)
    gains = 1.0 + strength * (gains / gains.mean() - 1.0)
    return relight(img, gains)


def _kelvin_rgb(k: float) -> np.ndarray:
    """Approximate relative RGB of a black body (Tanner Helland's fit), linear scale."""
    t = k / 100.0
    r = 255.0 if t <= 66 else 329.7 * (t - 60) ** -0.1332
    g = 99.47 * np.log(t) - 161.1 if t <= 66 else 288.1 * (t - 60) ** -0.0755
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5 * np.log(t - 10) - 305.0)
    return to_linear(np.clip(np.array([r, g, b], np.float32), 1, 255) / 255.0)


# --- low light and sensor ---------------------------------------------------------------------


@register(
    "low_light",
    scale=(0.02, 0.7),
    full_well=(300.0, 3000.0),
    read_noise=(1.0, 6.0),
    black_level=(0.0, 0.04),
    bits=(6.0, 10.0),
)
def low_light(img, rng, scale, full_well, read_noise, black_level, bits):
    """Scene radiance scaled by `scale`; Poisson shot noise (electrons, `full_well` e- at white) +
    Gaussian read noise (`read_noise` e-); auto-gain back up to the original exposure; quantisation
    to `bits`; blacks below `black_level` crushed."""
    mean_e = to_linear(img)
    mean_e *= np.float32(scale * full_well)
    out = _shot_and_read_noise(mean_e, read_noise, rng)
    gain = 1.0 / max(scale, 1e-3)
    # Auto-gain recovers brightness only partly in the dark (cameras cap gain): keep it darker.
    levels = np.float32(2.0 ** round(bits) - 1)
    out *= np.float32(min(gain, 8.0) / full_well) * levels
    np.clip(out, 0, levels, out=out)
    np.round(out, out=out)
    # Quantised, then blacks below black_level crushed: (q / levels - b) / (1 - b), clipped.
    out *= np.float32(1 / (levels * (1 - black_level)))
    out -= np.float32(black_level / (1 - black_level))
    return to_srgb(out)


def _shot_and_read_noise(mean_e: np.ndarray, read_noise: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise in electrons, with the usual heteroscedastic Gaussian approximation of
    the Poisson term (variance = mean): one normal draw instead of a Poisson one, 10x faster."""
    mean_e = np.maximum(mean_e, np.float32(0), dtype=np.float32)
    noise = standard_normal(rng, mean_e.shape)
    noise *= np.sqrt(mean_e + np.float32(read_noise**2))
    noise += mean_e
    return noise


@register("sensor_noise", sigma=(0.002, 0.05))
def sensor_noise(img, rng, sigma):
    """Additive Gaussian noise (signal-independent, e.g. a daytime camera's read noise)."""
    return np.clip(img + np.float32(sigma) * standard_normal(rng, img.shape), 0, 1)


@register("denoise", strength=(0.03, 0.3), radius=(0.8, 3.0))
def denoise(img, rng, strength, radius):
    """The camera's own noise reduction (ISP), strongest at night: an edge-preserving bilateral
    filter; differences below `strength` (of the [0, 1] range) are smoothed, edges above it kept;
    `radius` is the spatial sigma in px (5x5 window)."""
    return cv2.bilateralFilter(np.ascontiguousarray(img, np.float32), 5, float(strength), float(radius))


# --- spatially varying light ------------------------------------------------------------------


@register(
    "lamp",
    count=(1.0, 3.99),
    power=(0.3, 3.0),
    falloff=(0.15, 0.6),
    ambient=(0.02, 0.8),
    kelvin=(2500.0, 4000.0),
)
def lamp(img, rng, count, power, falloff, ambient, kelvin):
    """Lamps at night: the scene lit by `int(count)` point/area lights with inverse-square-like
    falloff (`falloff` = light height as a fraction of the image diagonal), warm colour `kelvin`,
    plus dim `ambient` light. Dark far from lamps, bright near them. (The smooth light field is
    evaluated on a 4x coarser grid and upsampled: < 1% error, 10x faster.)"""
    xs, ys = _coarse_grid(img.shape)
    aspect = img.shape[1] / img.shape[0]
    light = np.full(xs.shape, ambient, np.float32)
    f2 = np.float32(falloff**2)
    for _ in range(int(count)):
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        d2 = ((xs - np.float32(cx)) * np.float32(aspect)) ** 2 + (ys - np.float32(cy)) ** 2
        light += np.float32(power) * f2 / (d2 + f2)
    light = _upsample(light, img.shape)
    colour = _kelvin_rgb(kelvin) / _kelvin_rgb(kelvin).max()
    return relight(img, light, colour)


@register("shadow", count=(1.0, 2.99), darkness=(0.2, 0.85), softness=(0.0, 0.08))
def shadow(img, rng, count, darkness, softness):
    """Cast shadows: random polygons darkened by `darkness` (fraction of light removed), edges
    blurred by `softness` (fraction of image size; 0 = hard shadow)."""
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    for _ in range(int(count)):
        c = rng.uniform([0, 0], [w, h])
        n = int(rng.integers(3, 7))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(0.15, 0.6, n) * min(h, w)
        pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1.0)
    k = int(softness * min(h, w)) * 2 + 1
    if k > 1:
        mask = cv2.GaussianBlur(mask, (k, k), 0)
    return relight(img, 1 - darkness * mask)


@register("sun_patch", intensity=(0.5, 2.5), size=(0.15, 0.5), softness=(0.005, 0.03))
def sun_patch(img, rng, intensity, size, softness):
    """Sunlight through a window: a bright sheared quadrilateral patch, `intensity` x added light."""
    h, w = img.shape[:2]
    c = rng.uniform([0, 0], [w, h])
    s = size * min(h, w)
    shear = rng.uniform(-0.6, 0.6)
    pts = np.array([[-s, -s / 2], [s, -s / 2], [s + shear * s, s / 2], [-s + shear * s, s / 2]])
    a = rng.uniform(0, np.pi)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    poly = (pts @ rot.T + c).astype(np.int32)
    mask = np.zeros((h, w), np.float32)
    cv2.fillPoly(mask, [poly], 1.0)
    k = int(softness * min(h, w)) * 2 + 1
    mask = cv2.GaussianBlur(mask, (k, k), 0)
    return relight(img, 1 + intensity * mask)


@register("glare", intensity=(0.1, 1.0), radius=(0.1, 0.4), streaks=(0.0, 1.0))
def glare(img, rng, intensity, radius, streaks):
    """Veiling glare from a bright source: an additive radial bloom (`radius` of the diagonal) with
    optional lens streaks, lowering contrast around it. (The smooth bloom is evaluated on a 4x
    coarser grid and upsampled; the thin streak at full resolution.)"""
    aspect = np.float32(img.shape[1] / img.shape[0])
    cx, cy = (np.float32(v) for v in rng.uniform(0, 1, 2))
    gx, gy = _coarse_grid(img.shape)
    dc = np.sqrt(((gx - cx) * aspect) ** 2 + (gy - cy) ** 2)
    bloom = _upsample(np.float32(intensity) * np.exp(-((dc / np.float32(radius)) ** 2)), img.shape)
    if streaks > 0.5:
        a = rng.uniform(0, np.pi)
        xs, ys = _grid(img.shape)
        along = np.abs((xs - cx) * aspect * np.float32(np.sin(a)) - (ys - cy) * np.float32(np.cos(a)))
        fade = _upsample(np.exp(-dc / np.float32(radius)), img.shape)
        bloom += np.float32(0.5 * intensity) * np.exp(-((along / np.float32(0.01)) ** 2)) * fade
    lin = to_linear(img)
    return to_srgb(lin * (1 - 0.5 * np.clip(bloom, 0, 1))[..., None] + bloom[..., None])


@register("overexposed_window", width=(0.15, 0.45), height=(0.25, 0.7), bloom=(0.0, 0.05))
def overexposed_window(img, rng, width, height, bloom):
    """A window blown out to white by daylight, with a soft `bloom` halo (fraction of image size)."""
    h, w = img.shape[:2]
    ww, wh = int(width * w), int(height * h)
    x0, y0 = int(rng.uniform(0, w - ww)), int(rng.uniform(0, h - wh))
    mask = np.zeros((h, w), np.float32)
    mask[y0 : y0 + wh, x0 : x0 + ww] = 1
    k = int(bloom * min(h, w)) * 2 + 1
    if k > 1:
        mask = np.maximum(mask, cv2.GaussianBlur(mask, (k, k), 0))
    return img * (1 - mask[..., None]) + mask[..., None]


@register(
    "ir_night",
    hotspot=(0.3, 0.8),
    vignette=(0.4, 0.9),
    scale=(0.05, 0.3),
    full_well=(200.0, 800.0),
    read_noise=(2.0, 8.0),
)
def ir_night(img, rng, hotspot, vignette, scale, full_well, read_noise):
    """IR night mode in total darkness: grayscale (NIR reflectance ~ luminance with a foliage/
    fabric boost in red), a central illuminator `hotspot` (width), strong `vignette`, and low-light
    sensor noise (shot + read)."""
    lin = to_linear(img)
    nir = cv2.transform(lin, np.array([[0.5, 0.35, 0.15]], np.float32))
    xs, ys = _coarse_grid(img.shape)
    cx, cy = 0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)
    d2 = (xs - np.float32(cx)) ** 2 + (ys - np.float32(cy)) ** 2
    illum = np.exp(-d2 / np.float32(2 * hotspot**2)) * (1 - np.float32(vignette) * np.clip(d2 * 2, 0, 1))
    illum = _upsample(illum, img.shape)  # smooth: evaluated coarse, upsampled
    gray = nir * illum * (scale / 0.3) * 3.0
    e = _shot_and_read_noise(gray * full_well, read_noise, rng)
    out = to_srgb(np.clip(e / full_well, 0, 1))
    return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)


# --- optics and compression -----------------------------------------------------------------------
# Blurs are single OpenCV convolutions on the float image (albumentations' MotionBlur/Defocus cost
# 2-6 ms each through uint8 round trips); JPEG goes through albumentations.


def _albu(transform, img, rng):
    out = A.Compose([transform], seed=_seed(rng))(image=to_uint8(img))["image"]
    return out.astype(np.float32) * np.float32(1 / 255)


def _convolve(img, kernel):
    return cv2.filter2D(np.ascontiguousarray(img, np.float32), -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT)


def motion_kernel(length: float, angle: float) -> np.ndarray:
    """Normalised line kernel of `length` px at `angle` radians (anti-aliased, odd size)."""
    k = int(length) | 1
    kern = np.zeros((k, k), np.float32)
    c, half = (k - 1) / 2, (length - 1) / 2
    dx, dy = half * np.cos(angle), half * np.sin(angle)
    p0 = (int(round((c - dx) * 16)), int(round((c - dy) * 16)))
    p1 = (int(round((c + dx) * 16)), int(round((c + dy) * 16)))
    cv2.line(kern, p0, p1, 1.0, 1, cv2.LINE_AA, 4)
    return kern / kern.sum()


def disk_kernel(radius: float) -> np.ndarray:
    """Normalised disk of `radius` px with a one-pixel soft edge."""
    r = int(np.ceil(radius))
    ys, xs = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float32)
    kern = np.clip(radius + 0.5 - np.sqrt(xs**2 + ys**2), 0, 1)
    return kern / kern.sum()


@register("motion_blur", length=(3.0, 15.0))
def motion_blur(img, rng, length):
    """Camera shake during a long night exposure: linear blur of `length` px in a random direction."""
    return _convolve(img, motion_kernel(length, rng.uniform(0, np.pi)))


@register("defocus", radius=(1.0, 4.0))
def defocus(img, rng, radius):
    """Out-of-focus disk blur of `radius` px."""
    return _convolve(img, disk_kernel(radius))


@register("jpeg", quality=(30.0, 95.0))
def jpeg(img, rng, quality):
    """JPEG compression at `quality`."""
    q = int(quality)
    return _albu(A.ImageCompression(quality_range=(q, q), p=1.0), img, rng)


# --- presets and application ------------------------------------------------------------------


@dataclass
class Step:
    recipe: str
    p: float = 1.0
    ranges: dict[str, Range] = field(default_factory=dict)  # overrides of the recipe's ranges


PRESETS: dict[str, list[Step]] = {
    "identity": [],
    "day": [
        Step("exposure", 1.0, {"ev": (-0.4, 0.4)}),
        Step("white_balance", 0.7, {"kelvin": (4800, 6500), "strength": (0.3, 0.7)}),
        Step("gamma", 0.5, {"gamma": (0.85, 1.15)}),
        Step("sun_patch", 0.25),
        Step("shadow", 0.25, {"darkness": (0.2, 0.6)}),
        Step("sensor_noise", 0.5, {"sigma": (0.003, 0.015)}),
        Step("jpeg", 0.3, {"quality": (60, 95)}),
    ],
    "dusk": [
        Step("exposure", 1.0, {"ev": (-1.5, -0.5)}),
        Step("white_balance", 1.0, {"kelvin": (3200, 12000), "strength": (0.5, 0.9)}),  # golden .. blue hour
        Step("lamp", 0.4, {"ambient": (0.3, 0.7), "power": (0.3, 1.5)}),
        Step("low_light", 1.0, {"scale": (0.25, 0.6)}),
        Step("denoise", 0.4),
        Step("shadow", 0.2, {"softness": (0.03, 0.08)}),
        Step("jpeg", 0.3, {"quality": (50, 90)}),
    ],
    "night_lamp": [
        # tungsten cast, or (> 6500 K) the camera's AWB pulling the lamps' warm light back towards grey
        Step("white_balance", 1.0, {"kelvin": (2500, 10000), "strength": (0.3, 1.0)}),
        Step("lamp", 1.0),
        Step("low_light", 1.0, {"scale": (0.03, 0.25)}),
        Step("denoise", 0.4),
        Step("glare", 0.2, {"intensity": (0.2, 0.6)}),
        Step("motion_blur", 0.2, {"length": (3, 9)}),
        Step("jpeg", 0.4, {"quality": (40, 90)}),
    ],
    "night_ir": [
        Step("ir_night", 1.0),
        Step("denoise", 0.4),
        Step("motion_blur", 0.15, {"length": (3, 7)}),
        Step("defocus", 0.15, {"radius": (1, 2)}),
        Step("jpeg", 0.4, {"quality": (40, 90)}),
    ],
    "glare": [
        Step("exposure", 1.0, {"ev": (0.0, 1.0)}),
        Step("overexposed_window", 0.7),
        Step("sun_patch", 0.6),
        Step("glare", 1.0),
        Step("jpeg", 0.3, {"quality": (50, 95)}),
    ],
    "blur": [Step("motion_blur", 0.6), Step("defocus", 0.6)],
}


def sample_params(name: str, rng: np.random.Generator, overrides: dict[str, Range] | None = None) -> dict:
    """Draw each parameter of recipe `name` from its range (overrides must lie inside it)."""
    if name not in RECIPES:
        raise KeyError(f"unknown photometric recipe {name!r}; known: {sorted(RECIPES)}")
    ranges = dict(RECIPES[name].ranges)
    for k, (lo, hi) in (overrides or {}).items():
        if k not in ranges:
            raise KeyError(f"recipe {name!r} has no parameter {k!r}; it has {sorted(ranges)}")
        base = ranges[k]
        if lo > hi or lo < base[0] - 1e-9 or hi > base[1] + 1e-9:
            raise ValueError(f"recipe {name!r}: range {k}={lo, hi} leaves the documented range {base}")
        ranges[k] = (lo, hi)
    return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in ranges.items()}


def apply_recipe(name, img, rng, overrides=None, params=None):
    """Apply one recipe; returns (image, the parameters used)."""
    params = params if params is not None else sample_params(name, rng, overrides)
    out = RECIPES[name].fn(img, rng, **params)
    return np.clip(out, 0, 1).astype(np.float32, copy=False), params


def apply_preset(preset: str | list[Step], img: np.ndarray, rng: np.random.Generator):
    """Run a preset's steps (each with its probability). img: HxWx3 float32 [0,1] or uint8.

    Returns (image float32 [0,1], list of {"recipe": name, "params": {...}} actually applied).
    """
    if isinstance(preset, str) and preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    steps = PRESETS[preset] if isinstance(preset, str) else preset
    out = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    applied = []
    for step in steps:
        if rng.random() >= step.p:
            continue
        out, params = apply_recipe(step.recipe, out, rng, step.ranges)
        applied.append({"recipe": step.recipe, "params": params})
    return out, applied


def parse_steps(spec: list[dict]) -> list[Step]:
    """Steps from YAML: [{recipe: lamp, p: 0.5, ranges: {power: [1, 2]}}, ...]."""
    return [Step(s["recipe"], float(s.get("p", 1.0)), {k: tuple(v) for k, v in s.get("ranges", {}).items()}) for s in spec]

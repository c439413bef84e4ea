"""Calibration images for int8: real and synthesized, including night, deterministic by seed.

``calibration_images(["skimage", "folder:DIR", "webcam:DIR"], n=200, size=(480, 640))`` draws
images from ``data_synthesis.sources.SourceMix`` (real photographs; a webcam source gives real
day and night captures) and passes a share of them through the ``data_synthesis.photometric``
presets ``night_lamp``, ``night_ir`` and ``dusk`` (in turn), so the activation ranges cover dark,
noisy, low-contrast frames the robot sees at night. Image ``i`` uses the generator
``np.random.default_rng([seed, i])``: the set is reproducible and any image can be regenerated alone.
``synthetic_images`` (shapes, lines, gradients; every third image dark and noisy) needs no source.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

log = logging.getLogger(__name__)

NIGHT_PRESETS: tuple[str, ...] = ("night_lamp", "night_ir", "dusk")
DEFAULT_SOURCES: tuple[str, ...] = ("skimage",)


@dataclass(frozen=True)
class CalibrationImage:
    """One calibration input and where it came from (``source`` id, ``preset`` or None)."""

    array: np.ndarray  # 1 x C x H x W float32 in [0, 1]
    source: str
    preset: str | None


def synthetic_images(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` gray float32 1x1xHxW images in [0, 1]: shapes, lines and gradients, some dark and noisy."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = np.full((height, width), rng.uniform(40, 200), np.float32)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        img += rng.uniform(-60, 60) * (xx / width) + rng.uniform(-60, 60) * (yy / height)
        for _ in range(rng.integers(15, 40)):
            color = float(rng.uniform(0, 255))
            p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            q = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            kind = rng.integers(0, 3)
            if kind == 0:
                cv2.rectangle(img, p, q, color, -1)
            elif kind == 1:
                cv2.circle(img, p, int(rng.integers(5, 60)), color, -1)
            else:
                cv2.line(img, p, q, color, int(rng.integers(1, 5)))
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
        gain = 0.15 if i % 3 == 2 else 1.0  # every third image is "night": dark and noisy
        img = img * gain + rng.normal(0, 2.0 + 6.0 * (gain < 1), img.shape).astype(np.float32)
        out.append(np.clip(img / 255.0, 0, 1).astype(np.float32)[None, None])
    return out


def resize_cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale so the image covers (H, W), then centre-crop to exactly (H, W)."""
    h, w = size
    ih, iw = image.shape[:2]
    s = max(h / ih, w / iw)
    nh, nw = max(h, round(ih * s)), max(w, round(iw * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    out = cv2.resize(image, (nw, nh), interpolation=interp)
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(out[y0 : y0 + h, x0 : x0 + w])


def to_input(rgb: np.ndarray, gray: bool) -> np.ndarray:
    """HxWx3 float32 [0, 1] RGB -> 1 x 1 x H x W (gray) or 1 x 3 x H x W float32."""
    rgb = np.clip(rgb, 0.0, 1.0).astype(np.float32)
    if gray:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[None, None]
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))[None]


def calibration_images(
    sources: Sequence[str] = DEFAULT_SOURCES,
    n: int = 200,
    size: tuple[int, int] = (480, 640),
    gray: bool = True,
    seed: int = 0,
    night_share: float = 0.5,
    presets: Sequence[str] = NIGHT_PRESETS,
) -> list[CalibrationImage]:
    """``n`` network inputs at ``size`` from ``sources``; a ``night_share`` of them relit.

    Args:
        sources: ``data_synthesis.sources`` specs (``skimage``, ``folder:DIR``, ``webcam:DIR``,
            ``hpatches:DIR``, ``SPEC@WEIGHT``). Empty: ``synthetic_images`` only.
        n: number of images.
        size: (H, W) of every input (cover-resize + centre crop).
        gray: 1 x 1 x H x W gray (keypoints) or 1 x 3 x H x W RGB (places).
        seed: image ``i`` draws everything from ``default_rng([seed, i])``.
        night_share: share of images passed through one of ``presets`` (cycled: deterministic
            counts per preset); the others keep the source's own lighting.

    Raises FileNotFoundError / ValueError naming a bad source spec.
    """
    if n < 0 or not 0.0 <= night_share <= 1.0:
        raise ValueError(f"need n >= 0 and 0 <= night_share <= 1, got n={n}, night_share={night_share}")
    if not sources:
        imgs = synthetic_images(n, *size, seed=seed)
        if not gray:
            imgs = [np.repeat(x, 3, axis=1) for x in imgs]
        return [CalibrationImage(x, "synthetic", None) for x in imgs]
    from homeloc.data_synthesis.photometric import apply_preset
    from homeloc.data_synthesis.sources import SourceMix

    mix = SourceMix(list(sources))
    n_night = round(n * night_share)
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        sample = mix.sample(rng)
        # a webcam pair: either capture (day or night) is a real frame
        img = sample.image1 if sample.image1 is not None and rng.random() < 0.5 else sample.image0
        rgb = resize_cover(img, size).astype(np.float32) / 255.0
        # night images spread evenly over the set, presets in turn
        k0, k1 = i * n_night // n, (i + 1) * n_night // n
        preset = presets[k0 % len(presets)] if presets and k1 > k0 else None
        if preset is not None:
            rgb, _ = apply_preset(preset, rgb, rng)
        out.append(CalibrationImage(to_input(rgb, gray), sample.id, preset))
    log.info(
        "calibration: %d images from %s, %d relit with %s",
        n,
        ", ".join(sources),
        sum(c.preset is not None for c in out),
        "/".join(presets),
    )
    return out

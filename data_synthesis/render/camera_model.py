"""The camera after the renderer: linear radiance (HxWx3 float32, lighting.py units) -> 8-bit sRGB.

Steps: optional motion blur (on radiance, before the sensor), metering + auto-exposure (exposure
time up to t_max, then analogue gain up to gain_max: once both are capped the frame stays dark),
Poisson shot noise + Gaussian read noise in electrons (so noise grows as light falls), grey-world
white balance blended with strength s, clipping, sRGB encoding, quantisation. Monochrome frames
(IR) use the luminance on all three channels and skip white balance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from homeloc.data_synthesis.render.config import CameraModelConfig

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass(frozen=True)
class Exposure:
    """What the camera chose: exposure time (s), gain, white-balance gains, motion blur length (px)."""

    time: float
    gain: float
    wb: tuple[float, float, float]
    blur_px: float

    def to_dict(self) -> dict:
        return {
            "time": round(self.time, 6),
            "gain": round(self.gain, 4),
            "wb": [round(g, 4) for g in self.wb],
            "blur_px": round(self.blur_px, 3),
        }


def srgb_encode(x: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _motion_blur(img: np.ndarray, length: float, angle: float) -> np.ndarray:
    k = int(np.ceil(length)) | 1
    kernel = np.zeros((k, k), np.float32)
    c = k // 2
    dx, dy = np.cos(angle), np.sin(angle)
    for t in np.linspace(-length / 2, length / 2, 4 * k):
        kernel[int(round(c + t * dy)), int(round(c + t * dx))] = 1.0
    return cv2.filter2D(img, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT).reshape(img.shape)


def develop(
    radiance: np.ndarray,
    cfg: CameraModelConfig,
    rng: np.random.Generator,
    mono: bool = False,
    allow_blur: bool = True,
) -> tuple[np.ndarray, Exposure]:
    """radiance HxWx3 float (>= 0) -> (HxWx3 uint8 sRGB, Exposure). Deterministic given rng."""
    if radiance.ndim != 3 or radiance.shape[2] != 3:
        raise ValueError(f"radiance must be HxWx3, got {radiance.shape}")
    img = np.maximum(np.nan_to_num(radiance.astype(np.float32)), 0.0)
    if mono:
        img = np.ascontiguousarray(
            (img @ LUMA)[..., None]
        )  # one channel through the sensor, replicated at the end
    blur = 0.0
    if allow_blur and rng.random() < cfg.motion_blur:
        blur = float(rng.uniform(*cfg.motion_blur_px))
        img = _motion_blur(img, blur, rng.uniform(0, np.pi))
    luma = img[..., 0] if mono else img @ LUMA
    metered = float(np.mean(np.minimum(luma, np.percentile(luma, 98)))) + 1e-9
    needed = cfg.target * cfg.full_well / (cfg.photons * metered)  # exposure time x gain
    t = min(needed, cfg.t_max)
    gain = float(np.clip(needed / t, 1.0, cfg.gain_max))
    electrons = rng.poisson(img * (t * cfg.photons)).astype(np.float32)
    electrons += rng.normal(0.0, cfg.read_noise, img.shape).astype(np.float32)
    signal = electrons * (gain / cfg.full_well)
    wb = (1.0, 1.0, 1.0)
    if not mono:
        means = np.maximum(signal.reshape(-1, 3).mean(0), 1e-6)
        s = rng.uniform(*cfg.wb_strength)
        wb = tuple(float((means[1] / m) ** s) for m in means)
        signal = signal * np.array(wb, np.float32)
    out = np.round(srgb_encode(signal) * 255.0).astype(np.uint8)
    if mono:
        out = np.repeat(out, 3, axis=2)
    return out, Exposure(float(t), gain, wb, blur)

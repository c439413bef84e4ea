"""Photometric recipes of global tone and colour, low light and the sensor: exposure, gamma,
white balance, low-light photon/read noise, sensor noise, denoising."""

from __future__ import annotations

import cv2
import numpy as np

from homeloc.data_synthesis.recipes_base import (
    _kelvin_rgb,
    _shot_and_read_noise,
    register,
    relight,
    standard_normal,
    to_linear,
    to_srgb,
)

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

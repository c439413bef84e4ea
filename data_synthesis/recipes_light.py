"""Photometric recipes of spatially varying light: lamps, shadows, sun patches, glare, bright
windows, IR night illumination."""

from __future__ import annotations

import cv2
import numpy as np

from homeloc.data_synthesis.recipes_base import (
    _kelvin_rgb,
    _shot_and_read_noise,
    coarse_grid,
    pixel_grid,
    register,
    relight,
    to_linear,
    to_srgb,
    upsample_field,
)

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
    xs, ys = coarse_grid(img.shape)
    aspect = img.shape[1] / img.shape[0]
    light = np.full(xs.shape, ambient, np.float32)
    f2 = np.float32(falloff**2)
    for _ in range(int(count)):
        cx, cy = rng.uniform(-0.2, 1.2, 2)
        d2 = ((xs - np.float32(cx)) * np.float32(aspect)) ** 2 + (ys - np.float32(cy)) ** 2
        light += np.float32(power) * f2 / (d2 + f2)
    light = upsample_field(light, img.shape)
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
    gx, gy = coarse_grid(img.shape)
    dc = np.sqrt(((gx - cx) * aspect) ** 2 + (gy - cy) ** 2)
    bloom = upsample_field(np.float32(intensity) * np.exp(-((dc / np.float32(radius)) ** 2)), img.shape)
    if streaks > 0.5:
        a = rng.uniform(0, np.pi)
        xs, ys = pixel_grid(img.shape)
        along = np.abs((xs - cx) * aspect * np.float32(np.sin(a)) - (ys - cy) * np.float32(np.cos(a)))
        fade = upsample_field(np.exp(-dc / np.float32(radius)), img.shape)
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
    xs, ys = coarse_grid(img.shape)
    cx, cy = 0.5 + rng.uniform(-0.1, 0.1), 0.5 + rng.uniform(-0.1, 0.1)
    d2 = (xs - np.float32(cx)) ** 2 + (ys - np.float32(cy)) ** 2
    illum = np.exp(-d2 / np.float32(2 * hotspot**2)) * (1 - np.float32(vignette) * np.clip(d2 * 2, 0, 1))
    illum = upsample_field(illum, img.shape)  # smooth: evaluated coarse, upsampled
    gray = nir * illum * (scale / 0.3) * 3.0
    e = _shot_and_read_noise(gray * full_well, read_noise, rng)
    out = to_srgb(np.clip(e / full_well, 0, 1))
    return cv2.cvtColor(out, cv2.COLOR_GRAY2RGB)

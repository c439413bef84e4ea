"""Photometric recipes of optics and compression: motion blur, defocus, JPEG."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np

from homeloc.data_synthesis.recipes_base import (
    _seed,
    register,
    to_uint8,
)

# --- optics and compression -----------------------------------------------------------------------
# Blurs are single OpenCV convolutions on the float image (albumentations' MotionBlur/Defocus cost
# 2-6 ms each through uint8 round trips); JPEG goes through albumentations.


def _albu(transform, img, rng):
    out = A.Compose([transform], seed=_seed(rng))(image=to_uint8(img))["image"]
    return out.astype(np.float32) * np.float32(1 / 255)


def _convolve(img, kernel):
    return cv2.filter2D(
        np.ascontiguousarray(img, np.float32), -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT
    )


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


@register("covered_lens", coverage=(0.6, 1.0), darkness=(0.7, 0.98), softness=(0.05, 0.3))
def covered_lens(img, rng, coverage, darkness, softness):
    """A finger, strap or object right at the lens: a dark, defocused blob entering from one side
    and covering `coverage` of the frame's width, `darkness` of the light gone under it."""
    h, w = img.shape[:2]
    side = int(rng.integers(4))
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    t = (x, 1 - x, y, 1 - y)[side] + np.zeros((h, w), np.float32)  # distance from the entry side
    edge = 1.0 / (1.0 + np.exp((t - coverage) / max(softness * 0.1, 1e-3)))  # 1 under the blob
    out = img * (1.0 - np.float32(darkness) * edge)[..., None]
    k = max(3, int(softness * min(h, w)) | 1)
    return cv2.GaussianBlur(out, (k, k), 0) * edge[..., None] + out * (1 - edge[..., None])

"""A frame's colour signature: what the map compares to tell a repainted room from new light.

The keypoints and global descriptors are grey and trained to ignore light, so they cannot see a
room repainted in a new colour. The signature is a histogram of the frame's colours with the
light's own colour taken out: per pixel the log-chromaticity ``(log R/G, log B/G)`` of the
linear RGB, minus the frame's median (a grey-world white balance in log space: a change of the
light's colour shifts every pixel alike and cancels), binned on a ``BINS`` x ``BINS`` grid over
``[-SPAN, SPAN]``. Dark pixels (no colour to read) and clipped ones are left out.

Distance: one minus the histograms' intersection (0: the same colours in the same shares, 1: none
shared). Measured on rendered homes (docs/evaluate.md, "Session 24"): against the closest of a
place's earlier frames, a repainted room's frames move further than frames under another day's
light do; rearranged furniture and decorations do not move it more than light does.
"""

from __future__ import annotations

import numpy as np

BINS = 16
SPAN = 1.0  # log-chromaticity offsets from the frame's median kept (+-1: factors of e)
SCALE = 65535  # a signature is stored as uint16 counts summing to SCALE
MIN_SHARE = 0.0065  # the share of pixels with a colour a frame needs (about 500 of 320 x 240)
DARK = 0.03  # linear R + G + B below this: too dark to read a colour
CLIPPED = 0.98  # an sRGB channel above this: clipped, its colour is not the surface's
NONE = np.zeros(BINS * BINS, np.uint16)  # no signature (the shape and type of one)


def colour_signature(image: np.ndarray) -> np.ndarray | None:
    """Signature of an H x W x 3 RGB uint8 image: BINS * BINS uint16 counts summing to SCALE;
    None when fewer than MIN_SHARE of its pixels have a readable colour (a dark frame)."""
    im = np.asarray(image)
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
        raise ValueError(f"a colour signature needs an H x W x 3 uint8 RGB image, got {im.dtype} {im.shape}")
    srgb = im.astype(np.float32) / 255.0
    lin = srgb**2.2  # near enough to linear light for a white balance
    ok = (lin.sum(axis=2) > DARK) & (srgb.max(axis=2) < CLIPPED)
    if ok.sum() < MIN_SHARE * ok.size:
        return None
    r, g, b = (lin[..., k][ok] + 1e-4 for k in range(3))
    u, v = np.log(r / g), np.log(b / g)
    edges = np.linspace(-SPAN, SPAN, BINS + 1)
    h, _, _ = np.histogram2d(u - np.median(u), v - np.median(v), [edges, edges])
    return _quantized(h.ravel())


def _quantized(h: np.ndarray) -> np.ndarray:
    """Counts scaled to sum to SCALE exactly (largest remainders), as uint16."""
    total = h.sum()
    if total <= 0:
        return NONE.copy()
    x = h * (SCALE / total)
    q = np.floor(x).astype(np.int64)
    short = SCALE - int(q.sum())
    q[np.argsort(-(x - q), kind="stable")[:short]] += 1
    return q.astype(np.uint16)


def colour_distance(signature: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Distance (0..1) of one signature to each row of ``others`` (N x BINS*BINS)."""
    a = np.asarray(signature, np.int64).reshape(1, -1)
    b = np.asarray(others, np.int64).reshape(-1, BINS * BINS)
    return 1.0 - np.minimum(a, b).sum(axis=1) / SCALE

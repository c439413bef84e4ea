"""A frame's colour signature: what the map compares to tell a repainted room from new light.

The keypoints and global descriptors are grey and trained to ignore light, so they cannot see a
room repainted in a new colour. The signature is a histogram of the frame's colours with the
light's own colour taken out: per pixel the log-chromaticity ``(log R/G, log B/G)`` of the
linear RGB, minus the frame's median (a grey-world white balance in log space: a change of the
light's colour shifts every pixel alike and cancels), binned on a ``BINS`` x ``BINS`` grid over
``[-SPAN, SPAN]``. Dark pixels (no colour to read) and clipped ones are left out.

Distance: one minus the histograms' intersection (0: the same colours in the same shares, 1: none
shared). Measured on rendered homes (docs/longterm_history.md, "Session 24"): against the closest of a
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
CLIPPED = 0.98  # an sRGB channel at or above this: clipped, its colour is not the surface's
NONE = np.zeros(BINS * BINS, np.uint16)  # no signature (the shape and type of one)

# per byte value: linear light (sRGB ~ gamma 2.2, near enough for a white balance) and its log
_LINEAR = (np.arange(256, dtype=np.float32) / np.float32(255.0)) ** np.float32(2.2)
_LOG = np.log(_LINEAR + np.float32(1e-4))
_CLIPPED_BYTE = int(np.ceil(CLIPPED * 255))


def colour_signature(image: np.ndarray) -> np.ndarray | None:
    """Signature of an H x W x 3 RGB uint8 image: BINS * BINS uint16 counts summing to SCALE;
    None when fewer than MIN_SHARE of its pixels have a readable colour (a dark frame)."""
    im = np.asarray(image)
    if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
        raise ValueError(f"a colour signature needs an H x W x 3 uint8 RGB image, got {im.dtype} {im.shape}")
    r, g, b = (im[..., k].ravel() for k in range(3))
    ok = (_LINEAR[r] + _LINEAR[g] + _LINEAR[b] > DARK) & (np.maximum(np.maximum(r, g), b) < _CLIPPED_BYTE)
    if ok.sum() < MIN_SHARE * ok.size:
        return None
    r, g, b = r[ok], g[ok], b[ok]
    u, v = _LOG[r] - _LOG[g], _LOG[b] - _LOG[g]
    scale = BINS / (2 * SPAN)
    iu = np.floor((u - np.median(u) + SPAN) * scale).astype(np.int64)
    iv = np.floor((v - np.median(v) + SPAN) * scale).astype(np.int64)
    inside = (iu >= 0) & (iu < BINS) & (iv >= 0) & (iv < BINS)
    h = np.bincount(iu[inside] * BINS + iv[inside], minlength=BINS * BINS)
    return _quantized(h.astype(np.float64))


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

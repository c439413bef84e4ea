"""Sparse keypoint post-processing in numpy/OpenCV: the torch-free twin of ``models.postprocess``.

Takes the ONNX outputs of a ``KeypointNet`` dense core (``logits`` B|1 x 65 x H/8 x W/8 float32,
``descriptors`` B|1 x D x H/8 x W/8 float32) and returns the same keypoints as the torch path
(tested: same keypoints within 1e-3 px, same order except near-ties, descriptor cosine > 0.999).

Conventions (shared with ``models.postprocess``): keypoints are ``(x, y)`` float32 pixel
coordinates of the original image, x right, y down, pixel centres at integer coordinates (OpenCV);
scores are heatmap probabilities in (0, 1]; keypoints are sorted by decreasing score, ties in
raster order (row, then column).
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from homeloc.runtime.features import Features

CELL = 8
MAX_KEYPOINTS = 1024
NMS_RADIUS = 4
# Heatmap probability a keypoint needs. A cell the network has no opinion about (uniform logits)
# scores 1/65 = 0.0154 per pixel: the threshold sits above it, so flat cells give no keypoints (the
# old 0.005 put ~1000 keypoints on an 8-px grid of a black frame, which then "matched" any other
# black frame).
THRESHOLD = 0.02
# A model can carry its own threshold (ONNX metadata, `homeloc-export --detection-threshold`): a
# distilled detector's heatmap is flatter, and at 0.02 it keeps a fraction of its peaks.
THRESHOLD_KEY = "homeloc.detection_threshold"
# Local contrast a keypoint needs: std of the gray level (0..1) in the (2r+1)^2 window around it.
# Flat, black, saturated or heavily blurred regions fall below it whatever the network says;
# 0.01 = 2.5 gray levels (removes < 5% of the keypoints of real, relit night images, the weakest).
MIN_CONTRAST = 0.01
CONTRAST_RADIUS = 4
BORDER = 4
REFINE_RADIUS = 2  # 5x5 soft-argmax window; keep <= NMS_RADIUS so no other peak falls inside


def model_threshold(metadata: dict[str, str], source: str | os.PathLike = "model") -> float:
    """The detection threshold a model's metadata carries (``THRESHOLD_KEY``), else ``THRESHOLD``.

    Raises ValueError naming ``source`` when the value is not a number in [0, 1)."""
    raw = metadata.get(THRESHOLD_KEY)
    if raw is None:
        return THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{source}: {THRESHOLD_KEY}={raw!r} is not a number in [0, 1)")
    return value


def resize_longer(image: np.ndarray, longer: int) -> np.ndarray:
    """Downscale (area interpolation) so the longer side is at most `longer` px (0 = never)."""
    h, w = image.shape[:2]
    if not longer or max(h, w) <= longer:
        return image
    s = longer / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def upscale_longer(image: np.ndarray, longer: int) -> np.ndarray:
    """Upscale (bilinear) so the longer side is at least `longer` px (0 = never): tiny benchmark
    images (Nordland's 64x32) would otherwise give the cell-8 networks a 4x8 map."""
    h, w = image.shape[:2]
    if not longer or max(h, w) >= longer:
        return image
    s = longer / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_LINEAR)


def prepare_image(image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """Gray float32 network input padded to multiples of 8, and the original (height, width).

    Args:
        image: H x W or H x W x 1 gray, or H x W x 3 RGB; uint8 (0..255) or float32 in [0, 1].

    Returns:
        (1 x 1 x H' x W' float32 in [0, 1], (H, W)); H', W' are H, W rounded up to multiples
        of 8, padded on the bottom/right by edge replication (coordinates are unchanged).
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be HxW gray or HxWx3 RGB, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.dtype == np.uint8:
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        gray = gray.astype(np.float32) * np.float32(1.0 / 255.0)
    elif image.dtype == np.float32:
        gray = image if image.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        if not np.isfinite(gray).all() or gray.min() < 0.0 or gray.max() > 1.0:
            raise ValueError("float32 images must hold finite values in [0, 1]")
    else:
        raise ValueError(f"image dtype must be uint8 or float32 in [0, 1], got {image.dtype}")
    h, w = gray.shape
    ph, pw = -h % CELL, -w % CELL
    if ph or pw:
        gray = cv2.copyMakeBorder(np.ascontiguousarray(gray), 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(gray, dtype=np.float32)[None, None], (h, w)


def heatmap_from_logits(logits: np.ndarray) -> np.ndarray:
    """Per-pixel keypoint probability: softmax over the 65 channels, dustbin dropped, depth-to-space.

    ``B x 65 x h x w`` -> ``B x 8h x 8w`` float32 (``65 x h x w`` -> ``8h x 8w``).
    """
    single = logits.ndim == 3
    x = _check_logits(logits[None] if single else logits)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    p = e[:, :-1] / e.sum(axis=1, keepdims=True)
    b, _, h, w = p.shape
    heat = p.reshape(b, CELL, CELL, h, w).transpose(0, 3, 1, 4, 2).reshape(b, h * CELL, w * CELL)
    heat = np.ascontiguousarray(heat, dtype=np.float32)
    return heat[0] if single else heat


def nms(heatmap: np.ndarray, radius: int) -> np.ndarray:
    """Max-pool non-maximum suppression: zero every value that is not the maximum of its
    ``(2*radius+1)^2`` neighbourhood (plateaus of equal maxima all survive). H x W or B x H x W."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    heat = np.asarray(heatmap, dtype=np.float32)
    if radius == 0:
        return heat.copy()
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    if heat.ndim == 2:
        mx = cv2.dilate(heat, kernel)
    else:
        mx = np.stack([cv2.dilate(np.ascontiguousarray(h), kernel) for h in heat])
    return np.where(heat == mx, heat, np.float32(0.0))


def remove_borders(heatmap: np.ndarray, border: int, image_size: tuple[int, int] | None = None) -> np.ndarray:
    """Zero everything closer than ``border`` pixels to the edge of the valid image region.

    ``image_size=(h, w)`` is the unpadded size (the padded area is zeroed too); default: the
    heatmap's own size. H x W or B x H x W.
    """
    if border < 0:
        raise ValueError(f"border must be >= 0, got {border}")
    h, w = heatmap.shape[-2:] if image_size is None else image_size
    out = np.zeros_like(heatmap)
    out[..., border : max(h - border, border), border : max(w - border, border)] = heatmap[
        ..., border : max(h - border, border), border : max(w - border, border)
    ]
    return out


def topk_keypoints(
    heatmap: np.ndarray, k: int | None, threshold: float = 0.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Keypoints with score > threshold, best first (ties in raster order), at most ``k``.

    Returns one ``(keypoints N x 2 float32 (x, y), scores N float32)`` per heatmap
    (H x W counts as a batch of one).
    """
    heat = heatmap[None] if heatmap.ndim == 2 else heatmap
    out = []
    for h in heat:
        flat = h.ravel()
        idx = np.flatnonzero(flat > threshold)
        order = np.argsort(-flat[idx], kind="stable")
        if k is not None:
            order = order[:k]
        idx = idx[order]
        xy = np.stack([idx % h.shape[1], idx // h.shape[1]], axis=-1).astype(np.float32)
        out.append((xy, flat[idx].astype(np.float32)))
    return out


def subpixel_refine(heatmap: np.ndarray, keypoints: np.ndarray, radius: int = REFINE_RADIUS) -> np.ndarray:
    """Soft-argmax refinement: each keypoint moves to the probability-weighted centroid of the
    heatmap in the ``(2*radius+1)^2`` window around its pixel (outside the image counts as 0).

    heatmap H x W (before NMS), keypoints N x 2 (x, y) -> N x 2 float32.
    """
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
    if radius <= 0 or len(kp) == 0:
        return kp.copy()
    padded = np.pad(np.asarray(heatmap, np.float32), radius)
    ix = np.rint(kp[:, 0]).astype(np.int64)
    iy = np.rint(kp[:, 1]).astype(np.int64)
    d = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(d, d, indexing="ij")
    dy, dx = dy.ravel(), dx.ravel()
    win = padded[iy[:, None] + radius + dy, ix[:, None] + radius + dx].clip(min=0)  # N x (2r+1)^2
    total = win.sum(axis=1)
    safe = np.where(total > 0, total, 1).astype(np.float32)
    off_x = (win * dx.astype(np.float32)).sum(axis=1) / safe
    off_y = (win * dy.astype(np.float32)).sum(axis=1) / safe
    return np.stack([ix + off_x, iy + off_y], axis=-1).astype(np.float32)


def sample_descriptors(descriptors: np.ndarray, keypoints: np.ndarray, cell: int = CELL) -> np.ndarray:
    """Bilinear descriptor at each keypoint, re-normalised.

    descriptors D x h x w (or 1 x D x h x w) whose cell (i, j) describes pixel
    ``(cell*j + (cell-1)/2, cell*i + (cell-1)/2)``; keypoints N x 2 (x, y) -> N x D float32.
    Outside the cell-centre grid the nearest edge value is used (grid_sample "border").
    """
    desc = descriptors[0] if descriptors.ndim == 4 else descriptors
    if desc.ndim != 3 or (descriptors.ndim == 4 and descriptors.shape[0] != 1):
        raise ValueError(f"descriptors must be D x h x w or 1 x D x h x w, got {descriptors.shape}")
    kp = np.asarray(keypoints, dtype=np.float32).reshape(-1, 2)
    dim, h, w = desc.shape
    if len(kp) == 0:
        return np.zeros((0, dim), np.float32)
    half = (cell - 1) / 2.0
    u = np.clip((kp[:, 0] - half) / cell, 0, w - 1)
    v = np.clip((kp[:, 1] - half) / cell, 0, h - 1)
    u0 = np.floor(u).astype(np.int64)
    v0 = np.floor(v).astype(np.int64)
    u1 = np.minimum(u0 + 1, w - 1)
    v1 = np.minimum(v0 + 1, h - 1)
    au = (u - u0).astype(np.float32)[:, None]
    av = (v - v0).astype(np.float32)[:, None]
    d = desc.astype(np.float32, copy=False)
    out = (
        d[:, v0, u0].T * (1 - au) * (1 - av)
        + d[:, v0, u1].T * au * (1 - av)
        + d[:, v1, u0].T * (1 - au) * av
        + d[:, v1, u1].T * au * av
    )
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norm, 1e-12)).astype(np.float32)


def contrast_mask(
    image: np.ndarray, min_contrast: float = MIN_CONTRAST, radius: int = CONTRAST_RADIUS
) -> np.ndarray:
    """Where keypoints may be: True where the local std of the gray image (values in [0, 1]) in the
    ``(2*radius+1)^2`` window is >= ``min_contrast``. image: H x W (or 1 x 1 x H x W, the network
    input) float32 -> H x W bool. A uniform image is False everywhere."""
    g = np.asarray(image, np.float32).reshape(image.shape[-2:])
    k = (2 * radius + 1, 2 * radius + 1)
    mean = cv2.blur(g, k, borderType=cv2.BORDER_REFLECT)
    sq = cv2.blur(g * g, k, borderType=cv2.BORDER_REFLECT)
    return np.sqrt(np.maximum(sq - mean * mean, 0.0)) >= np.float32(min_contrast)


def postprocess(
    logits: np.ndarray,
    descriptors: np.ndarray,
    image_size: tuple[int, int] | None = None,
    max_keypoints: int | None = MAX_KEYPOINTS,
    nms_radius: int = NMS_RADIUS,
    threshold: float = THRESHOLD,
    border: int = BORDER,
    refine_radius: int = REFINE_RADIUS,
    image: np.ndarray | None = None,
    min_contrast: float = MIN_CONTRAST,
) -> Features:
    """The whole sparse step for one image: heatmap, NMS, borders, contrast, top-k, refinement,
    sampling.

    Args:
        logits: 1 x 65 x h x w (or 65 x h x w) float32 detector logits.
        descriptors: 1 x D x h x w (or D x h x w) float32 dense descriptors.
        image_size: (H, W) of the original, unpadded image; default 8h x 8w.
        image: the network input (1 x 1 x 8h x 8w or 8h x 8w float32 in [0, 1]); when given,
            peaks where its local contrast is below ``min_contrast`` are dropped (:func:`contrast_mask`).
    """
    heat = heatmap_from_logits(logits[0] if logits.ndim == 4 else logits)
    peaks = remove_borders(nms(heat, nms_radius), border, image_size)
    if image is not None and min_contrast > 0:
        peaks = np.where(contrast_mask(image, min_contrast), peaks, np.float32(0.0))
    kp, scores = topk_keypoints(peaks, max_keypoints, threshold)[0]
    kp = subpixel_refine(heat, kp, refine_radius)
    return Features(kp, scores, sample_descriptors(descriptors, kp), image_size)


def _check_logits(logits: np.ndarray) -> np.ndarray:
    if not isinstance(logits, np.ndarray) or logits.ndim != 4 or logits.shape[1] != CELL * CELL + 1:
        shape = getattr(logits, "shape", None)
        raise ValueError(f"logits must be B x {CELL * CELL + 1} x h x w, got {shape}")
    if not np.issubdtype(logits.dtype, np.floating):
        raise ValueError(f"logits must be floating point, got {logits.dtype}")
    return logits.astype(np.float32, copy=False)

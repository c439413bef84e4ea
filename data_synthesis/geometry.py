"""Homography sampling (SuperPoint homographic-adaptation family) and warping with exact masks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class HomographyConfig:
    """Ranges of the random homography; all fractions are relative to the image size.

    patch_ratio: side of the image0 patch that image1 shows (1.0 = whole image).
    perspective: max corner displacement of the perspective component (fraction of patch size).
    scale: (min, max) zoom factor of the patch; rotation: max |angle| in degrees;
    translation: max shift of the patch centre (fraction of image size), kept inside image0 unless
    allow_artifacts (then image1 may show regions outside image0, marked invalid).
    """

    patch_ratio: float = 0.85
    perspective: float = 0.15
    scale: tuple[float, float] = (0.8, 1.2)
    rotation: float = 25.0
    translation: float = 0.1
    allow_artifacts: bool = False
    max_tries: int = 50


def identity() -> np.ndarray:
    return np.eye(3, dtype=np.float64)


def sample_homography(rng: np.random.Generator, shape: tuple[int, int], cfg: HomographyConfig) -> np.ndarray:
    """Random H (3x3 float64) mapping OpenCV pixel coords of image0 (shape HxW) to image1 (same shape)."""
    h, w = shape
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    centre = corners.mean(0)
    for attempt in range(cfg.max_tries):
        shrink = 1.0 if attempt < cfg.max_tries // 2 else 0.5  # relax late tries so it always ends
        patch = (corners - centre) * cfg.patch_ratio
        d = cfg.perspective * shrink * np.array([w, h]) * cfg.patch_ratio
        left, right = rng.uniform(-1, 1, 2) * d[1] / 2
        top, bottom = rng.uniform(-1, 1, 2) * d[0] / 2
        # Trapezoid perturbation: opposite edges move in opposite directions (a tilt), as in SuperPoint.
        patch += np.array([[top, left], [-top, right], [-bottom, -right], [bottom, -left]])
        s = np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1])) * shrink)
        patch /= s  # zooming in = a smaller patch of image0 fills image1
        a = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation) * shrink)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        patch = patch @ rot.T
        t = rng.uniform(-1, 1, 2) * cfg.translation * shrink * np.array([w, h])
        patch = patch + centre + t
        # Inside the pixel-centre box [0, w-1] x [0, h-1] that valid_mask uses: no invalid pixel in image1.
        inside = (patch >= 0).all() and (patch[:, 0] <= w - 1).all() and (patch[:, 1] <= h - 1).all()
        if cfg.allow_artifacts or inside:
            break
    else:
        patch = (corners - centre) * min(cfg.patch_ratio, 0.9) + centre
    # image1 corners show the patch of image0: H_1to0 maps image1 corners to the patch.
    h_1to0 = cv2.getPerspectiveTransform(corners.astype(np.float32), patch.astype(np.float32))
    h_0to1 = np.linalg.inv(h_1to0.astype(np.float64))
    return h_0to1 / h_0to1[2, 2]


def warp_image(img: np.ndarray, h_0to1: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """image1 = image0 warped by H (bilinear, black outside)."""
    return cv2.warpPerspective(
        img, h_0to1, (out_shape[1], out_shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def valid_mask(h_0to1: np.ndarray, shape0: tuple[int, int], shape1: tuple[int, int]) -> np.ndarray:
    """bool mask over image1: pixels whose preimage under H lies inside image0, i.e. in
    [0, W0-1] x [0, H0-1] (where bilinear interpolation reads only image0 pixels).

    Computed separably (row and column terms broadcast) in float32 (coordinates exact to ~1e-4 px),
    without a full coordinate grid or divisions: bx in [0, W0-1] <=> 0 <= x_h <= (W0-1) z for z > 0."""
    hi = np.linalg.inv(np.asarray(h_0to1, np.float64)).astype(np.float32)
    xs = np.arange(shape1[1], dtype=np.float32)
    ys = np.arange(shape1[0], dtype=np.float32)[:, None]
    z = hi[2, 0] * xs + (hi[2, 1] * ys + hi[2, 2])
    xh = hi[0, 0] * xs + (hi[0, 1] * ys + hi[0, 2])
    yh = hi[1, 0] * xs + (hi[1, 1] * ys + hi[1, 2])
    ok = z > 0
    ok &= xh >= 0
    ok &= yh >= 0
    ok &= xh <= np.float32(shape0[1] - 1) * z
    ok &= yh <= np.float32(shape0[0] - 1) * z
    return ok

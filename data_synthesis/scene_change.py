"""Scene-change recipes: what moves in a home between two visits.

Each recipe edits image1 (HxWx3 float32 [0,1]) and returns (image, changed-pixel mask bool HxW,
params). Training ignores correspondences whose image1 location falls in the mask. Every pixel
outside the mask is left exactly unchanged (soft edges are cut at ALPHA_MIN).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from homeloc.data_synthesis.recipes_base import pixel_grid

SceneFn = Callable[..., tuple[np.ndarray, np.ndarray, dict]]
ALPHA_MIN = 0.02  # matte values below this are zeroed, so nothing changes outside the mask
SCENE_RECIPES: dict[str, SceneFn] = {}


def register(name: str):
    def deco(fn):
        SCENE_RECIPES[name] = fn
        return fn

    return deco


def _blob_mask(rng, h, w, size) -> tuple[np.ndarray, None]:
    """A random soft-edged shape (ellipse, polygon or box) of about `size` x min(h, w) pixels.

    Returns (the alpha matte, float32 HxW, 1 inside; None, kept for the old (alpha, box) API)."""
    s = size * min(h, w)
    cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    alpha = np.zeros((h, w), np.float32)
    kind = int(rng.integers(0, 3))
    if kind == 0:
        axes = (int(s * rng.uniform(0.3, 0.6)), int(s * rng.uniform(0.3, 0.6)))
        cv2.ellipse(alpha, (int(cx), int(cy)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    elif kind == 1:
        n = int(rng.integers(4, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = s * rng.uniform(0.25, 0.6, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(alpha, [pts], 1.0)
    else:  # a box (cardboard box, furniture) seen roughly front-on
        bw, bh = s * rng.uniform(0.4, 0.8), s * rng.uniform(0.4, 0.8)
        cv2.rectangle(
            alpha, (int(cx - bw / 2), int(cy - bh / 2)), (int(cx + bw / 2), int(cy + bh / 2)), 1.0, -1
        )
    feather = max(1, int(0.02 * s)) * 2 + 1
    alpha = cv2.GaussianBlur(alpha, (feather, feather), 0)
    return alpha, None


def _cut(alpha: np.ndarray, lo: float = ALPHA_MIN) -> np.ndarray:
    return np.where(alpha > lo, alpha, np.float32(0)).astype(np.float32, copy=False)


def _composite(img, patch, alpha):
    """Blend patch over img with matte alpha; returns (image, mask of the pixels it changed)."""
    alpha = _cut(alpha)
    return img + alpha[..., None] * (patch - img), alpha > 0


def _texture(texture) -> np.ndarray | None:
    return texture() if callable(texture) else texture


@register("occluder")
def occluder(img, rng, texture=None, size=(0.2, 0.6)):
    """A person, pet or box in front of the scene: a soft-edged shape filled with a texture cut
    from another image (`texture`: HxWx3 uint8 or float [0,1], or a callable returning one, called
    only when this recipe fires), or with a shaded flat colour when none is given."""
    h, w = img.shape[:2]
    s = float(rng.uniform(*size))
    alpha, _ = _blob_mask(rng, h, w, s)
    texture = _texture(texture)
    if texture is not None:
        th, tw = texture.shape[:2]
        y0, x0 = int(rng.integers(0, max(th - h, 0) + 1)), int(rng.integers(0, max(tw - w, 0) + 1))
        patch = cv2.resize(texture[y0 : y0 + h, x0 : x0 + w], (w, h))
        if patch.dtype == np.uint8:
            patch = patch.astype(np.float32) * np.float32(1 / 255)
    else:
        patch = _shaded_colour(rng, h, w)
    out, mask = _composite(img, patch, alpha)
    return out, mask, {"size": s, "textured": texture is not None}


@register("moved_object")
def moved_object(img, rng, size=(0.15, 0.4), shift=(0.1, 0.3)):
    """An object moved: a region cut out and pasted shifted. Both the old place (now showing the
    object's old pixels, i.e. stale) and the new place count as changed."""
    h, w = img.shape[:2]
    s = float(rng.uniform(*size))
    alpha, _ = _blob_mask(rng, h, w, s)
    d = float(rng.uniform(*shift)) * min(h, w)
    a = rng.uniform(0, 2 * np.pi)
    m = np.float32([[1, 0, d * np.cos(a)], [0, 1, d * np.sin(a)]])
    moved = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    alpha_moved = cv2.warpAffine(alpha, m, (w, h))
    out, mask_new = _composite(img, moved, alpha_moved)
    return out, mask_new | (alpha > ALPHA_MIN), {"size": s, "shift_px": d, "angle": float(a)}


@register("new_object")
def new_object(img, rng, size=(0.05, 0.25)):
    """A new object or decoration: a small shaded, textured shape with a contact shadow."""
    h, w = img.shape[:2]
    s = float(rng.uniform(*size))
    alpha, _ = _blob_mask(rng, h, w, s)
    # Contact shadow: the matte shifted down-right (no wrap-around at the borders), blurred.
    m = np.float32([[1, 0, int(0.05 * s * w)], [0, 1, int(0.1 * s * h)]])
    shadow = _cut(cv2.GaussianBlur(cv2.warpAffine(alpha, m, (w, h)), (0, 0), 3), 0.05)
    img = img * (1 - 0.4 * shadow[..., None])
    patch = _shaded_colour(rng, h, w)
    stripes = int(rng.integers(0, 2))
    if stripes:
        ys = np.arange(h, dtype=np.float32)[:, None]
        patch = patch * (0.75 + 0.25 * np.sign(np.sin(ys / rng.uniform(2, 8))))[..., None]
    out, mask = _composite(img, patch, alpha)
    return out, mask | (shadow > 0), {"size": s, "striped": bool(stripes)}


def _shaded_colour(rng, h, w) -> np.ndarray:
    colour = rng.uniform(0.05, 0.95, 3).astype(np.float32)
    xs, ys = pixel_grid((h, w))
    a = rng.uniform(0, 2 * np.pi)
    ramp = np.float32(np.cos(a)) * xs + np.float32(np.sin(a)) * ys
    shade = 0.7 + 0.3 * (ramp - np.floor(ramp))  # a sawtooth shading (np.floor: 5x faster than %)
    # shade (x) colour via OpenCV: numpy's 3-wide broadcast is 15x slower. Both factors are in [0, 1].
    return cv2.multiply(cv2.cvtColor(shade, cv2.COLOR_GRAY2RGB), tuple(float(c) for c in colour) + (0.0,))


def apply_scene_changes(img, rng, probs: dict[str, float], texture=None):
    """Apply each scene recipe with its probability; returns (image, union mask, applied list).

    texture: occluder texture (HxWx3 uint8/float array, or a callable returning one lazily)."""
    mask = np.zeros(img.shape[:2], bool)
    applied = []
    for name, p in probs.items():
        if name not in SCENE_RECIPES:
            raise KeyError(f"unknown scene-change recipe {name!r}; known: {sorted(SCENE_RECIPES)}")
        if rng.random() >= p:
            continue
        kwargs = {"texture": texture} if name == "occluder" else {}
        img, m, params = SCENE_RECIPES[name](img, rng, **kwargs)
        mask |= m
        applied.append({"recipe": name, "params": params})
    return img.astype(np.float32), mask, applied

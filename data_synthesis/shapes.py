"""Synthetic shapes (MagicPoint-style): simple geometry on noisy backgrounds with exact corners.

`render_shapes(rng, shape)` -> (gray uint8 HxW, keypoints float32 Nx2 (x, y)). Shapes are drawn
SS times larger without anti-aliasing (cv2 `shift` for sub-pixel vertices), then area-averaged
down: edges land within ~1/8 px of the keypoints (OpenCV's anti-aliased polygons grow by ~0.7 px,
which put corners ~1 px off their keypoints).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

SHIFT = 4  # cv2 fixed-point bits: coordinates are drawn at 1/16 px
_S = float(1 << SHIFT)
SS = 4  # supersampling factor of the drawing canvas
ShapeFn = Callable[[np.random.Generator, np.ndarray, int], np.ndarray]
SHAPES: dict[str, ShapeFn] = {}


def register(name):
    def deco(fn):
        SHAPES[name] = fn
        return fn

    return deco


def _fx(pts) -> np.ndarray:
    """Output-pixel coordinates -> fixed-point coordinates on the SS-times canvas (pixel centres
    map to pixel centres: x_canvas = (x + 0.5) * SS - 0.5)."""
    return np.round(((np.asarray(pts, np.float64) + 0.5) * SS - 0.5) * _S).astype(np.int32)


def _size(canvas) -> tuple[int, int]:
    """Output (height, width) of a drawing canvas."""
    return canvas.shape[0] // SS, canvas.shape[1] // SS


def _contrast(rng, bg: float) -> int:
    """A grey level at least 40 away from the background so edges are visible."""
    while True:
        c = int(rng.integers(0, 256))
        if abs(c - bg) > 40:
            return c


def background(rng, h, w) -> np.ndarray:
    """Uniform grey with blurred noise blobs, as in MagicPoint."""
    img = np.full((h, w), rng.integers(0, 256), np.float32)
    noise = rng.uniform(0, 255, (max(h // 16, 2), max(w // 16, 2))).astype(np.float32)
    img = 0.6 * img + 0.4 * cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(cv2.GaussianBlur(img, (0, 0), rng.uniform(3, 8)), 0, 255).astype(np.uint8)


@register("lines")
def lines(rng, img, n):
    h, w = _size(img)
    kps = []
    for _ in range(n):
        p = rng.uniform([0, 0], [w - 1, h - 1], (2, 2))
        if np.linalg.norm(p[0] - p[1]) < 0.1 * min(h, w):
            continue
        cv2.line(
            img,
            tuple(_fx(p[0])),
            tuple(_fx(p[1])),
            _contrast(rng, img.mean()),
            int(rng.integers(1, 4)) * SS,
            cv2.LINE_8,
            SHIFT,
        )
        kps += list(p)
    return np.array(kps, np.float32).reshape(-1, 2)


def _free_spot(rng, occupied, h, w, r):
    for _ in range(30):
        c = rng.uniform([r, r], [w - r, h - r])
        if not any(np.linalg.norm(c - o) < r + ro for o, ro in occupied):
            occupied.append((c, r))
            return c
    return None


@register("polygons")
def polygons(rng, img, n):
    h, w = _size(img)
    kps, occ = [], []
    for _ in range(n):
        r = rng.uniform(0.08, 0.2) * min(h, w)
        c = _free_spot(rng, occ, h, w, r)
        if c is None:
            continue
        k = int(rng.integers(3, 6))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        ang = ang[np.diff(np.r_[ang, ang[0] + 2 * np.pi]) > 0.5]  # drop near-flat vertices
        if len(ang) < 3:
            continue
        pts = c + r * rng.uniform(0.6, 1.0, (len(ang), 1)) * np.stack([np.cos(ang), np.sin(ang)], 1)
        cv2.fillPoly(img, [_fx(pts)], _contrast(rng, img.mean()), cv2.LINE_8, SHIFT)
        kps += list(pts)
    return np.array(kps, np.float32).reshape(-1, 2)


@register("stars")
def stars(rng, img, n):
    h, w = _size(img)
    kps, occ = [], []
    for _ in range(n):
        r = rng.uniform(0.1, 0.25) * min(h, w)
        c = _free_spot(rng, occ, h, w, r)
        if c is None:
            continue
        k = int(rng.integers(3, 6))
        ang = np.sort(rng.uniform(0, 2 * np.pi, k))
        if (np.diff(np.r_[ang, ang[0] + 2 * np.pi]) < 0.4).any():
            continue
        tips = c + r * rng.uniform(0.5, 1.0, (k, 1)) * np.stack([np.cos(ang), np.sin(ang)], 1)
        col, th = _contrast(rng, img.mean()), int(rng.integers(1, 4)) * SS
        for t in tips:
            cv2.line(img, tuple(_fx(c)), tuple(_fx(t)), col, th, cv2.LINE_8, SHIFT)
        kps += [c, *tips]
    return np.array(kps, np.float32).reshape(-1, 2)


def _warped_grid(rng, h, w, rows, cols, size):
    """Grid points (rows+1)x(cols+1) of a board of `size` px, perspective-warped into the image."""
    ys, xs = np.mgrid[0 : rows + 1, 0 : cols + 1].astype(np.float64)
    grid = np.stack([xs / cols, ys / rows], -1).reshape(-1, 2)
    sq = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    c = rng.uniform([0.3 * w, 0.3 * h], [0.7 * w, 0.7 * h])
    dst = c + (sq - 0.5) * size + rng.uniform(-0.15, 0.15, (4, 2)) * size
    hm = cv2.getPerspectiveTransform(sq, dst.astype(np.float32))
    p = np.c_[grid, np.ones(len(grid))] @ hm.T
    return (p[:, :2] / p[:, 2:]).reshape(rows + 1, cols + 1, 2)


@register("checkerboard")
def checkerboard(rng, img, n):
    h, w = _size(img)
    rows, cols = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    g = _warped_grid(rng, h, w, rows, cols, rng.uniform(0.5, 0.9) * min(h, w))
    c1 = _contrast(rng, img.mean())
    c0 = 255 - c1 if abs((255 - c1) - c1) > 60 else (0 if c1 > 127 else 255)
    for i in range(rows):
        for j in range(cols):
            quad = np.array([g[i, j], g[i, j + 1], g[i + 1, j + 1], g[i + 1, j]])
            cv2.fillConvexPoly(img, _fx(quad), c1 if (i + j) % 2 else c0, cv2.LINE_8, SHIFT)
    return g.reshape(-1, 2).astype(np.float32)


@register("stripes")
def stripes(rng, img, n):
    h, w = _size(img)
    k = int(rng.integers(3, 9))
    g = _warped_grid(rng, h, w, 1, 2 * k, rng.uniform(0.5, 0.9) * min(h, w))
    col = _contrast(rng, img.mean())
    kps = []
    for j in range(0, 2 * k, 2):
        quad = np.array([g[0, j], g[0, j + 1], g[1, j + 1], g[1, j]])
        cv2.fillConvexPoly(img, _fx(quad), col, cv2.LINE_8, SHIFT)
        kps += list(quad)
    return np.array(kps, np.float32).reshape(-1, 2)


@register("cube")
def cube(rng, img, n):
    """A shaded cube in random rotation, orthographic: the 7 visible vertices are keypoints."""
    h, w = _size(img)
    s = rng.uniform(0.2, 0.35) * min(h, w)
    ax, ay = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    v = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64) @ (ry @ rx).T
    centre = rng.uniform([0.35 * w, 0.35 * h], [0.65 * w, 0.65 * h])
    p2 = centre + s * v[:, :2]
    faces = [(0, 1, 3, 2), (4, 5, 7, 6), (0, 1, 5, 4), (2, 3, 7, 6), (0, 2, 6, 4), (1, 3, 7, 5)]
    visible = []
    for f in faces:
        fz = v[list(f), 2].mean()
        if fz > 0:  # faces towards the viewer (+z)
            visible.append(f)
    for f in sorted(visible, key=lambda f: v[list(f), 2].mean()):
        cv2.fillConvexPoly(img, _fx(p2[list(f)]), _contrast(rng, img.mean()), cv2.LINE_8, SHIFT)
    idx = sorted({i for f in visible for i in f})
    return p2[idx].astype(np.float32)


@register("ellipses")
def ellipses(rng, img, n):
    """Curves without corners: negatives that teach the detector not to fire on them."""
    h, w = _size(img)
    occ = []
    for _ in range(n):
        r = rng.uniform(0.05, 0.2) * min(h, w)
        c = _free_spot(rng, occ, h, w, r)
        if c is None:
            continue
        axes = (int(r * SS * _S), int(r * rng.uniform(0.3, 1.0) * SS * _S))
        cv2.ellipse(
            img,
            tuple(_fx(c)),
            axes,
            rng.uniform(0, 180),
            0,
            360,
            _contrast(rng, img.mean()),
            -1,
            cv2.LINE_8,
            SHIFT,
        )
    return np.zeros((0, 2), np.float32)


def draw_canvas(img: np.ndarray) -> np.ndarray:
    """An SS-times larger canvas of img for the shape functions to draw on."""
    return cv2.resize(img, (img.shape[1] * SS, img.shape[0] * SS), interpolation=cv2.INTER_LINEAR)


def downsample(canvas: np.ndarray) -> np.ndarray:
    """The canvas area-averaged back to output pixels."""
    h, w = _size(canvas)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)


def render_shapes(rng: np.random.Generator, shape=(240, 320), kind: str | None = None, noise=(0.0, 8.0)):
    """One synthetic image. Returns (gray uint8 HxW, keypoints float32 Nx2 (x, y) inside the image, kind)."""
    h, w = shape
    kind = kind or str(rng.choice(sorted(SHAPES)))
    if kind not in SHAPES:
        raise KeyError(f"unknown shape {kind!r}; known: {sorted(SHAPES)}")
    canvas = draw_canvas(background(rng, h, w))
    kps = SHAPES[kind](rng, canvas, int(rng.integers(2, 6)))
    img = downsample(canvas)
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.8)).astype(np.float32)
    img += rng.normal(0, rng.uniform(*noise), img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    inside = (kps[:, 0] >= 0) & (kps[:, 0] <= w - 1) & (kps[:, 1] >= 0) & (kps[:, 1] <= h - 1)
    return img, kps[inside], kind

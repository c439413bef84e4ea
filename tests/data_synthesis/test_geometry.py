"""Ground truth of synthesized pairs: corners mapped through H land on corners; valid masks."""

import cv2
import numpy as np
import pytest

from homeloc.data_synthesis.geometry import HomographyConfig, sample_homography, valid_mask, warp_image
from homeloc.data_synthesis.pairs import PairConfig, make_pair
from homeloc.data_synthesis.shapes import SHAPES, downsample, draw_canvas, render_shapes
from homeloc.data_synthesis.sources import SourceMix
from homeloc.runtime.geometry import warp_points
from homeloc.runtime.io import write_image

CRITERIA = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)


def checkerboard(shape, square=20.0, origin=(13.3, 11.7), ss=4, blur=0.7):
    """Anti-aliased checkerboard (uint8) and its inner corners (x, y) in OpenCV pixel coordinates."""
    h, w = shape
    off = (np.arange(ss) + 0.5) / ss - 0.5
    ys = (np.arange(h)[:, None] + off[None, :]).reshape(-1)
    xs = (np.arange(w)[:, None] + off[None, :]).reshape(-1)
    cx = np.floor((xs - origin[0]) / square).astype(int)
    cy = np.floor((ys - origin[1]) / square).astype(int)
    board = ((cy[:, None] + cx[None, :]) % 2).astype(np.float32)
    img = board.reshape(h, ss, w, ss).mean(axis=(1, 3)) * 200 + 28
    img = cv2.GaussianBlur(img, (0, 0), blur)
    kx = origin[0] + square * np.arange(-1, int(w / square) + 2)
    ky = origin[1] + square * np.arange(-1, int(h / square) + 2)
    corners = np.array([(x, y) for y in ky for x in kx if 4 <= x <= w - 5 and 4 <= y <= h - 5], np.float64)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), corners


def refine(gray, pts, win=4):
    p = np.ascontiguousarray(pts, np.float32).reshape(-1, 1, 2)
    return cv2.cornerSubPix(gray, p, (win, win), (-1, -1), CRITERIA).reshape(-1, 2).astype(np.float64)


def usable(pts, mask, margin=8):
    """Points at least `margin` px inside the image and the mask (eroded)."""
    h, w = mask.shape
    er = cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    inside = (xi >= margin) & (xi < w - margin) & (yi >= margin) & (yi < h - margin)
    ok = np.zeros(len(pts), bool)
    ok[inside] = er[yi[inside], xi[inside]]
    return ok


def test_checkerboard_reference_corners_are_exact():
    img, corners = checkerboard((120, 160))
    start = corners + np.random.default_rng(0).uniform(-1.5, 1.5, corners.shape)
    err = np.linalg.norm(refine(img, start) - corners, axis=1)
    assert err.max() < 0.05, err.max()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_corners_through_h_land_on_corners(seed):
    shape = (120, 160)
    img0, corners = checkerboard(shape)
    rng = np.random.default_rng(seed)
    h = sample_homography(rng, shape, HomographyConfig())
    img1 = warp_image(img0, h, shape)
    p1 = warp_points(corners, h)
    ok = usable(p1, valid_mask(h, shape, shape))
    assert ok.sum() >= 8
    start = p1[ok] + rng.uniform(-1.0, 1.0, p1[ok].shape)
    err = np.linalg.norm(refine(img1, start) - p1[ok], axis=1)
    assert err.max() < 0.5, f"max corner error {err.max():.3f} px"
    assert np.median(err) < 0.15


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_shapes_checkerboard_keypoints_are_corners(seed):
    """The shapes generator's own GT: inner checkerboard keypoints sit on the drawn X-junctions."""
    rows, cols = (
        int(v) for v in np.random.default_rng(seed).integers(3, 7, 2)
    )  # as checkerboard() draws them
    canvas = draw_canvas(np.full((120, 160), 128, np.uint8))
    kps = SHAPES["checkerboard"](np.random.default_rng(seed), canvas, 1)
    img = cv2.GaussianBlur(downsample(canvas), (0, 0), 0.6)
    inner = kps.reshape(rows + 1, cols + 1, 2)[1:-1, 1:-1].reshape(-1, 2).astype(np.float64)
    err = np.linalg.norm(refine(img, inner + 0.7) - inner, axis=1)
    assert err.max() < 0.35, f"max keypoint-to-corner error {err.max():.3f} px"


def test_render_shapes_keypoints_inside_and_deterministic():
    for kind in SHAPES:
        img, kps, k = render_shapes(np.random.default_rng(3), (60, 80), kind)
        assert k == kind and img.shape == (60, 80) and img.dtype == np.uint8
        assert ((kps >= 0) & (kps <= [79, 59])).all()
        img2, kps2, _ = render_shapes(np.random.default_rng(3), (60, 80), kind)
        assert np.array_equal(img, img2) and np.array_equal(kps, kps2)
    with pytest.raises(KeyError, match="unknown shape"):
        render_shapes(np.random.default_rng(0), (60, 80), "hexagon")


def _corner_pair_check(sample, min_pts=6):
    g0 = cv2.cvtColor(sample.image0, cv2.COLOR_RGB2GRAY)
    g1 = cv2.cvtColor(sample.image1, cv2.COLOR_RGB2GRAY)
    found = cv2.goodFeaturesToTrack(g0, 60, 0.05, 8)
    assert found is not None
    p0 = refine(g0, found.reshape(-1, 2))
    keep0 = usable(p0, sample.valid0)
    p1 = warp_points(p0[keep0], sample.h_0to1)
    keep1 = usable(p1, sample.valid1 & ~sample.change1)
    assert keep1.sum() >= min_pts
    start = p1[keep1] + np.random.default_rng(0).uniform(-1, 1, p1[keep1].shape)
    err = np.linalg.norm(refine(g1, start) - p1[keep1], axis=1)
    assert err.max() < 0.5, f"max corner error {err.max():.3f} px"


def _identity_config(**kw):
    return PairConfig(
        size=(120, 160),
        view0={"identity": 1},
        view1={"identity": 1},
        real_pair={"identity": 1},
        scene_change={},
        **kw,
    )


@pytest.mark.parametrize("index", [0, 1, 2])
def test_make_pair_ground_truth_on_a_checkerboard_source(tmp_path, index):
    img, _ = checkerboard((300, 400), square=26.0)
    write_image(tmp_path / "board.png", img)
    sample = make_pair(SourceMix([f"folder:{tmp_path}"]), _identity_config(), seed=5, index=index)
    _corner_pair_check(sample)


def test_make_pair_ground_truth_on_a_real_pair_source(tmp_path):
    """A fixed-camera 'webcam' scene (same geometry, other light) plus a random H on top."""
    img, _ = checkerboard((300, 400), square=26.0)
    scene = tmp_path / "scene"
    write_image(scene / "20200101_120000.png", img)
    write_image(scene / "20200101_220000.png", (img * 0.5).astype(np.uint8))
    cfg = _identity_config(real_pair_homography=1.0)
    sample = make_pair(SourceMix([f"webcam:{tmp_path}"]), cfg, seed=1, index=0)
    assert sample.meta["real_pair"]
    assert not np.allclose(sample.h_0to1, np.eye(3))
    _corner_pair_check(sample)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_valid_masks_at_borders(seed):
    """valid1 = preimage inside image0; pixels of a constant image warp to the constant exactly
    where valid, to black more than a pixel outside."""
    shape = (60, 80)
    rng = np.random.default_rng(seed)
    cfg = HomographyConfig(allow_artifacts=True, translation=0.3, scale=(0.6, 1.4))
    h = sample_homography(rng, shape, cfg)
    v1 = valid_mask(h, shape, shape)
    assert 0.05 < v1.mean() < 1.0, "this H should leave part of image1 without a preimage"
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    pre = warp_points(np.stack([xs.ravel(), ys.ravel()], 1), np.linalg.inv(h)).reshape(*shape, 2)
    dist_out = np.maximum.reduce(
        [-pre[..., 0], pre[..., 0] - (shape[1] - 1), -pre[..., 1], pre[..., 1] - (shape[0] - 1)]
    )
    clear = np.abs(dist_out) > 1e-3  # pixels not within 1e-3 px of the boundary
    assert np.array_equal(v1[clear], (dist_out <= 0)[clear])
    white = warp_image(np.full(shape, 255, np.uint8), h, shape)
    assert (white[v1] >= 254).all(), "valid pixels interpolate only image0 pixels"
    assert (white[dist_out > 1.0] == 0).all(), "pixels a pixel outside image0 are empty"
    # valid0 is the same test in the other direction
    v0 = valid_mask(np.linalg.inv(h), shape, shape)
    fwd = warp_points(np.stack([xs.ravel(), ys.ravel()], 1), h).reshape(*shape, 2)
    inside = (
        (fwd[..., 0] >= 1e-3)
        & (fwd[..., 0] <= shape[1] - 1 - 1e-3)
        & (fwd[..., 1] >= 1e-3)
        & (fwd[..., 1] <= shape[0] - 1 - 1e-3)
    )
    outside = (
        (fwd[..., 0] < -1e-3)
        | (fwd[..., 0] > shape[1] - 1 + 1e-3)
        | (fwd[..., 1] < -1e-3)
        | (fwd[..., 1] > shape[0] - 1 + 1e-3)
    )
    assert v0[inside].all() and not v0[outside].any()


def test_valid_mask_identity_and_behind_camera():
    shape = (10, 12)
    assert valid_mask(np.eye(3), shape, shape).all()
    flip = np.diag([1.0, 1.0, -1.0])  # every point maps behind the camera
    assert not valid_mask(flip, shape, shape).any()


def test_sampled_homographies_keep_image1_inside_image0_without_artifacts():
    shape = (60, 80)
    for seed in range(20):
        h = sample_homography(np.random.default_rng(seed), shape, HomographyConfig())
        assert valid_mask(h, shape, shape).all()


@pytest.mark.parametrize("scale", [0.3, 0.7])
def test_render_keeps_ground_truth_when_shrinking(scale):
    """_render (incl. its pre-shrink below 0.5x) maps source corners where t says."""
    from homeloc.data_synthesis.pairs import _render

    src, corners = checkerboard((300, 400), square=40.0 if scale < 0.5 else 26.0, blur=1.2)
    t = np.array([[scale, 0, -3.3], [0, scale, -5.1], [0, 0, 1]])
    out = _render(src, t, (80, 110))
    p = warp_points(corners, t)
    ok = usable(p, np.ones((80, 110), bool), 6)
    err = np.linalg.norm(refine(out, p[ok] + 0.6, win=3) - p[ok], axis=1)
    assert ok.sum() >= 4 and err.max() < 0.3, err.max()

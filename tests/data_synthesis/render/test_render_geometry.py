"""Geometry is exact: depth + poses reproject a view's surface onto the other view's surface, and
warped day renders agree photometrically. Thresholds follow ../shared/RENDERING.md's measured facts
(correct renders: ~0.9 of the visible pixels agree within 3%; shuffled poses: 0.08)."""

import itertools

import cv2
import numpy as np
import pytest

from homeloc.data_synthesis.render.jobs import render_homes
from homeloc.data_synthesis.render.layout import read_render
from homeloc.runtime.geometry import depth_correspondences, reproject_depth
from tests.conftest import SHARED
from tests.data_synthesis.render.conftest import tiny_config

DEPTH_AGREEMENT = 0.85  # measured ~0.9 for correct geometry
SHUFFLED_AGREEMENT = 0.5  # measured 0.08 with shuffled poses


def _agreement(f0, f1, pose1=None) -> tuple[float, int]:
    d0, d1 = f0.depth(), f1.depth()
    xy, z1 = reproject_depth(d0, f0.K, f0.pose, f1.K, f1.pose if pose1 is None else pose1)
    h, w = d1.shape
    with np.errstate(invalid="ignore"):
        inside = (xy[..., 0] > -0.5) & (xy[..., 0] < w - 0.5) & (xy[..., 1] > -0.5) & (xy[..., 1] < h - 0.5)
    xi = np.clip(np.nan_to_num(np.round(xy[..., 0])), 0, w - 1).astype(int)
    yi = np.clip(np.nan_to_num(np.round(xy[..., 1])), 0, h - 1).astype(int)
    with np.errstate(invalid="ignore"):
        agree = inside & (np.abs(d1[yi, xi] - z1) <= 0.03 * z1)
    return agree.sum() / max(inside.sum(), 1), int(inside.sum())


@pytest.fixture(scope="module")
def day_render(tmp_path_factory):
    assets = str(SHARED / "home_assets") if (SHARED / "home_assets").is_dir() else ""
    cfg = tiny_config(
        size=(60, 80),
        spp=4,
        days=1,
        lightings={"overcast": 1.0},
        map_lighting="overcast",
        frames_per_sequence=4,
        assets=assets,
        rooms=(1, 1),
    )
    out = tmp_path_factory.mktemp("geom") / "r"
    render_homes(out, 1, 8, seed=5, cfg=cfg)
    return read_render(out)["home_00000"]


@pytest.mark.slow
def test_depth_reprojection_agrees_and_shuffled_poses_do_not(day_render):
    good, bad = [], []
    for a, b in itertools.combinations(range(len(day_render)), 2):
        score, n = _agreement(day_render[a], day_render[b])
        if n > 0.2 * 60 * 80:
            good.append(score)
            bad.append(_agreement(day_render[a], day_render[b], _shuffled(day_render[b].pose))[0])
    assert len(good) >= 3, "too few overlapping views"
    assert np.median(good) >= DEPTH_AGREEMENT, good
    assert np.median(bad) <= SHUFFLED_AGREEMENT, bad


def _shuffled(pose: np.ndarray) -> np.ndarray:
    """The same camera turned 40 degrees about its vertical axis and moved 0.5 m sideways."""
    c, s = np.cos(0.7), np.sin(0.7)
    turn = np.array([[c, 0, s, 0.5], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1.0]])
    return pose @ turn


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-9))


@pytest.mark.slow
def test_warped_day_renders_agree_photometrically(day_render):
    """Normalised cross-correlation of view 0 with view 1 warped through depth + poses, against the
    same with a wrong pose for view 1: the true warp must correlate clearly better."""
    good, bad = [], []
    for a, b in itertools.combinations(range(len(day_render)), 2):
        f0, f1 = day_render[a], day_render[b]
        g0, g1 = (
            cv2.GaussianBlur(cv2.cvtColor(f.rgb(), cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 1.0)
            for f in (f0, f1)
        )
        scores = []
        for pose1 in (f1.pose, _shuffled(f1.pose)):
            xy, _ = reproject_depth(f0.depth(), f0.K, f0.pose, f1.K, pose1)
            _, valid = depth_correspondences(f0.depth(), f1.depth(), f0.K, f0.pose, f1.K, f1.pose)
            if valid.sum() < 0.2 * valid.size:
                break
            m = np.nan_to_num(xy, nan=-1e4).astype(np.float32)
            warped = cv2.remap(g1, m[..., 0], m[..., 1], cv2.INTER_LINEAR)
            scores.append(_ncc(warped[valid], g0[valid]))
        if len(scores) == 2:
            good.append(scores[0])
            bad.append(scores[1])
    assert len(good) >= 3, "too few overlapping views"
    assert np.median(good) >= 0.6 and np.median(good) > np.median(bad) + 0.2, (good, bad)

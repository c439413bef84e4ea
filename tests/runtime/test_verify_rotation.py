"""Verification of views taken from one spot: the rotation-only model (VerifyConfig.rotation)."""

import math

import numpy as np
import pytest

from homeloc.runtime.features import Features
from homeloc.runtime.frontend import estimate_relative_pose, estimate_rotation, match_features
from homeloc.runtime.loop_closure import LoopClosureDetector, VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate
from homeloc.runtime.loop_closure.verify import verify_one

K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])


def _turn(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


def _views(baseline_m: float, n: int = 150, wrong: int = 30, seed: int = 0):
    """Two views of random points 2-5 m away, the second turned 25 degrees and moved
    ``baseline_m`` sideways; 0.2 px of keypoint noise; the first ``wrong`` matches are wrong."""
    rng = np.random.default_rng(seed)
    X = rng.uniform([-3, -1.5, 2], [3, 1.5, 5], (n, 3))
    R = _turn(25)
    x0 = X @ K.T
    x1 = (X @ R.T + [baseline_m, 0, 0]) @ K.T
    x0, x1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
    x0, x1 = x0 + rng.normal(0, 0.2, x0.shape), x1 + rng.normal(0, 0.2, x1.shape)
    x1[:wrong] = rng.uniform([0, 0], [320, 240], (wrong, 2))
    d = rng.standard_normal((n, 32)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    size = (240, 320)
    return Features(x0, np.ones(n), d, size), Features(x1, np.ones(n), d, size), R


def test_estimate_rotation_recovers_a_turn_on_the_spot():
    f0, f1, R = _views(0.0)
    m = match_features(f0, f1)
    rot = estimate_rotation(f0, f1, m, K)
    assert rot.model == "rotation" and rot.ok
    assert rot.inliers[30:].mean() > 0.95 and rot.inliers[:30].mean() < 0.1
    np.testing.assert_allclose(rot.R, R, atol=2e-3)
    np.testing.assert_array_equal(rot.t, np.zeros(3))
    np.testing.assert_allclose(rot.matrix, K @ rot.R @ np.linalg.inv(K))
    assert not estimate_rotation(f0, f1, m[:2], K).ok  # too few matches
    with pytest.raises(ValueError, match="K must be"):
        estimate_rotation(f0, f1, m, np.eye(2))


def test_a_revisit_from_the_same_spot_keeps_its_inliers():
    """Without a baseline the essential matrix's cheirality check drops the points at infinity;
    the rotation-only model keeps them, and the verification accepts the revisit."""
    f0, f1, R = _views(0.0)
    m = match_features(f0, f1)
    assert estimate_relative_pose(f0, f1, m, K).num_inliers < 0.5 * 120  # what E alone keeps
    off, _, _ = verify_one(f0, Candidate(7, 1.0), f1, VerifyConfig(rotation=False), K)
    on, geom, inl = verify_one(f0, Candidate(7, 1.0), f1, VerifyConfig(), K)
    assert geom.model == "rotation" and on.inliers >= 0.95 * 120 and on.inliers > 2 * off.inliers
    assert on.accepted and not off.accepted
    assert len(inl) == on.inliers and (inl[:, 0] >= 30).all()  # the right matches only


def test_with_a_baseline_the_essential_matrix_is_kept():
    f0, f1, _ = _views(0.5)
    v, geom, _ = verify_one(f0, Candidate(7, 1.0), f1, VerifyConfig(), K)
    assert geom.model == "essential" and v.accepted
    off, _, _ = verify_one(f0, Candidate(7, 1.0), f1, VerifyConfig(rotation=False), K)
    assert off == v  # the same verification as without the rotation model


def test_wrong_matches_do_not_verify_as_a_rotation():
    f0, f1, _ = _views(0.0, wrong=150)  # every match wrong
    assert estimate_rotation(f0, f1, match_features(f0, f1), K).num_inliers < 5
    v, _, _ = verify_one(f0, Candidate(7, 1.0), f1, VerifyConfig(), K)
    assert not v.passed and not v.accepted


def test_the_option_is_a_detector_setting_that_maps_keep(tmp_path):
    det = LoopClosureDetector(index="flat", verify_rotation=False)
    assert det.verify_config.rotation is False and det.config["verify_rotation"] is False
    assert LoopClosureDetector(index="flat").verify_rotation is True  # the default

"""runtime.geometry and runtime.matching: the one owner of warping, robust estimation and MNN."""

from pathlib import Path

import numpy as np
import pytest

from homeloc.runtime.geometry import (
    RANSAC,
    Ransac,
    find_fundamental,
    find_homography,
    find_relative_pose,
    find_rotation,
    warp_points,
)
from homeloc.runtime.matching import distance_matrix, mutual_nearest_neighbours
from homeloc.train.metrics import corner_error


def test_warp_points_translation_and_infinity():
    H = np.array([[1, 0, 2], [0, 1, -3], [0, 0, 1]], float)
    assert np.allclose(warp_points(np.array([[0, 0], [1, 1]]), H), [[2, -3], [3, -2]])
    H_inf = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], float)  # w = x: x = 0 goes to infinity
    out = warp_points(np.array([[0.0, 5.0], [2.0, 4.0]]), H_inf)
    assert np.all(np.isinf(out[0])) and np.allclose(out[1], [1.0, 2.0])


def test_find_homography_exact_and_too_few():
    rng = np.random.default_rng(0)
    H = np.array([[1.1, 0.05, 5], [-0.03, 0.95, -7], [1e-4, 2e-4, 1]])
    p0 = rng.uniform(0, 300, (50, 2))
    p1 = warp_points(p0, H)
    H_est, inliers = find_homography(p0, p1)
    assert corner_error(H_est, H, 300, 300) < 1e-3 and inliers.all()
    H_none, none = find_homography(p0[:3], p1[:3])
    assert H_none is None and none.shape == (3,) and not none.any()


def _two_views(n=80, seed=0):
    rng = np.random.default_rng(seed)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    X = np.c_[rng.uniform(-1, 1, (n, 2)), rng.uniform(3, 6, n)]
    a = np.deg2rad(5)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    t = np.array([0.3, 0.0, 0.05])
    x0 = (K @ X.T).T
    x1 = (K @ (X @ R.T + t).T).T
    return x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:], K, R, t / np.linalg.norm(t)


def test_find_fundamental_and_relative_pose_recover_the_motion():
    p0, p1, K, R, t = _two_views()
    F, inliers = find_fundamental(p0, p1)
    h0 = np.c_[p0, np.ones(len(p0))]
    h1 = np.c_[p1, np.ones(len(p1))]
    assert F is not None and inliers.mean() > 0.9
    assert np.abs(np.sum(h1 * (h0 @ F.T), axis=1)).max() < 1e-2
    E, R_est, t_est, inl = find_relative_pose(p0, p1, K)
    assert E is not None and inl.mean() > 0.9
    assert np.allclose(R_est, R, atol=1e-3) and np.allclose(t_est, t, atol=1e-2)
    assert find_relative_pose(p0[:4], p1[:4], K)[0] is None
    assert find_fundamental(p0[:7], p1[:7])[0] is None


def _yaw_pitch(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    y, p = np.radians(yaw_deg), np.radians(pitch_deg)
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    return Rx @ Ry


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))


def test_find_rotation_recovers_a_turn_on_the_spot_among_outliers():
    rng = np.random.default_rng(3)
    K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    X = rng.uniform([-2, -1.5, 2], [2, 1.5, 5], (120, 3))
    R = _yaw_pitch(25, 4)
    x0 = X @ K.T
    x1 = (X @ R.T + [0.02, 0, 0.01]) @ K.T  # 2 cm of baseline: nearly one spot
    x0, x1 = x0[:, :2] / x0[:, 2:], x1[:, :2] / x1[:, 2:]
    x1[:80] = rng.uniform([0, 0], [320, 240], (80, 2))  # two thirds wrong matches
    Re, inliers = find_rotation(x0, x1, K)
    assert _angle_deg(Re, R) < 0.5
    assert inliers[80:].mean() > 0.95 and inliers[:80].mean() < 0.05
    Re2, inliers2 = find_rotation(x0, x1, K)  # seeded: the same answer
    np.testing.assert_array_equal(Re, Re2)
    np.testing.assert_array_equal(inliers, inliers2)
    assert find_rotation(x0[:2], x1[:2], K)[0] is None  # too few points
    none, mask = find_rotation(rng.uniform(0, 300, (40, 2)), rng.uniform(0, 300, (40, 2)), K, threshold=0.01)
    assert none is None and not mask.any()  # no consensus of 3


def test_ransac_parameters_are_validated():
    assert RANSAC.confidence == 0.9999 and RANSAC.max_iters == 10_000
    with pytest.raises(ValueError, match="confidence"):
        Ransac(confidence=1.0)
    with pytest.raises(ValueError, match="max_iters"):
        Ransac(max_iters=0)


def test_mutual_nearest_neighbours_cosine_equals_l2_on_unit_descriptors():
    rng = np.random.default_rng(1)
    d0 = rng.normal(size=(60, 16)).astype(np.float32)
    d1 = np.r_[d0[:40] + 0.05 * rng.normal(size=(40, 16)), rng.normal(size=(30, 16))].astype(np.float32)
    d0 /= np.linalg.norm(d0, axis=1, keepdims=True)
    d1 /= np.linalg.norm(d1, axis=1, keepdims=True)
    l2 = mutual_nearest_neighbours(d0, d1, "l2")
    cos = mutual_nearest_neighbours(d0, d1, "cosine")
    assert np.array_equal(l2, cos) and len(l2) >= 40
    assert np.allclose(distance_matrix(d0, d1, "cosine"), distance_matrix(d0, d1, "l2"), atol=1e-3)
    tight = mutual_nearest_neighbours(d0, d1, "cosine", max_distance=0.3)
    assert np.array_equal(tight, mutual_nearest_neighbours(d0, d1, "l2", max_distance=0.3))
    assert set(map(tuple, tight)) <= set(map(tuple, cos)) and len(tight) < len(cos)


def test_mutual_nearest_neighbours_hamming_and_errors():
    bits = np.array([[0b1111_0000], [0b0000_1111]], np.uint8)
    assert mutual_nearest_neighbours(bits, bits[::-1], "hamming").tolist() == [[0, 1], [1, 0]]
    assert mutual_nearest_neighbours(bits[:0], bits, "hamming").shape == (0, 2)
    with pytest.raises(ValueError, match="uint8"):
        mutual_nearest_neighbours(bits.astype(np.float32), bits, "hamming")
    with pytest.raises(ValueError, match="sizes differ"):
        mutual_nearest_neighbours(np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="unknown distance"):
        distance_matrix(bits, bits, "cos")


def test_an_opencv_usac_assertion_is_a_failed_estimate_not_a_crash():
    """103 matches (a synthetic revisit) on which OpenCV 4.14's USAC_MAGSAC fundamental fit raises
    cv2.error "!model.empty()": the runtime reports a failed estimate, as documented."""
    d = np.load(Path(__file__).parent / "data" / "usac_fundamental_assert.npz")
    F, inliers = find_fundamental(d["p0"], d["p1"], 1.0, Ransac(confidence=0.9999, max_iters=2000))
    assert F is None and inliers.shape == (103,) and not inliers.any()

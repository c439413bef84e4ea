"""reproject_depth / depth_correspondences on a synthetic plane with known poses."""

import numpy as np

from homeloc.runtime.geometry import depth_correspondences, reproject_depth

K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])


def _plane_depth(pose: np.ndarray, z_world: float = 3.0) -> np.ndarray:
    """Depth of the plane world-Z = z_world seen by a camera looking along world +Z."""
    h, w = 48, 64
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((h, w))], -1) @ pose[:3, :3].T
    s = (z_world - pose[2, 3]) / rays[..., 2]
    return s  # rays have unit camera z, and the camera looks along world z: z-depth = s


def test_plane_reprojects_exactly_and_shift_is_detected():
    p0 = np.eye(4)
    p1 = np.eye(4)
    p1[:3, 3] = [0.3, 0.0, 0.5]
    d0, d1 = _plane_depth(p0), _plane_depth(p1)
    xy, z1 = reproject_depth(d0, K, p0, K, p1)
    assert np.allclose(z1, 2.5)
    u, v = np.meshgrid(np.arange(64), np.arange(48))
    assert np.allclose(xy[..., 0], (u - 31.5) * 3.0 / 2.5 - 50 * 0.3 / 2.5 + 31.5)
    _, valid = depth_correspondences(d0, d1, K, p0, K, p1)
    assert valid.sum() > 0.5 * valid.size
    _, occluded = depth_correspondences(d0, d1 * 0.5, K, p0, K, p1)  # something in front everywhere
    assert not occluded.any()
    xy0, _ = reproject_depth(np.zeros((48, 64)), K, p0, K, p1)
    assert np.isnan(xy0).all()

"""Two-view geometry: point warping and robust estimation (OpenCV USAC MAGSAC++), the one owner
for the runtime, the training metrics and every evaluation.

Conventions: points are float (N, 2) pixel coordinates (x, y), OpenCV convention (the centre of
the top-left pixel is (0, 0)); H and F map image 0 to image 1; x1 = R x0 + t for poses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Ransac:
    """Robust-estimation parameters shared by every estimator.

    confidence: RANSAC's stopping confidence (0.9999: the evaluation protocol's value, also the
    runtime's, so a loop closure is verified exactly as the benchmarks measure it);
    max_iters: iteration cap.
    """

    confidence: float = 0.9999
    max_iters: int = 10_000

    def __post_init__(self) -> None:
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.max_iters < 1:
            raise ValueError(f"max_iters must be >= 1, got {self.max_iters}")


RANSAC = Ransac()


def warp_points(points: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to (N, 2) points -> (N, 2) float64; points mapped to infinity
    (|w| <= 1e-12) become inf, never nan or a huge finite value."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(H, np.float64).T
    w = hom[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(w) > 1e-12, hom[:, :2] / w, np.inf)


def _mask(mask: np.ndarray | None, n: int) -> np.ndarray:
    return np.zeros(n, bool) if mask is None else mask.reshape(-1) > 0


def _usable(M: np.ndarray | None) -> bool:
    return M is not None and M.shape == (3, 3) and bool(np.isfinite(M).all())


def find_homography(
    pts0: np.ndarray, pts1: np.ndarray, threshold: float = 3.0, ransac: Ransac = RANSAC
) -> tuple[np.ndarray | None, np.ndarray]:
    """Homography image 0 -> image 1 (``threshold`` px reprojection) and the (N,) bool inlier mask;
    (None, all False) with fewer than 4 points or when estimation fails."""
    p0, p1 = np.asarray(pts0, np.float64), np.asarray(pts1, np.float64)
    if len(p0) < 4:
        return None, np.zeros(len(p0), bool)
    try:
        H, mask = cv2.findHomography(
            p0, p1, cv2.USAC_MAGSAC, threshold, maxIters=ransac.max_iters, confidence=ransac.confidence
        )
    except cv2.error:  # see find_fundamental
        return None, np.zeros(len(p0), bool)
    return (
        (np.asarray(H, np.float64), _mask(mask, len(p0))) if _usable(H) else (None, np.zeros(len(p0), bool))
    )


def find_fundamental(
    pts0: np.ndarray, pts1: np.ndarray, threshold: float = 1.0, ransac: Ransac = RANSAC
) -> tuple[np.ndarray | None, np.ndarray]:
    """Fundamental matrix (x1^T F x0 = 0, ``threshold`` px epipolar) and the (N,) bool inlier
    mask; (None, all False) with fewer than 8 points or when estimation fails."""
    p0, p1 = np.asarray(pts0, np.float64), np.asarray(pts1, np.float64)
    if len(p0) < 8:
        return None, np.zeros(len(p0), bool)
    try:
        F, mask = cv2.findFundamentalMat(
            p0, p1, cv2.USAC_MAGSAC, threshold, ransac.confidence, ransac.max_iters
        )
    except cv2.error:  # OpenCV 4.14 USAC asserts "!model.empty()" on some point sets: a failed estimate
        return None, np.zeros(len(p0), bool)
    return (
        (np.asarray(F, np.float64), _mask(mask, len(p0))) if _usable(F) else (None, np.zeros(len(p0), bool))
    )


def find_relative_pose(
    pts0: np.ndarray,
    pts1: np.ndarray,
    K: np.ndarray,
    threshold: float = 1.0,
    ransac: Ransac = RANSAC,
    K1: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Essential matrix by MAGSAC++ and the pose recovered from it (``recoverPose``).

    K: 3 x 3 intrinsics of image 0 (and of image 1 unless ``K1`` is given); threshold in pixels.
    With a different K1 both point sets are normalised by their own intrinsics and the threshold
    by the mean focal length (the SuperGlue/LoFTR protocol). Returns (E, R, t, inliers): E and R
    3 x 3 float64, t (3,) unit float64, inliers (N,) bool (consistent with E and in front of both
    cameras); (None, None, None, all False) with fewer than 5 points or when estimation fails.
    """
    p0, p1 = np.asarray(pts0, np.float64), np.asarray(pts1, np.float64)
    failed = (None, None, None, np.zeros(len(p0), bool))
    if len(p0) < 5:
        return failed
    K = np.asarray(K, np.float64)
    if K1 is not None and not np.allclose(np.asarray(K1, np.float64), K):
        K1 = np.asarray(K1, np.float64)
        focal = np.mean([K[0, 0], K[1, 1], K1[0, 0], K1[1, 1]])
        p0, p1 = _normalise(p0, K), _normalise(p1, K1)
        K, threshold = np.eye(3), threshold / focal
    try:
        E, mask = cv2.findEssentialMat(
            p0, p1, K, method=cv2.USAC_MAGSAC, prob=ransac.confidence, threshold=threshold,
            maxIters=ransac.max_iters,
        )  # fmt: skip
    except cv2.error:  # see find_fundamental
        return failed
    if E is None or mask is None or E.shape[0] < 3:
        return failed
    E = np.ascontiguousarray(E[:3], dtype=np.float64)  # several solutions stack as 3k x 3: keep the best
    _, R, t, pose_mask = cv2.recoverPose(E, p0, p1, K, mask=mask.copy())
    return E, np.asarray(R, np.float64), np.asarray(t, np.float64).reshape(3), pose_mask.reshape(-1) > 0


def find_rotation(
    pts0: np.ndarray, pts1: np.ndarray, K: np.ndarray, threshold: float = 4.0, iters: int = 300, seed: int = 0
) -> tuple[np.ndarray | None, np.ndarray]:
    """The rotation-only model ``x1 ~ K R K^-1 x0`` by RANSAC over 2-point minimal samples
    (Kabsch on unit bearings), refitted on its inliers. For two views from nearly one spot: there
    the essential matrix is ill-conditioned (a weak fit trades rotation for translation) while
    the rotation is well defined; with a baseline the parallax biases it.

    K: 3 x 3 intrinsics of both images; threshold: pixels (the angle between a bearing and its
    rotated match, times the focal length); ``iters`` seeded samples (deterministic). Returns
    (R, inliers): R 3 x 3 float64 (bearing1 = R bearing0), inliers (N,) bool; (None, all False)
    with fewer than 3 points or fewer than 3 inliers.
    """
    p0, p1 = np.asarray(pts0, np.float64), np.asarray(pts1, np.float64)
    none = (None, np.zeros(len(p0), bool))
    if len(p0) < 3:
        return none
    K = np.asarray(K, np.float64)
    b0, b1 = _bearings(p0, K), _bearings(p1, K)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(p0), iters)
    pick = np.stack([i, (i + rng.integers(1, len(p0), iters)) % len(p0)], axis=1)  # 2 distinct per sample
    Rs = _kabsch(b0[pick], b1[pick])  # iters x 3 x 3
    cos_min = math.cos(threshold / K[0, 0])
    # optimize: the contraction order numpy picks is 8x faster than the default left-to-right
    support = np.einsum("sij,nj,ni->sn", Rs, b0, b1, optimize=True) >= cos_min  # samples x points
    inliers = support[int(np.argmax(support.sum(axis=1)))]
    for _ in range(2):  # refit on the consensus, then take the consensus of the refit
        if inliers.sum() < 3:
            return none
        R = _kabsch(b0[inliers][None], b1[inliers][None])[0]
        inliers = np.einsum("ij,nj,ni->n", R, b0, b1) >= cos_min
    return (R, inliers) if inliers.sum() >= 3 else none


def _bearings(p: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel points -> unit viewing rays (N x 3) of a camera with intrinsics K."""
    b = np.c_[_normalise(p, K), np.ones(len(p))]
    return b / np.linalg.norm(b, axis=1, keepdims=True)


def _kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations R (S x 3 x 3) minimising sum |b - R a| over each of S sets of unit vectors (S x N x 3)."""
    U, _, Vt = np.linalg.svd(np.einsum("sni,snj->sij", b, a))
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.zeros_like(U)
    D[:, 0, 0] = D[:, 1, 1] = 1.0
    D[:, 2, 2] = np.where(d == 0, 1.0, d)
    return U @ D @ Vt


def _normalise(pts: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel points -> normalised image coordinates K^-1 [u, v, 1] (first two components)."""
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.linalg.inv(K).T
    return hom[:, :2] / hom[:, 2:3]


def symmetric_epipolar_distance(F: np.ndarray, pts0: np.ndarray, pts1: np.ndarray) -> np.ndarray:
    """sqrt of the symmetric epipolar distance (Hartley & Zisserman 11.10, as WxBS/kornia), pixels.

    d^2 = (x1' F x0)^2 * (1 / ((F x0)_1^2 + (F x0)_2^2) + 1 / ((F^T x1)_1^2 + (F^T x1)_2^2)).
    """
    p0 = np.concatenate([np.asarray(pts0, np.float64), np.ones((len(pts0), 1))], axis=1)
    p1 = np.concatenate([np.asarray(pts1, np.float64), np.ones((len(pts1), 1))], axis=1)
    Fx0 = p0 @ F.T
    Ftx1 = p1 @ F
    num = np.sum(p1 * Fx0, axis=1) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = num * (1.0 / (Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2) + 1.0 / (Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2))
    return np.sqrt(np.nan_to_num(d2, nan=np.inf))


def reproject_depth(
    depth0: np.ndarray, K0: np.ndarray, pose0_c2w: np.ndarray, K1: np.ndarray, pose1_c2w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every pixel of view 0 through its z-depth into view 1.

    depth0: HxW z-depth (metres, 0 = no surface); K: 3x3 (centre of the top-left pixel = (0, 0));
    poses: camera-to-world 4x4 in OpenCV camera axes. Returns (HxWx2 float64 pixel positions in
    view 1, HxW float64 z-depth in view 1); both nan where depth0 is 0 or the point is behind view 1.
    """
    h, w = depth0.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    z0 = np.asarray(depth0, np.float64)
    rays = np.stack([(u - K0[0, 2]) / K0[0, 0], (v - K0[1, 2]) / K0[1, 1], np.ones_like(u)], -1)
    T = np.linalg.inv(np.asarray(pose1_c2w, np.float64)) @ np.asarray(pose0_c2w, np.float64)
    p1 = (rays * z0[..., None]) @ T[:3, :3].T + T[:3, 3]
    z1 = p1[..., 2]
    ok = (z0 > 0) & (z1 > 1e-6)
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = np.stack([K1[0, 0] * p1[..., 0] / z1 + K1[0, 2], K1[1, 1] * p1[..., 1] / z1 + K1[1, 2]], -1)
    xy[~ok] = np.nan
    return xy, np.where(ok, z1, np.nan)


def depth_correspondences(
    depth0: np.ndarray,
    depth1: np.ndarray,
    K0: np.ndarray,
    pose0_c2w: np.ndarray,
    K1: np.ndarray,
    pose1_c2w: np.ndarray,
    rel_tol: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ground truth 0 -> 1 with an occlusion test: (HxWx2 positions in view 1, nan where
    invalid; HxW bool valid0). A pixel is valid iff it has depth, lands inside view 1 and view 1's
    depth at the nearest pixel agrees with the reprojected depth within rel_tol (else occluded)."""
    xy, z1 = reproject_depth(depth0, K0, pose0_c2w, K1, pose1_c2w)
    h1, w1 = depth1.shape
    with np.errstate(invalid="ignore"):
        inside = (xy[..., 0] > -0.5) & (xy[..., 0] < w1 - 0.5) & (xy[..., 1] > -0.5) & (xy[..., 1] < h1 - 0.5)
    xi = np.clip(np.nan_to_num(np.round(xy[..., 0])), 0, w1 - 1).astype(int)
    yi = np.clip(np.nan_to_num(np.round(xy[..., 1])), 0, h1 - 1).astype(int)
    seen = np.asarray(depth1, np.float64)[yi, xi]
    with np.errstate(invalid="ignore"):
        valid = inside & (seen > 0) & (np.abs(seen - z1) <= rel_tol * z1)
    xy = xy.copy()
    xy[~valid] = np.nan
    return xy, valid

"""Where the frame stands, in metres: PnP of its keypoints against an experience's keypoints lifted
by their stored depth (``StoredFeatures.depth``: a SLAM map point's or a depth camera's).

Why: an experience's own position is not the frame's. Keyframes stand up to a metre from the
frames that see the same things, and the pose prior's weak updates treat them as half-metre
measurements (``OdometryConfig.seed_sigma_m``). Every false localization left in sessions 44-46 was
a neighbour 1.0-1.2 m away, and under slipping wheels the prior itself drifted 0.5-1.5 m at sigmas
of 0.1-0.2 m. With depth the verification's matches place the frame itself. On the wandering home
1951 (session 47: all 2,839 verifications through the prior of a replay, exact rendered depth), the
camera centre PnP recovers lies a median 0.19 m from the truth at 20-30 PnP inliers, 0.11 m at
30-50 and 0.06 m at 50-100, where the experience's own position is 0.67-0.77 m away; under 20
inliers it is no better than the experience.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.loop_closure.config import VerifyConfig
from homeloc.runtime.loop_closure.stored_features import StoredFeatures
from homeloc.runtime.loop_closure.verify import frame_matches

PNP_ITERATIONS = 500  # OpenCV's RANSAC draws from a fixed seed: the same matches give the same pose
PNP_REPROJECTION_PX = 3.0
MIN_DEPTH_M = 0.05  # closer than this no camera sees: a missing value


@dataclass(frozen=True)
class MetricPose:
    """A frame's planar pose ``(x, y, yaw)`` in the map (metres, radians) that PnP against
    experience ``kf_id`` found with ``inliers`` inliers."""

    kf_id: int
    inliers: int
    pose: np.ndarray


def metric_pose(
    f: Features,
    kf_id: int,
    kf: StoredFeatures,
    kf_pose: np.ndarray,
    K: np.ndarray,
    verify: VerifyConfig,
    min_inliers: int,
    matches: np.ndarray | None = None,
    beat: int = 0,
) -> MetricPose | None:
    """The frame's pose from PnP of frame ``f`` against keyframe ``kf`` (its stored features, with
    depth) whose camera-to-map pose is ``kf_pose`` (3 x 4 or 4 x 4; OpenCV camera axes). Matches as
    the verifier does (``verify``: the frame's best ``max_stored_features`` keypoints, mutual nearest
    neighbours within ``max_distance``; ``matches``: those a verification made, indices of ``f``,
    None: match again); keypoints of ``kf`` without depth are left out. None when ``kf`` keeps no
    depth, its pose is unknown (NaN), fewer than ``min_inliers`` matches with depth or PnP inliers
    remain, or no more than ``beat`` matches with depth (PnP could not find more inliers than a
    pose already found: :meth:`.map.LongTermMap._metric` keeps the one with the most)."""
    if kf.depth is None or K is None:
        return None
    P = np.asarray(kf_pose, np.float64)
    if not np.isfinite(P[:3]).all():
        return None
    stored = kf.features()
    m = frame_matches(f, stored, verify) if matches is None else matches
    if len(m) < min_inliers:
        return None
    z = kf.depth[m[:, 1]].astype(np.float64)
    ok = np.isfinite(z) & (z > MIN_DEPTH_M)
    if ok.sum() < max(min_inliers, 4) or ok.sum() <= beat:
        return None
    K = np.asarray(K, np.float64)
    uv = stored.keypoints[m[ok, 1]].astype(np.float64)
    ray = np.linalg.solve(K, np.c_[uv, np.ones(len(uv))].T).T * z[ok, None]  # keyframe camera
    X = ray @ P[:3, :3].T + P[:3, 3]  # map
    x = f.keypoints[m[ok, 0]].astype(np.float64)
    good, rv, tv, inl = cv2.solvePnPRansac(X, x, K, None, iterationsCount=PNP_ITERATIONS,
                                           reprojectionError=PNP_REPROJECTION_PX, confidence=0.999,
                                           flags=cv2.SOLVEPNP_EPNP)  # fmt: skip
    if not good or inl is None or len(inl) < min_inliers:
        return None
    R, _ = cv2.Rodrigues(rv)
    centre = -R.T @ tv.ravel()
    view = R.T @ np.array([0.0, 0.0, 1.0])  # the camera's optical axis in the map
    if not np.isfinite(centre).all():
        return None
    return MetricPose(
        int(kf_id), int(len(inl)), np.array([centre[0], centre[1], math.atan2(view[1], view[0])])
    )

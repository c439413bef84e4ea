"""Metric localization (runtime.longterm.metric): depth kept with a keyframe's features, PnP of a
frame against it, the prior's update by the frame's metric pose, and the map reporting the verified
experience nearest where the frame stands when its prior drifted."""

import math
from dataclasses import replace

import numpy as np
import pytest

from homeloc.runtime.features import Features
from homeloc.runtime.frontend import match_features
from homeloc.runtime.longterm import LongTermMap, OdometryConfig, PlaceConfig, PosePrior
from homeloc.runtime.longterm.metric import metric_pose
from homeloc.runtime.longterm.odometry import measured_rotation, metric_update, planar
from homeloc.runtime.loop_closure import VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate
from homeloc.runtime.loop_closure.stored_features import StoredFeatures, pack_features, unpack_features
from homeloc.runtime.loop_closure.verify import frame_matches, query_features, verify_all
from tests.runtime.test_longterm import ROOMS, pose_at, unit

K = np.array([[250.0, 0.0, 160.0], [0.0, 250.0, 120.0], [0.0, 0.0, 1.0]])
N = 200


def scene(seed=0):
    """Random points on a deep shelf 3-5 m ahead of x = 1 (map axes, z up) and their descriptors."""
    rng = np.random.default_rng(seed)
    X = np.c_[rng.uniform(4.0, 6.0, N), rng.uniform(0.3, 1.9, N), rng.uniform(0.3, 1.4, N)]
    return X, unit(rng.standard_normal((N, 16)))


def view(X, desc, pose):
    """The features a camera at ``pose`` (camera-to-map, OpenCV axes) sees, and their z-depth."""
    cam = (X - pose[:3, 3]) @ pose[:3, :3]  # map -> camera
    uv = cam @ K.T
    uv = uv[:, :2] / uv[:, 2:]
    assert (cam[:, 2] > 0).all() and (uv > 0).all() and (uv[:, 0] < 320).all() and (uv[:, 1] < 240).all()
    return Features(uv.astype(np.float32), np.ones(len(X), np.float32), desc), cam[:, 2]


def test_depth_is_kept_per_keypoint_and_round_trips_a_map_file():
    X, desc = scene()
    f, z = view(X, desc, pose_at(1.0, 1.0))
    z[:3] = [np.nan, 0.0, -1.0]  # unknown
    s = StoredFeatures.compress(f, 512, 4, z)
    assert s.depth.dtype == np.float16 and np.isnan(s.depth[:3]).all()
    assert np.allclose(s.depth[3:], z[3:], rtol=1e-3)
    assert s.nbytes == StoredFeatures.compress(f, 512, 4).nbytes + 2 * N  # 2 bytes a keypoint
    plain = StoredFeatures.compress(f, 512, 4)
    arrays = pack_features(np.array([7, 8, 9]), {7: s, 9: plain})
    back = unpack_features(arrays, np.array([7, 8, 9]))
    assert np.array_equal(back[7].depth, s.depth, equal_nan=True) and back[9].depth is None
    del arrays["feat_depth"]  # a file written before depth was kept
    assert unpack_features(arrays, np.array([7, 8, 9]))[7].depth is None
    with pytest.raises(ValueError, match="one value per keypoint"):
        StoredFeatures.compress(f, 512, 4, z[:-1])


def test_pnp_against_a_keyframe_with_depth_places_the_frame():
    X, desc = scene()
    kf_pose, frame_pose = pose_at(1.0, 1.0), pose_at(1.6, 1.3, 10.0)
    fk, z = view(X, desc, kf_pose)
    ff, _ = view(X, desc, frame_pose)
    s = StoredFeatures.compress(fk, 512, 8, z * (1 + 0.01 * np.random.default_rng(1).standard_normal(N)))
    m = metric_pose(ff, 5, s, kf_pose, K, VerifyConfig(), 30)
    assert m is not None and m.kf_id == 5 and m.inliers >= 150
    truth = planar(frame_pose)
    assert math.hypot(*(m.pose[:2] - truth[:2])) < 0.05 and abs(math.degrees(m.pose[2] - truth[2])) < 1.0
    again = metric_pose(ff, 5, s, kf_pose, K, VerifyConfig(), 30)
    assert np.array_equal(again.pose, m.pose)  # deterministic
    assert metric_pose(ff, 5, StoredFeatures.compress(fk, 512, 8), kf_pose, K, VerifyConfig(), 30) is None
    assert metric_pose(ff, 5, s, kf_pose, K, VerifyConfig(), N + 1) is None  # too few inliers
    assert metric_pose(ff, 5, s, np.full((3, 4), np.nan), K, VerifyConfig(), 30) is None  # pose unknown


def test_pnp_and_the_measured_rotation_reuse_the_verification_s_matches():
    """A verified loop keeps the matches its geometry was fitted to, as indices of the frame's own
    features; PnP and the measured rotation given them find what matching again finds (the long-term
    map matches each pair once a frame), and PnP is skipped when it cannot beat a pose found."""
    X, desc = scene()
    kf_pose, frame_pose = pose_at(1.0, 1.0), pose_at(1.0, 1.0, 8.0)  # turned on the spot
    fk, z = view(X, desc, kf_pose)
    ff, _ = view(X, desc, frame_pose)
    # shuffled scores and the best 150 of 200: the verifier's query indices are not the frame's
    ff = Features(
        ff.keypoints, np.random.default_rng(2).uniform(0.1, 1.0, N).astype(np.float32), ff.descriptors
    )
    s = StoredFeatures.compress(fk, 512, 8, z)
    v = VerifyConfig(max_stored_features=150)
    loop, _ = verify_all(ff, [Candidate(5, 1.0)], {5: s}, v, K)
    assert loop is not None and loop.inliers >= 100
    q, order = query_features(ff, v)
    m = match_features(q, s.features(), v.max_distance)
    assert not np.array_equal(order, np.arange(len(order)))
    assert np.array_equal(loop.putative, np.c_[order[m[:, 0]], m[:, 1]])
    assert np.array_equal(frame_matches(ff, s.features(), v), loop.putative)
    assert {tuple(x) for x in loop.matches} <= {tuple(x) for x in loop.putative}
    again = metric_pose(ff, 5, s, kf_pose, K, v, 30)
    reused = metric_pose(ff, 5, s, kf_pose, K, v, 30, loop.putative)
    assert again is not None and again.inliers == reused.inliers and np.array_equal(again.pose, reused.pose)
    assert abs(math.degrees(reused.pose[2] - planar(frame_pose)[2])) < 1.0
    n = len(loop.putative)  # every keypoint of the keyframe keeps its depth here
    assert metric_pose(ff, 5, s, kf_pose, K, v, 30, loop.putative, beat=n) is None  # cannot beat n
    assert metric_pose(ff, 5, s, kf_pose, K, v, 30, loop.putative, beat=n - 1) is not None
    odo = OdometryConfig()
    R = measured_rotation(ff, s.features(), loop, v, K, odo)
    assert R is not None and np.array_equal(
        R, measured_rotation(ff, s.features(), replace(loop, putative=None), v, K, odo)
    )


def test_a_metric_pose_far_from_a_confident_prior_replaces_it_a_near_one_is_fused():
    cfg = OdometryConfig(metric_min_inliers=30)  # sigma 0.15 m, 5 deg; reset beyond 3 sigmas
    prior = PosePrior(np.array([2.0, 1.0, 0.0]), 0.1, 8.0, misses=1, since_deg2=50.0)
    far = metric_update(prior, np.array([1.3, 1.05, 0.1]), cfg)  # 0.7 m > 3 x hypot(0.1, 0.15)
    assert np.allclose(far.pose, [1.3, 1.05, 0.1]) and far.sigma_m == 0.15 and far.sigma_deg == 5.0
    assert (far.misses, far.since_deg2) == (0, 0.0)
    near = metric_update(prior, np.array([2.2, 1.0, 0.0]), cfg)  # 0.2 m: the Kalman update
    g = 0.1**2 / (0.1**2 + 0.15**2)
    assert near.pose[0] == pytest.approx(2.0 + g * 0.2) and near.sigma_m == pytest.approx(
        0.1 * math.sqrt(1 - g)
    )
    fused = metric_update(prior, np.array([1.3, 1.05, 0.1]), OdometryConfig(metric_reset_sigmas=None))
    assert fused.pose[0] == pytest.approx(2.0 - g * 0.7)  # never replaced
    with pytest.raises(ValueError, match="metric_min_inliers"):
        OdometryConfig(metric_min_inliers=3)
    with pytest.raises(ValueError, match="metric_reset_sigmas"):
        OdometryConfig(metric_reset_sigmas=-1.0)


def _drifted(metric: int | None) -> tuple[LongTermMap, Features, np.ndarray]:
    """A map with two experiences of one shelf 1.3 m apart, both with depth, and a prior drifted
    (a slip) next to the far one; the frame stands 0.3 m from the near one."""
    X, desc = scene()
    g = unit(np.ones(16))
    odo = OdometryConfig(metric_min_inliers=metric)
    m = LongTermMap(
        K=K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), odometry=odo, verify=VerifyConfig()
    )
    for kf, (x, y) in ((0, (1.0, 1.0)), (1, (2.3, 1.0))):
        f, z = view(X, desc, pose_at(x, y))
        m.add_experience(kf, g, f, pose=pose_at(x, y), depth=z)
    m.learn = False
    m.prior = PosePrior(np.array([1.9, 1.0, 0.0]), 0.1, 3.0)  # after the motion 0.75 m off, sure of itself
    frame, _ = view(X, desc, pose_at(1.25, 1.05, 5.0))
    return m, frame, g


def test_a_drifted_prior_reports_the_experience_where_the_frame_stands_with_metric_localization():
    assert OdometryConfig().metric_min_inliers == 30  # on by default since session 47
    m, frame, g = _drifted(None)
    loc = m.observe(g, frame, motion=(0.1, 0.0, 0.0)).localization
    assert loc.kf_id == 1 and loc.searched == "prior"  # the nearest the prior: 1.05 m from the frame
    m, frame, g = _drifted(30)
    loc = m.observe(g, frame, motion=(0.1, 0.0, 0.0)).localization
    assert loc.kf_id == 0 and loc.searched == "prior"  # 0.25 m from the frame: where PnP puts it
    assert math.hypot(m.prior.pose[0] - 1.25, m.prior.pose[1] - 1.05) < 0.05  # the prior reset there
    assert m.prior.sigma_m == pytest.approx(0.15)


def test_without_depth_the_metric_option_changes_nothing():
    X, desc = scene()
    g = unit(np.ones(16))
    odo = OdometryConfig(metric_min_inliers=30)
    m = LongTermMap(
        K=K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), odometry=odo, verify=VerifyConfig()
    )
    for kf, (x, y) in ((0, (1.0, 1.0)), (1, (2.3, 1.0))):
        m.add_experience(kf, g, view(X, desc, pose_at(x, y))[0], pose=pose_at(x, y))
    m.learn = False
    m.prior = PosePrior(np.array([1.9, 1.0, 0.0]), 0.1, 3.0)
    loc = m.observe(g, view(X, desc, pose_at(1.25, 1.05, 5.0))[0], motion=(0.1, 0.0, 0.0)).localization
    assert loc.kf_id == 1  # the nearest the prior, as without the option

"""The pose prior from odometry (runtime.longterm.odometry): planar motion, the noise model, the
prior's growth and bounds, and a synthetic sequence where the prior excludes a lookalike place."""

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from homeloc.runtime.features import Features
from homeloc.runtime.longterm import LongTermMap, OdometryConfig, PlaceConfig, PosePrior
from homeloc.runtime.longterm.odometry import (
    colocated,
    compose,
    in_gate,
    metric_contradicts,
    metric_update,
    noisy_motion,
    planar,
    relative_motion,
    wrap,
)
from homeloc.runtime.loop_closure import VerifyConfig
from tests.runtime.test_longterm import ROOMS, Place, pose_at, unit

ODO = OdometryConfig()


def test_planar_motion_round_trips_and_reads_the_heading():
    a, b = planar(pose_at(1, 2, 30)), planar(pose_at(3, 1, -100))
    np.testing.assert_allclose(a, [1, 2, math.radians(30)], atol=1e-9)
    m = relative_motion(a, b)
    np.testing.assert_allclose(compose(a, m), b, atol=1e-9)
    assert m[2] == pytest.approx(math.radians(-130))
    np.testing.assert_allclose(planar(np.stack([pose_at(1, 2, 30)] * 2)), [a, a])


def test_noise_grows_with_distance_and_turning_and_is_reproducible():
    m = (2.0, 0.0, math.radians(90))
    draws = np.array([noisy_motion(m, ODO, np.random.default_rng([7, i])) for i in range(2000)])
    assert noisy_motion(m, ODO, np.random.default_rng([7, 3])) == tuple(draws[3])
    err = np.hypot(draws[:, 0] - 2.0, draws[:, 1])  # radial error: sigma trans_frac * distance
    assert np.sqrt(np.mean(err**2)) == pytest.approx(ODO.trans_frac * 2.0, rel=0.1)
    yaw_sd = np.degrees(np.std(wrap(draws[:, 2] - m[2])))
    assert yaw_sd == pytest.approx(math.hypot(ODO.rot_frac * 90, ODO.yaw_per_m_deg * 2.0), rel=0.1)
    assert noisy_motion(m, ODO, np.random.default_rng(0), scale=0.0) == m


def test_the_prior_grows_is_bounded_and_is_dropped():
    p = PosePrior(np.array([1.0, 1.0, 0.0]), 0.5, 5.0)
    q = p.moved((2.0, 0.0, math.radians(90)), ODO)
    np.testing.assert_allclose(q.pose, [3.0, 1.0, math.pi / 2], atol=1e-9)
    assert q.sigma_m > p.sigma_m and q.sigma_deg > p.sigma_deg
    assert p.moved(None, ODO) is None  # unknown motion: kidnapped
    assert p.moved((30.0, 0.0, 0.0), ODO) is None  # uncertainty beyond the bound
    assert p.missed(OdometryConfig(max_misses=1)) is None  # the first frame it does not localize drops it
    assert p.missed(ODO).missed(ODO).misses == 2 and p.missed(ODO).missed(ODO).missed(ODO) is None  # 3
    poses = np.stack([pose_at(1.5, 1, 10), pose_at(4, 1, 0), pose_at(1, 1, 120), np.full((4, 4), np.nan)])
    assert p.candidates(poses, ODO, PlaceConfig()).tolist() == [True, False, False, False]


def test_a_prior_past_the_heading_bound_keeps_its_position_with_lost_heading_confidence():
    """One turn-around's modelled noise can pass max_sigma_deg while the position is still known:
    with lost_heading_confidence the prior keeps it (heading lost) until the heading's error, swept
    over the drive, passes max_sigma_m."""
    p = PosePrior(np.array([1.0, 1.0, 0.0]), 0.1, 18.0)
    turn = (0.1, 0.0, math.pi)  # 9 deg of modelled heading noise: hypot(18, 9) > 20
    drop = OdometryConfig(lost_heading_confidence=None)
    assert p.moved(turn, drop) is None  # off: dropped
    lost = OdometryConfig(lost_heading_confidence=0.6)
    q = p.moved(turn, lost)
    assert q is not None and q.heading_lost(lost) and not q.heading_lost(drop)
    assert p.moved(turn, ODO).heading_lost(ODO)  # the default keeps it (0.1, session 50)
    assert q.sigma_deg == pytest.approx(math.hypot(18.0, math.hypot(9.0, 0.1)))
    np.testing.assert_allclose(q.pose[:2], [1.1, 1.0], atol=1e-9)
    assert q.sigma_m < 0.2  # the position is still known
    assert not p.heading_lost(lost)  # within the bound: not lost
    assert q.moved((3.0, 0.0, 0.0), lost) is not None  # 3 m at ~20 deg: about 1.1 m, within 1.5
    assert q.moved((5.0, 0.0, 0.0), lost) is None  # 5 m: about 1.8 m, past max_sigma_m
    wide = PosePrior(np.zeros(3), 0.1, 178.0).moved((0.0, 0.0, math.pi), lost, 5.0)
    assert wide.sigma_deg == 180.0  # at most
    # without the option the bound drops it even at 180 deg: the cap applies only to a kept prior
    at_180 = OdometryConfig(max_sigma_deg=180.0, lost_heading_confidence=None)
    assert PosePrior(np.zeros(3), 0.1, 178.0).moved((0.0, 0.0, math.pi), at_180, 5.0) is None
    with pytest.raises(ValueError, match=r"lost_heading_confidence must be in \[0, 1\] or None"):
        OdometryConfig(lost_heading_confidence=1.5)


def test_under_a_lost_heading_only_a_loop_scoring_lost_heading_confidence_is_reported():
    """A weak verification near the prior's position localizes while the heading is known; once
    it is lost (sigma past max_sigma_deg) the prior vouches for the position alone and the loop
    must score lost_heading_confidence."""
    a = Place(0)
    frame = weaker(a.view(1), keep=60)
    g = unit(frame[0] + 0.0)
    got = {}
    for name, sigma_deg, need in (("known", 10.0, 0.9), ("lost", 25.0, 0.9), ("lost, low bar", 25.0, 0.0)):
        odo = OdometryConfig(lost_heading_confidence=need)
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10),
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.5, 1.5))
        m.learn = False
        m.prior = PosePrior(planar(pose_at(1.5, 1.5)), 0.2, sigma_deg)
        # a short drive (a motion claiming the robot stood still would take the dock's checks)
        got[name] = m.observe(g, frame[1], motion=(0.1, 0.0, 0.0)).localization
    weak = got["known"]
    assert weak is not None and weak.searched == "prior" and weak.confidence < 0.9  # weak, through the prior
    assert got["lost"] is None  # the same verification under a lost heading: not reported
    assert got["lost, low bar"] is not None and got["lost, low bar"].kf_id == weak.kf_id


def test_a_pnp_reset_that_the_prior_s_heading_contradicts_is_refused_only_with_the_option():
    """A PnP pose far enough to reset the prior (metric_reset_sigmas) and turned 80 deg from a prior
    sure of its heading to 4.4 deg (frame 663 of 1963 with doubled noise) contradicts it under
    metric_reset_heading_sigmas; a near one is fused whatever its heading, a far one within the
    heading's sigmas still resets, and a lost heading contradicts nothing."""
    prior = PosePrior(np.array([2.08, 3.04, -3.13]), 0.06, 4.4)
    wrong = np.array([2.66, 2.35, 1.78])  # 0.9 m and 80 deg away: past 3 x hypot(0.06, 0.15)
    gated = OdometryConfig(metric_reset_heading_sigmas=3.0)
    assert metric_contradicts(prior, wrong, gated)
    assert not metric_contradicts(prior, wrong, ODO)  # off by default: the reset is taken
    reset = metric_update(prior, wrong, ODO)
    np.testing.assert_allclose(reset.pose, wrong)  # what the default does with it
    slid = np.array([2.66, 2.35, -3.0])  # as far, turned 7.4 deg: within 3 x hypot(4.4, 5)
    assert not metric_contradicts(prior, slid, gated)
    near = np.array([2.1, 3.0, 1.78])  # within the reset distance: fused, never refused
    assert not metric_contradicts(prior, near, gated)
    lost = PosePrior(prior.pose, 0.06, 180.0)
    assert not metric_contradicts(lost, wrong, gated)
    assert not metric_contradicts(prior, wrong, replace(gated, metric_reset_sigmas=None))  # never resets
    with pytest.raises(ValueError, match=r"metric_reset_heading_sigmas must be >= 0 or None"):
        OdometryConfig(metric_reset_heading_sigmas=-1.0)


def test_odometry_settings_are_checked():
    with pytest.raises(ValueError, match="trans_frac must be >= 0"):
        OdometryConfig(trans_frac=-0.1)
    with pytest.raises(ValueError, match="max_misses must be >= 1"):
        OdometryConfig(max_misses=0)


def weaker(view, keep, seed=0):
    """The view with all but ``keep`` local descriptors replaced (night: few matches verify)."""
    g, f = view
    d = f.descriptors.copy()
    d[keep:] = unit(np.random.default_rng(seed).standard_normal((len(d) - keep, d.shape[1])))
    return g, Features(f.keypoints, f.scores, d)


def test_the_prior_excludes_a_lookalike_and_accepts_a_weaker_match_near_it():
    seed_place, a = Place(1), Place(0)
    # strict: a weak verification (~60 inliers) does not localize globally; the prior accepts it
    kw = dict(
        K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95)
    )
    maps = {"global": LongTermMap(**kw), "odometry": LongTermMap(**kw, odometry=ODO)}
    for m in maps.values():
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(21, 1))  # the lookalike in room 2, ranked first
        m.add_experience(2, *a.view(0, appearance=1), pose=pose_at(1.5, 1.5))  # the place itself, room 0
        m.learn = False
    frame = weaker(a.view(1), keep=60)
    g = unit(frame[0] + 0.0)
    for m in maps.values():
        assert m.observe(*seed_place.view(1), pose=pose_at(1, 1)).localization.kf_id == 0  # strict: seeds
    assert maps["odometry"].prior is not None and maps["global"].prior is None
    assert maps["global"].observe(g, frame[1], motion=(0.5, 0.5, 0.0)).localization is None
    loc = maps["odometry"].observe(g, frame[1], motion=(0.5, 0.5, 0.0)).localization
    assert loc is None  # the place's only experience nearby has another appearance: nothing to accept
    m = maps["odometry"]
    m.learn = True
    m.observe(*seed_place.view(1), pose=pose_at(1, 1))  # seeded again
    m.add_experience(3, *a.view(0), pose=pose_at(1.5, 1.5))  # now the place has this appearance too
    loc = m.observe(g, frame[1], motion=(0.5, 0.5, 0.0)).localization
    assert loc is not None and loc.kf_id == 3 and loc.searched == "prior"
    assert loc.confidence < m.verify_config.min_confidence  # weaker than the global rule accepts
    m.observe(*seed_place.view(1), pose=pose_at(1, 1))
    assert m.observe(g, frame[1], motion=None).localization is None  # kidnapped: the strict rule again


def test_the_odometry_setting_is_saved_and_the_prior_is_not(tmp_path):
    a = Place(0)
    m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=10), odometry=OdometryConfig(min_confidence=0.3))
    m.observe(*a.view(0), pose=pose_at(1, 1))
    m.observe(*a.view(1), pose=pose_at(1, 1))
    assert m.prior is not None
    back = LongTermMap.load(m.save(tmp_path / "m.hlmap"))
    assert back.odometry_config == m.odometry_config and back.prior is None
    assert LongTermMap.load(LongTermMap(K=a.K).save(tmp_path / "n.hlmap")).odometry_config is None


def test_two_places_verifying_near_the_prior_are_ambiguous():
    seed_place, a = Place(1), Place(0)
    got = {}
    # experience 2 at 1.1 m from experience 1 (a neighbouring keyframe of a dense patrol: both may be
    # within the place radius of the frame) or 2.05 m (no frame is within the radius of both); both
    # are in the gate around the predicted position (1.55, 1.45), 1.5 m wide
    for (x1, x2), radii in itertools.product(((1.5, 2.6), (0.6, 2.65)), (1.0, 2.0)):
        # the prior's heading tolerance alone (no fit error allowed): 30 deg is another heading
        odo = OdometryConfig(fit_sigma_deg=0.0, conflict_radii=radii, ambiguous_keeps=False)
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=odo, learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(x1, 1.5))
        m.add_experience(2, *a.view(0), pose=pose_at(x2, 1.5))
        g, f = weaker(a.view(1), keep=60)
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0
        got[round(x2 - x1, 2), radii] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization, m.prior
    assert all(
        loc is None and prior is None for loc, prior in (got[1.1, 1.0], got[2.05, 1.0], got[2.05, 2.0])
    )
    loc, prior = got[1.1, 2.0]  # the default: both can be the frame's place; the nearest is reported
    assert loc.kf_id == 1 and loc.searched == "prior" and prior is not None
    with pytest.raises(ValueError, match="conflict_radii must be > 0"):
        OdometryConfig(conflict_radii=0.0)


def test_an_ambiguous_frame_keeps_the_prior_as_a_miss_with_ambiguous_keeps():
    seed_place, a = Place(1), Place(0)
    for keeps in (False, True):
        odo = OdometryConfig(fit_sigma_deg=0.0, ambiguous_keeps=keeps)
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=odo, learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *a.view(0), pose=pose_at(0.6, 1.5))  # two places 2.05 m apart verify
        m.add_experience(2, *a.view(0), pose=pose_at(2.65, 1.5))
        g, f = weaker(a.view(1), keep=60)
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0
        moved = m.prior.moved((0.5, 0.5, 0.0), odo)
        assert m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization is None
        if not keeps:
            assert m.prior is None  # before session 32: the prior may be what is wrong
            continue
        assert m.prior.misses == 1 and np.allclose(m.prior.pose, moved.pose)
        for misses in (2, 3):  # max_misses (3) ambiguous frames in a row still drop it
            assert m.observe(g, f, motion=(0.1, 0.0, 0.0)).localization is None
            assert (m.prior is None) == (misses == odo.max_misses)


def test_a_better_match_implying_another_heading_is_ambiguous_only_at_another_place():
    seed_place, a = Place(1), Place(0)
    # the prior's heading tolerance alone (no fit error allowed): 30 deg is another heading
    got = {}
    for where in ("same place", "another place"):
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=OdometryConfig(fit_sigma_deg=0.0), learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *weaker(a.view(0), keep=90), pose=pose_at(0.9, 1.5))  # agrees with the odometry
        g, f = weaker(a.view(1), keep=120)
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0
        assert m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization.kf_id == 1
        # matches better and implies a 30 deg turn: an experience of the same place (within the
        # place's radius and view angle of experience 1), or one 2.05 m away (another place: no
        # frame is within the place radius of both; OdometryConfig.conflict_radii)
        m.add_experience(2, *a.view(0), pose=pose_at(0.9 if where == "same place" else 2.95, 1.5, 30))
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0
        got[where] = (m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization, m.prior)
    loc, prior = got["same place"]  # a fit of the same place cannot say the robot is elsewhere
    assert loc is not None and loc.kf_id == 1 and prior is not None
    loc, prior = got["another place"]  # another place verifying better: reject, a miss
    assert loc is None and prior is not None and prior.misses == 1  # (ambiguous_keeps; dropped before)


def test_experiences_of_one_spot_agreeing_weakly_localize_under_the_prior():
    a = Place(0)
    kw = dict(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
              verify=VerifyConfig(min_confidence=0.95))  # fmt: skip
    g, f = weaker(a.view(1), keep=40)
    got = {}
    for agree, doubt_m in ((None, 0.3), (0.25, 0.3), (0.25, 2.0)):
        for case in ("one spot", "along a line", "lookalike"):
            # single_doubt_m 0.3: the last resort vetoed by the other spot, agreement alone decides
            odo = OdometryConfig(min_confidence=0.5, agree_confidence=agree, single_doubt_m=doubt_m)
            m = LongTermMap(**kw, odometry=odo)
            # two experiences, each verifying below 0.5 (0.31 and 0.45 alone): 0.2 m apart (one
            # spot seen under other light) or 0.8 m apart (spots along the robot's line of sight)
            m.add_experience(0, *weaker(a.view(0), keep=25, seed=1), pose=pose_at(1.4, 1.5))
            m.add_experience(
                1,
                *weaker(a.view(0), keep=30, seed=2),
                pose=pose_at(2.2 if case == "along a line" else 1.6, 1.5),
            )
            if case == "lookalike":  # another place verifying as well, in the gate, 1.1 m from experience 1
                m.add_experience(2, *weaker(a.view(0), keep=30, seed=3), pose=pose_at(0.75, 0.8))
            m.dock(pose_at(1, 1, -5))
            got[agree, case, doubt_m] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert all(
        got[None, case, 0.3] is None for case in ("one spot", "along a line", "lookalike")
    )  # each alone is too weak
    loc = got[0.25, "one spot", 0.3]
    assert loc is not None and loc.kf_id in (0, 1) and loc.searched == "prior" and loc.confidence < 0.5
    assert got[0.25, "along a line", 0.3] is None  # not views of one spot: no agreement
    assert got[0.25, "lookalike", 0.3] is None  # the agreeing experiences are not one place: ambiguous
    # with the default single_doubt_m (2 m) a spot 0.8 m along the line, or a lookalike 1.1 m away,
    # no longer vetoes the last resort: the weak experience nearest the predicted position
    loc = got[0.25, "along a line", 2.0]
    assert loc is not None and loc.kf_id == 0 and loc.searched == "prior"
    loc = got[0.25, "lookalike", 2.0]
    assert loc is not None and loc.kf_id in (0, 1) and loc.searched == "prior"
    with pytest.raises(ValueError, match="agree_count must be >= 2"):
        OdometryConfig(agree_count=1)
    with pytest.raises(ValueError, match="agree_confidence must be in"):
        OdometryConfig(agree_confidence=1.5)
    with pytest.raises(ValueError, match="agree_radius_m must be >= 0"):
        OdometryConfig(agree_radius_m=-0.1)


def test_a_docked_robot_accepts_a_weak_match_near_the_dock_without_a_strict_seed():
    a = Place(0)
    kw = dict(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
              learn=False)  # fmt: skip
    m = LongTermMap(**kw, odometry=ODO)
    m.add_experience(0, *a.view(0), pose=pose_at(1.5, 1.5))
    g, f = weaker(a.view(1), keep=60)
    assert m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization is None  # no prior: the strict rule
    m.dock(pose_at(1, 1, -5))  # the frame's heading (the verified rotation) is -5.7 deg
    assert m.prior.sigma_m == ODO.dock_sigma_m and m.prior.sigma_deg == ODO.dock_sigma_deg
    loc = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization  # the drive from the dock
    assert loc is not None and loc.kf_id == 0 and loc.searched == "prior"
    m.dock(pose_at(1, 1, 40))  # 46 deg off the implied heading: 2 * hypot(prior 2, fit 20) is ~40 deg
    assert m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization is None
    m.dock(pose_at(11, 1, -5))  # a dock in another room: the experience is not a candidate
    assert m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization is None
    with pytest.raises(ValueError, match="needs the pose prior"):
        LongTermMap(**kw).dock(pose_at(1, 1))
    with pytest.raises(ValueError, match="pose must be"):
        m.dock(np.eye(2))


def test_the_prior_may_lower_the_inlier_ratio_floor():
    a = Place(0)
    g, f = weaker(a.view(1), keep=30)  # 31 of 77 matches are inliers: ratio 0.40
    verify = VerifyConfig(min_confidence=0.95, min_inlier_ratio=0.5)
    got = {}
    for ratio in (None, 0.3):
        m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=10), verify=verify, learn=False,
                        odometry=OdometryConfig(min_inlier_ratio=ratio))  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.5, 1.5))
        m.dock(pose_at(1, 1, -5))
        got[ratio] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[None] is None and got[0.3].kf_id == 0 and got[0.3].searched == "prior"
    with pytest.raises(ValueError, match="min_inlier_ratio must be in"):
        OdometryConfig(min_inlier_ratio=1.5)


def test_nearest_reports_the_experience_where_the_prior_says_rather_than_the_best_match():
    a = Place(0)
    got = {}
    for nearest in (False, True):
        m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        learn=False, odometry=OdometryConfig(nearest=nearest))  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(2.4, 1.5))  # matches best, 0.9 m ahead of the robot
        m.add_experience(1, *weaker(a.view(0), keep=50), pose=pose_at(1.5, 1.5))  # where the robot is
        m.dock(pose_at(1, 1, -5))
        got[nearest] = m.observe(*weaker(a.view(1), keep=90), motion=(0.5, 0.5, 0.0)).localization
    assert got[False].kf_id == 0 and got[True].kf_id == 1 and got[True].searched == "prior"
    assert got[True].confidence < got[False].confidence


def test_the_heading_check_allows_the_fits_own_error_beside_the_priors():
    exp_pose = pose_at(0, 0, 0)[:3]
    p = PosePrior(np.array([0.0, 0.0, 0.0]), 0.1, 2.0)
    R = exp_pose[:3, :3].T @ pose_at(0, 0, 6)[:3, :3]  # frame -> experience: implies heading 6 deg
    assert not p.heading_agrees(exp_pose, R, OdometryConfig(fit_sigma_deg=0.0))  # 6 > 2 * 2 deg
    assert p.heading_agrees(exp_pose, R, OdometryConfig(fit_sigma_deg=3.0))  # 6 <= 2 * hypot(2, 3)
    assert not p.heading_agrees(
        exp_pose, exp_pose[:3, :3].T @ pose_at(0, 0, 8)[:3, :3], OdometryConfig(fit_sigma_deg=3.0)
    )
    with pytest.raises(ValueError, match="fit_sigma_deg must be >= 0"):
        OdometryConfig(fit_sigma_deg=-1.0)


def test_agreement_under_a_tight_prior_may_use_fewer_inliers_than_the_verifier():
    a = Place(0)
    g, f = weaker(a.view(1), keep=15)  # about 16 inliers against either experience: under 20
    got = {}
    for low, sigma in ((None, 0.75), (12, 0.75), (12, 0.01)):
        odo = OdometryConfig(agree_min_inliers=low, agree_max_sigma_m=sigma)
        m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        learn=False, odometry=odo)  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.5, 1.5))  # one spot seen twice
        m.add_experience(1, *weaker(a.view(0), keep=80, seed=2), pose=pose_at(1.6, 1.5))
        m.dock(pose_at(1, 1, -5))  # position known to 0.05 m
        got[low, sigma] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[None, 0.75] is None  # the verifier's 20-inlier floor
    loc = got[12, 0.75]
    assert loc is not None and loc.kf_id in (0, 1) and loc.searched == "prior" and loc.inliers < 20
    assert got[12, 0.01] is None  # the prior (0.05 m) is wider than agree_max_sigma_m
    with pytest.raises(ValueError, match="agree_min_inliers must be >= 8"):
        OdometryConfig(agree_min_inliers=5)
    with pytest.raises(ValueError, match="agree_max_sigma_m must be >= 0"):
        OdometryConfig(agree_max_sigma_m=-1.0)


def test_one_weak_match_localizes_under_a_tight_prior_only_when_no_other_spot_verifies():
    a = Place(0)
    kw = dict(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
              verify=VerifyConfig(min_confidence=0.95))  # fmt: skip
    g, f = weaker(a.view(1), keep=40)
    got, priors = {}, {}
    for single, doubt_m in ((None, 0.3), (0.25, 0.3), (0.25, 1.0)):
        for case in ("alone", "another spot verifies", "the same spot verifies", "wide prior"):
            odo = OdometryConfig(min_confidence=0.5, agree_confidence=0.25, single_confidence=single,
                                 single_doubt_m=doubt_m, agree_max_sigma_m=0.01 if case == "wide prior" else 0.75)  # fmt: skip
            m = LongTermMap(**kw, odometry=odo)
            m.add_experience(0, *weaker(a.view(0), keep=25, seed=1), pose=pose_at(1.4, 1.5))  # ~0.3 alone
            if case.endswith("verifies"):  # 0.8 m along the line of sight or 0.2 m away, weaker still
                x = 2.2 if case == "another spot verifies" else 1.6
                m.add_experience(1, *weaker(a.view(0), keep=20, seed=2), pose=pose_at(x, 1.5))
            m.dock(pose_at(1, 1, -5))  # position known to 0.05 m
            got[single, case, doubt_m] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
            priors[single, case] = m.prior
    assert all(got[None, c, 0.3] is None for c in ("alone", "another spot verifies", "wide prior"))  # off
    loc = got[0.25, "alone", 0.3]
    assert loc is not None and loc.kf_id == 0 and loc.searched == "prior" and 0.25 <= loc.confidence < 0.5
    # a weak match keeps the prior (misses reset) but never seeds it: the dock's 0.05 m grew by the drive
    assert priors[0.25, "alone"] is not None and priors[0.25, "alone"].sigma_m < OdometryConfig().seed_sigma_m
    assert got[0.25, "another spot verifies", 0.3] is None  # a second spot verifying at all: reason to doubt
    assert got[0.25, "the same spot verifies", 0.3].kf_id == 0  # within single_doubt_m: the same spot
    assert got[0.25, "wide prior", 0.3] is None  # the prior's position is less certain than agree_max_sigma_m
    # doubt only from spots further than single_doubt_m: the one 0.8 m away no longer doubts
    assert got[0.25, "another spot verifies", 1.0].kf_id == 0
    assert got[0.25, "alone", 1.0].kf_id == 0 and got[0.25, "wide prior", 1.0] is None
    with pytest.raises(ValueError, match="single_confidence must be in"):
        OdometryConfig(single_confidence=1.5)
    with pytest.raises(ValueError, match="single_doubt_m must be >= 0"):
        OdometryConfig(single_doubt_m=-0.1)


def test_one_position_seen_in_two_directions_is_not_ambiguous():
    a = Place(0)
    g, f = weaker(a.view(1), keep=60)
    got = {}
    for by_position in (False, True):
        for first in (45, -5):  # the experience 50 deg off the predicted heading stored first / last
            # a wide fit error so that both experiences' verifications imply the predicted heading,
            # and a dock heading known to 10 deg so that both are candidates (within 45 + 10 deg)
            odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_deg=10.0, conflict_by_position=by_position)
            m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                            verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
            for kf, yaw in enumerate((first, 40 - first)):
                m.add_experience(kf, *a.view(0), pose=pose_at(1.5, 1.5, yaw))
            m.dock(pose_at(1, 1, -5))
            got[by_position, first] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[False, 45] is None and got[False, -5] is None  # 50 deg apart: "another place", ambiguous
    # by position: one spot; the experience viewing along the predicted heading is reported
    assert got[True, 45].kf_id == 1 and got[True, -5].kf_id == 0


def test_a_weak_localization_moves_the_prior_toward_its_experience_and_shrinks_it():
    from types import SimpleNamespace

    from homeloc.runtime.longterm.odometry import next_prior

    prior = PosePrior(np.array([0.0, 0.0, 0.3]), 1.0, 10.0, misses=2)
    weak = SimpleNamespace(confidence=0.2, pose=pose_at(2.0, 0.0, 50)[:3], geometry=None)
    moved = next_prior(prior, weak, 0.5, OdometryConfig(seed_sigma_m=0.5))
    gain = 1.0 / (1.0 + 0.25)
    assert np.allclose(moved.pose, [2.0 * gain, 0.0, 0.3])  # the heading stays the prior's
    # the Kalman update: 1 / sigma'^2 = 1 / sigma^2 + 1 / seed_sigma_m^2
    assert moved.sigma_m == pytest.approx((1 / 1.0**2 + 1 / 0.5**2) ** -0.5)
    assert (moved.sigma_deg, moved.misses) == (10.0, 0)
    same = next_prior(prior, weak, 0.5, OdometryConfig(seed_sigma_m=0.5, recentre_shrinks=False))
    assert np.allclose(same.pose, moved.pose) and same.sigma_m == 1.0  # session 10: sigma kept
    kept = next_prior(prior, weak, 0.5, OdometryConfig(recentre=False))
    assert np.allclose(kept.pose, prior.pose) and kept.misses == 0
    assert next_prior(prior, None, 0.5, ODO) is None  # a third miss in a row: dropped, as before


def test_a_strict_localization_through_the_prior_is_fused_with_it_not_reseeded():
    """A prior surer than a seed keeps what it knew (fuse_strict): the seed at the experience is
    a measurement of it; a strict localization found without the prior still seeds."""
    from types import SimpleNamespace

    from homeloc.runtime.longterm.odometry import next_prior

    prior = PosePrior(np.array([0.0, 0.0, 0.0]), 0.1, 3.0, misses=1)
    geometry = SimpleNamespace(R=np.eye(3))  # the frame views as its experience: 10 deg
    strict = SimpleNamespace(
        confidence=0.9, pose=pose_at(0.8, 0.0, 10)[:3], geometry=geometry, searched="prior"
    )
    cfg = OdometryConfig(fuse_strict=True)
    fused = next_prior(prior, strict, 0.6, cfg)
    g = 0.1**2 / (0.1**2 + cfg.seed_sigma_m**2)
    h = 3.0**2 / (3.0**2 + cfg.seed_sigma_deg**2)
    assert np.allclose(fused.pose, [0.8 * g, 0.0, math.radians(10) * h])
    assert fused.sigma_m == pytest.approx((1 / 0.1**2 + 1 / cfg.seed_sigma_m**2) ** -0.5)
    assert fused.sigma_deg == pytest.approx((1 / 3.0**2 + 1 / cfg.seed_sigma_deg**2) ** -0.5)
    assert fused.misses == 0
    seed = (0.8, cfg.seed_sigma_m, cfg.seed_sigma_deg)
    for off in (OdometryConfig(fuse_strict=False), cfg):  # off, or found by the global search: seeds
        loc = strict if not off.fuse_strict else SimpleNamespace(**{**vars(strict), "searched": "rooms"})
        out = next_prior(prior, loc, 0.6, off)
        assert (out.pose[0], out.sigma_m, out.sigma_deg) == pytest.approx(seed)


def test_the_heading_of_a_verification_comes_from_a_rotation_only_fit():
    """A revisit from nearly its experience's spot: the essential matrix's R is ill-conditioned
    there, so the heading check reads the rotation fitted to all the verification's matches."""
    from homeloc.runtime.frontend import RelativePose
    from homeloc.runtime.longterm.agree import rotation_deg
    from homeloc.runtime.longterm.odometry import measured_rotation
    from homeloc.runtime.loop_closure.results import LoopClosure

    rng = np.random.default_rng(5)
    K = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    X = rng.uniform([-2, -1.5, 2], [2, 1.5, 5], (100, 3))
    a = math.radians(30)
    R = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    x0, x1 = X @ K.T, X @ R.T @ K.T
    x0, x1 = (x0[:, :2] / x0[:, 2:]).astype(np.float32), (x1[:, :2] / x1[:, 2:]).astype(np.float32)
    x1[:50] = rng.uniform([0, 0], [320, 240], (50, 2))  # half of the matches wrong
    d = unit(rng.normal(size=(100, 32)))
    f = Features(x0, np.linspace(1, 0.5, 100, dtype=np.float32), d, (240, 320))
    kf = Features(x1, np.ones(100, np.float32), d, (240, 320))
    wrong = np.eye(3)  # what a weak essential-matrix fit may return: "no turn"
    loop = LoopClosure(
        0, 1.0, 30, None, RelativePose("essential", np.eye(3), np.ones(30, bool), R=wrong), None, 0.1
    )
    assert rotation_deg(measured_rotation(f, kf, loop, VerifyConfig(), K, ODO), R) < 0.5
    assert measured_rotation(f, kf, loop, VerifyConfig(), K, OdometryConfig(rotation_px=None)) is wrong  # off
    assert measured_rotation(f, kf, loop, VerifyConfig(), None, ODO) is wrong  # no K: E's R
    few = Features(x0[:5], f.scores[:5], d[:5], (240, 320))
    assert measured_rotation(few, kf, loop, VerifyConfig(), K, ODO) is wrong  # too few matches
    with pytest.raises(ValueError, match="rotation_px"):
        OdometryConfig(rotation_px=0.0)


def test_a_weak_localization_corrects_the_priors_heading_by_the_rotation_it_measured():
    from types import SimpleNamespace

    from homeloc.runtime.longterm.odometry import next_prior

    prior = PosePrior(np.array([0.0, 0.0, 0.3]), 1.0, 10.0)
    weak = SimpleNamespace(confidence=0.2, pose=pose_at(0.0, 0.0, 50)[:3], geometry=None)
    implied = planar(weak.pose)[2]  # R = I: the frame views as its experience does (50 deg)
    cfg = OdometryConfig(fit_sigma_deg=20.0)
    out = next_prior(prior, weak, 0.5, cfg, np.eye(3))
    gain = 10.0**2 / (10.0**2 + 20.0**2)  # the measurement's error is the fit's own
    assert out.pose[2] == pytest.approx(0.3 + gain * (implied - 0.3))
    assert out.sigma_deg == pytest.approx((1 / 10.0**2 + 1 / 20.0**2) ** -0.5)  # the Kalman update
    # off, or no measured rotation: the heading and its sigma stay the prior's (session 11)
    off = OdometryConfig(fit_sigma_deg=20.0, recentre_heading=False)
    for kept in (next_prior(prior, weak, 0.5, off, np.eye(3)), next_prior(prior, weak, 0.5, cfg, None)):
        assert (kept.pose[2], kept.sigma_deg) == (0.3, 10.0)
    assert np.allclose(out.pose[:2], kept.pose[:2])  # the position update is the same either way
    strict = SimpleNamespace(confidence=0.9, pose=weak.pose, geometry=SimpleNamespace(R=np.eye(3)))
    seeded = next_prior(prior, strict, 0.5, cfg, np.eye(3))  # a strict one seeds, as before
    assert seeded.sigma_deg == cfg.seed_sigma_deg and seeded.pose[2] == pytest.approx(implied)


def test_a_weak_localization_with_sure_inliers_measures_the_heading_as_a_strict_one():
    from types import SimpleNamespace

    from homeloc.runtime.longterm.odometry import heading_sigma, next_prior

    prior = PosePrior(np.array([0.0, 0.0, 0.3]), 1.0, 10.0)
    pose = pose_at(0.0, 0.0, 50)[:3]
    implied = planar(pose)[2]
    cfg = OdometryConfig(fit_sigma_deg=20.0, seed_sigma_deg=5.0, sure_inliers=40)
    many, few = (SimpleNamespace(confidence=0.2, inliers=n, pose=pose, geometry=None) for n in (40, 39))
    assert heading_sigma(many, cfg) == 5.0 and heading_sigma(few, cfg) == 20.0
    off = OdometryConfig(fit_sigma_deg=20.0, sure_inliers=None)
    assert heading_sigma(many, off) == 20.0  # off: the fit's for every weak one
    assert heading_sigma(many, OdometryConfig(fit_sigma_deg=20.0)) == 20.0  # off by default (session 41)
    out = next_prior(prior, many, 0.5, cfg, np.eye(3))  # 32.8 deg off: within the gate's 33.5
    gain = 10.0**2 / (10.0**2 + 5.0**2)  # the measurement's error is a strict one's
    assert out.pose[2] == pytest.approx(0.3 + gain * (implied - 0.3))
    assert out.sigma_deg == pytest.approx((1 / 10.0**2 + 1 / 5.0**2) ** -0.5)
    weakly = next_prior(prior, few, 0.5, cfg, np.eye(3))  # under the floor: as before
    assert weakly.pose[2] == pytest.approx(0.3 + 10.0**2 / (10.0**2 + 20.0**2) * (implied - 0.3))
    assert np.allclose(out.pose[:2], weakly.pose[:2])  # the position update is the same either way
    # a sure fit implying a heading further than sure_gate_sigmas x hypot(10, 5) deg off: the fit's error
    gate = 3.0 * np.hypot(10.0, 5.0)
    assert heading_sigma(many, cfg, prior, 0.3 + np.radians(gate - 0.1)) == 5.0
    assert heading_sigma(many, cfg, prior, 0.3 - np.radians(gate + 0.1)) == 20.0
    far = next_prior(
        PosePrior(np.array([0.0, 0.0, implied - np.radians(40)]), 1.0, 10.0), many, 0.5, cfg, np.eye(3)
    )
    assert far.sigma_deg == pytest.approx((1 / 10.0**2 + 1 / 20.0**2) ** -0.5)
    with pytest.raises(ValueError, match="sure_inliers"):
        OdometryConfig(sure_inliers=3)
    with pytest.raises(ValueError, match="sure_gate_sigmas"):
        OdometryConfig(sure_gate_sigmas=-1.0)


def test_of_one_spots_views_the_one_nearest_the_priors_heading_is_reported():
    a = Place(0)
    g, f = weaker(a.view(1), keep=60)
    got = {}
    for by_heading, by_place in ((False, False), (True, False), (False, True)):
        # both verify with the predicted heading (a wide fit error); the view 20 deg off the
        # predicted heading (-5 deg) lies 3 cm nearer the predicted position (1.54, 1.45). Both lie
        # within the frame's place; the box's probability (nearest_place) ranks the one along the
        # predicted heading first, the least cost only with the heading
        odo = OdometryConfig(
            fit_sigma_deg=40.0, dock_sigma_deg=10.0, nearest_heading=by_heading, nearest_place=by_place
        )
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.5, 1.5, 15))
        m.add_experience(1, *a.view(0), pose=pose_at(1.46, 1.5, -5))
        m.dock(pose_at(1, 1, -5))
        got[by_heading, by_place] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[False, False].kf_id == 0 and got[True, False].kf_id == 1 and got[False, True].kf_id == 1
    assert got[True, False].searched == "prior"


def test_the_nearest_experience_weighs_its_view_direction_by_how_revisits_spread():
    """An experience's heading is not the frame's (a spot is revisited from directions ~20 deg
    apart): at the predicted position viewing 25 deg off, it is nearer than one 0.25 m away
    viewing along the predicted heading, unless the prior's few degrees alone weigh the heading
    (positions weighed by the prior's sigma alone: ``view_sigma_m`` 0)."""
    a = Place(0)
    g, f = weaker(a.view(1), keep=60)
    got = {}
    for view in (0.0, OdometryConfig().view_sigma_deg):
        odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_deg=10.0, view_sigma_deg=view, view_sigma_m=0.0,
                             nearest_place=False)  # the least cost: both lie within the frame's place  # fmt: skip
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.54, 1.45, 20))  # predicted: (1.54, 1.45), -5 deg
        m.add_experience(1, *a.view(0), pose=pose_at(1.79, 1.45, -5))
        m.dock(pose_at(1, 1, -5))
        got[view] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[0.0].kf_id == 1 and got[20.0].kf_id == 0 and got[20.0].searched == "prior"
    with pytest.raises(ValueError, match="view_sigma_deg must be >= 0"):
        OdometryConfig(view_sigma_deg=-1.0)


def test_the_nearest_experience_weighs_its_position_by_how_revisits_spread():
    """An experience's position is not the frame's either (keyframes stand apart along a patrol):
    under a prior known to centimetres, a view 30 deg off the predicted heading 0.1 m from the
    predicted position is nearer than one 0.4 m away viewing along it, unless revisits spread by
    ``view_sigma_m``; then the view direction decides."""
    a = Place(0)
    g, f = weaker(a.view(1), keep=60)
    got = {}
    for spread in (0.0, 0.44):
        odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_deg=10.0, view_sigma_m=spread,
                             nearest_place=False)  # the least cost: both lie within the frame's place  # fmt: skip
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        m.add_experience(0, *a.view(0), pose=pose_at(1.54, 1.55, 25))  # predicted: (1.54, 1.45), -5 deg
        m.add_experience(1, *a.view(0), pose=pose_at(1.94, 1.45, -5))
        m.dock(pose_at(1, 1, -5))
        assert m.prior.sigma_m < 0.1
        got[spread] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[0.0].kf_id == 0 and got[0.44].kf_id == 1 and got[0.44].searched == "prior"
    with pytest.raises(ValueError, match="view_sigma_m must be >= 0"):
        OdometryConfig(view_sigma_m=-1.0)


def test_a_weaker_view_of_the_place_nearer_the_prior_is_reported():
    """A strong match settles the place; among the views of it that verified with the predicted
    heading, the one nearest the prior is reported (session 27), unless it lies at another place."""
    a = Place(0)
    got = {}
    for weak_too, radii in ((False, 2.0), (True, 2.0), (True, 1.0)):
        odo = OdometryConfig(
            fit_sigma_deg=40.0, dock_sigma_deg=10.0, nearest_weak=weak_too, conflict_radii=radii
        )
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        # predicted: (1.54, 1.45), -5 deg; 18 inliers at ~0.15 is below the verifier's inlier floor
        m.add_experience(0, *weaker(a.view(0), keep=15), pose=pose_at(1.04, 1.45, -5))  # weak, 0.5 m
        m.add_experience(1, *weaker(a.view(0), keep=60), pose=pose_at(2.49, 1.45, -5))  # strong, 0.95 m
        m.dock(pose_at(1, 1, -5))
        got[weak_too, radii] = m.observe(*a.view(1), motion=(0.5, 0.5, 0.0)).localization
    assert got[False, 2.0].kf_id == 1 and got[False, 2.0].searched == "prior"
    weak = got[True, 2.0]
    assert weak.kf_id == 0 and weak.searched == "prior" and weak.inliers < VerifyConfig().min_inliers
    assert got[True, 1.0].kf_id == 1  # 1.45 m from the strong one: beyond one radius, another place


def test_the_cross_check_trusts_a_strict_localization_elsewhere_over_a_weak_one_near_the_prior():
    seed_place, b = Place(1), Place(0)
    got = {}
    for check in (False, True):
        m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=OdometryConfig(cross_check=check, strict_gate_sigmas=None),  # 20 m: beyond the gate
                        learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        g, f = weaker(b.view(0), keep=60)  # a lookalike by the prior, retrieved less well than b itself
        g = unit(g + 0.3 * unit(np.random.default_rng(5).standard_normal(g.shape)))
        m.add_experience(1, g, f, pose=pose_at(1.5, 1.5))
        m.add_experience(2, *b.view(0), pose=pose_at(21, 1))  # where the robot really is, in room 2
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0  # strict: seeds the prior
        # carried to place b unseen: the odometry says it barely moved
        got[check] = (m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization, m.prior)
    loc, _ = got[False]
    assert loc.kf_id == 1 and loc.searched == "prior" and loc.confidence < 0.95  # the weak, wrong one
    loc, prior = got[True]
    assert loc.kf_id == 2 and loc.searched != "prior" and loc.confidence >= 0.95
    np.testing.assert_allclose(prior.pose[:2], [21, 1], atol=1e-6)  # the prior seeded anew there


def _carried_map(odo: OdometryConfig, strict_pose: np.ndarray) -> tuple[LongTermMap, Place]:
    """A map (strict score 0.95) whose prior was seeded at place 1's experience (0); place b's view
    is stored twice: weakened and retrieved less well near the prior (1), as it is at
    ``strict_pose`` (2). The robot then observes b (``b.view(...)``), odometry saying it barely moved."""
    seed_place, b = Place(1), Place(0)
    m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                    odometry=odo, learn=False)  # fmt: skip
    m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
    g, f = weaker(b.view(0), keep=60)
    g = unit(g + 0.3 * unit(np.random.default_rng(5).standard_normal(g.shape)))
    m.add_experience(1, g, f, pose=pose_at(1.5, 1.5))
    m.add_experience(2, *b.view(0), pose=strict_pose)
    assert m.observe(*seed_place.view(1)).localization.kf_id == 0  # strict: seeds the prior
    return m, b


def test_the_cross_check_overrules_a_weak_localization_only_beyond_its_radii():
    """A strict match 1.5 m from the weak localization (facing away, so not among the prior's
    candidates) is another place at one place radius and the same place at two; with
    ``cross_check_doubt`` it makes the frame ambiguous."""
    got = {}
    for radii, doubt in ((1.0, False), (2.0, False), (2.0, True)):
        odo = OdometryConfig(cross_check_radii=radii, cross_check_doubt=doubt)
        m, b = _carried_map(odo, pose_at(3.0, 1.5, 180))
        got[radii, doubt] = (m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization, m.prior)
    loc, _ = got[1.0, False]
    assert loc.kf_id == 2 and loc.searched != "prior" and loc.confidence >= 0.95
    loc, prior = got[2.0, False]
    assert loc.kf_id == 1 and loc.searched == "prior" and loc.confidence < 0.95 and prior is not None
    assert got[2.0, True] == (None, None)  # doubt: slipped odometry or the spot driven past
    with pytest.raises(ValueError, match="cross_check_radii must be > 0"):
        OdometryConfig(cross_check_radii=0.0)


def test_the_cross_check_overrules_only_with_a_view_taken_where_its_experience_was():
    """With ``cross_check_colocated`` a strict match elsewhere overrules the weak localization
    only when a rotation explains enough of its inliers (the frame was taken at that experience's
    spot): b's own view does (a rotation explains all), b's second view, taken from elsewhere
    (parallax: a rotation explains 0.43 of its inliers), does not at 0.6."""
    got = {}
    for frame, share in ((1, None), (1, 0.6), (0, 0.6), (1, 0.3)):
        # 20 m from the prior: beyond strict_gate_sigmas, off here (the cross-check alone)
        m, b = _carried_map(
            OdometryConfig(cross_check_colocated=share, strict_gate_sigmas=None), pose_at(21, 1)
        )
        got[frame, share] = m.observe(*b.view(frame), motion=(0.1, 0.0, 0.0)).localization
    assert got[1, None].kf_id == 2 and got[1, None].searched != "prior"  # any strict match overrules
    # seen from elsewhere along the line of sight: the weak one stands
    assert got[1, 0.6].kf_id == 1 and got[1, 0.6].searched == "prior"
    assert got[0, 0.6].kf_id == 2 and got[0, 0.6].searched != "prior"  # taken at b's spot
    assert got[1, 0.3].kf_id == 2  # 0.43 of the inliers is enough at 0.3
    with pytest.raises(ValueError, match="cross_check_colocated must be >= 0 or None"):
        OdometryConfig(cross_check_colocated=-0.1)
    f, kf, v = b.view(1)[1], b.view(0)[1], VerifyConfig()
    check = OdometryConfig(cross_check_colocated=0.6)
    assert not colocated(f, kf, 150, v, b.K, check)
    assert colocated(f, kf, 150, v, None, check)  # no K: no check
    assert colocated(f, kf, 150, v, b.K, OdometryConfig(cross_check_colocated=0.6, rotation_px=None))


def test_the_cross_check_leaves_a_spot_where_another_experience_verified_strictly():
    """The nearest experience of a spot is reported even when weak; when another accepted one of
    the spot verified strictly, a strict match elsewhere does not overrule it (session 26)."""
    b = Place(0)
    got = {}
    for strongest in (False, True):
        odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_deg=10.0, cross_check_strongest=strongest,
                             strict_gate_sigmas=None)  # room 2 lies beyond the gate: the cross-check alone  # fmt: skip
        m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=odo, learn=False)  # fmt: skip
        g, f = weaker(b.view(0), keep=60)
        g = unit(g + 0.3 * unit(np.random.default_rng(5).standard_normal(g.shape)))
        m.add_experience(0, g, f, pose=pose_at(1.54, 1.45))  # weak, at the predicted position
        m.add_experience(1, *b.view(0), pose=pose_at(2.44, 1.45))  # strict, 0.9 m on: the same spot
        m.add_experience(2, *b.view(0), pose=pose_at(21, 1))  # strict too, in room 2
        m.dock(pose_at(1, 1, -5))
        got[strongest] = m.observe(*b.view(1), motion=(0.5, 0.5, 0.0)).localization
    assert got[False].kf_id == 2 and got[False].searched != "prior"  # overruled by room 2
    assert got[True].kf_id == 0 and got[True].searched == "prior" and got[True].confidence < 0.95


def test_the_cross_check_keeps_a_weak_localization_the_strict_search_confirms():
    seed_place, a = Place(1), Place(0)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                    odometry=OdometryConfig(cross_check=True), learn=False)  # fmt: skip
    m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
    m.add_experience(1, *a.view(0), pose=pose_at(1.5, 1.5))
    m.add_experience(2, *weaker(a.view(0), keep=60), pose=pose_at(1.6, 1.5))  # same place, 0.1 m away
    assert m.observe(*seed_place.view(1)).localization.kf_id == 0
    m.observe(*seed_place.view(1))  # the prior stays at the seed
    loc = m.observe(*weaker(a.view(1), keep=60), motion=(0.5, 0.5, 0.0)).localization
    assert loc is not None and loc.searched == "prior"  # the strict search found nothing elsewhere


def test_the_cross_check_verifies_only_places_retrieved_better_than_the_weak_one():
    seed_place, b = Place(1), Place(0)
    m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                    odometry=OdometryConfig(cross_check=True), learn=False)  # fmt: skip
    m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
    m.add_experience(1, *weaker(b.view(0), keep=60), pose=pose_at(1.5, 1.5))  # the frame's own descriptor
    g, f = b.view(0)
    m.add_experience(
        2, unit(g + 0.3 * unit(np.random.default_rng(5).standard_normal(g.shape))), f, pose=pose_at(21, 1)
    )
    assert m.observe(*seed_place.view(1)).localization.kf_id == 0
    loc = m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization
    assert loc.kf_id == 1 and loc.searched == "prior"  # b looks less like the frame: not verified


def test_a_robot_that_stood_still_by_its_odometry_must_see_what_it_saw():
    seed_place, b = Place(1), Place(0)
    got = {}
    for still in (None, 0.05):
        m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=OdometryConfig(cross_check=False, still_m=still), learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(1, *weaker(b.view(0), keep=60), pose=pose_at(1.5, 1.5))  # a lookalike by the prior
        m.add_experience(2, *b.view(0), pose=pose_at(21, 1))  # where the robot is carried to, in room 2
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0  # strict: seeds the prior
        loc = m.observe(*seed_place.view(1), motion=(0.0, 0.0, 0.0)).localization  # it stood still
        assert loc.kf_id == 0 and m.prior is not None
        # carried to place b: the wheels did not turn
        got[still] = m.observe(*b.view(1), motion=(0.0, 0.0, 0.0)).localization
    assert got[None].kf_id == 1 and got[None].searched == "prior"  # the weak, wrong one by the old spot
    assert got[0.05].kf_id == 2 and got[0.05].searched != "prior"  # the prior dropped: the strict search
    # just docked, no frame since to compare with: with still_at_dock (the default since session 30)
    # the claim stands when the frame localizes through the dock's prior to an experience of the
    # dock's spot (within agree_radius_m, 0.3 m) that a rotation explains (b's second view against
    # its first: 0.43 of the inliers) with the dock's heading, else (0.6 needed, the experience 0.4 m
    # from the dock, the dock facing 30 deg away, or the option off) the prior is dropped as for a
    # robot carried off its dock
    cases = (
        (False, 0.33, 1.5, 0),
        (True, 0.33, 1.5, 0),
        (True, 0.6, 1.5, 0),
        (True, 0.33, 1.9, 0),
        (True, 0.33, 1.5, 30),
    )
    for at_dock, share, y, yaw in cases:
        m.odometry_config = replace(m.odometry_config, still_at_dock=at_dock, cross_check_colocated=share)
        m.dock(pose_at(1.5, y, yaw))
        got[at_dock, share, y, yaw] = m.observe(*b.view(1), motion=(0.0, 0.0, 0.0)).localization, m.prior
    for key in cases[:1] + cases[2:]:
        loc, _ = got[key]
        assert loc.kf_id == 2 and loc.searched != "prior", key  # the prior dropped: the strict search
    loc, prior = got[True, 0.33, 1.5, 0]
    assert loc.kf_id == 1 and loc.searched == "prior" and prior is not None  # the dock's prior kept
    m.dock(pose_at(1.5, 1.5))
    loc = m.observe(*weaker(b.view(1), keep=60), motion=(0.5, 0.5, 0.0)).localization  # drove off it
    assert loc is not None and loc.kf_id == 1 and loc.searched == "prior"
    o = OdometryConfig()
    from homeloc.runtime.longterm.odometry import claims_still

    assert claims_still((0.0, 0.0, 0.0), o) and claims_still((0.03, 0.02, math.radians(1.5)), o)
    assert not claims_still((0.1, 0.0, 0.0), o) and not claims_still((0.0, 0.0, math.radians(3)), o)
    assert not claims_still((0.0, 0.0, 0.0, 0.5, 0.0), o)  # it drove 0.5 m and came back
    assert not claims_still((0.0, 0.0, 0.0), OdometryConfig(still_m=None))
    with pytest.raises(ValueError, match="still_m must be"):
        OdometryConfig(still_m=-1.0)


def test_a_robot_that_stood_still_must_see_what_it_saw_from_the_same_spot_with_still_share():
    """``OdometryConfig.still_share``: the frame must also see the previous one from the same spot, a
    rotation-only fit explaining that share of the inliers; a robot carried along its line of sight
    sees the same things with parallax (b's second view against its first: 0.43 of the inliers)."""
    from homeloc.runtime.longterm.odometry import sees_again

    b = Place(0)
    (_, f0), (_, f1) = b.view(0), b.view(1)
    v = VerifyConfig(min_confidence=0.95)
    for share, moved, still in (
        (None, True, True),
        (0.33, True, True),
        (0.6, False, True),
        (3.0, False, False),
    ):
        o = OdometryConfig(still_share=share)
        assert sees_again(f1, f0, v, b.K, o) is moved, share  # both verify strictly (0.98, 150 inliers)
        assert sees_again(f0, f0, v, b.K, o) is still, share  # the same view: a rotation explains all
    # no K: no fit, the verification alone
    assert sees_again(f1, f0, v, None, OdometryConfig(still_share=0.6))
    assert not sees_again(weaker(b.view(0), keep=60)[1], f0, v, b.K)  # under the strict score
    with pytest.raises(ValueError, match="still_share must be"):
        OdometryConfig(still_share=-0.1)


def test_a_weak_localization_reports_no_experience_beyond_the_narrower_weak_gate():
    """Below the strict score, an experience further than ``radius_m + weak_gate_sigmas * sigma_m``
    from the predicted position is not reported (session 30); within it, or with the option off, it is."""
    a = Place(0)
    odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_m=0.3, dock_sigma_deg=10.0)
    motion = (0.5, 0.5, 0.0)
    predicted = PosePrior.docked(pose_at(1, 1, -5), odo).moved(motion, odo)
    assert 0.3 < predicted.sigma_m < 0.35  # candidates within 1.3-1.35 m, weak ones within 1.15-1.18 m at 0.5
    got = {}
    for gate, off_m in itertools.product((None, 0.5), (1.05, 1.25)):
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=replace(odo, weak_gate_sigmas=gate))  # fmt: skip
        x, y = predicted.pose[:2]
        m.add_experience(0, *weaker(a.view(0), keep=60), pose=pose_at(x + off_m, y, -5))
        m.dock(pose_at(1, 1, -5))
        got[gate, off_m] = m.observe(*a.view(1), motion=motion).localization
    for key in ((None, 1.05), (None, 1.25), (0.5, 1.05)):
        loc = got[key]
        assert loc is not None and loc.kf_id == 0 and loc.searched == "prior", key
        assert loc.confidence < 0.95  # weak: no strict verification supports it
    assert got[0.5, 1.25] is None
    with pytest.raises(ValueError, match="weak_gate_sigmas"):
        OdometryConfig(weak_gate_sigmas=-1.0)


def test_a_strict_match_far_beyond_a_holding_prior_is_not_taken_until_the_prior_is_dropped():
    """``strict_gate_sigmas`` (session 30): while the prior holds, neither the global search nor the
    cross-check accepts a strict localization beyond ``radius_m + strict_gate_sigmas * sigma_m`` of
    the predicted position; once ``max_misses`` frames in a row have not localized, the prior is
    dropped and the global search takes it."""
    seed_place, b = Place(1), Place(0)
    got = {}
    for gate in (None, 8.0):
        m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=OdometryConfig(strict_gate_sigmas=gate), learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(2, *b.view(0), pose=pose_at(21, 1))  # a lookalike 20 m away, in room 2
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0  # strict: seeds the prior
        got[gate] = [m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization for _ in range(4)]
    assert [loc.kf_id for loc in got[None]] == [2, 2, 2, 2]  # the lookalike, at once
    assert got[8.0][:3] == [None, None, None]  # the prior (sigma ~0.5 m) holds: 20 m is beyond 5 m
    assert got[8.0][3].kf_id == 2 and got[8.0][3].searched != "prior"  # dropped after 3 misses
    # the cross-check: a strict match beyond the gate does not overrule a weak localization near the
    # prior, nor does the weak one stand against it: neither is taken, until the prior is dropped
    for gate in (None, 8.0):
        m, b = _carried_map(replace(ODO, strict_gate_sigmas=gate), pose_at(21, 1))
        got[gate] = [m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization for _ in range(4)]
    assert [loc.kf_id for loc in got[None]] == [2, 2, 2, 2]
    assert got[8.0][:3] == [None, None, None] and got[8.0][3].kf_id == 2
    prior = PosePrior(np.array([1.0, 1.0, 0.0]), 0.5, 5.0)
    assert in_gate(prior, pose_at(5, 1), 1.0, 8.0) and not in_gate(prior, pose_at(5.1, 1), 1.0, 6.0)
    assert in_gate(prior, np.full((3, 4), np.nan), 1.0, 0.0)  # no pose: nothing to tell
    assert in_gate(None, pose_at(50, 1), 1.0, 0.0) and in_gate(prior, pose_at(50, 1), 1.0, None)


def _tilted(x, y, yaw_deg, tilt_deg):
    """pose_at, the camera pitched down by ``tilt_deg`` about its own x axis."""
    t = np.radians(tilt_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    T = pose_at(x, y, yaw_deg)
    T[:3, :3] = T[:3, :3] @ pitch
    return T


def test_a_planar_pose_is_mounted_with_the_cameras_height_and_tilt():
    from homeloc.runtime.longterm.odometry import mounted

    mount = _tilted(5.0, -2.0, 70, 12)
    np.testing.assert_allclose(mounted(planar(mount), mount), mount, atol=1e-12)  # its own pose back
    p = np.array([1.0, 2.0, math.radians(-30)])
    T = mounted(p, mount)
    np.testing.assert_allclose(planar(T), p, atol=1e-12)
    assert T[2, 3] == mount[2, 3] and np.allclose(T[:3, :3].T @ T[:3, :3], np.eye(3))
    assert T[2, 2] == pytest.approx(mount[2, 2])  # the optical axis dips as much: the tilt is kept


def test_without_a_pose_a_new_experience_is_filed_where_the_prior_puts_the_robot():
    a, b, c = Place(0), Place(1), Place(2)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), odometry=ODO)
    mount = _tilted(9.0, 9.0, 45, 10)  # the camera's mounting: where it is says nothing here
    assert m.belief(mount) is None  # no prior yet
    m.dock(pose_at(1, 1))
    u = m.observe(*a.view(0), motion=(0.5, 0.0, math.radians(20)), mount=mount, kf_id=5)
    assert u.added == 5 and u.localization is None  # an empty map: nothing to localize against
    filed = m.experience(5)["pose"]
    np.testing.assert_allclose(planar(filed), [1.5, 1.0, math.radians(20)], atol=1e-9)
    np.testing.assert_allclose(filed, m.belief(mount)[:3], atol=1e-12)
    assert filed[2, 3] == pytest.approx(0.8) and filed[2, 2] == pytest.approx(mount[2, 2])
    # a given pose wins over the belief
    m.observe(*b.view(0), pose=pose_at(3, 3), motion=(0.1, 0.0, 0.0), mount=mount, kf_id=6)
    np.testing.assert_allclose(m.experience(6)["pose"], pose_at(3, 3)[:3])
    # kidnapped (motion unknown) and nothing verifies: the robot does not know where it is
    u = m.observe(*c.view(0), motion=None, mount=mount, kf_id=7)
    assert u.added == 7 and m.prior is None and np.isnan(m.experience(7)["pose"]).all()


def test_a_strict_match_facing_where_a_holding_prior_rules_out_is_not_taken():
    """``strict_heading_sigmas`` (session 34): while the prior holds, the global search's strict
    localization is taken only when the heading it implies is within ``strict_heading_sigmas`` x
    hypot(the prior's heading sigma, ``fit_sigma_deg``) of the predicted one."""
    seed_place, b = Place(1), Place(0)
    got = {}
    for sigmas in (None, 3.0):
        odo = OdometryConfig(strict_heading_sigmas=sigmas)
        m = LongTermMap(K=b.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(min_confidence=0.95),
                        odometry=odo, learn=False)  # fmt: skip
        m.add_experience(0, *seed_place.view(0), pose=pose_at(1, 1))
        m.add_experience(2, *b.view(0), pose=pose_at(1.3, 1, 90))  # a step away, viewing 90 deg off
        assert m.observe(*seed_place.view(1)).localization.kf_id == 0  # strict: seeds the prior (heading ~0)
        got[sigmas] = [m.observe(*b.view(1), motion=(0.1, 0.0, 0.0)).localization for _ in range(4)]
    assert [loc.kf_id for loc in got[None]] == [2, 2, 2, 2]  # within the position gate: taken at once
    assert got[3.0][:3] == [None, None, None]  # the heading contradicts the prior: misses
    assert got[3.0][3].kf_id == 2  # dropped after 3 misses: the global search takes it
    prior = PosePrior(np.array([1.0, 1.0, 0.0]), 0.5, 5.0)
    on = OdometryConfig()  # the default, 3: 3 x hypot(5, 20) = 61.8 deg
    assert prior.heading_contradicts(pose_at(1, 1, 65), np.eye(3), on)
    assert not prior.heading_contradicts(pose_at(1, 1, 55), np.eye(3), on)
    assert not prior.heading_contradicts(pose_at(1, 1, 90), None, on)  # no rotation: nothing to tell
    off = OdometryConfig(strict_heading_sigmas=None)
    assert not prior.heading_contradicts(pose_at(1, 1, 90), np.eye(3), off)
    with pytest.raises(ValueError, match="strict_heading_sigmas"):
        OdometryConfig(strict_heading_sigmas=-1.0)

"""The probability that the frame stands within one place of an experience (runtime.longterm.within)
and the experience the prior reports by it (OdometryConfig.nearest_place)."""

import math

import numpy as np
import pytest

from homeloc.runtime.longterm import LongTermMap, OdometryConfig, PlaceConfig
from homeloc.runtime.longterm.odometry import compose, planar
from homeloc.runtime.longterm.within import p_within_angle, p_within_radius
from homeloc.runtime.loop_closure import VerifyConfig
from tests.runtime.test_longterm import ROOMS, Place, pose_at
from tests.runtime.test_longterm_odometry import weaker


def test_the_disc_probability_is_the_rice_cdf():
    # centred: 1 - exp(-r^2 / 2 sigma^2), the Rayleigh CDF (the grid holds it to 1e-3)
    assert p_within_radius([0.0], 1.0, 0.5)[0] == pytest.approx(1 - math.exp(-2.0), abs=1e-3)
    # off centre, against a Monte Carlo of the plane's Gaussian (400,000 draws: +- 0.002)
    rng = np.random.default_rng(0)
    for d, s in ((0.8, 0.24), (1.1, 0.23), (0.96, 0.05), (2.0, 0.6)):
        x = rng.standard_normal((400_000, 2)) * s + [d, 0.0]
        assert p_within_radius([d], 1.0, s)[0] == pytest.approx(np.mean(np.hypot(*x.T) <= 1.0), abs=0.004)
    p = p_within_radius(np.linspace(0, 3, 31), 1.0, 0.3)
    assert np.all(np.diff(p) <= 1e-12) and p[0] > 0.99 and p[-1] < 1e-6  # falls with the distance
    assert list(p_within_radius([0.99, 1.01], 1.0, 0.0)) == [1.0, 0.0]  # a belief without spread


def test_the_angle_probability_is_the_normal_share_of_the_tolerance():
    phi = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    assert p_within_angle([45.5], 45.0, 2.5)[0] == pytest.approx(phi(-0.2) - phi(-36.2), abs=1e-9)
    assert p_within_angle([0.0], 45.0, 20.0)[0] == pytest.approx(2 * phi(2.25) - 1, abs=1e-9)
    assert list(p_within_angle([44.0, 46.0], 45.0, 0.0)) == [1.0, 0.0]


def test_the_experience_most_probably_in_the_frames_place_is_reported():
    """Two experiences of one spot verify with the predicted heading: one 1.03 m from the predicted
    position viewing along the predicted heading (outside the place's 1 m), one 0.8 m away turned 35
    deg (inside both the radius and the 45 deg). The least cost (an ellipse, 0.44 m ~ 20 deg)
    reports the first; the probability of the place's box, the second."""
    a = Place(0)
    g, f = weaker(a.view(1), keep=60)
    p = compose(planar(pose_at(1, 1, -5)), (0.5, 0.5, 0.0))  # the predicted pose
    ahead = np.array([math.cos(p[2]), math.sin(p[2])])
    side = np.array([-ahead[1], ahead[0]])
    got = {}
    for by_place in (False, True):
        odo = OdometryConfig(fit_sigma_deg=40.0, dock_sigma_deg=10.0, nearest_place=by_place)
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), learn=False,
                        verify=VerifyConfig(min_confidence=0.95), odometry=odo)  # fmt: skip
        out = p[:2] + 1.03 * side
        inside = p[:2] - 0.8 * side
        m.add_experience(0, *a.view(0), pose=pose_at(*out, math.degrees(p[2])))
        m.add_experience(1, *a.view(0), pose=pose_at(*inside, math.degrees(p[2]) + 35))
        m.dock(pose_at(1, 1, -5))
        got[by_place] = m.observe(g, f, motion=(0.5, 0.5, 0.0)).localization
    assert got[False].kf_id == 0 and got[True].kf_id == 1 and got[True].searched == "prior"
    # an option, off by default: session 45's replays (docs/longterm_history.md, "Session 45")
    assert OdometryConfig().nearest_place is False

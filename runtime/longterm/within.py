"""How probable it is that the frame stands within one place of an experience, under a Gaussian
belief of its pose: pure functions (numpy, no scipy on the robot).

A place is a box, not an ellipse: an experience is the frame's place when its camera centre lies
within ``PlaceConfig.radius_m`` of the frame's AND its view direction within
``PlaceConfig.angle_deg`` (the evaluator's judge uses the same tolerance). Ranking experiences by
a quadratic distance from the predicted pose trades position for heading, so it can prefer a view
1.05 m away facing the predicted way to one 0.8 m away turned 25 deg, which lies in the box and the
other does not. The probability of the box ranks them as the place defines them
(``OdometryConfig.nearest_place``, an option; docs/longterm_history.md, "Session 45").
"""

from __future__ import annotations

import math

import numpy as np

# the belief's standard normal, sampled on a fixed grid (in its sigmas): resolution 1/40 sigma,
# so the result holds for a belief of any width, centimetres or metres
_Z = np.linspace(-8.0, 8.0, 641)
_PHI = np.exp(-0.5 * _Z**2) / math.sqrt(2.0 * math.pi)
_ERF = np.frompyfunc(math.erf, 1, 1)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _ERF(np.asarray(x, np.float64) / math.sqrt(2.0)).astype(np.float64))


def p_within_radius(d, radius: float, sigma: float) -> np.ndarray:
    """P(|x - e| <= ``radius``) for x ~ N(mu, ``sigma``^2 I) in the plane, per distance ``d`` =
    |mu - e| (metres; array). sigma 0: whether d <= radius. Integrated along the line through mu
    and e: the belief's slice at u times the chord of the disc there (to 1e-3: enough to rank)."""
    d = np.atleast_1d(np.asarray(d, np.float64))
    if sigma <= 0:
        return (d <= radius).astype(np.float64)
    u = d[:, None] + sigma * _Z[None, :]  # offsets along the line from e
    half = np.sqrt(np.clip(radius**2 - u**2, 0.0, None))  # half the chord at u (0 outside)
    across = 2.0 * _normal_cdf(half / sigma) - 1.0  # the belief's share of the chord
    p = np.trapezoid(_PHI[None, :] * across, _Z, axis=1)
    return np.clip(p, 0.0, 1.0)


def p_within_angle(delta_deg, angle_deg: float, sigma_deg: float) -> np.ndarray:
    """P(|h - a| <= ``angle_deg``) for a heading h ~ N(predicted, ``sigma_deg``^2), per difference
    ``delta_deg`` = |predicted - a| (degrees; array). sigma 0: whether delta <= angle_deg."""
    delta = np.atleast_1d(np.asarray(delta_deg, np.float64))
    if sigma_deg <= 0:
        return (delta <= angle_deg).astype(np.float64)
    p = _normal_cdf((angle_deg - delta) / sigma_deg) - _normal_cdf((-angle_deg - delta) / sigma_deg)
    return np.clip(p, 0.0, 1.0)

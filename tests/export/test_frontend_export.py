"""python -m homeloc.export.frontend: one graph (logits, descriptors, global), int8, parity, ship."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from homeloc.export import frontend as fe
from homeloc.export.onnx_export import read_metadata
from homeloc.models.global_head import GlobalHead
from homeloc.models.keypoints import KeypointNet


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("frontend_export")
    torch.manual_seed(0)
    KeypointNet("tiny").save(out / "kp.pt")
    GlobalHead(16, 4, 8).save(out / "head.pt")
    net, info = fe.build(out / "kp.pt", out / "head.pt")
    paths = fe.export(net, info, out / "exp", ["skimage"], num=2)
    return out, net, paths


def test_one_graph_three_outputs_and_metadata(exported):
    out, net, paths = exported
    s = ort.InferenceSession(str(paths["int8"]), providers=["CPUExecutionProvider"])
    assert [o.name for o in s.get_outputs()] == ["logits", "descriptors", "global"]
    x = np.random.default_rng(0).random((1, 1, 48, 64), dtype=np.float32)
    logits, desc, g = s.run(None, {"image": x})
    assert logits.shape == (1, 65, 6, 8) and desc.shape == (1, 16, 6, 8) and g.shape == (1, 8)
    meta = read_metadata(paths["int8"])
    assert meta["homeloc.kind"] == "keypoints" and meta["homeloc.global_dim"] == "8"
    assert meta["homeloc.precision"] == "int8" and meta["homeloc.outputs"] == "logits,descriptors,global"
    assert meta["homeloc.weights_sha256"] != meta["homeloc.keypoints_weights_sha256"]
    report = fe.parity(net, paths["fp32"], paths["int8"], None, [x])
    assert report["global_cosine_fp32_vs_torch_min"] > 0.9999
    assert report["logits_max_abs_diff_vs_keypoints_int8"] is None  # no reference given


def test_fp32_only_and_ship(exported, tmp_path):
    out, net, paths = exported
    only = fe.export(net, fe.build(out / "kp.pt", out / "head.pt")[1], tmp_path / "fp32", ["skimage"], num=0)
    assert only["int8"] is None and only["fp32"].is_file()
    (paths["fp32"].parent / "parity.json").write_text("{}")
    (paths["fp32"].parent / "parity.md").write_text("#")
    assets = tmp_path / "assets"
    assets.mkdir()
    entry = fe.ship(paths["fp32"].parent, out / "head.pt", assets)
    manifest = json.loads((assets / "MANIFEST.json").read_text())
    assert manifest["frontend"] == entry
    assert {"frontend.int8.onnx", "frontend.fp32.onnx", "frontend_head.pt"} <= set(entry["files"])
    assert GlobalHead.from_checkpoint(assets / "frontend_head.pt").out_dim == 8


def test_cli_names_a_missing_head(tmp_path, capsys):
    with pytest.raises(SystemExit):
        fe.main(["--head", str(tmp_path / "nope.ckpt")])
    assert "nope.ckpt: no such file" in capsys.readouterr().err


def test_grid_head_exports_with_dynamic_size(tmp_path):
    torch.manual_seed(0)
    KeypointNet("tiny").save(tmp_path / "kp.pt")
    head = GlobalHead(16, 4, 8, grid=(2, 4), grid_dim=6)
    head.fit_grid(head.grid_cells(torch.nn.functional.normalize(torch.randn(20, 16, 6, 8), dim=1)))
    head.save(tmp_path / "head.pt")
    net, info = fe.build(tmp_path / "kp.pt", tmp_path / "head.pt")
    paths = fe.export(net, info, tmp_path / "exp", ["skimage"], num=0)
    s = ort.InferenceSession(str(paths["fp32"]), providers=["CPUExecutionProvider"])
    assert read_metadata(paths["fp32"])["homeloc.global_dim"] == "14"
    for h, w in ((48, 64), (24, 80)):  # another size: the grid bins follow the map's size
        x = np.random.default_rng(h).random((1, 1, h, w), dtype=np.float32)
        with torch.no_grad():
            want = net(torch.from_numpy(x))[2].numpy()
        np.testing.assert_allclose(s.run(["global"], {"image": x})[0], want, atol=1e-5)


def test_ship_carries_the_grid_branch_provenance(exported, tmp_path):
    out, net, paths = exported
    base_run = tmp_path / "base_run"
    (base_run / "csv" / "version_0").mkdir(parents=True)
    (base_run / "csv" / "version_0" / "config.yaml").write_text("model: {}\n")
    (base_run / "checkpoints").mkdir()
    grid_dir = tmp_path / "grid"
    grid_dir.mkdir()
    head = grid_dir / "head.pt"
    head.write_bytes((out / "head.pt").read_bytes())
    head.with_suffix(".json").write_text(
        json.dumps({"base_head": str(base_run / "checkpoints" / "last.ckpt")})
    )
    (paths["fp32"].parent / "parity.json").write_text("{}")
    (paths["fp32"].parent / "parity.md").write_text("#")
    assets = tmp_path / "assets"
    assets.mkdir()
    entry = fe.ship(paths["fp32"].parent, head, assets)
    assert {"provenance/frontend/grid_branch.json", "provenance/frontend/base_config_version_0.yaml"} <= set(
        entry["files"]
    )


def test_cli_records_the_keypoints_detection_threshold(exported, tmp_path):
    out, _, _ = exported
    argv = ["--head", str(out / "head.pt"), "--keypoints", str(out / "kp.pt"), "--out", str(tmp_path / "t"),
            "--calibration", "skimage", "--num-calibration", "2", "--detection-threshold", "0.007"]  # fmt: skip
    assert fe.main(argv) == 0
    for name in ("frontend.fp32.onnx", "frontend.int8.onnx"):
        assert read_metadata(tmp_path / "t" / name)["homeloc.detection_threshold"] == "0.007"

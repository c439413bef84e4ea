"""python -m homeloc.export.requantize: the shipped int8 models made again from the shipped fp32 ones."""

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from homeloc.export import frontend as fe
from homeloc.export import requantize as rq
from homeloc.export.onnx_export import read_metadata
from homeloc.export.pipeline import ExportConfig, export_model
from homeloc.models.global_head import GlobalHead
from homeloc.models.keypoints import KeypointNet
from homeloc.runtime.assets import graph_sha256
from homeloc.runtime.hashing import file_sha256


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """An assets folder as export.ship and export.frontend leave it, with tiny models quantized at
    full range (as the models shipped before session 35). The keypoint model is calibrated as the
    frontend is (sources, count, 480x640, seed), so their keypoint parts are equal, as shipped."""
    root = tmp_path_factory.mktemp("requant")
    torch.manual_seed(0)
    KeypointNet("tiny").save(root / "kp.pt")
    GlobalHead(16, 4, 8).save(root / "head.pt")
    config = ExportConfig(checkpoint=root / "kp.pt", kind="keypoints", out=root / "kp", int8=True,
                          calibration=["skimage"], num_calibration=2, calibration_size=(480, 640),
                          parity_data="synthetic", parity_pairs=2, latency_runs=1, latency_threads=[1])  # fmt: skip
    mp = pytest.MonkeyPatch()
    from homeloc.export import quantize

    real = quantize.quantize_int8
    mp.setattr(quantize, "quantize_int8", lambda *a, **k: real(*a, **{**k, "reduce_range": False}))
    export_model(config)
    net, info = fe.build(root / "kp.pt", root / "head.pt")
    paths = fe.export(net, info, root / "fe", ["skimage"], num=2)
    mp.undo()
    assets = root / "assets"
    assets.mkdir()
    for name in ("keypoints.fp32.onnx", "keypoints.int8.onnx"):
        shutil.copy(root / "kp" / name, assets / name)
    shutil.copy(root / "kp" / "parity.json", assets / "keypoints.parity.json")
    shutil.copy(root / "kp" / "parity.md", assets / "keypoints.parity.md")
    shutil.copy(root / "kp.pt", assets / "keypoints.pt")
    for k in ("fp32", "int8"):
        shutil.copy(paths[k], assets / f"frontend.{k}.onnx")
    x = np.random.default_rng(0).random((1, 1, 48, 64), dtype=np.float32)
    report = fe.parity(net, paths["fp32"], paths["int8"], assets / "keypoints.int8.onnx", [x])
    report |= {"images": 1, "calibration": paths["calibration"], "head_checkpoint": "head.pt"}
    report["calibration"].pop("reduce_range")
    (assets / "frontend.parity.json").write_text(json.dumps(report))
    (assets / "frontend.parity.md").write_text(fe.parity_markdown(report))
    shutil.copy(root / "head.pt", assets / "frontend_head.pt")
    names = {
        "keypoints": [p.name for p in assets.glob("keypoints.*")],
        "frontend": [p.name for p in assets.glob("frontend*")],
    }
    manifest = {
        k: {"checkpoint": "x", "files": {n: file_sha256(assets / n) for n in v}} for k, v in names.items()
    }
    (assets / "MANIFEST.json").write_text(json.dumps(manifest))
    return root, assets


def _weights(path):
    return [
        numpy_helper.to_array(i)
        for i in onnx.load(str(path)).graph.initializer
        if i.data_type == onnx.TensorProto.INT8
    ]


def _copy(assets, tmp_path):
    dst = tmp_path / "assets"
    shutil.copytree(assets, dst)
    return dst


def test_full_range_reproduces_the_shipped_int8_file_byte_for_byte(shipped, tmp_path):
    _, assets = shipped
    work = tmp_path / "work"
    out = rq.requantize_one("keypoints", assets, work, reduce_range=False)
    assert file_sha256(out["keypoints.int8.onnx"]) == file_sha256(assets / "keypoints.int8.onnx")


def test_requantize_ships_7_bit_int8_with_new_parity_and_manifest(shipped, tmp_path):
    _, original = shipped
    assets = _copy(original, tmp_path)
    before = {p.name: file_sha256(p) for p in assets.iterdir()}
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in _weights(assets / "keypoints.int8.onnx")) > 64
    hashes = rq.requantize(assets, ("keypoints", "frontend"))
    changed = {"keypoints.int8.onnx", "keypoints.parity.json", "keypoints.parity.md",
               "frontend.int8.onnx", "frontend.parity.json", "frontend.parity.md"}  # fmt: skip
    assert set(hashes) == changed
    after = {p.name: file_sha256(p) for p in assets.iterdir()}
    assert {n for n in after if after[n] != before[n]} == changed | {"MANIFEST.json"}
    manifest = json.loads((assets / "MANIFEST.json").read_text())
    for kind in ("keypoints", "frontend"):
        for name, h in manifest[kind]["files"].items():
            assert file_sha256(assets / name) == h, name
        w = _weights(assets / f"{kind}.int8.onnx")
        assert w and max(int(np.abs(x.astype(np.int32)).max()) for x in w) <= 64
        # the old file's identity (model version, weight hashes, threshold) is kept
        assert read_metadata(assets / f"{kind}.int8.onnx") == read_metadata(original / f"{kind}.int8.onnx")
        # maps built with the replaced file keep loading (runtime.assets.replaced_graphs)
        name = f"{kind}.int8.onnx"
        assert manifest[kind]["replaces"] == {name: [graph_sha256(original / name)]}
    kp = json.loads((assets / "keypoints.parity.json").read_text())
    stamp = kp["provenance"]["requantized"]
    assert stamp["reduce_range"] is True and stamp["replaces_int8_sha256"] == before["keypoints.int8.onnx"]
    assert stamp["int8_sha256"] == after["keypoints.int8.onnx"]
    assert kp["provenance"]["calibration"]["images"] == 2  # the recorded calibration was used
    assert "quantized again" in (assets / "keypoints.parity.md").read_text()
    front = json.loads((assets / "frontend.parity.json").read_text())
    # the frontend's keypoint part still equals the (new) keypoint int8 model's outputs
    assert front["keypoints_int8_reference_sha256"] == after["keypoints.int8.onnx"]
    assert front["logits_max_abs_diff_vs_keypoints_int8"] == 0.0
    assert "quantized again" in (assets / "frontend.parity.md").read_text()


def test_other_torch_weights_are_refused_and_nothing_is_replaced(shipped, tmp_path, capsys):
    _, original = shipped
    assets = _copy(original, tmp_path)
    torch.manual_seed(1)
    KeypointNet("tiny").save(assets / "keypoints.pt")
    before = {p.name: file_sha256(p) for p in assets.iterdir()}
    with pytest.raises(SystemExit) as e:
        rq.main(["--assets", str(assets), "--kinds", "keypoints"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "keypoints.fp32.onnx: records weights" in err
    assert {p.name: file_sha256(p) for p in assets.iterdir()} == before


def test_a_report_without_calibration_is_named(tmp_path):
    path = tmp_path / "keypoints.parity.json"
    with pytest.raises(rq.RequantizeError, match="records no int8 calibration"):
        rq.calibration_record("keypoints", {"provenance": {}}, path)
    rec = rq.calibration_record(
        "keypoints",
        {
            "provenance": {
                "calibration": {
                    "sources": ["skimage"],
                    "images": 200,
                    "size": "480x640",
                    "seed": 0,
                    "night": 100,
                }
            }
        },
        path,
    )
    assert rec == {"sources": ["skimage"], "n": 200, "size": (480, 640), "seed": 0, "night_share": 0.5}


def test_a_run_killed_while_shipping_is_finished_by_running_again(shipped, tmp_path):
    _, original = shipped
    assets = _copy(original, tmp_path)
    first = rq.requantize(assets, ("keypoints",))
    # killed after the files were replaced, before their hashes were written to MANIFEST.json (the
    # replaced graph was listed before any file was replaced)
    written = json.loads((assets / "MANIFEST.json").read_text())
    manifest = json.loads((original / "MANIFEST.json").read_text())
    manifest["keypoints"]["replaces"] = written["keypoints"]["replaces"]
    (assets / "MANIFEST.json").write_text(json.dumps(manifest))
    again = rq.requantize(assets, ("keypoints",))
    assert again["keypoints.int8.onnx"] == first["keypoints.int8.onnx"]  # the same bytes
    stamp = json.loads((assets / "keypoints.parity.json").read_text())["provenance"]["requantized"]
    assert stamp["replaces_int8_sha256"] == file_sha256(original / "keypoints.int8.onnx")
    manifest = json.loads((assets / "MANIFEST.json").read_text())
    assert all(file_sha256(assets / n) == h for n, h in manifest["keypoints"]["files"].items())
    old_graph = graph_sha256(original / "keypoints.int8.onnx")
    assert manifest["keypoints"]["replaces"] == {"keypoints.int8.onnx": [old_graph]}


def test_a_re_quantization_to_the_same_graph_lists_nothing(shipped, tmp_path):
    _, original = shipped
    assets = _copy(original, tmp_path)
    rq.requantize(assets, ("keypoints",), reduce_range=False)  # the shipped full-range file again
    assert "replaces" not in json.loads((assets / "MANIFEST.json").read_text())["keypoints"]

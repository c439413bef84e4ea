"""homeloc.export.pipeline / export.parity / export.cli: the whole job on tiny checkpoints, report files, CLI."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
import yaml

pytest.importorskip("onnxruntime")

from homeloc.export import cli  # noqa: E402
from homeloc.export.parity import keypoint_overlap, stratified_choice, to_markdown  # noqa: E402
from homeloc.export.pipeline import ExportConfig, ExportError, export_model  # noqa: E402
from homeloc.models.keypoints import KeypointNet  # noqa: E402
from homeloc.models.places import PlaceNet  # noqa: E402

FAST = dict(latency_runs=2, latency_threads=[1], num_calibration=4, calibration=["skimage"])


@pytest.fixture(scope="module")
def kp_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    net = KeypointNet("tiny").eval()
    with torch.no_grad():  # random weights score every pixel ~1/65, below the detection threshold:
        net.detector_out.weight.mul_(10.0)  # sharpen the logits so the model has keypoints to compare
    net.save(path)
    return path


@pytest.fixture(scope="module")
def place_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "places.pt"
    PlaceNet("keypoint:tiny", "gem", reduce_dim=16, out_dim=8, input_size=(32, 40)).eval().save(path)
    return path


@pytest.fixture(scope="module")
def places_folder(tmp_path_factory):
    """A `places` dataset: 4 database images, 4 queries (noisy copies), ground_truth.csv."""
    root = tmp_path_factory.mktemp("places")
    rng = np.random.default_rng(0)
    (root / "database").mkdir()
    (root / "queries").mkdir()
    rows = ["query,positives"]
    for i in range(4):
        img = cv2.resize(
            rng.integers(0, 255, (8, 10, 3), dtype=np.uint8), (40, 32), interpolation=cv2.INTER_NEAREST
        )
        cv2.imwrite(str(root / "database" / f"{i}.png"), img)
        noisy = np.clip(img.astype(int) + rng.integers(-10, 10, img.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "queries" / f"q{i}.png"), noisy)
        rows.append(f"q{i}.png,{i}.png")
    (root / "ground_truth.csv").write_text("\n".join(rows) + "\n")
    return root


def _keys(d: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in d]
    assert not missing, f"missing keys {missing} in {sorted(d)}"


def test_keypoints_export_job_writes_models_and_parity(tmp_path, kp_ckpt):
    out = tmp_path / "out"
    cfg = ExportConfig(
        checkpoint=kp_ckpt,
        kind="keypoints",
        out=out,
        int8=True,
        calibration_size=(64, 96),
        parity_data="synthetic",
        parity_pairs=2,
        **FAST,
    )
    assert export_model(cfg) == out
    for name in ("keypoints.fp32.onnx", "keypoints.int8.onnx", "parity.json", "parity.md", "config.yaml"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    r = json.loads((out / "parity.json").read_text())
    _keys(
        r,
        "kind",
        "backends",
        "reference",
        "fidelity",
        "accuracy",
        "latency_ms",
        "files",
        "targets",
        "provenance",
    )
    assert r["kind"] == "keypoints" and r["backends"] == ["torch", "onnx_fp32", "onnx_int8"]
    fid = r["fidelity"]["onnx_fp32"]
    _keys(
        fid,
        "keypoint_overlap",
        "descriptor_cosine",
        "max_abs_logits",
        "max_abs_descriptors",
        "keypoints_mean",
    )
    assert fid["keypoint_overlap"] == 1.0 and fid["max_abs_logits"] < 1e-4
    assert fid["descriptor_cosine"]["min"] > 0.9999
    _keys(r["fidelity"]["onnx_int8"], "keypoint_overlap", "descriptor_cosine")
    acc = r["accuracy"]
    assert acc["pairs"] == 2 and acc["skipped"] is None and acc["data"] == "synthetic"
    for b in r["backends"]:
        _keys(acc[b], "MMA@1", "MMA@3", "MMA@5", "matches_mean", "by_bucket")
    assert acc["torch"]["MMA@3"] == pytest.approx(acc["onnx_fp32"]["MMA@3"], abs=0.02)
    lat = r["latency_ms"]
    assert lat["size"] == "480x640" and set(lat["threads_1"]) == set(r["backends"])
    assert r["files"]["onnx_int8"]["bytes"] < r["files"]["onnx_fp32"]["bytes"]
    names = [t["name"] for t in r["targets"]]
    assert any("speed-up" in n for n in names) and any("overlap" in n for n in names)
    assert any("MMA@3 loss" in n for n in names)
    assert all(set(t) >= {"name", "value", "target", "met"} for t in r["targets"])
    assert r["provenance"]["calibration"]["images"] == 4
    md = (out / "parity.md").read_text()
    assert "## Targets" in md and "## Latency and size" in md and "MMA@3" in md
    # the resolved options can be fed back with --config
    assert yaml.safe_load((out / "config.yaml").read_text())["kind"] == "keypoints"

    # same options + same checkpoint: nothing is redone
    mtime = (out / "keypoints.int8.onnx").stat().st_mtime_ns
    export_model(cfg)
    assert (out / "keypoints.int8.onnx").stat().st_mtime_ns == mtime
    # other options: refused unless overwrite
    other = ExportConfig(checkpoint=kp_ckpt, kind="keypoints", out=out, parity=False, **FAST)
    with pytest.raises(ExportError, match="overwrite"):
        export_model(other)
    other.overwrite = True
    export_model(other)
    assert not (out / "keypoints.int8.onnx").exists() and not (out / "parity.json").exists()


def test_places_export_job_with_recall(tmp_path, place_ckpt, places_folder):
    out = tmp_path / "out"
    export_model(
        ExportConfig(
            checkpoint=place_ckpt,
            kind="places",
            out=out,
            int8=True,
            parity_data=f"places:{places_folder}",
            **FAST,
        )
    )
    r = json.loads((out / "parity.json").read_text())
    assert r["kind"] == "places" and r["input_size"] == [32, 40]
    _keys(r["fidelity"]["onnx_fp32"], "descriptor_cosine", "max_abs_descriptor")
    assert r["fidelity"]["onnx_fp32"]["descriptor_cosine"]["min"] > 0.9999
    acc = r["accuracy"]
    assert acc["queries"] == 4 and acc["database"] == 4
    for b in r["backends"]:
        _keys(acc[b], "R@1", "R@5")
    assert r["latency_ms"]["size"] == "32x40"
    assert "## Place recognition" in (out / "parity.md").read_text()


def test_places_missing_dataset_is_skipped(tmp_path, place_ckpt):
    out = tmp_path / "out"
    export_model(
        ExportConfig(checkpoint=place_ckpt, kind="places", out=out, parity_data="nordland:/nowhere", **FAST)
    )
    r = json.loads((out / "parity.json").read_text())
    assert "not found" in r["accuracy"]["skipped"] and r["backends"] == ["torch", "onnx_fp32"]
    assert all(t["met"] is None and "int8" in t["note"] for t in r["targets"])
    assert "Skipped" in to_markdown(r) and "not measured" in to_markdown(r)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in (
        "--checkpoint",
        "--kind",
        "--out",
        "--int8",
        "--calibration",
        "--num-calibration",
        "--parity-data",
        "--input-size",
    ):
        assert opt in text


def test_cli_bad_checkpoint_exit_code_names_file(tmp_path, capsys):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"\x00" * 10)
    assert cli.main(["--checkpoint", str(bad), "--kind", "keypoints", "--out", str(tmp_path / "o")]) == 2
    assert "broken.ckpt" in capsys.readouterr().err


def test_cli_runs_fp32_export(tmp_path, kp_ckpt, capsys):
    out = tmp_path / "o"
    argv = ["--checkpoint", str(kp_ckpt), "--kind", "keypoints", "--out", str(out), "--parity", "false"]
    assert cli.main(argv) == 0
    assert (out / "keypoints.fp32.onnx").is_file() and not (out / "parity.json").exists()
    # the written config.yaml is accepted back by --config
    assert cli.main(["--config", str(out / "config.yaml")]) == 0


def test_overlap_and_stratified_choice():
    ref = np.array([[0, 0], [10, 10], [20, 20]], np.float32)
    cand = np.array([[0.5, 0.5], [12, 10]], np.float32)
    np.testing.assert_array_equal(keypoint_overlap(ref, cand), [True, False, False])
    assert keypoint_overlap(ref, np.zeros((0, 2), np.float32)).sum() == 0
    buckets = ["day"] * 20 + ["night"] * 2 + ["dusk"] * 3
    idx = stratified_choice(buckets, 8, seed=0)
    assert len(set(idx)) == 8 and {20, 21} <= set(idx)
    assert idx == stratified_choice(buckets, 8, seed=0)
    assert len(stratified_choice(buckets, 100)) == len(buckets)


def test_bench_one_tiny(tmp_path):
    from homeloc.export.bench import bench_one

    row = bench_one("keypoints", KeypointNet("tiny").eval(), (64, 96), tmp_path, runs=1, calib=2, threads=[1])
    assert row["int8_mb"] < row["fp32_mb"] and row["fp32_1"] > 0 and row["int8_1"] > 0

"""`python -m homeloc.export.ship`: what lands in the assets folder and its MANIFEST, with the export
itself stubbed (tests/export/test_frontend_export.py and the export tests cover the ONNX side)."""

import json

import pytest

from homeloc.export import pipeline, ship
from homeloc.models.keypoints import KeypointNet


def _fake_export(config):
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    for name in ("keypoints.fp32.onnx", "keypoints.int8.onnx", "parity.json", "parity.md"):
        (out / name).write_text(name)
    return out


def _run(tmp_path, name, gpu_style=False):
    run = tmp_path / "runs" / name
    if gpu_style:  # what train/gpu_recipe.py returns: model.pt, metrics.csv, throughput.json
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text("step,loss\n1,2.0\n")
        (run / "throughput.json").write_text('{"steps": 1}')
    else:
        (run / "csv" / "version_0").mkdir(parents=True)
        (run / "csv" / "version_0" / "metrics.csv").write_text("step,loss\n1,1.0\n")
        (run / "csv" / "version_0" / "config.yaml").write_text("model: {}\n")
    return run


def _model(path):
    KeypointNet("tiny").save(path)


def test_ship_records_the_earlier_runs_a_model_was_continued_from(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "export_model", _fake_export)
    gpu = _run(tmp_path, "kp_gpu", gpu_style=True)
    last = _run(tmp_path, "kp_cpu")
    (last / "checkpoints").mkdir()
    _model(last / "checkpoints" / "last.pt")
    assets = tmp_path / "assets"
    (assets / "provenance" / "keypoints").mkdir(parents=True)
    (assets / "provenance" / "keypoints" / "stale_metrics.csv").write_text("old model")
    argv = ["--keypoints", str(last / "checkpoints" / "last.pt"), "--assets", str(assets),
            "--exports", str(tmp_path / "exports"), "--earlier-runs", str(gpu)]  # fmt: skip
    assert ship.main(argv) == 0
    files = json.loads((assets / "MANIFEST.json").read_text())["keypoints"]["files"]
    prov = sorted(k for k in files if k.startswith("provenance/"))
    assert prov == [
        "provenance/keypoints/config_version_0.yaml",
        "provenance/keypoints/kp_gpu_metrics.csv",
        "provenance/keypoints/kp_gpu_throughput.json",
        "provenance/keypoints/metrics_version_0.csv",
    ]
    assert (assets / "provenance/keypoints/kp_gpu_metrics.csv").read_text() == "step,loss\n1,2.0\n"
    assert not (assets / "provenance/keypoints/stale_metrics.csv").exists()
    shipped = KeypointNet.from_checkpoint(assets / "keypoints.pt")
    assert shipped.preset == "tiny" and files["keypoints.pt"] == ship.file_sha256(assets / "keypoints.pt")


def test_an_earlier_run_without_records_is_refused_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        ship.main(["--keypoints", str(tmp_path / "x.ckpt"), "--assets", str(tmp_path / "assets"),
                   "--earlier-runs", str(tmp_path / "empty")])  # fmt: skip
    err = capsys.readouterr().err
    assert f"--earlier-runs {tmp_path / 'empty'}: no csv/version_*" in err
    assert not (tmp_path / "assets").exists()


def test_a_gpu_recipe_output_ships_with_its_own_curve(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "export_model", _fake_export)
    gpu = _run(tmp_path, "kp_gpu", gpu_style=True)
    _model(gpu / "model.pt")
    assets = tmp_path / "assets"
    argv = ["--keypoints", str(gpu / "model.pt"), "--assets", str(assets), "--exports", str(tmp_path / "e")]
    assert ship.main(argv) == 0
    files = json.loads((assets / "MANIFEST.json").read_text())["keypoints"]["files"]
    assert sorted(k for k in files if k.startswith("provenance/")) == [
        "provenance/keypoints/metrics.csv",
        "provenance/keypoints/throughput.json",
    ]

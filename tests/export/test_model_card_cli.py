"""`python -m homeloc.export.model_card`: a bad --report is refused in one line before anything is written."""

import pytest

from homeloc.export import model_card


@pytest.mark.parametrize(
    ("report", "message"),
    [
        ("no-equals-sign", "expected NAME=DIR"),
        ("Title=", "expected NAME=DIR"),
        ("Title={missing}", "holds no table.md (not a homeloc-evaluate output folder)"),
    ],
)
def test_bad_report_is_refused_before_writing(tmp_path, capsys, report, message):
    report = report.format(missing=tmp_path / "missing")
    with pytest.raises(SystemExit) as e:
        model_card.main(["--report", report, "--assets", str(tmp_path / "assets")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--report {report!r}: " in err and message in err
    assert not (tmp_path / "assets").exists()


def _evaluate_folder(path, table):
    path.mkdir(parents=True)
    (path / "table.md").write_text(table)
    (path / "config.yaml").write_text(
        f"# rerun with: homeloc-evaluate places --config {path}/config.yaml\ndata: x\n"
    )
    (path / "summary.json").write_text('{"ours": {"R@1": 0.5}}')
    return path


def test_kept_sections_say_which_shipped_models_changed_since_they_were_measured(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(model_card, "_architecture", lambda assets: {})
    assets = tmp_path / "assets"
    assets.mkdir()
    manifest = {
        "places": {"checkpoint": "c", "checkpoint_sha256": "0" * 64, "files": {"places.int8.onnx": "a" * 64}}
    }
    (assets / "MANIFEST.json").write_text(json.dumps(manifest))
    one = _evaluate_folder(
        tmp_path / "one", "## Places on one\n\n| method | R@1 |\n|---|---|\n| ours | 0.5 |"
    )
    two = _evaluate_folder(
        tmp_path / "two", "## Places on two\n\n| method | R@1 |\n|---|---|\n| ours | 0.7 |"
    )
    model_card.main(["--report", f"One={one}", f"Two={two}", "--assets", str(assets)])
    manifest["places"]["files"]["places.int8.onnx"] = "b" * 64  # the int8 model was quantized again
    (assets / "MANIFEST.json").write_text(json.dumps(manifest))
    three = _evaluate_folder(tmp_path / "three", "## Places on three\n\n| ours | 0.9 |")
    model_card.main(["--report", f"Two={two}", f"Three={three}", "--keep-rest", "--assets", str(assets)])
    md = (assets / "MODEL_CARD.md").read_text()
    # the previous order, then new sections; the kept one keeps its command and table
    assert md.index("## One") < md.index("## Two") < md.index("## Three")
    assert "| ours | 0.5 |" in md and f"`homeloc-evaluate places --config {one}/config.yaml`" in md
    assert "Changed since it was measured: places.int8.onnx" in md
    assert md.count("Kept from the previous card") == 1
    card = json.loads((assets / "model_card.json").read_text())
    assert card["reports"]["One"]["kept"] and card["reports"]["One"]["changed_since"] == ["places.int8.onnx"]
    assert card["reports"]["Two"]["measured_with"] == {"places.int8.onnx": "b" * 64}
    # kept again later: still measured with the first file
    model_card.main(["--keep", "One", "--assets", str(assets)])
    card = json.loads((assets / "model_card.json").read_text())
    assert list(card["reports"]) == ["One"] and card["reports"]["One"]["measured_with"] == {
        "places.int8.onnx": "a" * 64
    }


def test_keeping_an_unknown_section_is_refused(tmp_path, capsys):
    (tmp_path / "model_card.json").write_text('{"reports": {}}')
    with pytest.raises(SystemExit) as e:
        model_card.main(["--keep", "Nope", "--assets", str(tmp_path)])
    assert e.value.code == 2 and "--keep 'Nope': the card in" in capsys.readouterr().err

"""`homeloc-evaluate loops`: the loop-sequence reader, the judging and PR sweep (pure), the run over a
tiny sequence with the random-weight fixtures, the CLI, and the dev sequence builder."""

import json

import numpy as np
import pytest

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.data_synthesis.formats.loops import load_loop_sequence, read_K
from homeloc.eval import cli
from homeloc.eval.config import LoopsConfig
from homeloc.eval.evaluate_loops import FrameRecord, judge, run_loops, score_sequence
from homeloc.eval.loop_sequences import Sequence, pan_crops, paste_patch, write_sequence
from homeloc.runtime.loop_closure.results import Verification
from tests.runtime.test_frontend import textured


def _rgb(seed, shift=0):
    return np.repeat(np.roll(textured(96, 128, seed=seed), shift, axis=1)[..., None], 3, axis=2)


@pytest.fixture
def sequence(tmp_path):
    """map 0..3 (two places: 0-1 and 2-3), queries revisiting place A, B and an unmapped place,
    one distractor."""
    seq = Sequence(K=(100.0, 100.0, 64.0, 48.0))
    seq.map = [(f"{i}.png", _rgb(i)) for i in range(4)]
    seq.queries = [("a.png", _rgb(0, 4)), ("b.png", _rgb(2, 4)), ("c.png", _rgb(9))]
    seq.positives = {"a.png": ["0.png", "1.png"], "b.png": ["2.png", "3.png"], "c.png": []}
    seq.distractors = [("d.png", _rgb(7))]
    return write_sequence(seq, tmp_path / "seq")


def test_reader_orders_phases_and_reads_positives(sequence):
    s = load_loop_sequence(sequence)
    assert [f.phase for f in s.frames] == ["map"] * 4 + ["queries"] * 3 + ["distractors"]
    assert [f.name for f in s.frames[4:]] == ["a.png", "b.png", "c.png", "d.png"]
    assert s.frames[4].positives == {0, 1} and s.frames[6].positives == frozenset()
    np.testing.assert_allclose(s.K, [[100, 0, 64], [0, 100, 48], [0, 0, 1]])
    assert (s.count("map"), s.count("queries"), s.count("distractors")) == (4, 3, 1)


@pytest.mark.parametrize(
    "csv_text, match",
    [("q,p\n", "header"), ("query,positives\nzz.png,0.png\n", "not in queries"),
     ("query,positives\na.png,9.png\nb.png,\nc.png,\n", "not in map"),
     ("query,positives\na.png,0.png\n", "have no row"),
     ("query,positives\na.png,0.png\na.png,1.png\nb.png,\nc.png,\n", "twice")],
)  # fmt: skip
def test_reader_errors_name_the_file(sequence, csv_text, match):
    (sequence / "ground_truth.csv").write_text(csv_text)
    with pytest.raises(DataError, match=match):
        load_loop_sequence(sequence)


def test_reader_needs_map_and_a_sane_K(sequence, tmp_path):
    (sequence / "K.txt").write_text("1 2 3")
    with pytest.raises(DataError, match="K.txt"):
        load_loop_sequence(sequence)
    (sequence / "K.txt").write_text("500 500 320 240")
    assert read_K(sequence / "K.txt")[0, 2] == 320
    with pytest.raises(DataError, match="map"):
        load_loop_sequence(tmp_path / "nowhere")
    (tmp_path / "empty" / "queries").mkdir(parents=True)
    with pytest.raises(DataError, match="map"):
        load_loop_sequence(tmp_path / "empty")


def _v(kf, conf, passed=True):
    return Verification(kf, 0.5, 100, 50, 0.5, 0.5, conf, passed, passed and conf >= 0.5)


def test_judging_and_the_exact_sweep(sequence):
    s = load_loop_sequence(sequence)
    assert judge(s, 4, 0) and not judge(s, 4, 2) and judge(s, 1, 0) is None  # map frames: unscored
    assert not judge(s, 7, 0) and not judge(s, 5, 7)  # on / to a distractor: false
    assert not judge(s, 6, 0)  # an unmapped place
    assert judge(s, 5, 5 - 1) is False and judge(s, 4, 4) is True  # query -> query: share a positive
    records = [FrameRecord(i, f.phase, f.name, None, None, 0, None, 10.0) for i, f in enumerate(s.frames)]
    records[4] = FrameRecord(4, "queries", "a.png", 1, 0.9, 50, 0.5, 10.0, [_v(1, 0.9), _v(2, 0.3)])
    records[5] = FrameRecord(
        5, "queries", "b.png", None, None, 0, None, 10.0, [_v(0, 0.4)]
    )  # wrong, rejected
    records[6] = FrameRecord(6, "queries", "c.png", None, None, 0, None, 10.0, [_v(0, 0.45, passed=False)])
    records[7] = FrameRecord(7, "distractors", "d.png", 2, 0.6, 50, 0.5, 10.0, [_v(2, 0.6)])  # a false loop
    r = score_sequence(s, records)
    assert (r["loops"], r["right"], r["false"], r["revisits"]) == (2, 1, 1, 2)
    assert r["precision"] == 0.5 and r["recall"] == 0.5 and r["R@100P"] == 0.5
    assert r["max_false_confidence"] == 0.6 and r["min_right_confidence"] == 0.9
    assert r["false_loops"][0]["name"] == "distractors/d.png" and r["false_loops"][0]["keyframe"] == 2
    sweep = {row["min_confidence"]: row for row in r["sweep"]}
    assert (sweep[0.0]["loops"], sweep[0.0]["false"]) == (3, 2)  # the failed-floor one never counts
    assert (sweep[0.5]["loops"], sweep[0.5]["false"]) == (2, 1)
    assert (sweep[0.7]["loops"], sweep[0.7]["false"], sweep[0.7]["precision"]) == (1, 0, 1.0)


def test_run_writes_every_output(sequence, tmp_path, runtime_models):
    out = run_loops(LoopsConfig(data=[str(sequence)], out=tmp_path / "out", keypoints_model=str(runtime_models["keypoints"]),
                                places_model=str(runtime_models["places"]), exclude_recent=1))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())["seq"]
    assert summary["frames"] == 8 and summary["revisits"] == 2 and summary["map_kb"] > 0
    assert summary["detector"]["temporal_k"] == 2 and summary["detector"]["exclude_recent"] == 1
    assert summary["false"] == 0  # random weights find no keypoints: no loop, and certainly no false one
    for name in ("table.md", "pr.png", "false_loops.csv", "frames.csv", "verifications.csv", "config.yaml"):
        assert (out / name).is_file(), name
    assert "### False loops: 0" in (out / "table.md").read_text()
    assert len((out / "frames.csv").read_text().splitlines()) == 9


def test_frontend_runs_without_a_place_model(sequence, tmp_path, monkeypatch):
    """--places-model frontend: one pass (the shipped frontend's global output), no place model opened."""
    import homeloc.runtime.places as places

    def no_place_model(*a, **k):
        raise AssertionError("a place model was opened")

    monkeypatch.setattr(places.GlobalDescriptor, "__init__", no_place_model)
    out = run_loops(
        LoopsConfig(data=[str(sequence)], out=tmp_path / "out", places_model="frontend", exclude_recent=1)
    )
    summary = json.loads((out / "summary.json").read_text())["seq"]
    assert summary["frames"] == 8 and summary["false"] == 0 and summary["map_kb"] > 0


def test_cli(sequence, tmp_path, runtime_models, capsys):
    args = ["loops", "--data", str(sequence), "--out", str(tmp_path / "o"), "--keypoints-model",
            str(runtime_models["keypoints"]), "--places-model", str(runtime_models["places"]), "--min-confidence", "0.3"]  # fmt: skip
    assert cli.main(args) == 0
    assert "| seq |" in capsys.readouterr().out
    assert (
        json.loads((tmp_path / "o" / "summary.json").read_text())["seq"]["detector"]["min_confidence"] == 0.3
    )
    flags = cli._loops_parser().parse_args(["--data", "x", "--out", "o", "--verify-rotation", "false"])
    assert flags.verify_rotation is False
    assert cli.main(["loops", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o2")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_builder_helpers():
    rng = np.random.default_rng(0)
    img = (rng.random((100, 200, 3)) * 255).astype(np.uint8)
    crops = pan_crops(img)
    assert len(crops) == 4 and crops[0].shape == (70, 140, 3)
    assert np.array_equal(crops[0], img[:70, :140]) and np.array_equal(crops[-1], img[30:, 60:])
    host = np.zeros((120, 160, 3), np.uint8)
    out = paste_patch(host, img, rng)
    changed = np.any(out != 0, axis=2).mean()
    assert 0.03 < changed <= 0.16


@pytest.mark.slow
def test_shipped_models_close_no_false_loop_on_the_demo_sequence(tmp_path):
    """The skimage pan (the demo's, always available): every revisit found, no false loop."""
    from homeloc.eval.loop_sequences import build

    seq = build("skimage_pan", tmp_path / "loops")
    out = run_loops(LoopsConfig(data=[str(seq)], out=tmp_path / "out"))
    s = json.loads((out / "summary.json").read_text())["skimage_pan"]
    assert s["false"] == 0 and s["precision"] == 1.0 and s["recall"] >= 0.9


@pytest.mark.slow
def test_shipped_models_close_no_false_loop_on_the_dev_sequences(tmp_path, shared_data):
    from homeloc.eval.loop_sequences import build

    seqs = [build(n, tmp_path / "loops", shared_data) for n in ("desk_night", "dark_frames")]
    out = run_loops(LoopsConfig(data=[str(p) for p in seqs], out=tmp_path / "out"))
    summary = json.loads((out / "summary.json").read_text())
    assert all(s["false"] == 0 for s in summary.values())
    assert summary["desk_night"]["recall"] >= 0.6


def test_the_rotation_verification_option_reaches_the_detector(tmp_path):
    from homeloc.eval.evaluate_loops import detector_options
    from homeloc.runtime.loop_closure import LoopClosureDetector

    opts = detector_options(LoopsConfig(data=["x"], out=tmp_path, verify_rotation=False))
    assert LoopClosureDetector(index="flat", **opts).verify_config.rotation is False
    assert detector_options(LoopsConfig(data=["x"], out=tmp_path))["verify_rotation"] is True
    opts = detector_options(LoopsConfig(data=["x"], out=tmp_path, descriptor_bits=4))
    assert LoopClosureDetector(index="flat", **opts).verify_config.descriptor_bits == 4
    assert "descriptor_bits" not in detector_options(LoopsConfig(data=["x"], out=tmp_path))  # the runtime's

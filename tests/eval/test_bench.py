"""eval.bench: map codecs trained on other views, measured on place sets given as descriptors."""

import numpy as np
import pytest

from homeloc.eval import bench
from homeloc.runtime.bench import synthetic_places


def _described(seed: int) -> tuple[np.ndarray, bench.DescribedSet]:
    ps = synthetic_places(num_places=300, dim=64, keyframes_per_place=1, revisit_noise=0.6, seed=seed)
    positives = [{int(p)} for p in ps.query_place]  # database row i shows place i
    train = synthetic_places(num_places=600, dim=64, keyframes_per_place=1, seed=seed + 1).database
    return train, bench.DescribedSet("synthetic", ps.database, ps.queries, positives)


def test_compression_rows_measure_each_codec_against_flat():
    train, s = _described(0)
    rows = bench.compression_rows(
        train, [s], {"sq8": {"index": "sq8"}, "pq8": {"index": "pq", "pq_bytes": 8}}
    )
    by = {r["map"]: r for r in rows}
    assert [r["map"] for r in rows] == ["flat", "sq8", "pq8"]
    assert by["flat"]["ratio"] == 1.0 and by["flat"]["code_bytes"] == 4 * 64
    assert 0.5 < by["flat"]["recall"] <= 1.0  # revisits are findable but not trivially
    assert (by["sq8"]["code_bytes"], by["pq8"]["code_bytes"]) == (64, 8)
    assert by["sq8"]["ratio"] >= 0.98  # 8 bits per dimension keep the ranking
    assert by["pq8"]["recall"] < by["sq8"]["recall"]  # 1 bit per dimension does not
    assert by["pq8"]["ratio"] == by["pq8"]["recall"] / by["flat"]["recall"]


def test_recall_counts_a_query_right_only_at_a_positive():
    db = np.eye(3, dtype=np.float32)
    s = bench.DescribedSet("t", db, db[[0, 1, 2]], [{0}, {2}, set()])
    det = bench.codec_map(None, db, "flat")
    assert bench.recall_at_1(det, s) == 1 / 3


def test_training_images_take_homes_and_the_first_two_thirds_of_nordland(tmp_path):
    home = tmp_path / "train" / "home_00000" / "rgb"
    home.mkdir(parents=True)
    for i in range(2):
        (home / f"f{i}.png").write_bytes(b"x")
    for side in ("summer", "winter"):
        (tmp_path / "nl" / side).mkdir(parents=True)
        for i in range(12):
            (tmp_path / "nl" / side / f"images-{i:05d}.png").write_bytes(b"x")
    paths = bench.training_images([tmp_path / "train", tmp_path / "missing"], tmp_path / "nl")
    names = [(p.parent.name, p.name) for p in paths]
    assert names[:2] == [("rgb", "f0.png"), ("rgb", "f1.png")]
    summer = [n for side, n in names if side == "summer"]
    assert summer == [f"images-{i:05d}.png" for i in (0, 2, 4, 6)]  # first 8 of 12, every 2nd
    assert [n for side, n in names if side == "winter"] == ["images-00000.png", "images-00004.png"]


def test_main_reports_na_when_this_machine_has_no_sets(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "SETS", (tmp_path / "none",))
    monkeypatch.setattr(bench, "TRAIN_DIRS", (tmp_path / "none",))
    assert bench.main([]) == 0
    assert "home-set map compression | n/a (0 place sets" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "message"),
    [("--sets", "not a places folder (database/ queries/ ground_truth.csv)"), ("--train", "no such folder")],
)
def test_main_refuses_a_named_path_that_is_not_there(tmp_path, capsys, option, message):
    with pytest.raises(SystemExit) as e:
        bench.main([option, str(tmp_path / "typo")])
    assert e.value.code == 2
    assert f"{option} {tmp_path / 'typo'}: {message}" in capsys.readouterr().err


def test_main_names_the_file_of_a_malformed_set_before_extracting(tmp_path, monkeypatch, capsys):
    root = tmp_path / "set"
    for sub in ("database", "queries"):
        (root / sub).mkdir(parents=True)
        (root / sub / "a.png").write_bytes(b"x")
    (root / "ground_truth.csv").write_text("q,p\na.png,a.png\n")
    monkeypatch.setattr(bench, "training_images", lambda *a, **k: [tmp_path / "never_read.png"] * 300)
    assert bench.main(["--sets", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ground_truth.csv:1: the header must be exactly `query,positives`" in err[0]

"""`homeloc-evaluate` end to end on tiny generated data (fast)."""

import json

import cv2
import numpy as np
import pytest
import yaml

from homeloc.eval.cli import main
from homeloc.eval.speed import count_macs, parse_size, synthetic_image
from homeloc.runtime.io import write_image


@pytest.fixture
def tiny_pairs(tmp_path):
    img = synthetic_image(180, 240, seed=5)
    H = np.array([[1.0, 0.02, 6], [-0.02, 1.0, 4], [0, 0, 1]])
    write_image(tmp_path / "data" / "a.png", img)
    write_image(tmp_path / "data" / "b.png", cv2.warpPerspective(img, H, (240, 180)))
    h = " ".join(f"{v:.8g}" for v in H.ravel())
    (tmp_path / "data" / "pairs.txt").write_text(
        f"# tiny\na.png b.png {h} day\nb.png b.png 1 0 0 0 1 0 0 0 1 night\n"
    )
    return tmp_path / "data" / "pairs.txt"


def test_matching_cli_writes_all_outputs_and_reuses_cache(tiny_pairs, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        main(
            [
                "matching",
                "--data",
                str(tiny_pairs),
                "--methods",
                "orb",
                "sift",
                "--out",
                str(out),
                "--max-keypoints",
                "300",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| all | sift |" in printed and "| night | orb |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"orb", "sift"}
    for key in ["MMA@1", "MMA@10", "HA@1", "HA@3", "HA@5", "HA@10", "repeatability@3", "matches", "pairs"]:
        assert key in summary["sift"]
    assert summary["sift"]["pairs"] == 2 and set(summary["sift"]["buckets"]) == {"day", "night"}
    assert summary["sift"]["buckets"]["night"]["MMA@1"] == 1.0  # b against itself
    assert (out / "table.md").read_text() in printed
    assert (out / "mma.png").stat().st_size > 0
    assert len(list((out / "matches").glob("*.png"))) == 4
    assert len((out / "pairs.csv").read_text().splitlines()) == 5
    assert yaml.safe_load((out / "config.yaml").read_text())["max_keypoints"] == 300
    cached = sorted(p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npz"))
    assert (
        main(
            [
                "matching",
                "--data",
                str(tiny_pairs),
                "--methods",
                "orb",
                "sift",
                "--out",
                str(out),
                "--max-keypoints",
                "300",
            ]
        )
        == 0
    )
    assert sorted(p.stat().st_mtime_ns for p in (out / "cache").rglob("*.npz")) == cached  # loop 1 skipped
    # A different configuration in the same folder is refused without --overwrite.
    assert main(["matching", "--data", str(tiny_pairs), "--methods", "orb", "--out", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(["matching", "--data", str(tiny_pairs), "--methods", "orb", "--out", str(out), "--overwrite"])
        == 0
    )


def test_cli_errors_are_one_line_without_traceback(tiny_pairs, tmp_path, capsys):
    assert (
        main(
            [
                "matching",
                "--data",
                str(tiny_pairs),
                "--methods",
                f"ours:{tmp_path / 'missing.onnx'}",
                "--out",
                str(tmp_path / "o1"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "model file not found" in err and "Traceback" not in err
    bad = tiny_pairs.parent / "bad.txt"
    bad.write_text("a.png b.png 1 2 3\n")
    assert (
        main(["matching", "--data", f"pairs:{bad}", "--methods", "orb", "--out", str(tmp_path / "o2")]) == 1
    )
    assert f"{bad}:1:" in capsys.readouterr().err
    assert (
        main(["places", "--data", str(tiny_pairs), "--methods", "thumbnail", "--out", str(tmp_path / "o3")])
        == 1
    )
    assert "homeloc-evaluate matching" in capsys.readouterr().err


def test_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["matching", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in [
        "--data",
        "--methods",
        "--out",
        "--max-keypoints",
        "--resize",
        "--threads",
        "--webcam-homography",
        "--cache-dir",
    ]:
        assert opt in text


def test_places_cli_tiny(tmp_path, capsys):
    root = tmp_path / "places"
    for i in range(4):
        img = synthetic_image(64, 96, seed=10 + i)
        write_image(root / "database" / f"d{i}.png", img)
        write_image(root / "queries" / f"q{i}.png", np.clip(img.astype(int) * 0.6, 0, 255).astype(np.uint8))
    (root / "ground_truth.csv").write_text(
        "query,positives\n" + "".join(f"q{i}.png,d{i}.png\n" for i in range(4))
    )
    out = tmp_path / "out"
    assert main(["places", "--data", str(root), "--methods", "thumbnail", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())["thumbnail"]
    assert s["R@1"] == 1.0 and s["queries"] == 4 and s["AUC_PR"] == 1.0 and s["R@100P"] == 1.0
    assert (out / "pr.png").is_file() and (out / "queries.csv").is_file()


def test_places_empty_database_cli(tmp_path, capsys):
    root = tmp_path / "places"
    (root / "database").mkdir(parents=True)
    write_image(root / "queries" / "q.png", synthetic_image(32, 32))
    (root / "ground_truth.csv").write_text("query,positives\nq.png,\n")
    assert main(["places", "--data", str(root), "--methods", "thumbnail", "--out", str(tmp_path / "o")]) == 1
    assert f"{root / 'database'}: empty" in capsys.readouterr().err


def test_speed_cli_tiny(tmp_path):
    out = tmp_path / "speed"
    assert (
        main(
            [
                "speed",
                "--methods",
                "orb",
                "--size",
                "64x96",
                "--warmup",
                "1",
                "--runs",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    s = json.loads((out / "summary.json").read_text())["orb"]
    assert s["ms"] > 0 and s["size_mb"] is None and s["gmacs"] is None
    assert "CPU: " in (out / "table.md").read_text() and "int8 dot product" in (out / "table.md").read_text()


def test_parse_size_and_count_macs():
    from torch import nn

    assert parse_size("480x640") == (480, 640)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 8, 1), nn.Flatten(), nn.Linear(8 * 4 * 5, 10)
    )
    # conv1: 4x5 outputs x 4 ch x (1*9); conv2: 20 x 8 x 4; linear: 10 x 160
    assert count_macs(net, (1, 1, 4, 5)) == 20 * 4 * 9 + 20 * 8 * 4 + 10 * 160

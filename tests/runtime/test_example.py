"""homeloc.runtime.example (loop-closure demo) and runtime.bench (timing table) smoke tests."""

import json

import numpy as np
import pytest

from homeloc.runtime import bench, example
from homeloc.runtime.io import read_image, write_image
from tests.runtime.test_frontend import textured


@pytest.fixture
def sequence(tmp_path):
    """4 distinct frames, then the first two again shifted by 8 px: two loops to find."""
    folder = tmp_path / "seq"
    frames = [textured(160, 200, seed=s) for s in range(4)]
    frames += [np.roll(frames[0], 8, axis=1), np.roll(frames[1], 8, axis=0)]
    for i, f in enumerate(frames):
        write_image(folder / f"{i + 1}.png", np.repeat(f[..., None], 3, axis=2))
    return folder


def test_example_finds_the_revisits(sequence, tmp_path, runtime_models, capsys):
    out = tmp_path / "out"
    from homeloc.runtime.frontend import Frontend

    frontend = Frontend(runtime_models["keypoints"], threshold=0.0)  # random weights: scores ~1/65
    summary = example.run(sequence, out, keypoints_model=frontend, places_model=runtime_models["places"],
                          exclude_recent=1, min_inliers=30, temporal_k=1, min_confidence=0.0,
                          verify_top=5,  # random-weight place model: verify every candidate
                          descriptor_bits=8)  # its near-identical descriptors need int8  # fmt: skip
    loops = {(lp["frame"], lp["keyframe"]) for lp in summary["loops"]}
    assert {(4, 0), (5, 1)} <= loops
    assert json.loads((out / "loops.json").read_text())["frames"] == 6
    png = read_image(out / "similarity.png")
    assert png.shape[0] > 100 and png.shape[1] > 100
    assert "loop: frame 4 (5.png) -> keyframe 0 (1.png)" in capsys.readouterr().out


def test_example_cli_needs_images(tmp_path):
    with pytest.raises(SystemExit):
        example.main(["--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="no image files"):
        example.main(["--images", str(tmp_path), "--out", str(tmp_path / "o"), "--keypoints-model", "x"])


def test_example_extra_frames(sequence, tmp_path, runtime_models):
    extra = [
        example.Frame(f"{f.name} [flipped]", f.image[:, ::-1].copy()) for f in example.load_sequence(sequence)
    ]
    summary = example.run(sequence, tmp_path / "out", extra, keypoints_model=runtime_models["keypoints"],
                          places_model=runtime_models["places"], min_inliers=1000)  # fmt: skip
    assert summary["frames"] == 12 and summary["extra_frames"] == 6


def test_bench_frontend_rows_and_table(runtime_models, capsys):
    rows = bench.frontend_rows(runtime_models["keypoints"], repeats=1)
    assert [r[0].split(",")[0] for r in rows[:2]] == ["extract 640x480", "extract 640x480"]
    assert all(r[1].endswith("ms") for r in rows)
    assert bench.frontend_rows(None, 1)[0][1].startswith("n/a")
    bench.print_table(rows)
    assert "| extract 640x480, 1 thread(s)" in capsys.readouterr().out


def test_synthetic_places_shapes_and_determinism():
    a = bench.synthetic_places(num_places=20, dim=32, keyframes_per_place=3, num_queries=7, seed=1)
    b = bench.synthetic_places(num_places=20, dim=32, keyframes_per_place=3, num_queries=7, seed=1)
    assert a.database.shape == (60, 32) and a.queries.shape == (7, 32)
    np.testing.assert_array_equal(a.database, b.database)
    assert (a.database_place[:3] == 0).all()  # a place's keyframes are consecutive
    np.testing.assert_allclose(np.linalg.norm(a.database, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_bench_quick_runs(runtime_models, capsys):
    assert bench.main(["--quick", "--repeats", "2", "--keypoints-model", str(runtime_models["keypoints"]),
                       "--places-model", str(runtime_models["places"]), "--skip", "synthetic", "real"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "query 10k keyframes, ivfpq" in out

"""Dataset loaders: layouts, kind detection and bad data naming the file and line."""

import numpy as np
import pytest

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.data_synthesis.formats.matching import (
    WebcamOptions,
    bucket_from_brightness,
    bucket_from_hour,
    detect_kind,
    load_matching_dataset,
    random_homography,
)
from homeloc.data_synthesis.formats.places import load_places_dataset
from homeloc.runtime.io import write_image

H_ID = "1 0 0 0 1 0 0 0 1"


def _img(path, value=128, size=(40, 60)):
    rng = np.random.default_rng(value)
    img = np.clip(rng.normal(value, 20, size + (3,)), 0, 255).astype(np.uint8)
    write_image(path, img)
    return path


@pytest.fixture
def pairs_dir(tmp_path):
    _img(tmp_path / "a.png")
    _img(tmp_path / "b.jpg")
    return tmp_path


def test_pairs_file_ok_with_comments_and_bucket(pairs_dir):
    (pairs_dir / "pairs.txt").write_text(f"# comment\n\na.png b.jpg {H_ID}\na.png b.jpg {H_ID} night\n")
    ds = load_matching_dataset(str(pairs_dir / "pairs.txt"))
    assert ds.kind == "pairs" and len(ds.pairs) == 2
    assert [p.bucket for p in ds.pairs] == ["all", "night"]
    assert np.allclose(ds.pairs[0].H, np.eye(3))
    assert len(ds.images()) == 2
    assert load_matching_dataset(f"pairs:{pairs_dir}").kind == "pairs"  # a folder holding pairs.txt


@pytest.mark.parametrize(
    "line,message",
    [
        (f"a.png missing.png {H_ID}", "image 'missing.png' not found"),
        ("a.png b.jpg 1 0 0 0 1 0 0 0", "11 or 12 fields"),
        ("a.png b.jpg 1 0 0 0 one 0 0 0 1", "not a number"),
        ("a.png b.jpg 1 2 3 2 4 6 0 0 0", "not invertible"),
        ("a.png b.jpg 0 0 0 0 0 0 0 0 0", "not invertible"),
        ("a.png b.jpg 1 0 0 0 1 0 0 0 inf", "finite"),
    ],
)
def test_pairs_file_errors_name_file_and_line(pairs_dir, line, message):
    f = pairs_dir / "pairs.txt"
    f.write_text(f"# header\na.png b.jpg {H_ID}\n{line}\n")
    with pytest.raises(DataError, match=message) as e:
        load_matching_dataset(str(f))
    assert f"{f}:3:" in str(e.value)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_matching_dataset(str(tmp_path / "nope"))
    (tmp_path / "pairs.txt").write_text("# only a comment\n")
    with pytest.raises(DataError, match="no pairs"):
        load_matching_dataset(str(tmp_path / "pairs.txt"))
    (tmp_path / "x").mkdir()
    with pytest.raises(DataError, match="unknown dataset layout"):
        detect_kind(tmp_path / "x")


def test_hpatches_layout(tmp_path):
    seq = tmp_path / "v_test"
    seq.mkdir()
    _img(seq / "1.ppm")
    _img(seq / "2.ppm")
    (seq / "H_1_2").write_text("1 0 5\n0 1 0\n0 0 1\n")
    (seq / "H_1_3").write_text("1 0 5\n0 1 0\n0 0 1\n")  # image 3 absent: skipped
    ds = load_matching_dataset(str(tmp_path))
    assert ds.kind == "hpatches" and len(ds.pairs) == 1 and ds.pairs[0].bucket == "viewpoint"
    assert ds.skipped
    (seq / "H_1_2").write_text("1 0 5\n0 1 x\n0 0 1\n")
    with pytest.raises(DataError, match=r"H_1_2:2: not a number"):
        load_matching_dataset(f"hpatches:{tmp_path}")


def test_wxbs_layout_and_bad_corrs(tmp_path):
    scene = tmp_path / "WGALBS" / "s1"
    scene.mkdir(parents=True)
    _img(scene / "01.jpg")
    _img(scene / "02.png")
    (scene / "corrs.txt").write_text("1 2 3 4\n5 6 7 8\n")
    half = tmp_path / "WLABS" / "s2"
    half.mkdir(parents=True)
    _img(half / "02.jpg")
    (half / "corrs.txt").write_text("1 2 3 4\n")
    ds = load_matching_dataset(str(tmp_path))
    assert ds.kind == "wxbs" and [p.bucket for p in ds.pairs] == ["WGALBS"]
    assert ds.pairs[0].corrs.shape == (2, 4) and ds.skipped == ["WLABS/s2: missing 01.*"]
    with pytest.raises(DataError, match="no WxBS categories"):
        load_matching_dataset(str(tmp_path), wxbs_categories=["NOPE"])
    (scene / "corrs.txt").write_text("1 2 3 4\n5 6 7\n")
    with pytest.raises(DataError, match=r"corrs.txt:2: expected 4 numbers"):
        load_matching_dataset(str(tmp_path))


def test_webcam_buckets_reference_and_homography(tmp_path):
    scene = tmp_path / "cam"
    scene.mkdir()
    _img(scene / "20200101_120000.jpg", 150)
    _img(scene / "20200101_090000.jpg", 140)
    _img(scene / "20200101_190000.jpg", 100)  # 100/140 = 0.71 -> dusk
    _img(scene / "20200101_230000.jpg", 40)  # night
    ds = load_matching_dataset(str(tmp_path))
    assert ds.kind == "webcam"
    assert {p.image0.path.name for p in ds.pairs} == {"20200101_120000.jpg"}  # day, closest to noon
    assert {p.image1.path.stem: p.bucket for p in ds.pairs} == {
        "20200101_090000": "day",
        "20200101_190000": "dusk",
        "20200101_230000": "night",
    }
    assert all(np.allclose(p.H, np.eye(3)) for p in ds.pairs)
    warped = load_matching_dataset(str(tmp_path), WebcamOptions(homography=True, seed=3))
    again = load_matching_dataset(str(tmp_path), WebcamOptions(homography=True, seed=3))
    assert all(
        np.allclose(a.H, b.H) and a.image1.warp is not None
        for a, b in zip(warped.pairs, again.pairs, strict=True)
    )
    assert not np.allclose(warped.pairs[0].H, np.eye(3))
    assert warped.pairs[0].image1.load().shape == (40, 60, 3)
    assert warped.pairs[0].image1.key() != ds.pairs[0].image1.key()
    hours = load_matching_dataset(str(tmp_path), WebcamOptions(buckets="hour"))
    assert {p.image1.path.stem: p.bucket for p in hours.pairs}["20200101_190000"] == "dusk"


def test_webcam_size_mismatch_names_file(tmp_path):
    scene = tmp_path / "cam"
    scene.mkdir()
    _img(scene / "20200101_120000.jpg")
    odd = _img(scene / "20200101_130000.jpg", size=(30, 60))
    with pytest.raises(DataError, match=str(odd)):
        load_matching_dataset(f"webcam:{tmp_path}")


def test_bucket_rules():
    assert [bucket_from_hour(h) for h in (3, 6, 12, 18, 22)] == ["night", "dusk", "day", "dusk", "night"]
    assert [bucket_from_brightness(r) for r in (0.5, 0.7, 1.0)] == ["night", "dusk", "day"]
    H = random_homography(640, 480, np.random.default_rng(0))
    assert abs(np.linalg.det(H)) > 0.3


def _places(tmp_path, csv_text, db=("d0.png", "d1.png")):
    (tmp_path / "database").mkdir()
    (tmp_path / "queries").mkdir()
    for i, n in enumerate(db):
        _img(tmp_path / "database" / n, 50 + 40 * i)
    _img(tmp_path / "queries" / "q0.png")
    gt = tmp_path / "ground_truth.csv"
    gt.write_bytes(csv_text) if isinstance(csv_text, bytes) else gt.write_text(csv_text)
    return tmp_path


def test_places_folder_ok(tmp_path):
    root = _places(tmp_path, "query,positives\nq0.png,d1.png d0.png\nq1.png,\n")
    _img(tmp_path / "queries" / "q1.png")
    ds = load_places_dataset(str(root))
    assert ds.kind == "places" and ds.positives == [{0, 1}, set()]


@pytest.mark.parametrize(
    "csv_text,message",
    [
        ("query,positives\nq9.png,d0.png\n", r"ground_truth.csv:2: query image 'q9.png' not found"),
        ("query,positives\nq0.png,zz.png\n", r"ground_truth.csv:2: positive 'zz.png'"),
        ("q,p\nq0.png,d0.png\n", r"ground_truth.csv:1: the header"),
        ("query,positives\nq0.png,d0.png,extra\n", r"ground_truth.csv:2: expected 2 columns"),
        # a query listed twice would count twice in every recall
        ("query,positives\nq0.png,d0.png\nq0.png,\n", r"ground_truth.csv:3: query 'q0.png' is listed twice"),
        (b"query,positives\nq0.png,d0.png\n\xff\xfe\x00\n", r"ground_truth.csv: not a UTF-8 text file"),
    ],
)
def test_places_folder_errors(tmp_path, csv_text, message):
    with pytest.raises(DataError, match=message):
        load_places_dataset(str(_places(tmp_path, csv_text)))


def test_places_empty_database(tmp_path):
    root = _places(tmp_path, "query,positives\nq0.png,\n", db=())
    with pytest.raises(DataError, match=r"database: empty"):
        load_places_dataset(str(root))


def test_nordland_split_and_tolerance(tmp_path):
    for season in ("summer", "winter"):
        (tmp_path / season).mkdir()
        for i in range(1, 10):
            _img(tmp_path / season / f"images-{i * 10:05d}.png", size=(8, 16))
    ds = load_places_dataset(str(tmp_path), "last3rd", 1)
    assert ds.kind == "nordland" and [p.name for p in ds.queries] == [
        "images-00070.png",
        "images-00080.png",
        "images-00090.png",
    ]
    assert ds.database[0].parent.name == "summer" and ds.queries[0].parent.name == "winter"
    assert ds.positives == [{0, 1}, {0, 1, 2}, {1, 2}]
    assert len(load_places_dataset(f"nordland:{tmp_path}", "first2of3", 0).queries) == 6
    assert load_places_dataset(str(tmp_path), "all", 0).positives[4] == {4}
    with pytest.raises(DataError, match="matching"):
        load_places_dataset(f"pairs:{tmp_path}")

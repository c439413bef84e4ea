"""formats.pose: both pair-list layouts, errors naming file:line, the writer round trip, and the
dev sets built from ../shared (skipped where it is absent)."""

import numpy as np
import pytest

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.data_synthesis.formats.pose import (
    load_pose_pairs,
    quaternion_pose,
    relative_motion,
    write_pose_pairs,
)
from homeloc.runtime.io import write_image
from tests.conftest import ROOT

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def _rot_y(deg):
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


@pytest.fixture
def folder(tmp_path):
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "images" / name, np.zeros((8, 8, 3), np.uint8))
    return tmp_path


def _nums(*arrays):
    return " ".join(f"{v:.9g}" for a in arrays for v in np.ravel(a))


def test_reads_homeloc_and_superglue_layouts(folder):
    R, t = _rot_y(10), np.array([0.5, 0.0, 0.1])
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    (folder / "pairs.txt").write_text(
        f"# comment\na.png b.png {_nums(K, K, R, t)}\n\na.png b.png 0 0 {_nums(K, K, T)}\n"
    )
    ds = load_pose_pairs(folder)
    assert len(ds.pairs) == 2 and len(ds.images()) == 2
    for p in ds.pairs:
        assert np.allclose(p.R, R) and np.allclose(p.t, t) and np.allclose(p.K0, K)
        assert p.image0.path == folder / "images" / "a.png"
    assert len(load_pose_pairs(f"pose:{folder / 'pairs.txt'}").pairs) == 2


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.png b.png 1 2 3", r"pairs.txt:1: expected 32 fields"),
        ("a.png b.png " + _nums(K, K, 2 * np.eye(3), [1, 0, 0]), r"pairs.txt:1: R is not a rotation"),
        ("a.png b.png " + _nums(K, K, np.eye(3), [0, 0, 0]), r"pairs.txt:1: t is zero"),
        ("a.png c.png " + _nums(K, K, np.eye(3), [1, 0, 0]), r"pairs.txt:1: image 'c.png' not found"),
        ("a.png b.png " + _nums(-K, K, np.eye(3), [1, 0, 0]), r"pairs.txt:1: K0 is not an intrinsics"),
        ("a.png b.png 90 0 " + _nums(K, K, np.eye(4)), r"pairs.txt:1: EXIF-rotated"),
        ("a.png b.png x " + _nums(K, K, np.eye(3), [1, 0, 0]).split(" ", 1)[1], r"pairs.txt:1: not a number"),
    ],
)
def test_bad_lines_name_file_and_line(folder, line, message):
    (folder / "pairs.txt").write_text(line + "\n")
    with pytest.raises(DataError, match=message):
        load_pose_pairs(folder / "pairs.txt")


def test_empty_binary_and_missing_lists(folder, tmp_path):
    (folder / "pairs.txt").write_text("# nothing\n")
    with pytest.raises(DataError, match="no pairs"):
        load_pose_pairs(folder)
    (folder / "pairs.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DataError, match="not a text file"):
        load_pose_pairs(folder)
    with pytest.raises(DataError, match="no such file"):
        load_pose_pairs(tmp_path / "nope")


def test_writer_round_trip_and_relative_motion(folder):
    T0 = quaternion_pose(0, 0, 0, 0, 0, 0, 1)
    T1 = np.eye(4)
    T1[:3, :3], T1[:3, 3] = _rot_y(20), [1.0, 0.2, -0.3]
    R, t = relative_motion(T0, T1)
    X0 = np.array([0.3, -0.2, 4.0])  # a point in camera 0 = world
    X1 = (np.linalg.inv(T1) @ np.r_[X0, 1])[:3]  # the same point in camera 1
    assert np.allclose(R @ X0 + t, X1)
    write_pose_pairs(folder / "pairs.txt", ["images/a.png", "images/b.png"], [T0, T1], K, [(0, 1)])
    (p,) = load_pose_pairs(folder).pairs
    assert np.allclose(p.R, R, atol=1e-8) and np.allclose(p.t, t, atol=1e-8)
    q = quaternion_pose(1, 2, 3, 0, np.sin(np.pi / 8), 0, np.cos(np.pi / 8))  # 45 deg about y
    assert np.allclose(q[:3, :3], _rot_y(45)) and np.allclose(q[:3, 3], [1, 2, 3])


def test_dev_sets_from_shared_data(tmp_path):
    shared = ROOT.parent / "shared" / "data"
    if not (shared / "slambook_rgbd_5frames_pose").is_dir():
        pytest.skip("../shared/data is absent")
    from homeloc.data_synthesis.pose_sets import main

    assert main(["--shared", str(shared), "--out", str(tmp_path)]) == 0
    assert len(load_pose_pairs(tmp_path / "slambook").pairs) == 10
    tum = load_pose_pairs(tmp_path / "tum_fr2_desk")
    assert len(tum.pairs) == 15 + 10 + 5 and all(p.image0.path.is_file() for p in tum.pairs)
    assert len(load_pose_pairs(shared / "scannet_sample_pairs").pairs) == 15

"""Loop closure you can trust: flat frames give no keypoints, verification floors and the acceptance
score, and the runtime input defects of issue 12 (ids, failed adds, duplicate_score, search k,
map files, float images)."""

import os

import numpy as np
import pytest

from homeloc.runtime import mapstore
from homeloc.runtime.frontend import Features, Frontend
from homeloc.runtime.loop_closure import LoopClosureDetector, PruneConfig, VerifyConfig
from homeloc.runtime.loop_closure.verify import confidence, spread
from homeloc.runtime.places import GlobalDescriptor
from tests.runtime.test_frontend import synthetic_two_view


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _flat_map(n=10, dim=16, seed=0):
    det = LoopClosureDetector(index="flat", min_inliers=0, temporal_k=1)
    db = unit(np.random.default_rng(seed).standard_normal((n, dim)))
    det.add_descriptors(np.arange(n), db)
    return det, db


# ------------------------------------------------------------------------ flat and dark frames
@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_image_gives_no_keypoints(runtime_models, value):
    fe = Frontend(runtime_models["keypoints"], threshold=0.0)  # even with no score threshold
    assert len(fe.extract(np.full((96, 128), value, np.uint8))) == 0
    half = np.full((96, 128), value, np.uint8)
    half[:, 64:] = np.random.default_rng(0).integers(0, 255, (96, 64))
    kp = fe.extract(half).keypoints
    assert len(kp) > 0 and (kp[:, 0] >= 64 - 5).all()  # only where there is contrast


def test_flat_frames_cannot_close_a_loop(runtime_models):
    fe = Frontend(runtime_models["keypoints"])
    det = LoopClosureDetector(runtime_models["places"], fe, index="flat", temporal_k=1, min_confidence=0.0)
    black = np.zeros((96, 128, 3), np.uint8)
    det.add_keyframe(0, black)
    assert det.features_of(0) is not None and len(det.features_of(0)) == 0
    assert det.detect(black.copy()) is None


# ---------------------------------------------------------------------------- verification
def test_spread_and_confidence():
    frame = np.array([[0, 0], [100, 100]], np.float32)
    corner = np.random.default_rng(0).uniform(0, 20, (50, 2)).astype(np.float32)
    assert spread(corner, frame) == 1 / 16
    grid = np.stack(np.meshgrid(np.arange(4) * 25 + 5, np.arange(4) * 25 + 5), -1).reshape(-1, 2)
    assert spread(grid.astype(np.float32), frame) == 1.0
    assert spread(np.zeros((0, 2), np.float32), frame) == 0.0
    assert confidence(0, 0.0, 0.0) == 0.0
    assert confidence(100, 0.5, 1.0) > confidence(100, 0.5, 0.5) > confidence(50, 0.5, 0.5)
    assert confidence(100, 0.5, 1.0) > confidence(100, 0.2, 1.0)
    assert 0.0 <= confidence(10_000, 1.0, 1.0) <= 1.0


def test_clustered_inliers_fail_the_spread_floor():
    """Many geometrically consistent matches in one corner (the same object in another room)."""
    f0, f1, K, _, _ = synthetic_two_view(n=3000)
    span = f0.keypoints.max(0) - f0.keypoints.min(0)
    corner = np.flatnonzero(np.all(f0.keypoints < f0.keypoints.min(0) + span * 0.24, axis=1))
    extent = [int(np.argmin(f0.keypoints[:, 0])), int(np.argmax(f0.keypoints[:, 0])),
              int(np.argmin(f0.keypoints[:, 1])), int(np.argmax(f0.keypoints[:, 1]))]  # fmt: skip
    keep = np.r_[corner, extent]
    desc = f0.descriptors[keep].copy()
    desc[len(corner) :] = -f0.descriptors[corner[0]]  # the frame's extent, matching nothing useful
    q = Features(f0.keypoints[keep], f0.scores[keep], desc)
    g = unit(np.random.default_rng(1).standard_normal(16))
    det = LoopClosureDetector(index="flat", K=K, temporal_k=1, min_confidence=0.0, max_stored_features=3000)
    det.add_keyframe(0, g, features=f1)
    assert len(corner) >= 40 and det.detect(unit(g + 0.01), features=q) is None
    (v,) = det.last_verifications
    assert v.inliers >= 30 and v.inlier_ratio > 0.5 and v.spread < 0.25 and not v.passed
    det.min_spread = 0.0
    assert det.detect(unit(g + 0.01), features=q) is not None


def test_verification_log_and_min_confidence_knob():
    f0, f1, K, _, _ = synthetic_two_view(n=150)
    g = unit(np.random.default_rng(2).standard_normal((2, 16)))
    det = LoopClosureDetector(index="flat", K=K, temporal_k=1)
    det.add_keyframe(0, g[0], features=f0)
    det.add_keyframe(1, g[1])  # no features: not verified
    loop = det.detect(unit(g[0] + 0.01), features=f1)
    assert loop is not None and loop.kf_id == 0 and 0.5 <= loop.confidence < 1.0
    (v,) = det.last_verifications
    assert v.kf_id == 0 and v.accepted and v.confidence == loop.confidence and v.inlier_ratio > 0.9
    det.min_confidence = 0.999
    assert det.detect(unit(g[0] + 0.01), features=f1) is None
    assert det.last_verifications[0].passed and not det.last_verifications[0].accepted


def test_defaults_are_the_trusted_ones():
    det = LoopClosureDetector()
    assert det.temporal_k == 2 and det.min_confidence == 0.6
    assert det.min_inlier_ratio == 0.2 and det.min_spread == 0.25 and det.min_inliers == 20
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="min_confidence"):
            VerifyConfig(min_confidence=bad)


# ---------------------------------------------------------------------------- input defects
@pytest.mark.parametrize("bad", [-1, -5, 2**63, 2**64, 1.0, 2.5, True, "3", None])
def test_bad_keyframe_ids_are_refused(bad):
    det, db = _flat_map()
    with pytest.raises(ValueError, match="kf_id"):
        det.add_keyframe(bad, db[0])
    with pytest.raises(ValueError, match="kf_id"):
        det.add_descriptors([bad], db[:1])
    assert len(det) == 10


def test_float_and_negative_id_arrays_are_refused_not_truncated():
    det, db = _flat_map()
    with pytest.raises(ValueError, match="integers"):
        det.add_descriptors(np.array([11.7, 12.2]), db[:2])
    with pytest.raises(ValueError, match="2\\*\\*63"):
        det.add_descriptors(np.array([20, -3]), db[:2])
    with pytest.raises(ValueError, match="2\\*\\*63"):
        det.add_descriptors(np.array([2**63], np.uint64), db[:1])
    det.add_descriptors(np.array([2**63 - 1, 0 + 100], np.int64), db[:2])  # the largest id is fine
    assert det.query(db[0], k=20)[0].kf_id in (0, 2**63 - 1)
    assert {c.kf_id for c in det.query(db[0], k=12)} >= {0, 2**63 - 1}


def test_failed_training_leaves_the_map_unchanged():
    rng = np.random.default_rng(0)
    det = LoopClosureDetector(index="ivfpq", train_size=100, min_inliers=0, temporal_k=1)
    det.add_descriptors(np.arange(50), unit(rng.standard_normal((50, 32))))
    before = (det.keyframe_ids, det.stats())
    with pytest.raises(ValueError, match="at least 256"):
        det.add_descriptors(np.arange(50, 120), unit(rng.standard_normal((70, 32))))
    assert np.array_equal(det.keyframe_ids, before[0]) and det.stats() == before[1] and not det.trained
    first = LoopClosureDetector(index="pq", train_size=10, min_inliers=0)
    with pytest.raises(ValueError, match="at least 256"):
        first.add_descriptors(np.arange(20), unit(rng.standard_normal((20, 32))))
    assert len(first) == 0 and first.dim is None
    first.add_keyframe(0, unit(rng.standard_normal(8)))  # still usable, any dimension
    assert first.dim == 8


@pytest.mark.parametrize("bad", [float("nan"), 1.5, -1.01, float("inf"), "0.9", None])
def test_duplicate_score_must_be_a_cosine(bad):
    with pytest.raises(ValueError, match="duplicate_score"):
        PruneConfig(duplicate_score=bad)
    with pytest.raises(ValueError, match="duplicate_score"):
        LoopClosureDetector(duplicate_score=bad)
    det, _ = _flat_map()
    if bad is not None:
        with pytest.raises(ValueError, match="duplicate_score"):
            det.prune(duplicate_score=bad)
    assert len(det) == 10


def test_search_and_query_check_k_and_exclude_recent():
    det, db = _flat_map()
    for k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            det.search(db[:1], k=k)
        with pytest.raises(ValueError, match="k must be an int >= 1"):
            det.query(db[0], k=k)
    with pytest.raises(ValueError, match="exclude_recent"):
        det.search(db[:1], k=1, exclude_recent=-1)
    with pytest.raises(ValueError, match="finite"):
        det.search(np.full((1, 16), np.nan, np.float32))
    assert det.search(db[:1], k=3)[1][0, 0] == 0


def test_save_refuses_symlinks_and_non_regular_files(tmp_path):
    det, _ = _flat_map()
    target = tmp_path / "real.hlmap"
    det.save(target)
    link = tmp_path / "link.hlmap"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symlink"):
        det.save(link)
    (tmp_path / "dir.hlmap").mkdir()
    with pytest.raises(ValueError, match="non-regular"):
        det.save(tmp_path / "dir.hlmap")
    assert link.is_symlink() and LoopClosureDetector.load(target).keyframe_ids.tolist() == list(range(10))


def test_interrupted_save_leaves_no_temp_file_and_orphans_are_cleaned(tmp_path, monkeypatch):
    det, _ = _flat_map()
    path = tmp_path / "m.hlmap"
    det.save(path)
    real_fsync = os.fsync

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        det.save(path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.hlmap"]
    # a kill leaves a temp file behind: the next save or load in the folder removes it
    orphan, young, other = (
        tmp_path / ".m.hlmap.abc123.tmp",
        tmp_path / ".m.hlmap.new.tmp",
        tmp_path / ".x.tmp",
    )
    orphan.write_bytes(mapstore.MAGIC + b"partial")
    young.write_bytes(b"")
    other.write_bytes(b"not a map")
    os.utime(orphan, (0, 0))
    os.utime(other, (0, 0))
    LoopClosureDetector.load(path)
    assert not orphan.exists() and young.exists() and other.exists()  # in progress / not ours: kept
    os.utime(young, (0, 0))
    det.save(path)
    assert not young.exists() and other.exists()


@pytest.mark.parametrize(
    "image", [np.full((64, 80, 3), np.nan, np.float32), np.full((64, 80), 1.5, np.float32),
              np.full((64, 80, 3), -0.1, np.float32), np.full((64, 80), np.inf, np.float32)]
)  # fmt: skip
def test_global_descriptor_refuses_bad_float_images(runtime_models, image):
    g = GlobalDescriptor(runtime_models["places"])
    with pytest.raises(ValueError, match="finite values in \\[0, 1\\]"):
        g.describe(image)
    assert g.describe(np.full((64, 80, 3), 0.5, np.float32)).shape == (1, 16)


def test_temporal_streak_counts_near_duplicates_of_the_previous_best():
    """Keyframes 10 and 30 show one place (near-identical descriptors): consecutive queries whose
    best candidates swap between them still agree; a jump to an unrelated place does not."""
    rng = np.random.default_rng(3)
    db = unit(rng.standard_normal((40, 32)))
    db[30] = unit(db[10] + 0.05 * rng.standard_normal(32))
    det = LoopClosureDetector(index="flat", min_inliers=0, temporal_k=2, temporal_window=1)
    det.add_descriptors(np.arange(40), db)
    assert det.detect(unit(db[10] + 0.01 * rng.standard_normal(32))) is None  # first of the streak
    loop = det.detect(unit(db[30] + 0.01 * rng.standard_normal(32)))  # 20 positions away, same place
    assert loop is not None and loop.kf_id == 30
    assert det.detect(unit(db[3] + 0.01 * rng.standard_normal(32))) is None  # another place: restarts


def test_bench_loop_closure_row(runtime_models):
    from homeloc.runtime import bench

    (row,) = bench.loop_closure_rows(
        runtime_models["keypoints"], runtime_models["places"], repeats=1, keyframes=40
    )
    assert (
        row[0].startswith("loop closure step 640x480, 1 thread, 40 keyframes")
        and "x keypoint extraction" in row[1]
    )
    assert bench.loop_closure_rows(None, None, 1)[0][1].startswith("n/a")

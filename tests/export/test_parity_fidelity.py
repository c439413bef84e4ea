"""homeloc.export.parity.fidelity / .targets: the parity metrics on hand-computed cases.

Pure functions (numbers in, numbers out): no models, no ONNX files, no dataset; each expected
value below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest

from homeloc.export.parity import fidelity as fd
from homeloc.export.parity.targets import target_row, target_rows
from tests.conftest import ROOT


# ------------------------------------------------------------------------------------ keypoints
def test_keypoint_overlap_is_inclusive_and_per_reference_keypoint():
    ref = np.array([[0, 0], [10, 10], [5, 5]], np.float32)
    cand = np.array([[1, 0], [10, 11.5]], np.float32)
    # ref0 -> (1, 0): 1 px, counts (<=); ref1 -> (10, 11.5): 1.5 px; ref2: sqrt(16 + 25) from (1, 0)
    np.testing.assert_array_equal(fd.keypoint_overlap(ref, cand), [True, False, False])
    np.testing.assert_array_equal(fd.keypoint_overlap(ref, cand, px=1.5), [True, True, False])
    assert fd.keypoint_overlap(np.zeros((0, 2)), cand).shape == (0,)
    np.testing.assert_array_equal(fd.keypoint_overlap(ref, np.zeros((0, 2))), [False, False, False])


def test_cosines_and_max_abs():
    a = np.array([[1.0, 0.0], [0.6, 0.8]])
    b = np.array([[1.0, 0.0], [0.8, 0.6]])
    np.testing.assert_allclose(fd.unit_cosine(a, b), [1.0, 0.96])  # 0.6*0.8 + 0.8*0.6
    # any norm: (3,4).(6,8) = 50 = 5 * 10; orthogonal rows 0; an all-zero row 0, not NaN
    np.testing.assert_allclose(
        fd.cosine_rows(
            np.array([[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]]), np.array([[6.0, 8.0], [0.0, 2.0], [1.0, 1.0]])
        ),
        [1.0, 0.0, 0.0],
        atol=1e-12,
    )
    d = fd.max_abs_diff(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.5], [0.0, 4.0]]))
    assert d == 3.0 and type(d) is float


def test_descriptor_stats():
    # 0..10: mean 5; linear 5th percentile at position 0.05 * 10 = 0.5 -> 0.5; min 0
    assert fd.descriptor_stats(np.arange(11)) == {"mean": 5.0, "p05": 0.5, "min": 0.0}
    assert fd.descriptor_stats([1 / 3]) == {"mean": 0.333333, "p05": 0.333333, "min": 0.333333}
    assert fd.descriptor_stats([]) == {"mean": None, "p05": None, "min": None}


def test_keypoint_fidelity_pools_overlap_and_keeps_the_worst_image():
    overlaps = [np.array([True, True, False, False]), np.array([True]), np.zeros(0, bool)]
    cosines = [np.array([1.0, 0.5]), np.array([0.9]), np.zeros(0)]
    out = fd.keypoint_fidelity(overlaps, cosines, 0.25, 0.125, [4, 1, 0])
    assert list(out) == [
        "images",
        "keypoint_overlap",
        "keypoint_overlap_min_image",
        "descriptor_cosine",
        "max_abs_logits",
        "max_abs_descriptors",
        "keypoints_mean",
    ]
    assert out["images"] == 3
    assert out["keypoint_overlap"] == 0.6  # 3 of 5 keypoints, pooled over images
    assert out["keypoint_overlap_min_image"] == 0.5  # images 0.5 and 1.0; the empty one is ignored
    # cosines sorted 0.5, 0.9, 1.0: mean 0.8, p05 at position 0.1 -> 0.5 + 0.1 * 0.4 = 0.54
    assert out["descriptor_cosine"] == {"mean": 0.8, "p05": 0.54, "min": 0.5}
    assert out["max_abs_logits"] == 0.25 and out["max_abs_descriptors"] == 0.125
    assert out["keypoints_mean"] == 1.7  # 5 / 3
    empty = fd.keypoint_fidelity([np.zeros(0, bool)], [np.zeros(0)], 0.0, 0.0, [0])
    assert empty["keypoint_overlap"] is None and empty["keypoint_overlap_min_image"] is None
    assert empty["descriptor_cosine"]["mean"] is None
    assert fd.reference_fidelity([10, 20, 31]) == {"images": 3, "keypoints_mean": 20.3}


def test_pair_mma_under_a_translation():
    # H shifts x by 2; the third match lands 4 px off: errors 0, 0, 4
    H = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    k0 = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    k1 = np.array([[2.0, 0.0], [12.0, 0.0], [2.0, 14.0]])
    desc = np.eye(3, dtype=np.float32)  # each descriptor's only mutual neighbour is itself
    mma, n = fd.pair_mma(k0, desc, k1, desc, H)
    assert n == 3
    np.testing.assert_allclose(mma, [2 / 3, 2 / 3, 1.0])  # within 1, 3, 5 px


def test_mma_summary_and_buckets():
    mma = [np.array([0.5, 1.0, 1.0]), np.array([0.0, 0.5, 1.0]), np.array([1.0, 1.0, 1.0])]
    buckets = ["day", "night", "day"]
    assert fd.bucket_counts(buckets) == {"day": 2, "night": 1}
    out = fd.mma_summary(mma, [10, 20, 31], buckets)
    assert list(out) == ["MMA@1", "MMA@3", "MMA@5", "matches_mean", "by_bucket"]
    assert out["MMA@1"] == 0.5 and out["MMA@3"] == 0.8333 and out["MMA@5"] == 1.0  # 2.5 / 3
    assert out["matches_mean"] == 20.3
    assert out["by_bucket"] == {"day": 1.0, "night": 0.5}  # MMA@3 of pairs 0, 2 and of pair 1


def test_keypoint_accuracy_skipped_and_measured():
    assert fd.keypoint_accuracy("none", "no pair set requested", [], {}, {}) == {
        "data": "none",
        "pairs": 0,
        "skipped": "no pair set requested",
    }
    assert fd.keypoint_accuracy(None, None, [], {}, {})["skipped"] == "no pairs"
    mma = {"torch": [np.array([1.0, 1.0, 1.0])], "onnx_fp32": [np.array([0.0, 0.5, 1.0])]}
    out = fd.keypoint_accuracy("synthetic", "ignored", ["dusk"], mma, {"torch": [4], "onnx_fp32": [2]})
    assert list(out) == ["data", "pairs", "skipped", "buckets", "torch", "onnx_fp32"]
    assert out["pairs"] == 1 and out["skipped"] is None and out["buckets"] == {"dusk": 1}
    assert out["onnx_fp32"]["MMA@3"] == 0.5 and out["onnx_fp32"]["by_bucket"] == {"dusk": 0.5}


# ------------------------------------------------------------------------------------ places
def test_place_fidelity():
    desc = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.array([[1.0, 0.0], [1.0, 1.0]])
    out = fd.place_fidelity(desc, ref)
    # cosines 1 and 1/sqrt(2) = 0.7071068: mean 0.8535534, p05 0.7071068 + 0.05 * 0.2928932
    assert out == {
        "images": 2,
        "descriptor_cosine": {"mean": 0.853553, "p05": 0.721751, "min": 0.707107},
        "max_abs_descriptor": 1.0,
    }


DB = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
QUERIES = np.array([[0.8, 0.6], [0.0, 1.0]])  # scores q0: 0.8, 0.6, 0.96 -> ranks 2, 0, 1; q1: 1, 2, 0


def test_place_recall():
    assert fd.place_recall(DB, QUERIES, [{2}, {1}]) == {"R@1": 1.0, "R@5": 1.0}
    assert fd.place_recall(DB, QUERIES, [{1}, {1}]) == {"R@1": 0.5, "R@5": 1.0}  # q0's 1 is third
    # a query without positives does not count
    assert fd.place_recall(DB, QUERIES, [{1}, set()]) == {"R@1": 0.0, "R@5": 1.0}
    # ties keep database order: both rows score 1, the first one ranks first
    assert fd.place_recall(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0]]), [{1}], ks=(1,)) == {
        "R@1": 0.0
    }


def test_place_accuracy():
    assert fd.place_accuracy("none", "no place set requested", {}, 0, []) == {
        "data": "none",
        "skipped": "no place set requested",
    }
    both = np.concatenate([DB, QUERIES])
    desc = {"torch": both, "onnx_fp32": np.concatenate([DB[[1, 0, 2]], QUERIES])}  # database 0 <-> 1
    out = fd.place_accuracy("places:x", None, desc, 3, [{2}, {1}])
    assert list(out) == ["data", "skipped", "database", "queries", "torch", "onnx_fp32"]
    assert out["database"] == 3 and out["queries"] == 2
    assert out["torch"] == {"R@1": 1.0, "R@5": 1.0}
    # swapped database: q0 still ranks row 2 first (hit); q1 = (0, 1) now ranks row 0 first (miss)
    assert out["onnx_fp32"] == {"R@1": 0.5, "R@5": 1.0}


# ------------------------------------------------------------------------------------ targets
def _report(backends, lat, fid_overlap=None, mma=None, skipped=None):
    acc = {"skipped": skipped, **(mma or {})}
    fidelity = {"onnx_int8": {"keypoint_overlap": fid_overlap}} if "onnx_int8" in backends else {}
    return {"backends": backends, "latency_ms": lat, "fidelity": fidelity, "accuracy": acc}


def test_target_row():
    assert target_row("x", 2.123456, ">=", 2.0, "x") == {
        "name": "x",
        "value": 2.1235,
        "target": ">= 2x",
        "met": True,
    }
    assert target_row("y", 1.5, "<=", 1.0)["met"] is False
    assert target_row("z", None, "<=", 1.0) == {"name": "z", "value": None, "target": "<= 1", "met": None}


def test_target_rows_keypoints():
    lat = {
        "size": "480x640",
        "threads_2": {"onnx_fp32": 3.0, "onnx_int8": 2.0},  # 1.5x: missed
        "threads_1": {"onnx_fp32": 4.0, "onnx_int8": 1.6},  # 2.5x: met
    }
    mma = {"onnx_fp32": {"MMA@3": 0.5}, "onnx_int8": {"MMA@3": 0.495}}  # 0.5 points lost: met
    rows = target_rows(_report(["torch", "onnx_fp32", "onnx_int8"], lat, 0.85, mma), "keypoints")
    assert [(r["value"], r["met"]) for r in rows] == [(2.5, True), (1.5, False), (0.85, False), (0.5, True)]
    assert rows[0]["name"] == "int8 speed-up vs ORT fp32, 1 thread(s)" and rows[0]["target"] == ">= 2x"
    assert all("note" not in r for r in rows)
    # no pair set: the MMA row is not measured and says why
    rows = target_rows(
        _report(["torch", "onnx_fp32", "onnx_int8"], lat, 0.95, skipped="no pairs"), "keypoints"
    )
    assert rows[-1]["met"] is None and rows[-1]["note"] == "no pair set (no pairs)"


def test_target_rows_without_int8_or_for_places():
    lat = {"threads_1": {"torch": 1.0, "onnx_fp32": 2.0}}
    rows = target_rows(_report(["torch", "onnx_fp32"], lat), "keypoints")
    assert len(rows) == 3 and all(r["met"] is None for r in rows)
    assert all(r["note"] == "no int8 model (export without --int8)" for r in rows)
    lat = {"threads_1": {"onnx_fp32": 1.0, "onnx_int8": 0.5}}
    rows = target_rows(_report(["torch", "onnx_fp32", "onnx_int8"], lat), "places")
    assert len(rows) == 1 and rows[0]["value"] == 2.0 and rows[0]["met"] is True


# ------------------------------------------------------------------------------------ purity
def test_fidelity_module_is_pure():
    """fidelity.py: numpy and the pure metric owners only (no torch, ONNX, OpenCV, file I/O)."""
    tree = ast.parse((ROOT / "export" / "parity" / "fidelity.py").read_text())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    allowed = {
        "__future__",
        "collections.abc",
        "typing",
        "numpy",
        "homeloc.runtime.matching",
        "homeloc.train.metrics",
    }
    assert modules <= allowed, modules - allowed
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"open", "print", "Path"}


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_overlap_radius_zero_needs_exact_position(p):
    ref = np.array([[3.0, 4.0]])
    assert bool(fd.keypoint_overlap(ref, ref + p, px=0.0)[0]) is (p == 0.0)

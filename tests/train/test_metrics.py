"""Hand-computed cases for homeloc.train.metrics (the metric functions every benchmark uses)."""

import math

import numpy as np
import pytest

from homeloc.runtime.geometry import symmetric_epipolar_distance
from homeloc.train import metrics as M


def test_matching_accuracy_thresholds_inclusive():
    err = np.array([0.5, 1.0, 2.5, 9.0])
    assert M.matching_accuracy(err, [1, 2, 3, 10]).tolist() == [0.5, 0.5, 0.75, 1.0]
    assert M.matching_accuracy(np.zeros(0), [1, 2]).tolist() == [0.0, 0.0]


def test_reprojection_errors():
    H = np.diag([2.0, 2.0, 1.0])
    e = M.reprojection_errors(np.array([[1.0, 1.0], [0, 0]]), np.array([[2.0, 5.0], [3, 4]]), H)
    assert np.allclose(e, [3.0, 5.0])


def test_repeatability_hand_case():
    H = np.eye(3)
    kp0 = np.array([[10, 10], [50, 50], [90, 90]], float)
    kp1 = np.array([[11, 10], [50, 55], [200, 200]], float)  # (200,200) is outside image0 (100x100)
    # visible: 3 in image0, 2 of kp1 -> 5; repeated: kp0[0] (1px) -> 1; kp1[0] -> 1; kp1[1] is 5px away
    assert M.repeatability(kp0, kp1, H, (100, 100), (300, 300), 3.0) == pytest.approx(2 / 5)
    assert M.repeatability(np.zeros((0, 2)), np.zeros((0, 2)), H, (10, 10), (10, 10)) == 0.0


def test_corner_error_and_homography_accuracy():
    H_gt = np.eye(3)
    H_est = np.array([[1, 0, 3], [0, 1, 4], [0, 0, 1]], float)  # every corner moves 5 px
    assert M.corner_error(H_est, H_gt, 100, 50) == pytest.approx(5.0)
    assert math.isinf(M.corner_error(None, H_gt, 100, 50))
    assert M.homography_accuracy([0.5, 2.0, 6.0, float("inf")], [1, 3, 5, 10]).tolist() == [
        0.25,
        0.5,
        0.5,
        0.75,
    ]


def test_symmetric_epipolar_distance_rectified_stereo():
    # Pure x-translation: F = [t]x with t = (1,0,0); epipolar lines are rows y = const.
    F = np.array([[0, 0, 0], [0, 0, -1], [0, 1, 0]], float)
    p0 = np.array([[10.0, 20.0], [5.0, 5.0]])
    p1 = np.array([[30.0, 20.0], [7.0, 8.0]])  # same row -> 0; 3 rows off -> 3 px each way
    d = symmetric_epipolar_distance(F, p0, p1)
    assert d[0] == pytest.approx(0.0)
    assert d[1] == pytest.approx(math.sqrt(9 + 9))
    corrs = np.concatenate([p0, p1], axis=1)
    assert M.gt_share_within(F, corrs, 5.0) == 1.0
    assert M.gt_share_within(F, corrs, 4.0) == 0.5
    assert M.gt_share_within(None, corrs) == 0.0
    assert M.gt_epipolar_error(F, corrs) == pytest.approx(math.sqrt(18) / 2)


def test_recall_at_k():
    ranked = np.array([[0, 1, 2], [2, 1, 0], [1, 2, 0], [0, 1, 2]])
    positives = [{0}, {1}, {0}, set()]  # the last query has no positive: not counted
    r = M.recall_at_k(ranked, positives, [1, 2, 3])
    assert r == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: pytest.approx(1.0)}


def test_recall_at_k_without_any_positive_is_undefined_not_zero():
    r = M.recall_at_k(np.array([[0, 1], [1, 0]]), [set(), set()], [1, 2])
    assert all(math.isnan(v) for v in r.values())


def test_pr_curve_auc_and_recall_at_full_precision():
    scores = np.array([0.9, 0.6, 0.8, 0.7])
    correct = np.array([True, True, True, False])
    has_pos = np.ones(4, bool)
    # sorted: 0.9 T, 0.8 T, 0.7 F, 0.6 T
    precision, recall = M.pr_curve_top1(scores, correct, has_pos)
    assert precision.tolist() == pytest.approx([1, 1, 2 / 3, 3 / 4])
    assert recall.tolist() == pytest.approx([0.25, 0.5, 0.5, 0.75])
    assert M.auc_pr(precision, recall) == pytest.approx(0.25 + 0.25 + 0.25 * 0.75)
    assert M.recall_at_full_precision(precision, recall) == pytest.approx(0.5)


def test_pr_first_wrong_and_no_positive_queries():
    precision, recall = M.pr_curve_top1(
        np.array([0.9, 0.5]), np.array([False, True]), np.array([False, True])
    )
    assert precision.tolist() == [0.0, 0.5]
    assert recall.tolist() == [0.0, 1.0]
    assert M.recall_at_full_precision(precision, recall) == 0.0


def test_pose_errors_hand_computed():
    a = np.deg2rad(30)
    Rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    assert M.rotation_error_deg(Rz, np.eye(3)) == pytest.approx(30.0)
    assert M.translation_error_deg([1, 0, 0], [0, 1, 0]) == pytest.approx(90.0)
    assert M.translation_error_deg([1, 0, 0], [-1, 0, 0]) == pytest.approx(0.0)  # E fixes t up to sign
    assert M.translation_error_deg([1, 1, 0], [1, 0, 0]) == pytest.approx(45.0)
    assert M.pose_error_deg(Rz, [1, 1, 0], np.eye(3), [1, 0, 0]) == pytest.approx(45.0)
    assert M.pose_error_deg(None, None, np.eye(3), [1, 0, 0]) == math.inf


def test_pose_auc_hand_computed():
    # Errors 0 (perfect) and inf (failed): recall 0.5 from 0 deg on -> AUC = 0.5 at every threshold.
    assert M.pose_auc([0.0, math.inf]).tolist() == pytest.approx([0.5, 0.5, 0.5])
    # One error of 5 deg: the curve is a ramp from (0, 0) to (5, 1) (trapezoids), then 1.
    assert M.pose_auc([5.0], (5, 10, 20)).tolist() == pytest.approx([0.0, 0.75, 0.875])
    assert M.pose_auc([]).tolist() == [0.0, 0.0, 0.0]

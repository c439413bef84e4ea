"""Pure metric functions (numpy in, numbers out): the one owner for training validation, export
parity and the evaluation tool. Geometry (warping, robust estimation) is homeloc.runtime.geometry.

Conventions: points are float (N, 2) pixel coordinates (x, y); H maps image0 pixels to image1
pixels; thresholds are inclusive (error <= t counts as correct).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from homeloc.runtime.geometry import symmetric_epipolar_distance, warp_points

MMA_THRESHOLDS: tuple[int, ...] = tuple(range(1, 11))
HA_THRESHOLDS: tuple[int, ...] = (1, 3, 5, 10)
RECALL_KS: tuple[int, ...] = (1, 5, 10)


# --------------------------------------------------------------------------------------- geometry
def reprojection_errors(pts0: np.ndarray, pts1: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Distance in image1 between H(pts0) and pts1, (N,)."""
    if len(pts0) == 0:
        return np.zeros(0)
    return np.linalg.norm(warp_points(pts0, H) - np.asarray(pts1, np.float64), axis=1)


def _inside(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape[:2]
    x, y = points[:, 0], points[:, 1]
    return (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)


# --------------------------------------------------------------------------------------- matching
def matching_accuracy(errors: np.ndarray, thresholds: Sequence[float] = MMA_THRESHOLDS) -> np.ndarray:
    """Share of matches with error <= t for each t (all zeros when there are no matches)."""
    errors = np.asarray(errors, np.float64)
    if errors.size == 0:
        return np.zeros(len(thresholds))
    return np.array([float(np.mean(errors <= t)) for t in thresholds])


def repeatability(
    kp0: np.ndarray,
    kp1: np.ndarray,
    H: np.ndarray,
    shape0: tuple[int, int],
    shape1: tuple[int, int],
    threshold: float = 3.0,
) -> float:
    """Symmetric keypoint repeatability (SuperPoint protocol).

    Only keypoints whose warp lands inside the other image count. A keypoint is repeated when a
    keypoint of the other image lies within `threshold` px of its warp. Returns
    (repeated0 + repeated1) / (visible0 + visible1), 0.0 when nothing is visible.
    """
    kp0 = np.asarray(kp0, np.float64).reshape(-1, 2)
    kp1 = np.asarray(kp1, np.float64).reshape(-1, 2)
    w0 = warp_points(kp0, H)
    w1 = warp_points(kp1, np.linalg.inv(H))
    vis0 = _inside(w0, shape1)
    vis1 = _inside(w1, shape0)
    n_vis = int(vis0.sum() + vis1.sum())
    if n_vis == 0:
        return 0.0
    a, b = w0[vis0], kp1[vis1]  # both in image1 coordinates
    if len(a) == 0 or len(b) == 0:
        return 0.0
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    rep0 = int((d.min(axis=1) <= threshold).sum())
    rep1 = int((d.min(axis=0) <= threshold).sum())
    return (rep0 + rep1) / n_vis


def image_corners(width: int, height: int) -> np.ndarray:
    """The 4 corner pixel centres (x, y) of a width x height image."""
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)


def corner_error(H_est: np.ndarray | None, H_gt: np.ndarray, width: int, height: int) -> float:
    """Mean distance between the image0 corners warped by H_est and by H_gt (inf without H_est)."""
    if H_est is None:
        return float("inf")
    c = image_corners(width, height)
    err = np.linalg.norm(warp_points(c, H_est) - warp_points(c, H_gt), axis=1)
    return float(err.mean()) if np.all(np.isfinite(err)) else float("inf")


def homography_accuracy(
    corner_errors: Sequence[float], thresholds: Sequence[float] = HA_THRESHOLDS
) -> np.ndarray:
    """Share of pairs whose corner error is <= t, for each t (zeros for no pairs)."""
    e = np.asarray(corner_errors, np.float64)
    if e.size == 0:
        return np.zeros(len(thresholds))
    return np.array([float(np.mean(e <= t)) for t in thresholds])


# --------------------------------------------------------------------------------------- epipolar
def gt_share_within(F: np.ndarray | None, corrs: np.ndarray, threshold: float = 5.0) -> float:
    """Share of ground-truth correspondences (x0 y0 x1 y1 rows) within threshold px of the
    estimated epipolar geometry (0.0 without F)."""
    if F is None or len(corrs) == 0:
        return 0.0
    d = symmetric_epipolar_distance(F, corrs[:, :2], corrs[:, 2:4])
    return float(np.mean(d <= threshold))


def gt_epipolar_error(F: np.ndarray | None, corrs: np.ndarray) -> float:
    """Median symmetric epipolar distance (px) of the ground-truth correspondences (inf without F)."""
    if F is None or len(corrs) == 0:
        return float("inf")
    return float(np.median(symmetric_epipolar_distance(F, corrs[:, :2], corrs[:, 2:4])))


# ------------------------------------------------------------------------------------------- pose
POSE_THRESHOLDS: tuple[int, ...] = (5, 10, 20)


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Angle (degrees) of the rotation R_est^T R_gt, in [0, 180]."""
    cos = (np.trace(np.asarray(R_est, np.float64).T @ np.asarray(R_gt, np.float64)) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def translation_error_deg(t_est: np.ndarray, t_gt: np.ndarray) -> float:
    """Angle (degrees) between the translation directions, folded to [0, 90]: an essential matrix
    fixes t only up to sign, so t and -t are equally right (the SuperGlue/LoFTR protocol)."""
    a, b = np.asarray(t_est, np.float64).ravel(), np.asarray(t_gt, np.float64).ravel()
    n = np.linalg.norm(a) * np.linalg.norm(b)
    if n == 0:
        return 90.0
    e = float(np.degrees(np.arccos(np.clip(a @ b / n, -1.0, 1.0))))
    return min(e, 180.0 - e)


def pose_error_deg(
    R_est: np.ndarray | None, t_est: np.ndarray | None, R_gt: np.ndarray, t_gt: np.ndarray
) -> float:
    """max(rotation error, translation-direction error) in degrees; inf when no pose was found."""
    if R_est is None or t_est is None:
        return float("inf")
    return max(rotation_error_deg(R_est, R_gt), translation_error_deg(t_est, t_gt))


def pose_auc(errors: Sequence[float], thresholds: Sequence[float] = POSE_THRESHOLDS) -> np.ndarray:
    """Area under the recall-vs-error curve up to each threshold, normalised to [0, 1] (the
    SuperGlue protocol: recall steps at each sorted error, trapezoids, failures count as misses)."""
    e = np.sort(np.asarray(errors, np.float64))
    if e.size == 0:
        return np.zeros(len(thresholds))
    recall = np.arange(1, len(e) + 1) / len(e)
    e, recall = np.r_[0.0, e], np.r_[0.0, recall]
    out = []
    for t in thresholds:
        last = int(np.searchsorted(e, t))
        x = np.r_[e[:last], t]
        y = np.r_[recall[:last], recall[last - 1]]
        out.append(float(np.trapezoid(y, x) / t))
    return np.array(out)


# ----------------------------------------------------------------------------------------- places
def recall_at_k(
    ranked: np.ndarray, positives: Sequence[set[int]], ks: Sequence[int] = RECALL_KS
) -> dict[int, float]:
    """Share of queries (those with at least one positive) with a positive among the top k; nan
    when no query has a positive (undefined: reported as null, never as 0.0).

    ranked: (Q, K) database indices, best first; positives: per query, the set of correct indices.
    """
    ranked = np.asarray(ranked)
    hits = np.array([[int(r) in pos for r in row] for row, pos in zip(ranked, positives, strict=True)], bool)
    has_pos = np.array([len(p) > 0 for p in positives], bool)
    out: dict[int, float] = {}
    for k in ks:
        if not has_pos.any():
            out[k] = float("nan")
            continue
        found = hits[:, :k].any(axis=1) if hits.size else np.zeros(len(positives), bool)
        out[k] = float(found[has_pos].mean())
    return out


def pr_curve_top1(
    scores: np.ndarray, correct: np.ndarray, has_positive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of accepting the top-1 match when its similarity >= a threshold.

    Thresholds sweep the sorted scores (highest first); accepting a wrong top-1 is a false
    positive (also for queries with no positive in the database); recall is over the queries
    that have a positive. Returns (precision, recall), one entry per threshold.
    """
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    ok = (np.asarray(correct, bool) & np.asarray(has_positive, bool))[order]
    n_pos = int(np.asarray(has_positive, bool).sum())
    tp = np.cumsum(ok)
    accepted = np.arange(1, len(ok) + 1)
    precision = tp / accepted
    recall = tp / n_pos if n_pos else np.zeros(len(ok))
    return precision.astype(np.float64), recall.astype(np.float64)


def auc_pr(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the PR curve as average precision: sum of (recall step) x precision."""
    if len(recall) == 0:
        return 0.0
    steps = np.diff(np.concatenate([[0.0], np.asarray(recall, np.float64)]))
    return float(np.sum(steps * np.asarray(precision, np.float64)))


def recall_at_full_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Largest recall reached while precision is still exactly 1 (0.0 if the first is wrong)."""
    precision = np.asarray(precision)
    ok = precision >= 1.0 - 1e-12
    if not ok.any() or not ok[0]:
        return 0.0
    last = int(np.argmin(ok)) - 1 if not ok.all() else len(ok) - 1
    return float(np.asarray(recall)[last])


# ------------------------------------------------------------------------------------ calibration
def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve of `scores` for the positive `labels` (ties count one half);
    None when only one class is present."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([pos, neg])[order]
    # average ranks over ties
    i = 0
    while i < len(allv):
        j = i
        while j + 1 < len(allv) and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def calibration_bins(probs: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[dict]:
    """Equal-width bins of predicted probability: count, mean prediction, observed rate."""
    p = np.clip(np.asarray(probs, np.float64), 0, 1)
    y = np.asarray(labels, np.float64)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        out.append({"lo": b / bins, "hi": (b + 1) / bins, "count": int(m.sum()),
                    "predicted": float(p[m].mean()) if m.any() else None,
                    "observed": float(y[m].mean()) if m.any() else None})  # fmt: skip
    return out


def expected_calibration_error(
    probs: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> float | None:
    """ECE: sum over bins of (share of samples) x |mean prediction - observed rate|; None if empty."""
    n = len(np.asarray(probs))
    if n == 0:
        return None
    return float(
        sum(
            b["count"] / n * abs(b["predicted"] - b["observed"])
            for b in calibration_bins(probs, labels, bins)
            if b["count"]
        )
    )

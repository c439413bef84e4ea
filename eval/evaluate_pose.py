"""`homeloc-evaluate pose`: relative pose from matches on pose pair lists (ScanNet / SuperGlue style).

Per pair: features from the shared cache (same resize and keypoint budget as `matching`), mutual
nearest neighbours, essential matrix by MAGSAC++ (homeloc.runtime.geometry, the runtime's own
estimator) with each image's intrinsics, pose recovered with the cheirality check. The error is
max(rotation error, translation-direction error) in degrees (t up to sign); a pair without a pose
counts as an infinite error. Reported per method: AUC of the error curve at 5/10/20 degrees, the
median error, the share of pairs with a pose, matches and inliers. The inlier threshold is given in
pixels at the extraction resolution (after --resize) and scaled to each original image.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.pose import PosePair, load_pose_pairs
from homeloc.eval.config import PoseConfig, prepare_out, set_threads
from homeloc.eval.extract import extract_all, load_features
from homeloc.eval.methods import create_method
from homeloc.runtime.features import Features
from homeloc.runtime.geometry import find_relative_pose
from homeloc.runtime.matching import Distance, mutual_nearest_neighbours
from homeloc.train.metrics import (
    POSE_THRESHOLDS,
    pose_auc,
    pose_error_deg,
    rotation_error_deg,
    translation_error_deg,
)

log = logging.getLogger(__name__)


@dataclass
class PoseResult:
    method: str
    pair: str
    keypoints0: int
    keypoints1: int
    matches: int
    inliers: int = 0
    error_R: float = math.inf
    error_t: float = math.inf
    error: float = math.inf


def evaluate_pose_pair(
    method: str, pair: PosePair, f0: Features, f1: Features, distance: Distance, threshold_px: float
) -> PoseResult:
    """Match, estimate E with both intrinsics, and measure the pose error against the ground truth."""
    idx = mutual_nearest_neighbours(f0.descriptors, f1.descriptors, distance)
    p0 = f0.keypoints[idx[:, 0]].astype(np.float64)
    p1 = f1.keypoints[idx[:, 1]].astype(np.float64)
    res = PoseResult(method, pair.name, len(f0), len(f1), len(idx))
    _, R, t, inliers = find_relative_pose(p0, p1, pair.K0, threshold_px, K1=pair.K1)
    if R is not None:
        res.inliers = int(inliers.sum())
        res.error_R = rotation_error_deg(R, pair.R)
        res.error_t = translation_error_deg(t, pair.t)
        res.error = pose_error_deg(R, t, pair.R, pair.t)
    return res


def aggregate(results: list[PoseResult], thresholds=POSE_THRESHOLDS) -> dict:
    """AUC@t for each threshold, median error (inf -> None), pose share, mean matches/inliers."""
    errors = [r.error for r in results]
    auc = pose_auc(errors, thresholds)
    med = float(np.median(errors)) if errors else math.inf
    out = {f"AUC@{t}": float(a) for t, a in zip(thresholds, auc, strict=True)}
    out["median_error_deg"] = med if math.isfinite(med) else None
    out["pose_found"] = float(np.mean([math.isfinite(e) for e in errors])) if errors else 0.0
    out["matches"] = float(np.mean([r.matches for r in results])) if results else 0.0
    out["inliers"] = float(np.mean([r.inliers for r in results])) if results else 0.0
    out["pairs"] = len(results)
    return out


def _threshold_for(image_shape: tuple[int, int], resize: int, threshold: float) -> float:
    """`threshold` px at the extraction resolution, in the original image's pixels."""
    longer = max(image_shape[:2])
    return threshold * (longer / resize if resize and longer > resize else 1.0)


def run_pose(config: PoseConfig) -> Path:
    """Evaluate every method on every pair; writes DIR/summary.json, table.md, pairs.csv,
    pose_auc.png and config.yaml; returns DIR."""
    from homeloc.eval import plots, report

    set_threads(config.threads)
    dataset = load_pose_pairs(config.data)
    out = Path(config.out)
    log.info("pose pairs %s: %d pairs", dataset.root, len(dataset.pairs))
    methods = {
        spec: create_method(spec, "local", max_keypoints=config.max_keypoints, resize=config.resize, threads=config.threads)
        for spec in config.methods
    }  # fmt: skip
    prepare_out(out, config, "pose")  # after the methods: a bad model leaves no output folder
    cache_root = Path(config.cache_dir) if config.cache_dir else out / "cache"
    set_threads(config.threads)
    images = dataset.images()
    results: list[PoseResult] = []
    for spec, method in methods.items():
        cache = extract_all(
            method, spec, images, cache_root, config.resize, config.max_keypoints, config.recompute
        )
        for pair in tqdm(dataset.pairs, desc=f"pose {spec}", unit="pair"):
            f0, s0 = load_features(cache[pair.image0.key()])
            f1, _ = load_features(cache[pair.image1.key()])
            thr = _threshold_for(s0, config.resize, config.e_threshold)
            results.append(evaluate_pose_pair(spec, pair, f0, f1, method.distance, thr))
    summary = {m: aggregate([r for r in results if r.method == m]) for m in config.methods}
    report.write_json(out / "summary.json", summary)
    report.write_pairs_csv(out / "pairs.csv", [asdict(r) for r in results])
    title = (f"Relative pose on `{dataset.root}` ({len(dataset.pairs)} pairs; resize {config.resize}, "
             f"{config.max_keypoints} keypoints, mutual NN, MAGSAC++ essential matrix, {config.e_threshold} px)")  # fmt: skip
    report.write_table(out / "table.md", report.pose_table(summary, title))
    plots.plot_pose_errors(
        out / "pose_auc.png", {m: [r.error for r in results if r.method == m] for m in config.methods}
    )
    return out

"""`homeloc-evaluate matching`: loop 1 extracts (cached), loop 2 matches and scores every pair."""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.matching import (
    MatchingDataset,
    MatchPair,
    WebcamOptions,
    load_matching_dataset,
)
from homeloc.eval.config import MatchingConfig, prepare_out, set_threads
from homeloc.eval.extract import extract_all, load_features
from homeloc.eval.methods import create_method
from homeloc.runtime.features import Features
from homeloc.runtime.geometry import find_fundamental, find_homography, symmetric_epipolar_distance
from homeloc.runtime.matching import Distance, mutual_nearest_neighbours
from homeloc.train import metrics as M

log = logging.getLogger(__name__)

BUCKET_ORDER = ("day", "dusk", "night", "illumination", "viewpoint")
REPEATABILITY_PX = 3.0
WXBS_PX = 5.0


@dataclass
class PairResult:
    """Per-pair numbers (one CSV row). Homography metrics are None for WxBS pairs and the
    correspondence metrics None for homography pairs; corner_error is inf when H estimation failed."""

    method: str
    pair: str
    bucket: str
    keypoints0: int
    keypoints1: int
    matches: int
    repeatability: float | None = None
    mma: list[float] | None = None
    corner_error: float | None = None
    gt_share: float | None = None
    epi_error: float | None = None


def evaluate_pair(
    method: str,
    pair: MatchPair,
    f0: Features,
    f1: Features,
    shape0: tuple[int, int],
    shape1: tuple[int, int],
    distance: Distance,
    h_threshold: float = 3.0,
    f_threshold: float = 1.0,
) -> tuple[PairResult, np.ndarray, np.ndarray]:
    """Mutual-NN match two feature sets and score them against the pair's ground truth.
    Returns the result and the matched points (M,2) in image0 and image1."""
    idx = mutual_nearest_neighbours(f0.descriptors, f1.descriptors, distance)
    p0 = f0.keypoints[idx[:, 0]].astype(np.float64)
    p1 = f1.keypoints[idx[:, 1]].astype(np.float64)
    res = PairResult(method, pair.name, pair.bucket, len(f0), len(f1), len(idx))
    if pair.H is not None:
        res.repeatability = M.repeatability(
            f0.keypoints, f1.keypoints, pair.H, shape0, shape1, REPEATABILITY_PX
        )
        res.mma = M.matching_accuracy(M.reprojection_errors(p0, p1, pair.H), M.MMA_THRESHOLDS).tolist()
        H_est, _ = find_homography(p0, p1, h_threshold)
        res.corner_error = M.corner_error(H_est, pair.H, shape0[1], shape0[0])
    if pair.corrs is not None:
        F, _ = find_fundamental(p0, p1, f_threshold)
        res.gt_share = M.gt_share_within(F, pair.corrs, WXBS_PX)
        res.epi_error = M.gt_epipolar_error(F, pair.corrs)
    return res, p0, p1


def correct_matches(pair: MatchPair, p0: np.ndarray, p1: np.ndarray, px: float = 3.0) -> np.ndarray:
    """Which matches agree with the ground truth (for drawing): reprojection error <= px under H,
    or symmetric epipolar distance <= WXBS_PX under F fitted (8-point) to the hand-labelled corrs."""
    if len(p0) == 0:
        return np.zeros(0, bool)
    if pair.H is not None:
        return M.reprojection_errors(p0, p1, pair.H) <= px
    import cv2

    F, _ = cv2.findFundamentalMat(pair.corrs[:, :2], pair.corrs[:, 2:4], cv2.FM_8POINT)
    if F is None or F.shape != (3, 3):
        return np.zeros(len(p0), bool)
    return symmetric_epipolar_distance(F, p0, p1) <= WXBS_PX


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def aggregate(results: list[PairResult]) -> dict:
    """Summary of a set of pair results: the issue's keys (None where the data has no such ground
    truth). MMA, repeatability, matches and GT@5px are means over pairs; HA is the share of pairs;
    epi_err_px is the median over pairs of each pair's median GT epipolar error (None = inf)."""
    hom = [r for r in results if r.mma is not None]
    cor = [r for r in results if r.gt_share is not None]
    out: dict = {}
    mma = np.array([r.mma for r in hom]) if hom else None
    for i, t in enumerate(M.MMA_THRESHOLDS):
        out[f"MMA@{t}"] = float(mma[:, i].mean()) if mma is not None else None
    ha = M.homography_accuracy([r.corner_error for r in hom], M.HA_THRESHOLDS) if hom else None
    for i, t in enumerate(M.HA_THRESHOLDS):
        out[f"HA@{t}"] = float(ha[i]) if ha is not None else None
    out["repeatability@3"] = _mean([r.repeatability for r in hom])
    out["matches"] = _mean([r.matches for r in results])
    out["pairs"] = len(results)
    out["keypoints"] = _mean([(r.keypoints0 + r.keypoints1) / 2 for r in results])
    if cor:
        out["GT@5px"] = _mean([r.gt_share for r in cor])
        med = float(np.median([r.epi_error for r in cor]))
        out["epi_err_px"] = med if math.isfinite(med) else None
    return out


def bucket_names(results: list[PairResult]) -> list[str]:
    names = {r.bucket for r in results}
    return [b for b in BUCKET_ORDER if b in names] + sorted(names - set(BUCKET_ORDER))


def summarize(results: list[PairResult], methods: list[str]) -> dict:
    """{method: {metrics..., "buckets": {bucket: {metrics...}}}} (buckets empty if only one)."""
    summary = {}
    for m in methods:
        rs = [r for r in results if r.method == m]
        buckets = bucket_names(rs)
        entry = aggregate(rs)
        entry["buckets"] = (
            {b: aggregate([r for r in rs if r.bucket == b]) for b in buckets} if len(buckets) > 1 else {}
        )
        summary[m] = entry
    return summary


def pick_visual_pairs(dataset: MatchingDataset, n: int) -> list[str]:
    """The first pair of each bucket (bucket order), then further pairs, up to n names."""
    first: dict[str, str] = {}
    for p in dataset.pairs:
        first.setdefault(p.bucket, p.name)
    order = [b for b in BUCKET_ORDER if b in first] + sorted(set(first) - set(BUCKET_ORDER))
    names = [first[b] for b in order]
    names += [p.name for p in dataset.pairs if p.name not in names]
    return names[:n]


def run_matching(config: MatchingConfig) -> Path:
    """Evaluate every method on every pair; writes DIR/summary.json and friends; returns DIR."""
    from homeloc.eval import plots, report

    set_threads(config.threads)
    webcam = WebcamOptions(config.webcam_homography, config.seed, config.webcam_buckets)
    dataset = load_matching_dataset(config.data, webcam, config.wxbs_categories)
    out = Path(config.out)
    log.info("%s dataset %s: %d pairs", dataset.kind, dataset.root, len(dataset.pairs))

    methods = {
        spec: create_method(
            spec, "local", max_keypoints=config.max_keypoints, resize=config.resize, threads=config.threads
        )
        for spec in config.methods
    }
    prepare_out(out, config, "matching")  # after the methods: a bad model leaves no output folder
    cache_root = Path(config.cache_dir) if config.cache_dir else out / "cache"
    set_threads(config.threads)  # again: a method may have imported torch/faiss
    images = dataset.images()
    caches = {
        spec: extract_all(m, spec, images, cache_root, config.resize, config.max_keypoints, config.recompute)
        for spec, m in methods.items()
    }

    visual = set(pick_visual_pairs(dataset, config.visualize))
    results: list[PairResult] = []
    for spec, method in methods.items():
        for pair in tqdm(dataset.pairs, desc=f"match {spec}", unit="pair"):
            f0, s0 = load_features(caches[spec][pair.image0.key()])
            f1, s1 = load_features(caches[spec][pair.image1.key()])
            res, p0, p1 = evaluate_pair(
                spec, pair, f0, f1, s0, s1, method.distance, config.h_threshold, config.f_threshold
            )
            results.append(res)
            if pair.name in visual:
                plots.draw_matches(
                    out / "matches" / f"{plots.slug(pair.name)}__{plots.slug(spec)}.png",
                    pair,
                    p0,
                    p1,
                    correct_matches(pair, p0, p1),
                    f"{spec}: {pair.name} ({pair.bucket})",
                )

    summary = summarize(results, list(config.methods))
    report.write_json(out / "summary.json", summary)
    report.write_pairs_csv(out / "pairs.csv", [asdict(r) for r in results])
    title = f"Matching on {dataset.kind} `{dataset.root}` ({len(dataset.pairs)} pairs; resize {config.resize}, {config.max_keypoints} keypoints, mutual NN)"
    notes = [f"skipped: {s}" for s in dataset.skipped]
    report.write_table(out / "table.md", report.matching_table(summary, title, notes))
    plots.plot_mma(out / "mma.png", summary)
    return out

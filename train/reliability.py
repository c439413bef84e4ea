"""Fit the frame-reliability and pair-confidence models (homeloc.runtime.reliability) on pairs of
known geometry mixed with synthesized failures, and write runtime/assets/reliability.json.

    python -m homeloc.train.reliability --data webcam:../shared/data/webcam hpatches:../shared/data/hpatches_subset \\
        --out runtime/assets/reliability.json

A pair registers when the homography estimated from the frontend's mutual-NN matches (MAGSAC++,
3 px) puts the image corners within 5 px of the ground truth. Scenes are split in two by a hash of
their name: the even half fits, the odd half measures (AUROC and ECE written into the JSON's
``info``; `homeloc-evaluate reliability` measures any other data).

The frame model is fitted so that min(reliability0, reliability1) predicts the pair (a pair fails
when either frame does): logistic loss of sigmoid(min(s0, s1)) by gradient descent, the gradient
going to the weaker frame. The pair model is a plain logistic regression.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.failures import ReliabilityPair, reliability_pairs
from homeloc.data_synthesis.formats.matching import WebcamOptions, load_matching_dataset
from homeloc.runtime import reliability as rel
from homeloc.runtime.frontend import Frontend
from homeloc.runtime.postprocess import prepare_image
from homeloc.train.metrics import auroc, corner_error, expected_calibration_error

log = logging.getLogger(__name__)
SUCCESS_PX = 5.0


@dataclass
class PairMeasure:
    """What the runtime sees of one pair, and whether it registered."""

    name: str
    group: str
    failure: str
    frame0: dict[str, float]
    frame1: dict[str, float]
    pair: dict[str, float]
    success: bool


def measure_pair(frontend: Frontend, p: ReliabilityPair) -> PairMeasure:
    """Extract both frames, their statistics, the homography and its correctness."""
    stats = []
    feats = []
    for img in (p.image0, p.image1):
        f = frontend.extract(img)
        x, _ = prepare_image(img)
        stats.append(rel.frame_stats(x[..., : img.shape[0], : img.shape[1]], f, frontend.max_keypoints))
        feats.append(f)
    m = frontend.match(*feats)
    geo = frontend.estimate_homography(feats[0], feats[1], m)
    h, w = p.image0.shape[:2]
    ok = geo.ok and corner_error(geo.matrix, p.H, w, h) <= SUCCESS_PX
    pts0 = feats[0].keypoints[m[:, 0]] if len(m) else np.zeros((0, 2))
    return PairMeasure(
        p.name, p.group, p.failure, stats[0], stats[1], rel.pair_stats(geo.inliers, pts0, (h, w)), bool(ok)
    )


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def fit_min_logistic(
    X0: np.ndarray, X1: np.ndarray, y: np.ndarray, l2: float = 1e-2, steps: int = 3000, lr: float = 0.5
) -> tuple[np.ndarray, float]:
    """w, b minimising the mean logistic loss of sigmoid(min(w.x0 + b, w.x1 + b)) against y, plus
    l2/2 |w|^2 (standardised inputs). Full-batch gradient descent: the problem is small."""
    w, b = np.zeros(X0.shape[1]), 0.0
    for _ in range(steps):
        s0, s1 = X0 @ w + b, X1 @ w + b
        weaker = s0 <= s1
        s = np.where(weaker, s0, s1)
        g = 1.0 / (1.0 + np.exp(-np.clip(s, -50, 50))) - y  # d loss / d s
        Xw = np.where(weaker[:, None], X0, X1)
        w -= lr * (Xw.T @ g / len(y) + l2 * w)
        b -= lr * float(g.mean())
    return w, b


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Plain logistic regression (the min-model with both inputs equal)."""
    return fit_min_logistic(X, X, y, l2)


def isotonic_knots(
    raw: np.ndarray, y: np.ndarray, bins: int = 20
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Isotonic (pool-adjacent-violators) map from raw probability to observed success rate, as
    knots at the pooled blocks' mean raw values, anchored at (0, first) and (1, last); raw values
    are first averaged in `bins` quantile groups so that a few pairs cannot make a step."""
    order = np.argsort(raw, kind="stable")
    groups = np.array_split(order, min(bins, len(order)))
    xs = [float(raw[g].mean()) for g in groups if len(g)]
    ys = [float(y[g].mean()) for g in groups if len(g)]
    ws = [len(g) for g in groups if len(g)]
    blocks = []  # [x_sum_weighted, y_sum_weighted, weight]
    for x, v, w in zip(xs, ys, ws, strict=True):
        blocks.append([x * w, v * w, w])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] > blocks[-1][1] / blocks[-1][2]:
            a, b = blocks.pop(), blocks.pop()
            blocks.append([a[0] + b[0], a[1] + b[1], a[2] + b[2]])
    kx = [b[0] / b[2] for b in blocks]
    ky = [b[1] / b[2] for b in blocks]
    return tuple([0.0, *kx, 1.0]), tuple([ky[0], *ky, ky[-1]])


def _matrix(rows: list[dict[str, float]], names: tuple[str, ...]) -> np.ndarray:
    return np.array([[r[n] for n in names] for r in rows], np.float64)


def fit_models(measures: list[PairMeasure]) -> rel.ReliabilityModel:
    """Frame and pair models on the given pairs (needs both outcomes present)."""
    y = np.array([m.success for m in measures], np.float64)
    if y.min() == y.max():
        raise ValueError(
            f"all {len(y)} fitting pairs {'succeed' if y[0] else 'fail'}: cannot fit a reliability model"
        )
    F0, F1 = (
        _matrix([m.frame0 for m in measures], rel.FRAME_STATS),
        _matrix([m.frame1 for m in measures], rel.FRAME_STATS),
    )
    mean, scale = _standardise(np.concatenate([F0, F1]))
    w, b = fit_min_logistic((F0 - mean) / scale, (F1 - mean) / scale, y)
    frame = rel.LogisticModel(rel.FRAME_STATS, mean, scale, w, b)
    raw = np.array([min(frame.raw(m.frame0), frame.raw(m.frame1)) for m in measures])
    # min(iso(r0), iso(r1)) = iso(min(r0, r1)) for an increasing map: calibrating the pair's minimum
    # calibrates every frame's reliability the same way.
    frame = dataclasses.replace(
        frame, **dict(zip(("knots_x", "knots_y"), isotonic_knots(raw, y), strict=True))
    )
    P = _matrix([m.pair for m in measures], rel.PAIR_STATS)
    pmean, pscale = _standardise(P)
    pw, pb = fit_logistic((P - pmean) / pscale, y)
    pair = rel.LogisticModel(rel.PAIR_STATS, pmean, pscale, pw, pb)
    praw = np.array([pair.raw(m.pair) for m in measures])
    pair = dataclasses.replace(
        pair, **dict(zip(("knots_x", "knots_y"), isotonic_knots(praw, y), strict=True))
    )
    return rel.ReliabilityModel(frame, pair)


def scores(model: rel.ReliabilityModel, measures: list[PairMeasure]) -> dict:
    """AUROC and ECE of min(frame reliabilities) and of the pair confidence against success."""
    y = [m.success for m in measures]
    frame = [min(model.frame(m.frame0), model.frame(m.frame1)) for m in measures]
    pair = [model.pair(m.pair) for m in measures]
    return {
        "pairs": len(measures), "success_rate": float(np.mean(y)) if y else None,
        "frame_auroc": auroc(frame, y), "frame_ece": expected_calibration_error(frame, y),
        "pair_auroc": auroc(pair, y), "pair_ece": expected_calibration_error(pair, y),
    }  # fmt: skip


def split(measures: list[PairMeasure]) -> tuple[list[PairMeasure], list[PairMeasure]]:
    """(fit, held-apart) by a stable hash of the scene, so no scene is on both sides."""
    odd = [zlib.crc32(m.group.encode()) % 2 == 1 for m in measures]
    return [m for m, o in zip(measures, odd, strict=True) if not o], [
        m for m, o in zip(measures, odd, strict=True) if o
    ]


def collect(specs: list[str], frontend: Frontend, failure_share: float, seed: int) -> list[PairMeasure]:
    """Measure every pair of the given matching datasets (with synthesized failures)."""
    out = []
    for spec in specs:
        ds = load_matching_dataset(spec, WebcamOptions(True, seed))
        for p in tqdm(reliability_pairs(ds, failure_share, seed), desc=f"reliability {spec}", unit="pair"):
            out.append(measure_pair(frontend, p))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m homeloc.train.reliability", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument(
        "--data", nargs="+", required=True, help="matching dataset SPECs with homography ground truth"
    )
    ap.add_argument("--out", type=Path, default=rel.DEFAULT_MODEL, help="the model JSON to write")
    ap.add_argument("--keypoints-model", default=None, help="keypoint ONNX (default: the shipped one)")
    ap.add_argument(
        "--failure-share", type=float, default=0.4, help="share of pairs given a synthesized failure"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    frontend = Frontend(args.keypoints_model, threads=1, reliability=False)  # stats are measured here
    fit_set, held = split(collect(args.data, frontend, args.failure_share, args.seed))
    model = fit_models(fit_set)
    info = {"data": args.data, "failure_share": args.failure_share, "seed": args.seed, "success_px": SUCCESS_PX,
            "keypoints_model": frontend.model_path.name, "fit": scores(model, fit_set), "held_apart": scores(model, held)}  # fmt: skip
    model.save(args.out, info)
    print(f"wrote {args.out}: fit {info['fit']}; held apart {info['held_apart']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

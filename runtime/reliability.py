"""How far to trust a frame, and a registration: calibrated probabilities for sensor fusion.

Frame reliability = the probability that this frame registers correctly to an overlapping frame of
the same place. It is a logistic model over cheap statistics of what the frontend already has
(the network input and the extracted features), fitted offline on pairs with known geometry
(``homeloc.train.reliability``) and shipped as ``runtime/assets/reliability.json``; the pair
prediction is ``min(reliability0, reliability1)`` (a pair fails when either frame does).

Frame statistics (``FRAME_STATS``), all in [0, 1] or small positive ranges:
``keypoints`` log(1 + kept) / log(1 + budget); ``coverage`` share of a 4 x 4 grid holding >= 2 keypoints;
``top_score`` mean of the 50 best detection scores; ``distinct`` mean of 1 - (highest cosine to
another descriptor) over the 100 best keypoints; ``luma`` mean gray level; ``dark`` / ``saturated``
share of pixels below 0.05 / above 0.95; ``contrast`` gray-level std; ``sharpness`` log(1 + mean |Laplacian| /
contrast) (blur lowers it); ``flat`` share of 8 x 8 blocks with std < 0.01 (a covered lens, a
blank wall); ``noise`` Immerkaer's noise sigma (0..1 gray) of the downscaled image (0 where too
few pixels are usable). Image statistics come from the network input downscaled 4x: well under 1 ms at 640x480.

Causes (named when they apply, whatever the probability, so the fusion can log why):
``dark``, ``saturated``, ``blurred``, ``textureless``, ``occluded``, ``noisy``; thresholds in ``CAUSES``.

Pair confidence = the probability that a two-view estimate is right, a logistic model over
log inliers, inlier ratio and the spread of the inliers; ``covariance_scale`` = the median squared
inlier residual over the number of inliers (px^2), to weight the factor.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.features import Features

FRAME_STATS = ("keypoints", "coverage", "top_score", "distinct", "luma", "dark", "saturated", "contrast",
               "sharpness", "flat", "noise")  # fmt: skip
PAIR_STATS = ("log_inliers", "inlier_ratio", "spread")
GRID = 4
# Cause -> rule over the frame statistics. Thresholds were set by looking at synthesized failures
# (dark, blur, glare, covered lens) against normal frames; they name causes, they do not decide.
# A night frame whose camera ran out of exposure is dim noise: the noise lifts half its pixels over
# the 0.05 "dark" level, but it has no contrast left (rendered homes, session 13: luma 0.05,
# contrast 0.011, 48 % dark pixels; its matches to its own place were all wrong).
CAUSES = {
    "dark": lambda s: s["luma"] < 0.08 and (s["dark"] > 0.5 or s["contrast"] < 0.02),
    "saturated": lambda s: s["saturated"] > 0.3,
    "blurred": lambda s: s["sharpness"] < 0.14 and s["luma"] >= 0.08 and s["saturated"] <= 0.3,
    "textureless": lambda s: s["coverage"] < 0.25 and s["luma"] >= 0.08 and s["saturated"] <= 0.3,
    "occluded": lambda s: s["flat"] > 0.5 and s["luma"] >= 0.08 and s["saturated"] <= 0.3,
    "noisy": lambda s: s["noise"] > 0.03,
}
DEFAULT_MODEL = Path(__file__).parent / "assets" / "reliability.json"


_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(gray: np.ndarray, flat_quantile: float = 0.5) -> float:
    """Noise sigma (gray levels) of a uint8 image (Immerkaer 1996): the residual of a
    Laplacian-difference kernel (std 6 sigma for white noise; image structure mostly cancels) in
    the flattest `flat_quantile` of the unsaturated pixels, sigma = sqrt(pi/2) * mean|r| / 6 (a
    mean, not a median: |r| of 8-bit data is integer-valued and its median too coarse).
    NaN when there are too few usable pixels."""
    g = gray.astype(np.float32)
    res = cv2.filter2D(g, -1, _IMMERKAER, borderType=cv2.BORDER_REFLECT)
    grad = cv2.GaussianBlur(
        np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1)), (5, 5), 0
    )
    # Clipped pixels carry no noise: keep pixels whose whole 3x3 neighbourhood is unsaturated.
    ok = cv2.erode(((gray > 2) & (gray < 253)).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    ok[[0, -1], :] = ok[:, [0, -1]] = False
    if ok.sum() < 500:
        return float("nan")
    flat = ok & (grad <= np.quantile(grad[ok], flat_quantile))
    return float(np.sqrt(np.pi / 2) * np.abs(res[flat]).mean() / 6.0)


def image_stats(gray: np.ndarray) -> dict[str, float]:
    """luma, dark, saturated, contrast, sharpness, flat of a gray float image in [0, 1] (H x W or
    1 x 1 x H x W, e.g. the network input), measured on a 4x area-downscaled copy."""
    g = np.asarray(gray, np.float32).reshape(gray.shape[-2:])
    h, w = g.shape
    small = cv2.resize(g, (max(8, w // 4), max(8, h // 4)), interpolation=cv2.INTER_AREA)
    contrast = float(small.std())
    lap = float(np.abs(cv2.Laplacian(small, cv2.CV_32F)).mean())
    sh, sw = small.shape[0] // 8 * 8, small.shape[1] // 8 * 8
    blocks = small[:sh, :sw].reshape(sh // 8, 8, sw // 8, 8)
    return {
        "luma": float(small.mean()),
        "dark": float((small < 0.05).mean()),
        "saturated": float((small > 0.95).mean()),
        "contrast": contrast,
        "sharpness": float(np.log1p(lap / max(contrast, 1e-3))),
        "flat": float((blocks.std(axis=(1, 3)) < 0.01).mean()) if blocks.size else 1.0,
        "noise": _finite_or(noise_sigma((small * 255 + 0.5).astype(np.uint8)) / 255.0, 0.0),
    }


def _finite_or(v: float, default: float) -> float:
    return float(v) if np.isfinite(v) else default


def keypoint_stats(features: Features, image_size: tuple[int, int], max_keypoints: int) -> dict[str, float]:
    """keypoints, coverage, top_score, distinct of one frame's features."""
    n = len(features)
    h, w = image_size
    if n == 0:
        return {"keypoints": 0.0, "coverage": 0.0, "top_score": 0.0, "distinct": 0.0}
    cells = np.clip((features.keypoints / [w, h] * GRID).astype(int), 0, GRID - 1)
    counts = np.bincount(cells[:, 1] * GRID + cells[:, 0], minlength=GRID * GRID)
    order = np.argsort(-features.scores, kind="stable")
    top = features.descriptors[order[:100]].astype(np.float32)
    if len(top) > 1:
        sim = top @ top.T
        np.fill_diagonal(sim, -1.0)
        distinct = float(np.mean(1.0 - sim.max(axis=1)))
    else:
        distinct = 0.0
    return {
        "keypoints": float(np.log1p(n) / np.log1p(max_keypoints)),
        "coverage": float((counts >= 2).mean()),
        "top_score": float(features.scores[order[:50]].mean()),
        "distinct": distinct,
    }


def frame_stats(gray: np.ndarray, features: Features, max_keypoints: int) -> dict[str, float]:
    """Every statistic in FRAME_STATS for one frame (see the module docstring)."""
    size = features.image_size or tuple(np.shape(gray)[-2:])
    return {**keypoint_stats(features, size, max_keypoints), **image_stats(gray)}


def causes(stats: dict[str, float]) -> tuple[str, ...]:
    """Names of the failure causes whose rule holds for these frame statistics."""
    return tuple(name for name, rule in CAUSES.items() if rule(stats))


def pair_stats(inliers: np.ndarray, points0: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    """log_inliers, inlier_ratio, spread (share of a 3 x 3 grid of image 0 holding inliers)."""
    inl = np.asarray(inliers, bool)
    n = int(inl.sum())
    h, w = image_size
    spread = 0.0
    if n:
        cells = np.clip((np.asarray(points0)[inl] / [w, h] * 3).astype(int), 0, 2)
        spread = len({(int(a), int(b)) for a, b in cells}) / 9.0
    return {"log_inliers": float(np.log1p(n)), "inlier_ratio": n / max(len(inl), 1), "spread": spread}


def covariance_scale(residuals_px: np.ndarray) -> float:
    """Median squared inlier residual over the number of inliers (px^2): the variance scale of a
    two-view estimate for a factor graph (inf without inliers)."""
    r = np.asarray(residuals_px, np.float64)
    return float(np.median(r**2) / len(r)) if len(r) else float("inf")


@dataclass(frozen=True)
class LogisticModel:
    """p = sigmoid(bias + weights . (x - mean) / scale) over the named statistics."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    info: dict = field(default_factory=dict)
    # Isotonic recalibration of the logistic output: increasing knots (x = raw, y = calibrated),
    # applied by linear interpolation; empty = none.
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def raw(self, stats: dict[str, float]) -> float:
        x = np.array([stats[n] for n in self.names], np.float64)
        z = self.bias + float(self.weights @ ((x - self.mean) / self.scale))
        return float(1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))

    def __call__(self, stats: dict[str, float]) -> float:
        p = self.raw(stats)
        return float(np.interp(p, self.knots_x, self.knots_y)) if self.knots_x else p

    def to_dict(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias, "info": self.info,
                "knots_x": list(self.knots_x), "knots_y": list(self.knots_y)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict, source: str = "model") -> LogisticModel:
        try:
            names = tuple(d["names"])
            arrays = [np.asarray(d[k], np.float64) for k in ("mean", "scale", "weights")]
            bias = float(d["bias"])
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{source}: not a reliability model ({e})") from None
        if any(a.shape != (len(names),) for a in arrays) or not all(np.isfinite(a).all() for a in arrays):
            raise ValueError(f"{source}: mean/scale/weights must be {len(names)} finite numbers each")
        if (arrays[1] <= 0).any():
            raise ValueError(f"{source}: scale must be positive")
        kx, ky = tuple(map(float, d.get("knots_x", ()))), tuple(map(float, d.get("knots_y", ())))
        if (
            len(kx) != len(ky)
            or any(np.diff(kx) < 0)
            or any(np.diff(ky) < 0)
            or not all(0 <= v <= 1 for v in kx + ky)
        ):
            raise ValueError(
                f"{source}: calibration knots must be two equally long increasing lists in [0, 1]"
            )
        return cls(names, *arrays, bias, dict(d.get("info", {})), kx, ky)


@dataclass(frozen=True)
class ReliabilityModel:
    """The shipped pair of models: ``frame`` (FRAME_STATS) and ``pair`` (PAIR_STATS)."""

    frame: LogisticModel
    pair: LogisticModel

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> ReliabilityModel:
        path = Path(path) if path is not None else DEFAULT_MODEL
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path}: no reliability model (fit one with python -m homeloc.train.reliability)"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a reliability model ({e})") from None
        frame = LogisticModel.from_dict(d.get("frame", {}), f"{path} frame")
        pair = LogisticModel.from_dict(d.get("pair", {}), f"{path} pair")
        if set(frame.names) - set(FRAME_STATS) or set(pair.names) - set(PAIR_STATS):
            raise ValueError(
                f"{path}: unknown statistics {sorted(set(frame.names + pair.names) - set(FRAME_STATS + PAIR_STATS))}"
            )
        return cls(frame, pair)

    def save(self, path: str | os.PathLike, info: dict | None = None) -> Path:
        from homeloc.runtime.io import atomic_write

        body = {"version": 1, "frame": self.frame.to_dict(), "pair": self.pair.to_dict(), "info": info or {}}
        return atomic_write(Path(path), json.dumps(body, indent=1) + "\n")


@dataclass(frozen=True)
class Confidence:
    """A two-view estimate's probability of being right, its variance scale (px^2) and the
    statistics behind them."""

    probability: float
    covariance_scale: float
    stats: dict[str, float]


def residuals(
    model: str, matrix: np.ndarray, p0: np.ndarray, p1: np.ndarray, K: np.ndarray | None = None
) -> np.ndarray:
    """Per-match residual in pixels: reprojection error under a homography, symmetric epipolar
    distance under a fundamental matrix, or under an essential matrix with intrinsics K."""
    from homeloc.runtime.geometry import symmetric_epipolar_distance, warp_points

    if model == "homography":
        return np.linalg.norm(warp_points(p0, matrix) - np.asarray(p1, np.float64), axis=1)
    F = matrix
    if model == "essential":
        if K is None:
            raise ValueError("an essential matrix needs K to measure pixel residuals")
        Kinv = np.linalg.inv(np.asarray(K, np.float64))
        F = Kinv.T @ matrix @ Kinv
    return symmetric_epipolar_distance(F, p0, p1)


def registration_confidence(
    model: ReliabilityModel,
    kind: str,
    matrix: np.ndarray | None,
    inliers: np.ndarray,
    p0: np.ndarray,
    p1: np.ndarray,
    image_size: tuple[int, int],
    K: np.ndarray | None = None,
) -> Confidence:
    """Confidence of a fitted two-view model (kind: homography | fundamental | essential) from its
    inlier mask over the matched points p0 -> p1 (image 0 of size (H, W))."""
    stats = pair_stats(inliers, p0, image_size)
    if matrix is None or not np.any(inliers):
        return Confidence(0.0, float("inf"), stats)
    inl = np.asarray(inliers, bool)
    r = residuals(kind, matrix, np.asarray(p0, np.float64)[inl], np.asarray(p1, np.float64)[inl], K)
    return Confidence(model.pair(stats), covariance_scale(r), stats)

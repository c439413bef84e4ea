"""Frames a camera should not be trusted on: seeded failure recipes for reliability calibration and
evaluation (dark, blurred, saturated, noisy, covered lens, uniform), and pair lists that mix them
with ordinary pairs of known geometry.

Each failure is stronger than the training presets on purpose: the point is frames where
registration breaks, so that a reliability estimate can be fitted and measured on both sides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from homeloc.data_synthesis.formats.matching import MatchingDataset
from homeloc.data_synthesis.photometric import RECIPES, to_uint8


def _recipe(name: str, **params) -> Callable[[np.ndarray, np.random.Generator], np.ndarray]:
    return lambda img, rng: RECIPES[name].fn(img, rng, **params)


def _dark(img, rng):
    out = img * np.float32(2.0 ** rng.uniform(-7.0, -5.0))  # 5-7 stops under
    return RECIPES["low_light"].fn(
        out, rng, scale=0.02, full_well=2000.0, read_noise=4.0, black_level=0.01, bits=8.0
    )


def _blur(img, rng):
    out = RECIPES["motion_blur"].fn(img, rng, length=float(rng.uniform(25, 45)))
    return RECIPES["defocus"].fn(out, rng, radius=float(rng.uniform(5, 9)))


def _saturated(img, rng):
    return np.clip(img * np.float32(2.0 ** rng.uniform(2.5, 4.0)), 0, 1)


def _noise(img, rng):
    return np.clip(
        img + np.float32(rng.uniform(0.2, 0.35)) * rng.standard_normal(img.shape, np.float32), 0, 1
    )


def _covered(img, rng):
    return RECIPES["covered_lens"].fn(
        img, rng, coverage=float(rng.uniform(0.85, 1.0)), darkness=0.97, softness=0.2
    )


def _uniform(img, rng):
    return np.full_like(img, np.float32(rng.uniform(0.0, 1.0)))


FAILURES: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "dark": _dark, "blur": _blur, "saturated": _saturated, "noise": _noise, "covered": _covered,
    "uniform": _uniform,
}  # fmt: skip


def apply_failure(name: str, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 RGB in, uint8 RGB out, degraded by the named failure."""
    if name not in FAILURES:
        raise KeyError(f"unknown failure {name!r}; known: {', '.join(FAILURES)}")
    return to_uint8(np.clip(FAILURES[name](image.astype(np.float32) / 255.0, rng), 0, 1))


@dataclass
class ReliabilityPair:
    """Two images (uint8 RGB, longer side <= max_side) and H mapping image0 to image1 pixels;
    `failure` names what was done to image1 ("" for an ordinary pair); `group` keeps scenes apart."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    H: np.ndarray
    failure: str
    group: str


def _scaled(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    s = min(1.0, max_side / max(img.shape[:2]))
    if s == 1.0:
        return img, 1.0
    return cv2.resize(
        img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA
    ), s


def reliability_pairs(
    dataset: MatchingDataset,
    failure_share: float = 0.4,
    seed: int = 0,
    max_side: int = 640,
    failures: tuple[str, ...] = tuple(FAILURES),
) -> list[ReliabilityPair]:
    """Homography pairs of a dataset, downscaled to `max_side`, with `failure_share` of them given a
    failure (chosen in turn, parameters from the pair's own seeded rng)."""
    out = []
    for i, pair in enumerate(p for p in dataset.pairs if p.H is not None):
        rng = np.random.default_rng([seed, i])
        img0, s0 = _scaled(pair.image0.load(), max_side)
        img1, s1 = _scaled(pair.image1.load(), max_side)
        H = np.diag([s1, s1, 1.0]) @ pair.H @ np.diag([1 / s0, 1 / s0, 1.0])
        failure = failures[i % len(failures)] if rng.random() < failure_share else ""
        if failure:
            img1 = apply_failure(failure, img1, rng)
        # Scenes (webcam, HPatches sequences) stay on one side of a split; pairs of a pairs file
        # are independent synthesized samples.
        group = pair.name if dataset.kind == "pairs" else pair.name.split("/")[0]
        out.append(ReliabilityPair(pair.name, img0, img1, H, failure, group))
    return out

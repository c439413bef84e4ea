"""The parity report's inputs: homography pairs for the keypoint metrics, place images.

Keypoint pairs come from ``homeloc.data_synthesis.formats.matching`` (any spec with homography
ground truth; webcam scenes get a seeded homography) or are synthesized from scikit-image photos;
place sets from ``homeloc.data_synthesis.formats.places``, preprocessed by
``homeloc.runtime.places.prepare_place_image`` exactly as training and the robot do. Everything is
seeded: the same arguments give the same arrays, so reports are comparable between exports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from homeloc.export.calibration import NIGHT_PRESETS, resize_cover

DEFAULT_KEYPOINT_DATA = "webcam:../shared/data/webcam"
DEFAULT_PLACE_DATA = "nordland:../shared/data/nordland_64x32_summer_winter"
LATENCY_SIZE = (480, 640)  # H x W: the robot camera's 640x480
SYNTHETIC_PLACE_IMAGES = 16  # images for place cosine when no place set is measured


@dataclass
class ParityPair:
    """Two RGB uint8 images and the homography H mapping image0 pixels to image1 pixels."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    H: np.ndarray
    bucket: str = ""


# ------------------------------------------------------------------------------------ keypoints
def load_keypoint_pairs(spec: str | None, n: int = 32, seed: int = 0) -> tuple[list[ParityPair], str | None]:
    """Up to ``n`` homography pairs for MMA, and the reason when there are none.

    spec: ``synthetic`` (skimage photos warped by a seeded homography, the second view relit by a
    night preset), ``none``, or any ``data_synthesis.formats.matching`` spec with homography ground
    truth; webcam scenes get a seeded random homography on the second image (``load_webcam``).
    A missing dataset is skipped (reason returned), a malformed one raises.

    Returns (pairs, None) or ([], reason). Pairs are drawn by ``stratified_choice`` over lighting.
    """
    if spec is None or spec == "none" or n <= 0:
        return [], "no pair set requested"
    if spec == "synthetic":
        return synthetic_pairs(n, seed), None
    from homeloc.data_synthesis.formats.matching import (
        MATCHING_KINDS,
        PLACES_KINDS,
        WebcamOptions,
        load_matching_dataset,
        split_spec,
    )

    _, path = split_spec(spec, MATCHING_KINDS + PLACES_KINDS)
    if not path.exists():
        return [], f"{path} not found"
    ds = load_matching_dataset(spec, webcam=WebcamOptions(homography=True, seed=seed))
    pairs = [p for p in ds.pairs if p.H is not None]
    if not pairs:
        return [], f"{spec}: no pairs with homography ground truth"
    chosen = stratified_choice([p.bucket for p in pairs], n, seed)
    out = []
    for i in chosen:
        p = pairs[i]
        out.append(
            ParityPair(p.name, p.image0.load(), p.image1.load(), np.asarray(p.H, np.float64), p.bucket)
        )
    return out, None


def stratified_choice(buckets: Sequence[str], n: int, seed: int = 0) -> list[int]:
    """``n`` indices drawn in turn from each lighting bucket (night, dusk, day, others; seeded
    order within a bucket), so the rare night pairs are all represented; sorted.

    Returns min(n, len(buckets)) distinct indices into ``buckets``.
    """
    rng = np.random.default_rng(seed)
    order = {"night": 0, "dusk": 1, "day": 2}
    groups = [
        list(rng.permutation([i for i, b in enumerate(buckets) if b == k]))
        for k in sorted(set(buckets), key=lambda k: (order.get(k, 3), k))
    ]
    chosen: list[int] = []
    while len(chosen) < min(n, len(buckets)):
        for g in groups:
            if g and len(chosen) < n:
                chosen.append(int(g.pop(0)))
    return sorted(chosen)


def synthetic_pairs(n: int, seed: int = 0, size: tuple[int, int] = LATENCY_SIZE) -> list[ParityPair]:
    """``n`` pairs from scikit-image's bundled photos: image1 = image0 warped by a seeded random
    homography, relit by ``night_lamp`` / ``night_ir`` / ``dusk`` in turn (every fourth stays day).

    Images are ``size`` (H x W) RGB uint8; pair ``i`` uses ``default_rng([seed, i])``.
    """
    from homeloc.data_synthesis.formats.matching import random_homography
    from homeloc.data_synthesis.photometric import apply_preset
    from homeloc.data_synthesis.sources import skimage_photos

    photos = skimage_photos()
    h, w = size
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        name, photo = photos[int(rng.integers(len(photos)))]
        img0 = resize_cover(photo, size)
        H = random_homography(w, h, rng)
        img1 = cv2.warpPerspective(img0, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        preset = None if i % 4 == 3 else NIGHT_PRESETS[i % 4 % len(NIGHT_PRESETS)]
        if preset is not None:
            relit, _ = apply_preset(preset, img1, rng)
            img1 = np.clip(relit * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out.append(ParityPair(f"synthetic/{i:03d}-{name}", img0, img1, H, preset or "day"))
    return out


def keypoint_latency_image(image: np.ndarray) -> np.ndarray:
    """The keypoint latency input from an RGB uint8 image: 1 x 1 x 480 x 640 float32 gray in [0, 1]
    (cover-resized to ``LATENCY_SIZE``, the robot camera's frame)."""
    rgb = resize_cover(image, LATENCY_SIZE).astype(np.float32) / 255.0
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[None, None]


# ------------------------------------------------------------------------------------ places
def load_place_images(paths: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """N x 3 x H x W float32 RGB in [0, 1], resized like training (INTER_AREA when shrinking)."""
    from homeloc.runtime.io import read_image
    from homeloc.runtime.places import prepare_place_image

    out = np.empty((len(paths), 3, *size), np.float32)
    for i, p in enumerate(paths):
        out[i] = prepare_place_image(read_image(p), size, 3)
    return out


@dataclass
class PlaceSet:
    """The place images to run every backend on, and the ground truth when there is one.

    ``images`` is N x 3 x H x W float32: the ``database`` images first, then the queries. Without
    a place set (``skipped`` says why) ``images`` are synthetic and ``database`` is 0.
    """

    images: np.ndarray
    database: int = 0
    queries: int = 0
    positives: list[set[int]] = field(default_factory=list)
    skipped: str | None = None

    @property
    def measured(self) -> bool:
        """True when recall can be measured (a place set was loaded)."""
        return self.skipped is None


def place_set_skip_reason(data: str | None) -> str | None:
    """Why ``data`` gives no place set (not requested, synthetic, missing folder), or None."""
    if data is None or data in ("none", "synthetic"):
        if data != "synthetic":
            return "no place set requested"
        return "synthetic images have no place ground truth"
    path = Path(str(data).split(":", 1)[-1])
    return None if path.exists() else f"{path} not found"


def load_place_set(data: str | None, limit: int | None, size: tuple[int, int], seed: int = 0) -> PlaceSet:
    """The place set named by ``data`` (a ``data_synthesis.formats.places`` spec; Nordland: its
    last third) at ``size`` (H x W), its first ``limit`` places when given (positives beyond the
    kept database dropped). ``none`` / ``synthetic`` / a missing folder: 16 seeded skimage images
    (cosine only, ``skipped`` says why). A malformed place set raises.
    """
    skipped = place_set_skip_reason(data)
    if skipped is not None:
        from homeloc.export.calibration import calibration_images

        images = calibration_images(["skimage"], SYNTHETIC_PLACE_IMAGES, size, gray=False, seed=seed)
        return PlaceSet(np.concatenate([c.array for c in images]), skipped=skipped)
    from homeloc.data_synthesis.formats.places import load_places_dataset

    ds = load_places_dataset(data)
    db_paths, q_paths, positives = list(ds.database), list(ds.queries), list(ds.positives)
    if limit:
        db_paths, q_paths = db_paths[:limit], q_paths[:limit]
        positives = [{j for j in p if j < len(db_paths)} for p in positives[: len(q_paths)]]
    images = load_place_images(db_paths + q_paths, size)
    return PlaceSet(images, len(db_paths), len(q_paths), positives)

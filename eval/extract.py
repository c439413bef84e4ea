"""Loop 1: extract features with the common resize/budget and cache them on disk (npz per image).

Cache layout: CACHE/<method-slug>-<key>/<image-key>.npz, where key hashes (method spec, model file
sha256, resize, max keypoints, OpenCV version, cache format) and image-key hashes the file's
content (plus the warp for webcam homographies). Re-running metrics therefore re-extracts nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.matching import ImageRef
from homeloc.eval.features import LocalFeatureExtractor
from homeloc.eval.methods import model_hash
from homeloc.runtime.features import Features
from homeloc.runtime.io import atomic_open
from homeloc.runtime.postprocess import resize_longer

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
# what reading a damaged cache entry (truncated, overwritten, missing arrays) raises
CORRUPT_CACHE_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zlib.error)


def extract_resized(
    method: LocalFeatureExtractor, image: np.ndarray, resize: int, max_keypoints: int
) -> Features:
    """Resize, extract, keep the top max_keypoints, map keypoints back to the original pixels."""
    small = resize_longer(image, resize)
    feats = method.extract(small).top_k(max_keypoints)
    h, w = image.shape[:2]
    hs, ws = small.shape[:2]
    return feats if (hs, ws) == (h, w) else feats.rescaled(w / ws, h / hs)


def method_key(spec: str, model_file: Path | None, resize: int, max_keypoints: int) -> str:
    """Folder name of a method's cache: readable slug + hash of everything that changes features."""
    blob = json.dumps(
        {
            "spec": spec,
            "model": model_hash(model_file),
            "resize": resize,
            "max_keypoints": max_keypoints,
            "opencv": cv2.__version__,
            "format": CACHE_FORMAT,
        },
        sort_keys=True,
    )
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec)[:40]
    return f"{slug}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def save_features(path: Path, feats: Features, image_shape: tuple[int, int]) -> None:
    with atomic_open(path, "wb") as f:
        np.savez(
            f,
            keypoints=feats.keypoints,
            scores=feats.scores,
            descriptors=feats.descriptors,
            image_shape=np.array(image_shape[:2], np.int64),
        )


def load_features(path: Path) -> tuple[Features, tuple[int, int]]:
    with np.load(path) as z:
        feats = Features(z["keypoints"], z["scores"], z["descriptors"])
        shape = tuple(int(v) for v in z["image_shape"])
    return feats, (shape[0], shape[1])


def cache_entry_ok(path: Path) -> bool:
    """Whether a cached npz reads back; a damaged one is reported (to be recomputed)."""
    try:
        load_features(path)
    except CORRUPT_CACHE_ERRORS as e:
        log.warning("%s: cache entry corrupt, recomputing (%s)", path, e)
        return False
    return True


def extract_all(
    method: LocalFeatureExtractor,
    spec: str,
    images: Sequence[ImageRef],
    cache_root: Path,
    resize: int,
    max_keypoints: int,
    recompute: bool = False,
) -> dict[str, Path]:
    """Extract (or reuse from the cache) every image; returns image key -> npz path."""
    folder = cache_root / method_key(spec, method.model_file, resize, max_keypoints)
    out: dict[str, Path] = {}
    todo = []
    for ref in images:
        key = ref.key()
        out[key] = folder / f"{key}.npz"
        if recompute or not out[key].is_file() or not cache_entry_ok(out[key]):
            todo.append((ref, out[key]))
    log.info("%s: %d cached, %d to extract (%s)", spec, len(images) - len(todo), len(todo), folder)
    for ref, path in tqdm(todo, desc=f"extract {spec}", unit="img", disable=not todo):
        image = ref.load()
        save_features(path, extract_resized(method, image, resize, max_keypoints), image.shape[:2])
    return out

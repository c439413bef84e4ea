"""Place-recognition peers: SeqSLAM-style thumbnails, DenseVLAD (VLAD over dense RootSIFT),
VLAD over our own keypoint descriptors (no trained head), and ours_global: the one-pass frontend's
trained global output over the same descriptors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.io import to_gray


def l2_normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    n = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def patch_normalize(img: np.ndarray, patch: int = 8) -> np.ndarray:
    """Zero-mean, unit-std normalisation of each non-overlapping patch x patch block (SeqSLAM);
    flat blocks become 0."""
    h, w = img.shape
    x = img.astype(np.float32)[: h - h % patch, : w - w % patch]
    blocks = x.reshape(h // patch, patch, w // patch, patch)
    mean = blocks.mean(axis=(1, 3), keepdims=True)
    std = blocks.std(axis=(1, 3), keepdims=True)
    out = np.where(std > 1e-6, (blocks - mean) / np.maximum(std, 1e-6), 0.0)
    return out.reshape(x.shape)


@dataclass
class Thumbnail:
    """SeqSLAM-style global descriptor: grayscale 64x32 (WxH, area resize), 8x8 patch
    normalisation, flattened and L2-normalised (2048-D; cosine similarity)."""

    width: int = 64
    height: int = 32
    patch: int = 8

    def __post_init__(self) -> None:
        self.model_file: Path | None = None

    def fit(self, database_images: Sequence[np.ndarray]) -> None:
        """No learned parameters."""

    def describe(self, images: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for img in images:
            g = cv2.resize(to_gray(img), (self.width, self.height), interpolation=cv2.INTER_AREA)
            out.append(patch_normalize(g, self.patch).ravel())
        return l2_normalize(np.stack(out)) if out else np.zeros((0, self.width * self.height), np.float32)


def dense_rootsift(gray: np.ndarray, step: int, size: float) -> np.ndarray:
    """RootSIFT (L1-normalise, sqrt) descriptors on a regular grid, (N, 128) float32."""
    h, w = gray.shape
    half = step // 2
    kps = [cv2.KeyPoint(float(x), float(y), size) for y in range(half, h, step) for x in range(half, w, step)]
    _, desc = cv2.SIFT_create().compute(gray, kps)
    if desc is None:
        return np.zeros((0, 128), np.float32)
    desc = desc.astype(np.float32)
    desc /= np.maximum(desc.sum(axis=1, keepdims=True), 1e-12)
    return np.sqrt(desc)


@dataclass
class Vlad:
    """VLAD (Jegou et al.) over an image's local descriptors (``local(img)`` -> (N, D) float32):
    codebook of `clusters` k-means centres fitted on the database with faiss (seeded); residuals
    summed per centre, intra-normalised, signed square root, L2-normalised (clusters x D dims).
    No training beyond the codebook: the floor a learned aggregation has to beat."""

    clusters: int = 64
    seed: int = 0
    max_training_descriptors: int = 200_000
    name = "vlad"

    def __post_init__(self) -> None:
        self.model_file: Path | None = None
        self.centroids: np.ndarray | None = None

    def local(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, database_images: Sequence[np.ndarray]) -> None:
        """k-means codebook on the database descriptors (a seeded subsample when there are many)."""
        import faiss

        descs = [self.local(img) for img in database_images]
        if not descs:
            raise ValueError(f"{self.name}: cannot fit a codebook on an empty database")
        x = np.concatenate(descs).astype(np.float32)
        if len(x) < self.clusters:
            raise ValueError(f"{self.name}: {len(x)} descriptors are too few for {self.clusters} clusters")
        rng = np.random.default_rng(self.seed)
        if len(x) > self.max_training_descriptors:
            x = x[rng.choice(len(x), self.max_training_descriptors, replace=False)]
        km = faiss.Kmeans(x.shape[1], self.clusters, niter=25, seed=self.seed, verbose=False)
        km.train(np.ascontiguousarray(x))
        self.centroids = km.centroids.astype(np.float32)

    def vlad(self, desc: np.ndarray) -> np.ndarray:
        assert self.centroids is not None
        k = len(self.centroids)
        v = np.zeros((k, self.centroids.shape[1]), np.float32)
        if len(desc):
            d2 = (desc**2).sum(1)[:, None] + (self.centroids**2).sum(1)[None] - 2 * desc @ self.centroids.T
            assign = np.argmin(d2, axis=1)
            np.add.at(v, assign, desc - self.centroids[assign])
        v = l2_normalize(v, axis=1)  # intra-normalisation
        v = np.sign(v) * np.sqrt(np.abs(v))
        return l2_normalize(v.ravel())

    def describe(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if self.centroids is None:
            raise RuntimeError(f"{self.name}: call fit(database_images) before describe()")
        out = [self.vlad(self.local(img)) for img in images]
        return np.stack(out) if out else np.zeros((0, self.clusters * self.centroids.shape[1]), np.float32)


@dataclass
class VladSift(Vlad):
    """DenseVLAD (Torii et al. 2015): VLAD over dense RootSIFT. Grid step = max(4, longer side / 40)
    px, SIFT patch size = 2 x step, on the image downscaled to `resize` px longer side."""

    resize: int = 640
    name = "dense_vlad"

    def local(self, img: np.ndarray) -> np.ndarray:
        g = to_gray(img)
        h, w = g.shape
        if self.resize and max(h, w) > self.resize:
            s = self.resize / max(h, w)
            g = cv2.resize(g, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        step = max(4, round(max(g.shape) / 40))
        return dense_rootsift(g, step, 2.0 * step)


@dataclass
class VladKeypoints(Vlad):
    """VLAD over the `keypoints` strongest descriptors of our keypoint model (the runtime
    Frontend, int8 by default or the ONNX file `model`), images downscaled to `resize` px longer
    side (images under `upscale` px, Nordland's 64x32, upscaled to it): the features the robot
    already computes, aggregated without any training."""

    model: Path | None = None
    keypoints: int = 500
    resize: int = 640
    upscale: int = 256
    threads: int = 1
    name = "vlad_ours"

    def __post_init__(self) -> None:
        from homeloc.runtime.frontend import Frontend

        super().__post_init__()
        self.frontend = Frontend(self.model, max_keypoints=self.keypoints, threads=self.threads)
        self.model_file = self.frontend.model_path

    def local(self, img: np.ndarray) -> np.ndarray:
        from homeloc.runtime.postprocess import resize_longer, upscale_longer

        return self.frontend.extract(
            upscale_longer(resize_longer(img, self.resize), self.upscale)
        ).descriptors


@dataclass
class OursGlobal:
    """The one-pass frontend's global descriptor (``Frontend.extract(img).global_descriptor``: the
    trained head over the same dense descriptors the keypoints come from; the shipped
    ``frontend.int8.onnx`` or the ONNX file `model`). Images scaled as ``VladKeypoints`` (and
    ``train.global_data``) scale them. No codebook fitted on the database."""

    model: Path | None = None
    resize: int = 640
    upscale: int = 256
    threads: int = 1
    name = "ours_global"

    def __post_init__(self) -> None:
        from homeloc.runtime.frontend import Frontend

        self.frontend = Frontend(self.model, max_keypoints=500, threads=self.threads, reliability=False,
                                 global_descriptor=True)  # fmt: skip
        self.model_file = self.frontend.model_path

    def fit(self, database_images: Sequence[np.ndarray]) -> None:
        """Nothing to fit: the head was trained on other data."""

    def describe(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from homeloc.runtime.postprocess import resize_longer, upscale_longer

        out = [self.frontend.extract(upscale_longer(resize_longer(img, self.resize), self.upscale)).global_descriptor
               for img in images]  # fmt: skip
        return np.stack(out) if out else np.zeros((0, 0), np.float32)

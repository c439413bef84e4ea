"""Parity metrics as pure functions: numbers in, numbers out, no I/O, no models, no sessions.

Everything the parity report says about how close a backend is to torch (keypoint overlap,
descriptor cosine, largest dense difference) and how accurate it is (MMA on homography pairs,
recall@k on a place set) is computed here, so each number can be checked by hand
(``tests/export/test_parity_fidelity.py``). The rounding (digits) is part of the report format:
changing it changes ``parity.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OVERLAP_PX = 1.0  # a keypoint is "reproduced" when the other backend has one within this radius
MMA_THRESHOLDS = (1, 3, 5)  # pixels; the report's MMA@1/3/5 columns
# The per-bucket column is MMA@3 (the target's threshold): index 1 of MMA_THRESHOLDS.
BUCKET_MMA_COLUMN = 1
RECALL_KS = (1, 5)  # the report's R@1 / R@5 columns
_COSINE_EPS = 1e-12  # keeps the cosine finite for an all-zero descriptor


# ------------------------------------------------------------------------------------ keypoints
def keypoint_overlap(ref: np.ndarray, cand: np.ndarray, px: float = OVERLAP_PX) -> np.ndarray:
    """Boolean mask over ``ref`` (N x 2): a keypoint of ``cand`` (M x 2) lies within ``px`` pixels.

    Inclusive (distance == px counts). Empty ``ref`` gives an empty mask; empty ``cand`` all False.
    """
    if len(ref) == 0:
        return np.zeros(0, bool)
    if len(cand) == 0:
        return np.zeros(len(ref), bool)
    d2 = ((ref[:, None, :].astype(np.float64) - cand[None, :, :]) ** 2).sum(-1)
    return d2.min(axis=1) <= px * px


def unit_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two N x D arrays of already unit-norm descriptors (their dot product).

    The keypoint descriptors leave ``runtime.postprocess`` L2-normalised, so no division here.
    """
    return (a * b).sum(axis=1)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two N x D arrays of any norm (place descriptors); zero rows give 0."""
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + _COSINE_EPS)


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute elementwise difference of two same-shape arrays, as a Python float."""
    return float(np.abs(a - b).max())


def descriptor_stats(values: Sequence[float] | np.ndarray, digits: int = 6) -> dict[str, float | None]:
    """``{"mean", "p05", "min"}`` of ``values`` rounded to ``digits``; all None when empty.

    p05 is numpy's default (linear) 5th percentile: the tail that a mean hides.
    """
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"mean": None, "p05": None, "min": None}
    return {
        "mean": round(float(v.mean()), digits),
        "p05": round(float(np.percentile(v, 5)), digits),
        "min": round(float(v.min()), digits),
    }


def keypoint_fidelity(
    overlaps: Sequence[np.ndarray],
    cosines: Sequence[np.ndarray],
    max_abs_logits: float,
    max_abs_descriptors: float,
    counts: Sequence[int],
) -> dict[str, Any]:
    """One backend's ``fidelity`` entry against torch, from per-image measurements.

    Args:
        overlaps: per image, the ``keypoint_overlap`` mask over torch's keypoints.
        cosines: per image, the descriptor cosine at the shared torch keypoints.
        max_abs_logits, max_abs_descriptors: largest dense-output differences over all images.
        counts: per image, the number of keypoints this backend kept.

    Returns ``images``, ``keypoint_overlap`` (pooled over all keypoints, 4 digits; None without
    keypoints), ``keypoint_overlap_min_image`` (worst image with keypoints), ``descriptor_cosine``
    (``descriptor_stats``), both max-abs values and ``keypoints_mean`` (1 digit).
    """
    shared_all = np.concatenate(overlaps) if overlaps else np.zeros(0, bool)
    per_image = [float(o.mean()) for o in overlaps if o.size]
    return {
        "images": len(overlaps),
        "keypoint_overlap": round(float(shared_all.mean()), 4) if shared_all.size else None,
        "keypoint_overlap_min_image": round(min(per_image), 4) if per_image else None,
        "descriptor_cosine": descriptor_stats(np.concatenate(cosines) if cosines else []),
        "max_abs_logits": float(max_abs_logits),
        "max_abs_descriptors": float(max_abs_descriptors),
        "keypoints_mean": round(float(np.mean(counts)), 1),
    }


def reference_fidelity(counts: Sequence[int]) -> dict[str, Any]:
    """The reference backend's (torch's) ``fidelity`` entry: ``images`` and ``keypoints_mean``."""
    return {"images": len(counts), "keypoints_mean": round(float(np.mean(counts)), 1)}


def pair_mma(
    kpts0: np.ndarray, desc0: np.ndarray, kpts1: np.ndarray, desc1: np.ndarray, H: np.ndarray
) -> tuple[np.ndarray, int]:
    """MMA of one homography pair: mutual-nearest-neighbour (L2) matches, reprojection error
    under ``H`` (image0 -> image1 pixels), share within each of ``MMA_THRESHOLDS``.

    Returns (one value in [0, 1] per threshold, number of matches); no matches give NaN shares.
    """
    from homeloc.runtime.matching import mutual_nearest_neighbours
    from homeloc.train.metrics import matching_accuracy, reprojection_errors

    idx = mutual_nearest_neighbours(desc0, desc1, "l2")
    err = reprojection_errors(kpts0[idx[:, 0]], kpts1[idx[:, 1]], H)
    return matching_accuracy(err, MMA_THRESHOLDS), len(idx)


def bucket_counts(buckets: Sequence[str]) -> dict[str, int]:
    """``{bucket: number of pairs}``, buckets sorted by name."""
    return {k: list(buckets).count(k) for k in sorted(set(buckets))}


def mma_summary(mma: Sequence[np.ndarray], matches: Sequence[int], buckets: Sequence[str]) -> dict[str, Any]:
    """One backend's ``accuracy`` entry from per-pair ``pair_mma`` results (at least one pair).

    Returns ``MMA@<t>`` (mean over pairs, 4 digits) per threshold, ``matches_mean`` (1 digit) and
    ``by_bucket``: {bucket: mean MMA@3 over that bucket's pairs} (buckets sorted by name).
    """
    arr = np.array(mma)
    entry: dict[str, Any] = {
        f"MMA@{t}": round(float(arr[:, i].mean()), 4) for i, t in enumerate(MMA_THRESHOLDS)
    }
    entry["matches_mean"] = round(float(np.mean(matches)), 1)
    entry["by_bucket"] = {
        k: round(float(arr[[j for j, x in enumerate(buckets) if x == k], BUCKET_MMA_COLUMN].mean()), 4)
        for k in sorted(set(buckets))
    }
    return entry


def keypoint_accuracy(
    data: str | None,
    skipped: str | None,
    buckets: Sequence[str],
    mma: dict[str, Sequence[np.ndarray]],
    matches: dict[str, Sequence[int]],
) -> dict[str, Any]:
    """The keypoint report's ``accuracy`` section.

    ``buckets`` holds one entry per measured pair (empty: MMA was skipped, ``skipped`` says why,
    defaulting to "no pairs"); ``mma`` / ``matches`` map each backend to its per-pair results, in
    report order. Returns ``data``, ``pairs``, ``skipped`` and, when measured, ``buckets`` plus one
    ``mma_summary`` per backend.
    """
    accuracy: dict[str, Any] = {
        "data": data,
        "pairs": len(buckets),
        "skipped": None if buckets else (skipped or "no pairs"),
    }
    if buckets:
        accuracy["buckets"] = bucket_counts(buckets)
        for b in mma:
            accuracy[b] = mma_summary(mma[b], matches[b], buckets)
    return accuracy


# ------------------------------------------------------------------------------------ places
def place_fidelity(desc: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """One backend's place ``fidelity`` entry: N x D descriptors against torch's ``ref``.

    Returns ``images`` (N), ``descriptor_cosine`` (``descriptor_stats`` of ``cosine_rows``) and
    ``max_abs_descriptor``.
    """
    return {
        "images": len(ref),
        "descriptor_cosine": descriptor_stats(cosine_rows(desc, ref)),
        "max_abs_descriptor": max_abs_diff(desc, ref),
    }


def place_accuracy(
    data: str | None,
    skipped: str | None,
    descriptors: dict[str, np.ndarray],
    database: int,
    positives: Sequence[set[int]],
) -> dict[str, Any]:
    """The place report's ``accuracy`` section.

    ``descriptors``: {backend: (database + Q) x D}, the first ``database`` rows the database, the
    rest the queries, backends in report order. ``skipped`` set: no ground truth, only ``data``
    and ``skipped`` are reported; otherwise also ``database``, ``queries`` and per backend
    ``place_recall``.
    """
    accuracy: dict[str, Any] = {"data": data, "skipped": skipped}
    if skipped is None:
        queries = len(next(iter(descriptors.values()))) - database
        accuracy |= {"database": database, "queries": queries}
        for b, desc in descriptors.items():
            accuracy[b] = place_recall(desc[:database], desc[database:], positives)
    return accuracy


def place_recall(
    db: np.ndarray, queries: np.ndarray, positives: Sequence[set[int]], ks: Sequence[int] = RECALL_KS
) -> dict[str, float]:
    """``{"R@<k>": recall}`` (4 digits) of ``queries`` (Q x D) against ``db`` (N x D).

    Ranking by dot product (descriptors are unit-norm, so cosine), ties kept in database order;
    ``positives``: per query, the set of correct database indices.
    """
    from homeloc.train.metrics import recall_at_k

    ranked = np.argsort(-(queries @ db.T), axis=1, kind="stable")[:, : max(ks)]
    r = recall_at_k(ranked, positives, ks)
    return {f"R@{k}": round(r[k], 4) for k in ks}

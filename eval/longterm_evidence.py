"""Seen or only believed: each localization's verification score against the frame's noise floor.

Under a dim lamp a frame's mutual-nearest-neighbour matches are nearly all wrong, yet the
essential-matrix fit of a few hundred wrong matches still finds 20-35 "inliers": against frames of
other rooms such a frame verifies at 0.1-0.3, as high as against its own place (session 13,
docs/longterm_history.md "Noise floor"). A localization the odometry map accepted among its prior's
candidates at such a score was chosen by the prior, not seen. This pass measures it: per frame
(after the mapping day), the **noise floor** is the highest verification score of the frame
against the ``negatives`` earlier frames (earlier days) that are surely not its place (judged
not the place and at least ``far_m`` away), the most similar by global descriptor first, the
wrong places retrieval would offer. A localization is **seen** when its own score is above the
floor. Pure bookkeeping over the records of loop 1: the maps are not changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from homeloc.runtime.features import Features
from homeloc.runtime.loop_closure.config import VerifyConfig
from homeloc.runtime.loop_closure.results import Candidate
from homeloc.runtime.loop_closure.stored_features import StoredFeatures
from homeloc.runtime.loop_closure.verify import query_features, verify_one

FAR_M = 2.0  # a frame this far from the query's camera centre is not its place (the place radius is 1 m)


@dataclass(frozen=True)
class FloorFrame:
    """What the floor needs of one frame: its global descriptor and the local features a map stores."""

    descriptor: np.ndarray
    stored: Features


def floor_frame(features: Features, descriptor: np.ndarray, verify: VerifyConfig) -> FloorFrame:
    """The frame as a map would store it (``verify.max_stored_features`` keypoints, descriptors coded in ``verify.descriptor_bits``)."""
    return FloorFrame(
        np.asarray(descriptor, np.float32),
        StoredFeatures.compress(features, verify.max_stored_features, verify.descriptor_bits).features(),
    )


def negatives_of(
    i: int, days: np.ndarray, centres: np.ndarray, same: Callable[[int, np.ndarray], np.ndarray],
    descriptors: np.ndarray, count: int, far_m: float = FAR_M,
) -> np.ndarray:  # fmt: skip
    """Indices of frame ``i``'s negatives: frames of earlier days, not its place (``same``), at
    least ``far_m`` from its camera centre (``centres``: N x 3), the ``count`` most similar by
    global descriptor (rows of ``descriptors``) first."""
    earlier = np.flatnonzero(days < days[i])
    if not len(earlier) or count <= 0:
        return earlier[:0]
    far = np.linalg.norm(centres[earlier] - centres[i], axis=1) >= far_m
    pool = earlier[far & ~same(i, earlier)]
    sim = descriptors[pool] @ descriptors[i]
    return pool[np.argsort(-sim, kind="stable")[:count]]


def noise_floor(
    query: Features, negatives: Sequence[Features], verify: VerifyConfig, K: np.ndarray | None
) -> float:
    """The highest verification score (:func:`.verify.confidence`) of ``query`` against
    ``negatives`` (0.0 without any): what a wrong place scores for this frame."""
    q, _ = query_features(query, verify)
    scores = [verify_one(q, Candidate(-1, 0.0), n, verify, K)[0].confidence for n in negatives]
    return float(max(scores, default=0.0))


def noise_floors(
    frames: Sequence[FloorFrame], days: np.ndarray, centres: np.ndarray,
    same: Callable[[int, np.ndarray], np.ndarray], verify: VerifyConfig, K: np.ndarray | None,
    count: int, first_day: int, label: str = "",
) -> dict[int, float]:  # fmt: skip
    """Frame index -> noise floor (:func:`noise_floor` against :func:`negatives_of`) for every
    frame after ``first_day`` that has negatives."""
    descriptors = np.stack([f.descriptor for f in frames])
    out = {}
    for i in tqdm(np.flatnonzero(days > first_day), desc=f"{label} noise floor", unit="frame", leave=False):
        neg = negatives_of(int(i), days, centres, same, descriptors, count)
        if len(neg):
            out[int(i)] = noise_floor(frames[i].stored, [frames[j].stored for j in neg], verify, K)
    return out


def seen(confidence: float | None, floor: float | None) -> bool | None:
    """A localization at ``confidence`` is seen when above the frame's ``floor`` (None: not
    localized, or no floor measured)."""
    if confidence is None or floor is None:
        return None
    return bool(confidence > floor)

"""Accepting a localization on agreement of independent evidence: pure functions over the
verifications of one frame.

A single verification at the loop-closure acceptance score (``VerifyConfig.min_confidence``) is
accepted as before. Below it, at night, the right place often verifies with a weak score against
several of its experiences, while a wrong place (a repeated texture in another room) verifies
weakly against one: on the dev home's 5,396 (frame, earlier frame) pairs the best wrong pair
scored 0.355, and wrong pairs above 0.25 were single frames of places metres away. So a place is
accepted when at least ``agree_count`` of its experiences each verify with at least
``agree_confidence``, and no experience of any other place reaches ``agree_confidence``
(conflicting evidence: reject rather than guess). Evidence is independent only when it agrees on
where the frame is: each verification's relative rotation, composed with its experience's stored
pose, gives the frame's orientation in the map, and the agreeing experiences must give the same
one within ``agree_deg`` (a lookalike in another room, seen by two experiences of it, is matched
under different rotations).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from homeloc.runtime.loop_closure.results import Verification


def frame_rotation(experience_pose: np.ndarray, R: np.ndarray | None) -> np.ndarray | None:
    """The frame's camera-to-map rotation implied by a verification: ``experience_pose`` (3 x 4
    camera-to-map of the experience, NaN when unknown) and ``R`` (frame -> experience camera,
    x_exp = R x_frame + t); None when either is unknown."""
    if R is None or not np.isfinite(experience_pose).all():
        return None
    return np.asarray(experience_pose, np.float64)[:3, :3] @ np.asarray(R, np.float64)


def rotation_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (degrees) of the rotation between 3 x 3 rotations ``a`` and ``b``."""
    c = (np.trace(a.T @ b) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def consistent(
    kf_ids: Sequence[int], rotations: Mapping[int, np.ndarray | None], ref: int, max_deg: float
) -> list[int]:
    """The ``kf_ids`` whose implied frame rotation is within ``max_deg`` of ``ref``'s (``ref``
    included); none when ``ref``'s is unknown."""
    r0 = rotations.get(ref)
    if r0 is None:
        return []
    return [k for k in kf_ids if rotations.get(k) is not None and rotation_deg(r0, rotations[k]) <= max_deg]


def disagree(kf_ids: Sequence[int], rotations: Mapping[int, np.ndarray | None], max_deg: float) -> bool:
    """Do two of ``kf_ids`` imply frame rotations (``rotations``: kf_id -> 3 x 3 or None, unknown
    ones skipped) more than ``max_deg`` apart? Views of the spot the frame was taken at agree on
    how it faces; a lookalike matched under another rotation does not."""
    known = [rotations[k] for k in kf_ids if rotations.get(k) is not None]
    return any(rotation_deg(a, b) > max_deg for i, a in enumerate(known) for b in known[i + 1 :])


def agreeing_place(
    log: Sequence[Verification], place_of: Mapping[int, int], agree_confidence: float, agree_count: int,
    rotations: Mapping[int, np.ndarray | None] | None = None, agree_deg: float | None = None,
) -> int | None:  # fmt: skip
    """The one place whose experiences agree, else None.

    log: the frame's verifications (any order, the best first among equals); place_of: kf_id ->
    place id of every verified experience; a verification counts as evidence when it passed the
    floors and its confidence is >= ``agree_confidence``. Returns the place with >= ``agree_count``
    distinct experiences as evidence, when no other place has any; with ``agree_deg``, only the
    evidence whose implied frame rotation (``rotations``: kf_id -> 3 x 3 or None) is within
    ``agree_deg`` of the most confident one's counts."""
    support: dict[int, set[int]] = {}
    for v in log:
        if v.passed and v.confidence >= agree_confidence:
            support.setdefault(place_of[v.kf_id], set()).add(v.kf_id)
    if len(support) != 1:
        return None
    place, kfs = next(iter(support.items()))
    if agree_deg is not None:
        conf = {v.kf_id: v.confidence for v in log}
        best = max(sorted(kfs), key=lambda k: conf[k])
        kfs = set(consistent(sorted(kfs), rotations or {}, best, agree_deg))
    return place if len(kfs) >= agree_count else None


def accepts(
    log: Sequence[Verification],
    best_confidence: float,
    best_place: int,
    place_of: Mapping[int, int],
    min_confidence: float,
    agree_confidence: float | None,
    agree_count: int,
    rotations: Mapping[int, np.ndarray | None] | None = None,
    agree_deg: float | None = None,
) -> bool:
    """Is the best verified candidate (``best_confidence``, of place ``best_place``) a
    localization? Yes when it reaches ``min_confidence`` alone, or (``agree_confidence`` not None)
    when its place is the :func:`agreeing_place`."""
    if best_confidence >= min_confidence:
        return True
    if agree_confidence is None:
        return False
    return agreeing_place(log, place_of, agree_confidence, agree_count, rotations, agree_deg) == best_place

"""Accepting a localization on agreement of independent evidence: pure functions over the
verifications of one frame.

A single verification at the loop-closure acceptance score (``VerifyConfig.min_confidence``) is
accepted as before. Below it, at night, the right place often verifies with a weak score against
several of its experiences, while a wrong place (a repeated texture in another room) verifies
weakly against one: on the dev home's 5,396 (frame, earlier frame) pairs the best wrong pair
scored 0.355, and wrong pairs above 0.25 were single frames of places metres away. So a place is
accepted when at least ``agree_count`` of its experiences each verify with at least
``agree_confidence``, and no experience of any other place reaches ``agree_confidence``
(conflicting evidence: reject rather than guess).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from homeloc.runtime.loop_closure.results import Verification


def agreeing_place(
    log: Sequence[Verification], place_of: Mapping[int, int], agree_confidence: float, agree_count: int
) -> int | None:
    """The one place whose experiences agree, else None.

    log: the frame's verifications (any order); place_of: kf_id -> place id of every verified
    experience; a verification counts as evidence when it passed the floors and its confidence is
    >= ``agree_confidence``. Returns the place with >= ``agree_count`` distinct experiences as
    evidence, when no other place has any."""
    support: dict[int, set[int]] = {}
    for v in log:
        if v.passed and v.confidence >= agree_confidence:
            support.setdefault(place_of[v.kf_id], set()).add(v.kf_id)
    if len(support) != 1:
        return None
    place, kfs = next(iter(support.items()))
    return place if len(kfs) >= agree_count else None


def accepts(
    log: Sequence[Verification],
    best_confidence: float,
    best_place: int,
    place_of: Mapping[int, int],
    min_confidence: float,
    agree_confidence: float | None,
    agree_count: int,
) -> bool:
    """Is the best verified candidate (``best_confidence``, of place ``best_place``) a
    localization? Yes when it reaches ``min_confidence`` alone, or (``agree_confidence`` not None)
    when its place is the :func:`agreeing_place`."""
    if best_confidence >= min_confidence:
        return True
    if agree_confidence is None:
        return False
    return agreeing_place(log, place_of, agree_confidence, agree_count) == best_place

"""What the long-term map forgets under its memory budget: pure functions of the usage statistics.

Usefulness of an experience = log2(1 + matches) - (clock - last_used) / half_life
- stale_penalty x stale. An experience matched often stays; one matched long ago, or never since
it was added, fades by one unit per ``half_life`` map ticks (the same as halving its match count);
the experiences of a room that changed in a major way (``stale``) go first, and those added less
than ``grace`` ticks ago go last (a new appearance has had no chance to be matched yet, and would
otherwise be the first forgotten once the budget binds). The last experience
of a place is never forgotten: the place itself (its position in the rooms / places layer) stays
known, so the map still covers every place it ever saw.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

YOUNG = 1e6  # usefulness added to experiences still in their grace period: forgotten last


def usefulness(
    matches: np.ndarray, last_used: np.ndarray, stale: np.ndarray, clock: int, half_life: float,
    stale_penalty: float, created: np.ndarray | None = None, grace: int = 0,
) -> np.ndarray:  # fmt: skip
    """Usefulness of each experience (higher is kept longer); N float64 from N-vectors. An
    experience created less than ``grace`` ticks ago is forgotten only after every older one
    could be: a new appearance has not had the chance to be matched yet."""
    age = np.maximum(clock - np.asarray(last_used, np.float64), 0.0)
    score = (
        np.log2(1.0 + np.asarray(matches, np.float64))
        - age / half_life
        - stale_penalty * np.asarray(stale, np.float64)
    )
    if created is not None and grace > 0:
        score = score + YOUNG * (clock - np.asarray(created, np.float64) < grace)
    return score


@dataclass(frozen=True)
class ForgetPlan:
    """drop: positions to forget, least useful first; nbytes: the map's bytes after dropping them;
    over_budget: still above the budget (every place is down to its last experience)."""

    drop: np.ndarray
    nbytes: int
    over_budget: bool


def plan_forget(
    places: np.ndarray, sizes: np.ndarray, score: np.ndarray, fixed_bytes: int, max_bytes: int | None
) -> ForgetPlan:
    """Positions to forget so that ``fixed_bytes + sum(sizes)`` fits ``max_bytes``: the least
    useful first (ties: the older position first), never the last experience of a place.

    places: N place ids; sizes: N bytes per experience; score: N usefulness."""
    sizes = np.asarray(sizes, np.int64)
    total = int(fixed_bytes + sizes.sum())
    if max_bytes is None or total <= max_bytes:
        return ForgetPlan(np.zeros(0, np.int64), total, False)
    left = dict(zip(*np.unique(places, return_counts=True), strict=True))
    drop = []
    for p in np.lexsort((np.arange(len(score)), score)):  # by score, then position
        if total <= max_bytes:
            break
        if left[places[p]] <= 1:
            continue
        left[places[p]] -= 1
        total -= int(sizes[p])
        drop.append(int(p))
    return ForgetPlan(np.array(drop, np.int64), total, total > max_bytes)

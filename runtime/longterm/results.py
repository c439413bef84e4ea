"""What the long-term map returns: a localization, the update of one observed frame, its statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from homeloc.runtime.frontend import Geometry


@dataclass(frozen=True)
class Localization:
    """A verified localization: the frame shows experience ``kf_id`` of place ``place`` in ``room``.

    score: retrieval cosine; inliers, confidence: of the geometric verification
    (:func:`homeloc.runtime.loop_closure.verify.confidence`); geometry: frame (view 0) -> keyframe
    (view 1), R and t for the essential matrix; pose: the keyframe's 3 x 4 camera-to-map pose
    (NaN when unknown); searched: "rooms" (the restricted search found it), "all", or "prior" (among
    the candidates of the odometry pose prior, at its lower score)."""

    kf_id: int
    place: int
    room: int
    score: float
    inliers: int
    confidence: float
    geometry: Geometry | None
    pose: np.ndarray
    searched: str


@dataclass(frozen=True)
class Update:
    """What :meth:`LongTermMap.observe` did with one frame: its localization (None: failed), the
    experience it added (kf id and place, None when it localized or was unusable), the experiences
    forgotten for the budget and the room declared changed (None: none)."""

    localization: Localization | None
    added: int | None
    place: int | None
    forgotten: tuple[int, ...]
    major_change: int | None
    change_signal: str | None = None  # what declared it: "failures" or "colour" (.rooms.ChangeMonitor)


@dataclass(frozen=True)
class LongTermStats:
    """Memory and contents; ``total_bytes`` = ``fixed_bytes`` (places table and their colour
    memory) + the experiences' rows, descriptors and stored local features: the arrays the map
    file holds."""

    experiences: int
    places: int
    rooms: int
    stale: int
    with_features: int
    fixed_bytes: int
    bytes_per_experience: float
    total_bytes: int
    budget_bytes: int | None
    clock: int

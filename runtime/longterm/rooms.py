"""The coarse layer above keyframes: rooms (from the robot's floor plan), places (a spot and view
direction that several experiences share) and the per-room detector of major changes.

Rooms are axis-aligned rectangles ``[x0, y0, x1, y1]`` in the map frame (metres, the floor plane
x-y): the room segmentation of the SLAM system's occupancy grid, or none (then every place is in
room -1 and the search is not restricted). Two rooms are neighbours when their rectangles touch.
A place is anchored at the camera pose of its first experience; poses are camera-to-map 4 x 4
(OpenCV camera axes: the view direction is the camera z axis).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from homeloc.runtime.longterm.config import ChangeConfig, PlaceConfig

NO_ROOM = -1
TOUCH_M = 0.05  # rectangles closer than this share a wall (floor plans are not exact)


class Rooms:
    """Room rectangles of the floor plan. ``rects``: R x 4 [x0, y0, x1, y1] (metres)."""

    def __init__(self, rects: Sequence[Sequence[float]] | np.ndarray = ()) -> None:
        r = np.asarray(rects, np.float64).reshape(-1, 4)
        if not np.isfinite(r).all() or np.any(r[:, 2] <= r[:, 0]) or np.any(r[:, 3] <= r[:, 1]):
            raise ValueError("rooms must be finite [x0, y0, x1, y1] rectangles with x1 > x0 and y1 > y0")
        self.rects = r

    def __len__(self) -> int:
        return len(self.rects)

    def room_of(self, pose: np.ndarray | None) -> int:
        """Index of the room holding the camera centre of ``pose`` (4 x 4 or 3 x 4), the nearest room
        when it lies outside every rectangle (a doorway), NO_ROOM without rooms or pose."""
        if pose is None or not len(self.rects):
            return NO_ROOM
        x, y = np.asarray(pose, np.float64)[0, 3], np.asarray(pose, np.float64)[1, 3]
        r = self.rects
        dx = np.maximum(np.maximum(r[:, 0] - x, x - r[:, 2]), 0.0)
        dy = np.maximum(np.maximum(r[:, 1] - y, y - r[:, 3]), 0.0)
        return int(np.argmin(np.hypot(dx, dy)))

    def neighbours(self, room: int) -> set[int]:
        """The room and every room whose rectangle touches it (all rooms for NO_ROOM)."""
        if room == NO_ROOM or not len(self.rects):
            return set(range(len(self.rects))) | {NO_ROOM}
        a, r = self.rects[room], self.rects
        gap_x = np.maximum(r[:, 0] - a[2], a[0] - r[:, 2])
        gap_y = np.maximum(r[:, 1] - a[3], a[1] - r[:, 3])
        return {int(i) for i in np.flatnonzero((gap_x <= TOUCH_M) & (gap_y <= TOUCH_M))} | {room}


def view_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (degrees) between the view directions (camera z axes) of poses ``a`` (... x 3|4 x 4) and ``b``."""
    za, zb = np.asarray(a)[..., :3, 2], np.asarray(b)[..., :3, 2]
    cos = np.sum(za * zb, axis=-1) / np.maximum(
        np.linalg.norm(za, axis=-1) * np.linalg.norm(zb, axis=-1), 1e-12
    )
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (metres) between the camera centres of poses ``a`` and ``b``."""
    return np.linalg.norm(np.asarray(a)[..., :3, 3] - np.asarray(b)[..., :3, 3], axis=-1)


def places_near(
    anchors: np.ndarray, place_rooms: np.ndarray, pose: np.ndarray | None, room: int, config: PlaceConfig
) -> np.ndarray:
    """Mask over ``anchors`` (P x 3 x 4, NaN for places without a pose): the places of ``room``
    within ``config.radius_m`` and ``config.angle_deg`` of ``pose`` (all False without a pose)."""
    if pose is None or not len(anchors):
        return np.zeros(len(anchors), bool)
    pose = np.asarray(pose, np.float64)[:3]
    d, a = centre_distance(anchors, pose), view_angle_deg(anchors, pose)
    return (place_rooms == room) & (d <= config.radius_m) & (a <= config.angle_deg)  # NaN compares False


def nearest_place(
    anchors: np.ndarray, place_rooms: np.ndarray, pose: np.ndarray | None, room: int, config: PlaceConfig
) -> int | None:
    """Position (in ``anchors``) of the place of :func:`places_near` nearest to ``pose``; None when
    there is none."""
    ok = places_near(anchors, place_rooms, pose, room, config)
    if not ok.any():
        return None
    d = centre_distance(anchors[ok], np.asarray(pose, np.float64)[:3])
    return int(np.flatnonzero(ok)[np.argmin(d)])


class ChangeMonitor:
    """Declares a major change of a room from either of two signals; the room's history then
    restarts, so one change is declared once.

    Failures (:meth:`record`): among the last ``config.window`` frames taken at known places of the
    room, at least ``config.major_share`` failed to localize (rearranged furniture). A minor change
    (a bag on the floor) still localizes, or fails on a single frame, and never reaches the share.
    Frames at places the map does not know yet are not recorded: failing there is no change.
    Measured on rendered homes (docs/longterm_history.md, "Session 23", "Session 25"), this signal is weak:
    without a pose prior most declarations follow frames under light the map has not seen yet, and
    they detect the scheduled large changes no better than as many random declarations; with the
    prior almost every frame localizes and none is declared. Off by default
    (``config.major_share`` None).

    Colour (:meth:`record_colour`): the median colour shift of the room's last
    ``config.colour_window`` frames reaches ``config.colour_shift`` (a repainted room: "Session 24").
    ``declared``: the clock of each room's last declaration (either signal): the map counts colour
    shifts there again only once it has seen the room's new look (:meth:`.LongTermMap.observe`).
    """

    def __init__(self, config: ChangeConfig) -> None:
        self.config = config
        self.history: dict[int, deque[tuple[int, bool]]] = {}
        self.colour: dict[int, deque[tuple[int, float]]] = {}
        self.declared: dict[int, int] = {}

    def record(self, room: int, localized: bool, clock: int) -> int | None:
        """Record one frame's outcome in ``room`` at map time ``clock``; when it completes a major
        change, the clock of the oldest frame of the window (the room has looked different since
        then at the latest), else None (always with ``config.major_share`` None: the signal is off)."""
        if self.config.major_share is None:
            return None
        h = self.history.setdefault(room, deque(maxlen=self.config.window))
        h.append((int(clock), bool(localized)))
        failed = sum(not ok for _, ok in h)
        if len(h) == self.config.window and failed >= self.config.major_share * self.config.window:
            return self._declared(room, h[0][0], clock)
        return None

    def record_colour(self, room: int, shift: float, clock: int) -> int | None:
        """Record one frame's colour shift (0..1) in ``room`` at ``clock``; as :meth:`record`."""
        c = self.config
        if c.colour_shift is None:
            return None
        h = self.colour.setdefault(room, deque(maxlen=c.colour_window))
        h.append((int(clock), float(shift)))
        if len(h) == c.colour_window and float(np.median([s for _, s in h])) >= c.colour_shift:
            return self._declared(room, h[0][0], clock)
        return None

    def _declared(self, room: int, since: int, clock: int) -> int:
        self.history.pop(room, None)
        self.colour.pop(room, None)
        self.declared[room] = int(clock)
        return since

    def state(self) -> dict[str, list[list[int]]]:
        """JSON-able failure history (saved with the map)."""
        return {str(r): [[c, int(ok)] for c, ok in h] for r, h in sorted(self.history.items())}

    def colour_state(self) -> dict[str, dict]:
        """JSON-able colour history and declaration clocks (saved with the map)."""
        return {"shifts": {str(r): [[c, s] for c, s in h] for r, h in sorted(self.colour.items())},
                "declared": {str(r): c for r, c in sorted(self.declared.items())}}  # fmt: skip

    def restore(self, state: dict[str, list[list[int]]], colour: dict[str, dict] | None = None) -> None:
        w, cw = self.config.window, self.config.colour_window
        self.history = {
            int(r): deque(((int(c), bool(ok)) for c, ok in h), maxlen=w) for r, h in state.items()
        }
        colour = colour or {}
        self.declared = {int(r): int(c) for r, c in colour.get("declared", {}).items()}
        self.colour = {
            int(r): deque(((int(c), float(s)) for c, s in h), maxlen=cw)
            for r, h in colour.get("shifts", {}).items()
        }

"""How much of a room's view a scheduled large change altered, from the renderer's changed masks.

A change the robot's patrol never sees cannot be detected from its frames: on the rendered dense
homes several rearrangements moved furniture out of every view (docs/longterm_history.md, "Session 32").
The change detection score (:func:`.evaluate_longterm.change_detection`) therefore also counts
the events that are visible: those whose room's frames changed by at least ``VISIBLE_SHARE`` of
their pixels (the room's median share, after against before).

The masks (``changed/<name>.png``) mark the pixels whose depth differs from day 0's from the same
pose, so they see geometry only: a repaint alters no depth and is taken as visible (its walls
are in every view of the room) when the patrol saw the room before it and sees it in the days a
detection counts; a room first seen after its repaint has not changed for the robot.
"""

from __future__ import annotations

import numpy as np

from homeloc.data_synthesis.formats.longterm import LongTermHome
from homeloc.data_synthesis.shards import DatasetError
from homeloc.runtime.longterm.rooms import Rooms

# an event is visible when its room's median changed share moves by at least this much: daily
# clutter moved it by up to 0.10 (median 0.013, 99th percentile 0.096) over the 156 room-days of
# the nine dense homes with no scheduled change within 3 days (docs/longterm_history.md, "Session 32")
VISIBLE_SHARE = 0.1
COLOUR_KINDS = ("repaint",)  # changes no depth mask can show


def frame_rooms(home: LongTermHome) -> list[int]:
    """The room of each frame of ``home`` (its camera centre's, as the evaluator's judge places it)."""
    rooms = Rooms(home.rooms)
    return [rooms.room_of(f.pose) for f in home.frames]


def changed_shares(home: LongTermHome, room: int, days: range, where: list[int] | None = None) -> list[float]:
    """The changed-pixel share of each frame of ``home`` taken in ``room`` on ``days`` (``where``:
    :func:`frame_rooms`, computed when None; frames whose mask is missing or unreadable are left out)."""
    where = frame_rooms(home) if where is None else where
    out = []
    for f, r in zip(home.frames, where, strict=True):
        if f.day in days and r == room:
            try:
                out.append(float(f.changed().mean()))
            except DatasetError:  # a folder without masks (older renders): no measure
                continue
    return out


def view_change(
    home: LongTermHome, kind: str, room: int, day: int, within_days: int, where: list[int] | None = None
) -> float | None:
    """How much of ``room``'s view an event on ``day`` changed: the median changed share of the
    room's frames on ``day`` .. ``day + within_days`` (the days a detection counts) less the median
    over the ``within_days`` days before, in absolute value (decorations taken down lower it). None:
    no frames of the room with masks on either side, or a colour change (``COLOUR_KINDS``: no mask
    shows it) of a room the patrol saw before ``day`` and sees on ``day`` .. ``day + within_days``;
    a colour change of a room unseen on either side changed nothing the robot saw: 0.0.
    ``where``: as for :func:`changed_shares`."""
    where = frame_rooms(home) if where is None else where
    if kind in COLOUR_KINDS:
        days = [f.day for f, r in zip(home.frames, where, strict=True) if r == room]
        seen = any(d < day for d in days) and any(day <= d <= day + within_days for d in days)
        return None if seen else 0.0
    before = changed_shares(home, room, range(day - within_days, day), where)
    after = changed_shares(home, room, range(day, day + within_days + 1), where)
    if not before or not after:
        return None
    return abs(float(np.median(after)) - float(np.median(before)))


def visible(kind: str, change: float | None) -> bool:
    """Is an event of ``kind`` that changed ``change`` of its room's view (:func:`view_change`)
    one the patrol could see? From ``VISIBLE_SHARE``; a colour change, which no mask measures
    (None), when :func:`view_change` found the room seen on both sides."""
    return kind in COLOUR_KINDS if change is None else change >= VISIBLE_SHARE


def event_visibility(homes: list[LongTermHome], within_days: int) -> dict[tuple, float | None]:
    """:func:`view_change` of every scheduled event (a change starting, or ending) of the homes
    that have changed masks, keyed (home, kind, room, day) as change detection keys its events;
    homes rendered without masks are left out (their events' visibility is unknown)."""
    out = {}
    for h in homes:
        if not (h.root / "changed").is_dir():
            continue
        where = frame_rooms(h)  # once per home, not per event
        for c in h.info.get("schedule", []):
            for day in (c["start"], c.get("end")):
                if day is not None:
                    out[(h.name, c["kind"], c["room"], day)] = view_change(
                        h, c["kind"], c["room"], day, within_days, where
                    )
    return out

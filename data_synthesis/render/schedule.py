"""The calendar of a months-long sequence, as pure functions of an rng: which large changes happen
on which days (`large_changes`, `active_changes`, `change_events`) and the lighting of each day's
patrol rounds (`day_lightings`). longterm.py applies them to a home and renders.

Large changes are persistent by construction: each one's geometry is drawn from its own rng stream
(longterm.py), rearrangements and repaints never end, decoration periods never overlap, and no room
is rearranged while decorations stand in it, so a change looks the same on every day it is active.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from homeloc.data_synthesis.render.config import LongTermConfig

KINDS = ("rearrange", "decorations", "repaint")


@dataclass(frozen=True)
class LargeChange:
    """One scheduled change: kind (KINDS), room index, first day, end (the first day it is gone;
    None: it persists to the end)."""

    id: int
    kind: str
    room: int
    start: int
    end: int | None = None

    def active(self, day: int) -> bool:
        return self.start <= day and (self.end is None or day < self.end)

    def label(self) -> str:
        return f"{self.kind}:room{self.room}"

    def to_dict(self) -> dict:
        return asdict(self)


def _start_days(cfg: LongTermConfig, days: int, wanted: int, rng: np.random.Generator) -> list[int]:
    """Up to `wanted` distinct days in [first_change_day, days - after_last_change), min_gap apart."""
    out: list[int] = []
    for d in rng.permutation(np.arange(cfg.first_change_day, days - cfg.after_last_change)):
        if len(out) == wanted:
            break
        if all(abs(int(d) - s) >= cfg.min_gap for s in out):
            out.append(int(d))
    return out


def _kinds(cfg: LongTermConfig, span: int, rng: np.random.Generator) -> list[str]:
    """One of each kind first (in random order), then the extra ones the rates ask for: if the span
    has fewer start days than events, the extras are what gets dropped."""
    every = {
        "rearrange": cfg.rearrange_every,
        "decorations": cfg.decorations_every,
        "repaint": cfg.repaint_every,
    }
    extra = [k for k in KINDS for _ in range(max(1, round(span / every[k])) - 1)]
    return [KINDS[i] for i in rng.permutation(len(KINDS))] + [extra[i] for i in rng.permutation(len(extra))]


def large_changes(
    cfg: LongTermConfig,
    days: int,
    n_rooms: int,
    rng: np.random.Generator,
    tree_rooms: list[int] | None = None,
) -> list[LargeChange]:
    """The schedule of a `days`-long sequence in a home of n_rooms rooms, sorted by start day.
    tree_rooms: the rooms where decorations may stand (default all; none: no decorations).
    Same rng state and rooms, same schedule; empty when the span leaves no start day."""
    span = days - cfg.after_last_change - cfg.first_change_day
    if span <= 0:
        return []
    tree_rooms = list(range(n_rooms)) if tree_rooms is None else list(tree_rooms)
    kinds = [k for k in _kinds(cfg, span, rng) if tree_rooms or k != "decorations"]
    starts = _start_days(cfg, days, len(kinds), rng)
    kinds = kinds[: len(starts)]
    drawn = sorted(zip((int(s) for s in rng.permutation(starts)), kinds, strict=True))
    out: list[LargeChange] = []
    decos: list[LargeChange] = []
    for start, kind in drawn:
        room, end = int(rng.integers(n_rooms)), None
        if kind == "decorations":
            room = tree_rooms[room % len(tree_rooms)]
            end = start + int(rng.integers(cfg.decorations_up[0], cfg.decorations_up[1] + 1))
            nxt = [s for s, k in drawn if k == "decorations" and s > start]
            end = min([end, *nxt])  # periods never overlap: the next one's tree replaces this one
        elif kind == "rearrange":
            busy = {d.room for d in decos if d.active(start)}
            free = [r for r in range(n_rooms) if r not in busy]
            if not free:  # the only room holds decorations today: no rearranging around the tree
                continue
            room = free[int(rng.integers(len(free)))]
        change = LargeChange(len(out), kind, room, start, end)
        out.append(change)
        if kind == "decorations":
            decos.append(change)
    return out


def active_changes(schedule: list[LargeChange], day: int) -> list[LargeChange]:
    """The changes in place on `day`, in start order."""
    return [c for c in schedule if c.active(day)]


def change_events(schedule: list[LargeChange], day: int) -> list[str]:
    """What is new on `day` compared with the day before: '<kind>:room<r>' for a change that starts,
    'decorations_down:room<r>' for decorations taken away."""
    out = [c.label() for c in schedule if c.start == day]
    return out + [f"{c.kind}_down:room{c.room}" for c in schedule if c.end == day]


def last_change_day(schedule: list[LargeChange], day: int) -> int | None:
    """The latest day <= `day` on which a large change started or ended (None: none yet)."""
    days = [d for c in schedule for d in (c.start, c.end) if d is not None and d <= day]
    return max(days) if days else None


def day_lightings(cfg: LongTermConfig, day: int, rng: np.random.Generator, map_lighting: str) -> list[str]:
    """One lighting per patrol round of `day`, each drawn from its round's pool by weight; day 0's
    first round is map_lighting (the map the later days are compared with)."""
    out = []
    for r, pool in enumerate(cfg.rounds):
        names = sorted(pool)
        w = np.array([pool[n] for n in names], float)
        pick = names[int(rng.choice(len(names), p=w / w.sum()))]
        out.append(map_lighting if day == 0 and r == 0 else pick)
    return out

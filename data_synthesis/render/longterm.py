"""Months-long sequences: one home over `days` simulated days, the robot's patrol every day.

Each day: the large changes active that day (schedule.py) applied to the home (`home_on_day`),
then the small daily changes of changes.day_items (moved chairs, clutter, people, pets, curtains;
no random trees: decorations are scheduled), then one patrol round per lighting of the day
(schedule.day_lightings), each driving the whole route (`sequence_entries`, the same path every day
with its small offsets) with the same number of frames. cameras.json gets, after the frames,
`patrol` (days, frames_per_day, rounds), `schedule` (the large changes), `days` (per day:
lightings, large changes active and new, days since the last large change, small changes) and
`patrol_path` (the path driven and the dock; every frame its `path_m`: patrol_path.py).

Streams: every draw comes from home_rng(seed, index, split, STREAM + n), n the day, round or change,
so a frame's bytes depend only on its own day and round: a rerun after kill -9 renders the missing
frames with the same bytes (jobs.render_frames keeps finished ones).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.render import engine
from homeloc.data_synthesis.render.assets import AssetLibrary, texture_file
from homeloc.data_synthesis.render.changes import day_items, decorated_tree, moved_item
from homeloc.data_synthesis.render.config import Patrol, RenderConfig
from homeloc.data_synthesis.render.furnish import Placer
from homeloc.data_synthesis.render.furniture import Material
from homeloc.data_synthesis.render.home import Home, home_rng, make_home
from homeloc.data_synthesis.render.jobs import (
    Sequence,
    cameras,
    missing_frames,
    render_frames,
    sequence_entries,
)
from homeloc.data_synthesis.render.lighting import make_lighting
from homeloc.data_synthesis.render.patrol_path import add_positions, patrol_record
from homeloc.data_synthesis.render.schedule import (
    LargeChange,
    active_changes,
    change_events,
    day_lightings,
    large_changes,
    last_change_day,
)
from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)

# Stream bases far from the ones jobs.render_sequence uses (10 + s, 100 + day, 200 + s).
SCHEDULE, CHANGE, LIGHT_PLAN, ITEMS, POSES, LIGHTING = 50_000, 60_000, 70_000, 80_000, 90_000, 100_000
FIXED = ("rug", "photo", "decoration")  # never rearranged (floor/wall dressing, the scheduled tree)


def _placer(home: Home) -> Placer:
    placer = Placer(home)
    placer.boxes = [(*it.centre, *it.half) for it in home.items if it.kind not in ("rug", "photo")]
    return placer


def _rearrange(home: Home, change: LargeChange, rng: np.random.Generator, views=None) -> str:
    """The room's furniture to other places against its walls (still clear of the path and doors)."""
    placer = _placer(home)
    movers = [i for i, it in enumerate(home.items) if it.room == change.room and it.kind not in FIXED]
    moved = 0
    for i in rng.permutation(movers) if movers else []:
        it = home.items[i]
        own = (*it.centre, *it.half)
        placer.boxes.remove(own)
        # against_wall takes the footprint in the item's own frame: swap halves when turned 90 deg
        hx, hy = it.half if abs(np.sin(it.yaw)) < 0.5 else it.half[::-1]
        spot = placer.against_wall(rng, it.room, hx, hy, True)
        if spot is None:
            placer.boxes.append(own)
            continue
        cx, cy, yaw, half = spot
        new = moved_item(it, cx - it.centre[0], cy - it.centre[1], yaw - it.yaw)
        new.yaw, new.half = yaw, half
        home.items[i] = new
        moved += 1
    return f"{change.label()}: {moved} of {len(movers)} items moved"


def _repaint(home: Home, change: LargeChange, rng: np.random.Generator, views=None) -> str:
    """The room's walls in a new plain paint colour, clearly unlike the old one."""
    key = f"wall{change.room}"
    old = home.materials[key]
    colour = rng.uniform(0.25, 0.95, 3)
    for _ in range(50):
        if old.texture or np.abs(colour - np.asarray(old.colour)).max() > 0.3:
            break
        colour = rng.uniform(0.25, 0.95, 3)
    home.materials[key] = Material(key, tuple(float(v) for v in colour.round(3)), "", old.tile)
    # plain floats: a home's generated colours are numpy scalars, whose repr would reach the notes
    was = Path(old.texture).name or tuple(round(float(v), 3) for v in old.colour)
    return f"{change.label()}: walls {was} -> {home.materials[key].colour}"


def patrol_views(path: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 4): x, y and unit heading of each patrol frame's nominal pose ((k + 0.5) / frames of
    the way along the path, facing along it; trajectory.sequence_poses adds the offsets)."""
    seg = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
    i = np.clip(np.searchsorted(seg, (np.arange(frames) + 0.5) / frames * seg[-1]), 1, len(path) - 1)
    heading = path[np.minimum(i + 6, len(path) - 1)] - path[np.maximum(i - 6, 0)]
    return np.hstack([path[i], heading / np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-9)])


def in_patrol_view(views: np.ndarray, x: float, y: float, near: float = 1.0, far: float = 4.5) -> bool:
    """Whether (x, y) lies 1-4.5 m in front of a patrol frame, within 25 deg of its heading (the
    camera sees 37.5 deg to each side; the look-around turns it by up to 30 deg)."""
    to = np.array([x, y]) - views[:, :2]
    dist = np.linalg.norm(to, axis=1)
    cos = np.einsum("ij,ij->i", to, views[:, 2:]) / np.maximum(dist, 1e-9)
    return bool(np.any((dist > near) & (dist < far) & (cos > np.cos(np.radians(25)))))


def _decorations(home: Home, change: LargeChange, rng: np.random.Generator, views=None) -> str:
    """A decorated tree on a free floor spot of the room in view of the patrol (views; if none is:
    anywhere free in the room; recorded as not placed if the room has no free floor)."""
    items = []
    for accept in ((lambda x, y: in_patrol_view(views, x, y)) if views is not None else None, None):
        items = items or decorated_tree(rng, home, _placer(home), home.materials, change.room, accept)
    home.items += items
    return f"{change.label()}: tree placed" if items else f"{change.label()}: no free floor, not placed"


def tree_rooms(home: Home, views: np.ndarray, rng: np.random.Generator) -> list[int]:
    """The rooms with free floor for a tree in view of the patrol (on day 0's furniture): where the
    schedule may put decorations. A room the robot only leaves through (the far side of the first
    room) would hide them from every frame."""
    out = []
    for room in range(len(home.rooms)):
        accept = lambda x, y: in_patrol_view(views, x, y)  # noqa: E731
        if decorated_tree(rng, home, _placer(home), {}, room, accept):
            out.append(room)
    return out


APPLY = {"rearrange": _rearrange, "repaint": _repaint, "decorations": _decorations}


def home_on_day(
    home: Home, schedule: list[LargeChange], day: int, change_rng, views: np.ndarray | None = None
) -> tuple[Home, list[str]]:
    """(a copy of home with the large changes active on `day` applied, what each one did).
    change_rng(change id) -> its rng: a change draws the same geometry on every day it is active;
    views (patrol_views): where the patrol looks, so decorations stand where it films them.
    Persistent changes go first, decorations last, so a tree never moves the furniture around it."""
    state = dataclasses.replace(home, materials=dict(home.materials), items=list(home.items))
    order = sorted(active_changes(schedule, day), key=lambda c: (c.kind == "decorations", c.start))
    return state, [APPLY[c.kind](state, c, change_rng(c.id), views) for c in order]


def _day_record(schedule, day: int, lightings: list[str], applied: list[str], small: list[str]) -> dict:
    last = last_change_day(schedule, day)
    return {
        "day": day,
        "lightings": lightings,
        "large_changes": [c.label() for c in active_changes(schedule, day)],
        "large_change_notes": applied,
        "new_large_changes": change_events(schedule, day),
        "days_since_large_change": None if last is None else day - last,
        "small_changes": small,
    }


def _render_day(
    state: Home, items, base, day: int, lightings: list[str], ctx: dict
) -> tuple[list[dict], int]:
    """Every round of one day (missing frames only); returns (cameras.json entries, frames rendered)."""
    cfg, patrol, seed, index, hdir = ctx["cfg"], ctx["patrol"], ctx["seed"], ctx["index"], ctx["hdir"]
    entries, rendered = [], 0
    for r, name in enumerate(lightings):
        s = day * len(lightings) + r
        seq = Sequence(f"s{s:03d}_day{day:03d}_{name}", s, day, name, patrol.frames_per_round)
        lateral = patrol.longterm.lateral_m
        rows = sequence_entries(state, seq, cfg, home_rng(seed, index, cfg.split, POSES + s), lateral)
        for row in rows:
            row["round"] = r
        add_positions(rows, state.path, str(hdir), lateral)
        todo = missing_frames(hdir, rows)
        if todo:
            lighting = make_lighting(name, home_rng(seed, index, cfg.split, LIGHTING + s), state)
            scenes = engine.load_scenes(ctx["builder"], state, items, base if day else None, lighting)
            render_frames(scenes, rows, todo, cfg, (seed, index, s), hdir)
            rendered += len(todo)
        entries += rows
    return entries, rendered


def render_patrol_home(
    cfg: RenderConfig, patrol: Patrol, assets: AssetLibrary, seed: int, index: int, hdir: Path, workdir: Path
) -> Path:
    """Render (or resume) one home's months-long sequence into hdir; returns hdir/cameras.json."""
    home = make_home(cfg, assets, seed, index)
    lt = patrol.longterm
    views = patrol_views(home.path, patrol.frames_per_round)
    rooms = tree_rooms(home, views, home_rng(seed, index, cfg.split, SCHEDULE + 1))
    schedule = large_changes(
        lt, patrol.days, len(home.rooms), home_rng(seed, index, cfg.split, SCHEDULE), rooms
    )
    ctx = {"cfg": cfg, "patrol": patrol, "seed": seed, "index": index, "hdir": hdir}
    ctx["builder"] = engine.SceneBuilder(workdir, texture_file, cfg.max_depth)
    base = day_items(home, 0, home_rng(seed, index, cfg.split, ITEMS))[0]
    entries, days, t0, total = [], [], time.time(), 0
    for day in range(patrol.days):
        lights = day_lightings(lt, day, home_rng(seed, index, cfg.split, LIGHT_PLAN + day), cfg.map_lighting)
        state, notes = home_on_day(
            home, schedule, day, lambda c: home_rng(seed, index, cfg.split, CHANGE + c), views
        )
        items, small = day_items(state, day, home_rng(seed, index, cfg.split, ITEMS + day), decoration_p=0.0)
        rows, rendered = _render_day(state, items, base, day, lights, ctx)
        entries += rows
        days.append(_day_record(schedule, day, lights, notes, small))
        total += rendered
        rate = (time.time() - t0) / total if total else 0.0
        log.info(
            "%s day %d/%d: %d frames rendered (%s; %s)%s",
            home.name, day + 1, patrol.days, rendered, "+".join(lights), "; ".join(notes) or "no large changes",
            f", {rate:.1f} s/frame, ~{rate * patrol.frames_per_day * (patrol.days - day - 1) / 60:.0f} min left"
            if total else "",
        )  # fmt: skip
    extra = {
        "patrol": {**patrol.to_dict(), "frames_per_round": patrol.frames_per_round},
        "schedule": [c.to_dict() for c in schedule],
        "days": days,
        "patrol_path": patrol_record(home.path, home.camera_height),
    }
    return atomic_write(hdir / "cameras.json", json.dumps(cameras(cfg, home, entries, **extra), indent=1))

"""What differs between days: moved chairs/furniture, clutter on the floor (boxes, bags, shoes),
person- and pet-sized occluders, holiday decorations, curtains open or closed.

`day_items(home, day, rng)` -> the day's item list (day 0: the reference home, curtains open).
Everything new or moved keeps clear of the robot's path. The per-pixel changed mask is not drawn
here: the engine compares each frame's depth with the reference day's from the same pose.
"""

from __future__ import annotations

import copy

import numpy as np

from homeloc.data_synthesis.render import furniture as fu
from homeloc.data_synthesis.render.furnish import Placer
from homeloc.data_synthesis.render.furniture import Item, Material


def _curtains(home, closed: set[int]) -> list[Item]:
    """Curtains on every other window: two side panels when open, one panel across when closed."""
    items = []
    for k, w in enumerate(home.windows):
        if k % 2:
            continue
        yaw = float(np.arctan2(w.normal[0], -w.normal[1]))
        f = fu.transform(
            (w.centre[0] + 0.12 * w.normal[0], w.centre[1] + 0.12 * w.normal[1], w.centre[2]), yaw
        )
        hh, hw = w.height / 2 + 0.15, w.width / 2 + 0.15
        if k in closed:
            shapes = [fu.box(f, (0, -0.01, 0), (hw, 0.01, hh), "curtain", f"curtain{k}")]
        else:
            shapes = [
                fu.box(f, (s * (hw - 0.08), -0.01, 0), (0.1, 0.01, hh), "curtain", f"curtain{k}")
                for s in (-1, 1)
            ]
        items.append(Item(f"curtain{k}", "curtain", w.room, w.centre[:2], (hw, 0.05), yaw, shapes))
    return items


def moved_item(item: Item, dx: float, dy: float, dyaw: float) -> Item:
    new = copy.deepcopy(item)
    cx, cy = item.centre
    m = fu.transform((cx + dx, cy + dy, 0), dyaw) @ fu.transform((-cx, -cy, 0))
    for s in new.shapes:
        s.to_world = m @ s.to_world
    for lt in new.lights:
        lt.position = tuple(float(v) for v in (m @ np.array([*lt.position, 1.0]))[:3])
    new.centre = (cx + dx, cy + dy)
    return new


def _floor_spot(
    rng, home, placer: Placer, hx: float, hy: float, tries: int = 15, room: int | None = None, accept=None
):
    """(room, x, y) of a free floor spot (in `room` if given, else a random room per try; accepted by
    accept(x, y) if given), or None."""
    fixed = room
    for _ in range(tries):
        room = int(rng.integers(len(home.rooms))) if fixed is None else fixed
        x0, y0, x1, y1 = home.rooms[room]
        cx, cy = rng.uniform(x0 + 0.3, x1 - 0.3), rng.uniform(y0 + 0.3, y1 - 0.3)
        if placer.free(room, cx, cy, hx, hy, False) and (accept is None or accept(cx, cy)):
            placer.boxes.append((cx, cy, hx, hy))
            return room, cx, cy
    return None


def _clutter(rng, home, placer, mats, n: int) -> list[Item]:
    out = []
    for k in range(n):
        kind = ("box", "bag", "shoes")[int(rng.integers(3))]
        hx, hy, hz = {"box": rng.uniform(0.1, 0.3, 3), "bag": (0.2, 0.12, 0.22), "shoes": (0.16, 0.15, 0.05)}[
            kind
        ]
        spot = _floor_spot(rng, home, placer, hx, hy)
        if spot is None:
            continue
        room, cx, cy = spot
        mid = f"clutter{k}"
        mats[mid] = Material(mid, tuple(rng.uniform(0.1, 0.8, 3).round(3)))
        f, tag = fu.transform((cx, cy, 0), rng.uniform(0, np.pi)), f"clutter{k}"
        if kind == "shoes":
            shapes = [fu.box(f, (0, s * 0.06, 0.05), (0.14, 0.045, 0.05), mid, tag) for s in (-1, 1)]
        elif kind == "bag":
            shapes = [fu.Shape("sphere", f @ fu.transform((0, 0, 0.2), 0, (0.2, 0.12, 0.2)), mid, tag)]
        else:
            shapes = [fu.box(f, (0, 0, hz), (hx, hy, hz), mid, tag)]
        out.append(Item(tag, kind, room, (cx, cy), (hx, hy), 0.0, shapes))
    return out


def _occluder(rng, home, placer, mats, kind: str) -> list[Item]:
    hx = 0.25 if kind == "person" else 0.3
    spot = _floor_spot(rng, home, placer, hx, hx)
    if spot is None:
        return []
    room, cx, cy = spot
    mats[kind] = Material(kind, tuple(rng.uniform(0.1, 0.7, 3).round(3)))
    f = fu.transform((cx, cy, 0), rng.uniform(0, 2 * np.pi))
    if kind == "person":
        h = rng.uniform(1.5, 1.85)
        shapes = [
            fu.cylinder(f, (0, 0, 0.0), 0.17, h - 0.25, kind, kind),
            fu.Shape("sphere", f @ fu.transform((0, 0, h - 0.12), 0, (0.11, 0.11, 0.13)), kind, kind),
        ]
    else:
        shapes = [
            fu.Shape("sphere", f @ fu.transform((0, 0, 0.25), 0, (0.32, 0.13, 0.15)), kind, kind),
            fu.Shape("sphere", f @ fu.transform((0.33, 0, 0.38), 0, (0.09, 0.08, 0.09)), kind, kind),
        ]
        shapes += [
            fu.cylinder(f, (sx, sy, 0), 0.03, 0.22, kind, kind) for sx in (-0.2, 0.2) for sy in (-0.07, 0.07)
        ]
    return [Item(kind, kind, room, (cx, cy), (hx, hx), 0.0, shapes)]


def decorated_tree(rng, home, placer, mats, room: int | None = None, accept=None) -> list[Item]:
    """A decorated tree on a free floor spot (in `room` if given: scheduled decorations, more tries;
    accept(x, y): an extra test of the spot)."""
    spot = _floor_spot(rng, home, placer, 0.45, 0.45, 15 if room is None else 200, room, accept)
    if spot is None:
        return []
    room, cx, cy = spot
    mats["tree"] = Material("tree", (0.05, 0.3, 0.08))
    f, tag = fu.transform((cx, cy, 0)), "decoration"
    shapes = [fu.cylinder(f, (0, 0, 0.3 + 0.35 * i), 0.45 - 0.13 * i, 0.4, "tree", tag) for i in range(4)]
    for i in range(12):
        mid = f"ornament{i % 4}"
        mats[mid] = Material(mid, ((0.8, 0.1, 0.1), (0.9, 0.8, 0.1), (0.1, 0.2, 0.8), (0.9, 0.9, 0.9))[i % 4])
        z, a = rng.uniform(0.35, 1.5), rng.uniform(0, 2 * np.pi)
        r = 0.45 - 0.13 * (z - 0.3) / 0.35 + 0.03
        shapes.append(
            fu.Shape("sphere", f @ fu.transform((r * np.cos(a), r * np.sin(a), z), 0, (0.05,) * 3), mid, tag)
        )
    return [Item(tag, "decoration", room, (cx, cy), (0.45, 0.45), 0.0, shapes)]


def day_items(
    home, day: int, rng: np.random.Generator, decoration_p: float = 0.25
) -> tuple[list[Item], list[str]]:
    """(items of this day, names of the changes drawn). Adds any new materials to home.materials.
    decoration_p: chance of a decorated tree that day (0 in long-term sequences, which schedule them)."""
    home.materials.setdefault("curtain", Material("curtain", (0.55, 0.45, 0.35)))
    if day == 0:
        return list(home.items) + _curtains(home, set()), []
    placer = Placer(home)
    placer.boxes = [(*it.centre, *it.half) for it in home.items if it.kind not in ("rug", "photo")]
    items, changes = [], []
    for it in home.items:
        if (
            it.movable or it.kind in ("cabinet", "floor_lamp", "painted_wooden_stool")
        ) and rng.random() < 0.5:
            d, own = rng.uniform(-0.6, 0.6, 2), (*it.centre, *it.half)
            placer.boxes.remove(own)
            if placer.free(it.room, it.centre[0] + d[0], it.centre[1] + d[1], *it.half, False):
                it = moved_item(it, d[0], d[1], rng.uniform(-0.6, 0.6))
                changes.append(f"moved:{it.tag}")
            placer.boxes.append((*it.centre, *it.half))
        items.append(it)
    clutter = _clutter(rng, home, placer, home.materials, int(rng.integers(0, 6)))
    changes += [f"clutter:{c.kind}" for c in clutter]
    for kind, p in (("person", 0.35), ("pet", 0.35)):
        if rng.random() < p:
            occ = _occluder(rng, home, placer, home.materials, kind)
            changes += [kind] * len(occ)
            clutter += occ
    if rng.random() < decoration_p:
        deco = decorated_tree(rng, home, placer, home.materials)
        changes += ["decoration"] * len(deco)
        clutter += deco
    closed = {k for k in range(0, len(home.windows), 2) if rng.random() < 0.35}
    changes += [f"curtain_closed:{k}" for k in sorted(closed)]
    return items + clutter + _curtains(home, closed), changes

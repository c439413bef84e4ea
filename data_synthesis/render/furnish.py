"""Furnishing a home: glTF models and procedural furniture against the walls, lamps, chairs,
rugs and framed photos, all kept clear of the robot's path, the doorways and each other."""

from __future__ import annotations

import numpy as np

from homeloc.data_synthesis.render import furniture as fu
from homeloc.data_synthesis.render.assets import AssetLibrary
from homeloc.data_synthesis.render.furniture import Item, Material

PATH_CLEARANCE = 0.35
PROCEDURAL = ("shelf", "table", "floor_lamp", "cabinet", "chair")


class Placer:
    """Footprint bookkeeping: axis-aligned (yaw multiple of 90 deg) boxes that must not overlap."""

    def __init__(self, home):
        self.home, self.boxes = home, []

    def free(self, room: int, cx: float, cy: float, hx: float, hy: float, tall: bool) -> bool:
        x0, y0, x1, y1 = self.home.rooms[room]
        if not (x0 + hx + 0.02 <= cx <= x1 - hx - 0.02 and y0 + hy + 0.02 <= cy <= y1 - hy - 0.02):
            return False
        if any(
            abs(cx - bx) < hx + bhx + 0.05 and abs(cy - by) < hy + bhy + 0.05
            for bx, by, bhx, bhy in self.boxes
        ):
            return False
        d = np.abs(self.home.path - (cx, cy)) - (hx, hy)
        if len(d) and np.min(np.linalg.norm(np.maximum(d, 0), axis=1)) < PATH_CLEARANCE:
            return False
        if any(np.hypot(cx - dx, cy - dy) < 1.0 + max(hx, hy) for dx, dy, _, _ in self.home.doors):
            return False
        return not tall or all(
            np.hypot(cx - w.centre[0], cy - w.centre[1]) > w.width / 2 + max(hx, hy) + 0.1
            for w in self.home.windows
        )

    def against_wall(self, rng, room: int, hx: float, hy: float, tall: bool, tries: int = 12):
        """(cx, cy, yaw, axis-aligned half sizes) for an item whose front (-Y at yaw 0) faces the room."""
        x0, y0, x1, y1 = self.home.rooms[room]
        for _ in range(tries):
            side = int(rng.integers(4))
            nx, ny = [(0, 1), (0, -1), (1, 0), (-1, 0)][side]
            yaw = float(np.arctan2(nx, -ny))
            ahx, ahy = (hx, hy) if ny else (hy, hx)
            if ny:
                cx, cy = rng.uniform(x0 + ahx, x1 - ahx), (y0 if ny > 0 else y1) + ny * (ahy + 0.03)
            else:
                cx, cy = (x0 if nx > 0 else x1) + nx * (ahx + 0.03), rng.uniform(y0 + ahy, y1 - ahy)
            if self.free(room, cx, cy, ahx, ahy, tall):
                self.boxes.append((cx, cy, ahx, ahy))
                return cx, cy, yaw, (ahx, ahy)
        return None


def _colour_mat(rng, mats: dict, prefix: str, texture: str = "") -> str:
    mid = f"{prefix}{len(mats)}"
    mats[mid] = Material(mid, tuple(rng.uniform(0.08, 0.85, 3).round(3)), texture)
    return mid


def _wood(rng, assets: AssetLibrary) -> str:
    pool = [t for t in assets.textures if "wood" in t]
    return pool[int(rng.integers(len(pool)))] if pool and rng.random() < 0.7 else ""


def _mesh(rng, home, assets, placer, room, name, tag):
    asset = assets.mesh(name)
    sx, sy, sz = asset.size
    spot = placer.against_wall(rng, room, sx / 2, sy / 2, sz > 0.7)
    if spot is None:
        return None
    cx, cy, yaw, half = spot
    mats = []
    for k, p in enumerate(asset.parts):
        mid = f"{tag}_p{k}"
        home.materials[mid] = Material(mid, p.colour, p.texture)
        mats.append(mid)
    frame = fu.transform((cx, cy, 0.0), yaw)
    return Item(tag, name, room, (cx, cy), half, yaw, fu.mesh_item(frame, asset.parts, 1.0, mats, tag))


def _procedural(rng, home, assets, placer, room, kind, tag):
    mats = home.materials
    dims = {"shelf": (rng.uniform(0.35, 0.6), 0.17, rng.uniform(0.9, 2.0)), "table": (rng.uniform(0.4, 0.8), rng.uniform(0.3, 0.45), 0.75),
            "floor_lamp": (0.2, 0.2, rng.uniform(1.4, 1.7)), "cabinet": (rng.uniform(0.3, 0.7), 0.22, rng.uniform(0.5, 1.1)),
            "chair": (0.24, 0.24, 0.98)}[kind]  # fmt: skip
    spot = placer.against_wall(rng, room, dims[0], dims[1], dims[2] > 0.7)
    if spot is None:
        return None
    cx, cy, yaw, half = spot
    frame = fu.transform((cx, cy, 0.0), yaw)
    mat = _colour_mat(rng, mats, "m", _wood(rng, assets))
    item = Item(tag, kind, room, (cx, cy), half, yaw, movable=kind == "chair")
    if kind == "shelf":
        books = [_colour_mat(rng, mats, "b") for _ in range(3)]
        item.shapes = fu.shelf(
            frame, dims[0], dims[1], dims[2], int(rng.integers(2, 5)), mat, books, rng, tag
        )
    elif kind == "table":
        item.shapes = fu.table(frame, dims[0], dims[1], dims[2], mat, tag)
        if rng.random() < 0.6:
            lx = rng.uniform(-dims[0] + 0.15, dims[0] - 0.15)
            shapes, light = fu.lamp(
                frame @ fu.transform((lx, 0, 0.75)),
                0.5,
                0.13,
                _colour_mat(rng, mats, "m"),
                _colour_mat(rng, mats, "s"),
                tag,
                room,
            )
            item.shapes += shapes
            item.lights.append(light)
    elif kind == "floor_lamp":
        item.shapes, light = fu.lamp(frame, dims[2], 0.2, mat, _colour_mat(rng, mats, "s"), tag, room)
        item.lights.append(light)
    elif kind == "cabinet":
        item.shapes = [fu.box(frame, (0, 0, dims[2] / 2), (dims[0], dims[1], dims[2] / 2), mat, tag)]
    else:
        item.shapes = fu.chair(frame, mat, tag)
    return item


def _photos(rng, home, assets, placer, room, count: int):
    x0, y0, x1, y1 = home.rooms[room]
    items = []
    for k in range(count):
        if not assets.photos:
            break
        side = int(rng.integers(4))
        nx, ny = [(0, 1), (0, -1), (1, 0), (-1, 0)][side]
        hx, hz = rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.35)
        cx = rng.uniform(x0 + 0.6, x1 - 0.6) if ny else (x0 if nx > 0 else x1)
        cy = rng.uniform(y0 + 0.6, y1 - 0.6) if nx else (y0 if ny > 0 else y1)
        if any(np.hypot(cx - w.centre[0], cy - w.centre[1]) < w.width / 2 + hx + 0.2 for w in home.windows):
            continue
        if any(np.hypot(cx - d[0], cy - d[1]) < 0.9 + hx for d in home.doors):
            continue
        if any(abs(cx - bx) < bhx + hx and abs(cy - by) < bhy + hx for bx, by, bhx, bhy in placer.boxes):
            continue
        tag = f"photo{room}_{k}"
        pid = f"{tag}_img"
        home.materials[pid] = Material(
            pid, (0.5, 0.5, 0.5), assets.photos[int(rng.integers(len(assets.photos)))]
        )
        frame = fu.transform((cx, cy, rng.uniform(1.35, 1.65)), float(np.arctan2(nx, -ny)))
        items.append(
            Item(
                tag,
                "photo",
                room,
                (cx, cy),
                (hx, 0.02),
                0.0,
                fu.photo_frame(frame, hx, hz, "frame", pid, tag),
            )
        )
    return items


def furnish(home, assets: AssetLibrary, rng: np.random.Generator) -> None:
    """Fill home.items (and home.materials) in place."""
    placer = Placer(home)
    models = list(assets.mesh_names)
    for room in range(len(home.rooms)):
        for k in range(int(rng.integers(3, 7))):
            tag = f"r{room}i{k}"
            if models and rng.random() < 0.45:
                item = _mesh(rng, home, assets, placer, room, models[int(rng.integers(len(models)))], tag)
            else:
                item = _procedural(
                    rng, home, assets, placer, room, PROCEDURAL[int(rng.integers(len(PROCEDURAL)))], tag
                )
            if item is not None:
                home.items.append(item)
        if rng.random() < 0.6:
            x0, y0, x1, y1 = home.rooms[room]
            hx, hy = rng.uniform(0.5, (x1 - x0) / 2 - 0.6), rng.uniform(0.5, (y1 - y0) / 2 - 0.6)
            frame = fu.transform(((x0 + x1) / 2, (y0 + y1) / 2, 0.0))
            tex = (
                assets.photos[int(rng.integers(len(assets.photos)))]
                if assets.photos and rng.random() < 0.5
                else ""
            )
            mid = _colour_mat(rng, home.materials, "rug", tex)
            home.items.append(
                Item(
                    f"rug{room}",
                    "rug",
                    room,
                    frame[:2, 3].tolist(),
                    (hx, hy),
                    0.0,
                    fu.rug(frame, hx, hy, mid, f"rug{room}"),
                )
            )
        home.items += _photos(rng, home, assets, placer, room, int(rng.integers(1, 4)))

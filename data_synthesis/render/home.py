"""Procedural apartments: 1-4 rooms (walls, floor, ceiling, doorways, windows), their materials and
the robot's path through them; furnishing is in furnish.py. `make_home(cfg, assets, seed, index)`
draws everything from `np.random.default_rng([seed, index, split_stream])`: same seed, same home.

World: metres, +Z up, floor at z = 0. Rooms are axis-aligned, in a row (1-3) or a 2x2 block (4),
visited in list order through a doorway between consecutive rooms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from homeloc.data_synthesis.render.assets import AssetLibrary
from homeloc.data_synthesis.render.config import RenderConfig
from homeloc.data_synthesis.render.furniture import Item, Light, Material, Shape, box, transform

WALL_KEYS = ("plaster", "bricks", "panels")
FLOOR_KEYS = ("wood", "tile", "felt")
SPLIT_STREAM = {"train": 0, "eval": 1}


@dataclass
class Window:
    """centre (x, y, z) in the wall plane, inward normal (into its room), width, height, room."""

    centre: tuple[float, float, float]
    normal: tuple[float, float, float]
    width: float
    height: float
    room: int


@dataclass
class Home:
    name: str
    rooms: list[tuple[float, float, float, float]]
    height: float
    materials: dict[str, Material]
    structure: list[Shape]
    windows: list[Window]
    doors: list[tuple[float, float, float, float]]  # (x, y, normal_x, normal_y) at door centres
    ceiling_lights: list[Light]
    camera_height: float
    items: list[Item] = field(default_factory=list)
    path: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))

    @property
    def lamps(self) -> list[Light]:
        return [lt for it in self.items for lt in it.lights]


def home_rng(seed: int, index: int, split: str, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, index, SPLIT_STREAM[split], stream])


def _layout(rng: np.random.Generator, n: int) -> list[tuple[float, float, float, float]]:
    if n == 4:
        w0, w1, d0, d1 = rng.uniform(3.2, 5.0, 4)
        return [(0, 0, w0, d0), (w0, 0, w0 + w1, d0), (w0, d0, w0 + w1, d0 + d1), (0, d0, w0, d0 + d1)]
    depth, x, rooms = rng.uniform(3.2, 4.8), 0.0, []
    for _ in range(n):
        w = rng.uniform(3.2, 5.2)
        rooms.append((x, 0.0, x + w, depth))
        x += w
    return [tuple(float(v) for v in r) for r in rooms]


def _edges(rooms) -> dict[tuple, list[int]]:
    """(axis, c, a, b) -> rooms having that wall; axis "x": along x at y = c, "y": along y at x = c."""
    edges: dict[tuple, list[int]] = {}
    for i, (x0, y0, x1, y1) in enumerate(rooms):
        for key in (("x", y0, x0, x1), ("x", y1, x0, x1), ("y", x0, y0, y1), ("y", x1, y0, y1)):
            edges.setdefault(tuple(round(v, 6) if isinstance(v, float) else v for v in key), []).append(i)
    return edges


def _quad(o, u, v, w: float, h: float, n, tile: float, uv0: tuple[float, float]) -> tuple:
    o, u, v = (np.asarray(a, float) for a in (o, u, v))
    verts = np.array([o, o + w * u, o + w * u + h * v, o + h * v])
    uv = (np.array([[0, 0], [w, 0], [w, h], [0, h]]) + uv0) / tile
    faces = (
        np.array([[0, 1, 2], [0, 2, 3]])
        if np.dot(np.cross(u, v), n) > 0
        else np.array([[0, 2, 1], [0, 3, 2]])
    )
    return verts, np.tile(np.asarray(n, float), (4, 1)), uv, faces


def merge_quads(quads: list[tuple]) -> dict:
    """Concatenate _quad outputs into one mesh's arrays (vertices, normals, uv, faces)."""
    out, off = {"vertices": [], "normals": [], "uv": [], "faces": []}, 0
    for verts, normals, uv, faces in quads:
        out["vertices"].append(verts)
        out["normals"].append(normals)
        out["uv"].append(uv)
        out["faces"].append(faces + off)
        off += len(verts)
    return {k: np.concatenate(v) for k, v in out.items()}


def _wall_pieces(length: float, height: float, holes: list[tuple[float, float, float, float]]):
    """(u, v, w, h) rectangles covering [0, length] x [0, height] minus the holes (u0, u1, v0, v1)."""
    pieces, cur = [], 0.0
    for u0, u1, v0, v1 in sorted(holes):
        if u0 > cur:
            pieces.append((cur, 0.0, u0 - cur, height))
        if v0 > 0:
            pieces.append((u0, 0.0, u1 - u0, v0))
        if v1 < height:
            pieces.append((u0, v1, u1 - u0, height - v1))
        cur = u1
    if cur < length:
        pieces.append((cur, 0.0, length - cur, height))
    return pieces


def _pick_texture(rng, assets: AssetLibrary, keys: tuple[str, ...]) -> str:
    pool = [t for t in assets.textures if any(k in t for k in keys)]
    return pool[int(rng.integers(len(pool)))] if pool else ""


def _materials(rng, assets: AssetLibrary, n_rooms: int) -> dict[str, Material]:
    mats = {
        "exterior": Material("exterior", (0.4, 0.4, 0.4)),
        "ceiling": Material("ceiling", (0.85, 0.85, 0.82)),
        "frame": Material("frame", (0.9, 0.9, 0.88)),
        "dark": Material("dark", (0.08, 0.08, 0.08)),
    }
    for i in range(n_rooms):
        tex = _pick_texture(rng, assets, WALL_KEYS) if rng.random() < 0.7 else ""
        mats[f"wall{i}"] = Material(
            f"wall{i}", tuple(rng.uniform(0.45, 0.9, 3).round(3)), tex, rng.uniform(1.0, 2.0)
        )
        tex = _pick_texture(rng, assets, FLOOR_KEYS)
        mats[f"floor{i}"] = Material(
            f"floor{i}", tuple(rng.uniform(0.2, 0.6, 3).round(3)), tex, rng.uniform(0.8, 1.6)
        )
    return mats


def _openings(rng, rooms, edges, height: float):
    """Doorways between consecutive rooms, windows on exterior walls: hole lists per edge."""
    holes: dict[tuple, list] = {k: [] for k in edges}
    doors, windows = [], []
    for key, owners in edges.items():
        axis, c, a, b = key
        length = b - a
        if len(owners) == 2 and abs(owners[0] - owners[1]) == 1:
            w = rng.uniform(0.9, 1.1)
            u0 = rng.uniform(0.4, length - w - 0.4)
            holes[key].append((u0, u0 + w, 0.0, 2.05))
            mid = a + u0 + w / 2
            doors.append((mid, c, 0.0, 1.0) if axis == "x" else (c, mid, 1.0, 0.0))
        elif len(owners) == 1:
            room = owners[0]
            x0, y0, x1, y1 = rooms[room]
            nx, ny = _inward(rooms[room], axis, c)
            n_win = int(rng.integers(0, 3)) if length > 2.5 else 0
            slots = np.linspace(0, length, n_win + 2)[1:-1]
            for s in slots:
                w = min(rng.uniform(0.8, 1.6), length / (n_win + 1) - 0.4)
                v0, v1 = rng.uniform(0.75, 1.0), min(rng.uniform(2.0, 2.25), height - 0.2)
                holes[key].append((s - w / 2, s + w / 2, v0, v1))
                p = (a + s, c) if axis == "x" else (c, a + s)
                windows.append(Window((p[0], p[1], (v0 + v1) / 2), (nx, ny, 0.0), w, v1 - v0, room))
    return holes, doors, windows


def _inward(room, axis: str, c: float) -> tuple[float, float]:
    x0, y0, x1, y1 = room
    if axis == "x":
        return (0.0, 1.0) if abs(c - y0) < 1e-6 else (0.0, -1.0)
    return (1.0, 0.0) if abs(c - x0) < 1e-6 else (-1.0, 0.0)


def _structure(rooms, edges, holes, height: float, mats: dict[str, Material]) -> list[Shape]:
    """Walls (two-sided: the lower-index room's material in front), floors, ceilings, window frames."""
    shapes, eye = [], np.eye(4)
    groups: dict[tuple[str, str], list] = {}
    for key, owners in edges.items():
        axis, c, a, b = key
        front = owners[0]
        n = _inward(rooms[front], axis, c)
        u = (1.0, 0.0, 0.0) if axis == "x" else (0.0, 1.0, 0.0)
        back = f"wall{owners[1]}" if len(owners) == 2 else "exterior"
        tile = mats[f"wall{front}"].tile
        for pu, pv, w, h in _wall_pieces(b - a, height, holes[key]):
            o = (a + pu, c, pv) if axis == "x" else (c, a + pu, pv)
            groups.setdefault((f"wall{front}", back), []).append(
                _quad(o, u, (0, 0, 1), w, h, (n[0], n[1], 0.0), tile, (a + pu, pv))
            )
    for (front, back), quads in sorted(groups.items()):
        shapes.append(Shape("mesh", eye, front, "structure", back_material=back, arrays=merge_quads(quads)))
    for i, (x0, y0, x1, y1) in enumerate(rooms):
        t = mats[f"floor{i}"].tile
        shapes.append(
            Shape(
                "mesh",
                eye,
                f"floor{i}",
                "structure",
                arrays=merge_quads(
                    [_quad((x0, y0, 0), (1, 0, 0), (0, 1, 0), x1 - x0, y1 - y0, (0, 0, 1), t, (x0, y0))]
                ),
            )
        )
        shapes.append(
            Shape(
                "mesh",
                eye,
                "ceiling",
                "structure",
                arrays=merge_quads(
                    [_quad((x0, y0, height), (1, 0, 0), (0, 1, 0), x1 - x0, y1 - y0, (0, 0, -1), 1.0, (0, 0))]
                ),
            )
        )
    return shapes


def _window_frames(windows: list[Window]) -> list[Shape]:
    shapes = []
    for k, w in enumerate(windows):
        yaw = np.arctan2(w.normal[1], w.normal[0]) - np.pi / 2
        f = transform(w.centre, yaw)
        hw, hh = w.width / 2, w.height / 2
        shapes += [
            box(f, (0, -0.06, -hh), (hw + 0.05, 0.08, 0.02), "frame", f"window{k}"),
            box(f, (0, 0, hh), (hw + 0.05, 0.03, 0.03), "frame", f"window{k}"),
            box(f, (-hw, 0, 0), (0.03, 0.03, hh), "frame", f"window{k}"),
            box(f, (hw, 0, 0), (0.03, 0.03, hh), "frame", f"window{k}"),
            box(f, (0, 0, 0), (hw, 0.015, 0.015), "frame", f"window{k}"),
        ]
    return shapes


def _ceiling_lights(rooms, height: float) -> list[Light]:
    return [
        Light("panel", ((x0 + x1) / 2, (y0 + y1) / 2, height - 0.01), f"ceiling{i}", i, 0.3)
        for i, (x0, y0, x1, y1) in enumerate(rooms)
    ]


def make_home(cfg: RenderConfig, assets: AssetLibrary, seed: int, index: int) -> Home:
    """The home's rooms, structure, openings, path and furniture (furnish.furnish)."""
    from homeloc.data_synthesis.render.furnish import furnish
    from homeloc.data_synthesis.render.trajectory import home_path

    rng = home_rng(seed, index, cfg.split)
    n = int(rng.integers(cfg.rooms[0], cfg.rooms[1] + 1))
    rooms = _layout(rng, n)
    height = float(rng.uniform(2.4, 2.8))
    edges = _edges(rooms)
    holes, doors, windows = _openings(rng, rooms, edges, height)
    mats = _materials(rng, assets, n)
    structure = _structure(rooms, edges, holes, height, mats) + _window_frames(windows)
    cam_h = float(rng.uniform(*cfg.camera_height))
    home = Home(
        f"{cfg.split}_{seed}_{index:06d}",
        rooms,
        height,
        mats,
        structure,
        windows,
        doors,
        _ceiling_lights(rooms, height),
        cam_h,
    )
    home.path = home_path(home, home_rng(seed, index, cfg.split, 1))
    furnish(home, assets, home_rng(seed, index, cfg.split, 2))
    return home

"""Scene primitives and procedural furniture, as plain data (no Mitsuba import).

World: metres, +Z up. Primitives follow Mitsuba's canonical shapes, placed by a 4x4 `to_world`:
cube = [-1, 1]^3, rectangle = [-1, 1]^2 at z = 0 (normal +Z), cylinder = axis (0,0,0)-(0,0,1)
radius 1 (open), sphere = unit sphere. `mesh` shapes carry their arrays (vertices, normals, uv,
faces); `ply` shapes name a converted glTF part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Material:
    """Diffuse material: a texture file tiled every `tile` metres (for world-UV meshes) or a colour."""

    id: str
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5)
    texture: str = ""
    tile: float = 1.0


@dataclass
class Shape:
    kind: str
    to_world: np.ndarray
    material: str
    tag: str = ""
    back_material: str = ""
    ply: str = ""
    arrays: dict | None = None
    radiance: tuple[float, float, float] | None = None


@dataclass
class Light:
    """A lamp bulb (point light) or a ceiling panel (rectangle); `power` scales the scenario's level."""

    kind: str
    position: tuple[float, float, float]
    tag: str
    room: int
    size: float = 0.0


@dataclass
class Item:
    """A piece of furniture: its shapes, lights, footprint (centre x, y; half sizes; yaw) and room."""

    tag: str
    kind: str
    room: int
    centre: tuple[float, float]
    half: tuple[float, float]
    yaw: float
    shapes: list[Shape] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    movable: bool = False


def transform(t=(0.0, 0.0, 0.0), yaw: float = 0.0, scale=(1.0, 1.0, 1.0)) -> np.ndarray:
    """T(t) Rz(yaw) S(scale) as a 4x4 float64 matrix."""
    c, s = np.cos(yaw), np.sin(yaw)
    m = np.eye(4)
    m[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag(scale)
    m[:3, 3] = t
    return m


def local(frame: np.ndarray, x: float, y: float, z: float) -> tuple[float, float, float]:
    p = frame @ np.array([x, y, z, 1.0])
    return (float(p[0]), float(p[1]), float(p[2]))


def box(frame: np.ndarray, centre, half, material: str, tag: str) -> Shape:
    """Axis-aligned box in `frame` (an item's placement)."""
    return Shape("cube", frame @ transform(centre, 0.0, half), material, tag)


def cylinder(frame: np.ndarray, base, radius: float, height: float, material: str, tag: str) -> Shape:
    return Shape("cylinder", frame @ transform(base, 0.0, (radius, radius, height)), material, tag)


def chair(frame: np.ndarray, mat: str, tag: str) -> list[Shape]:
    """0.45 x 0.45 m seat at 0.45 m, four legs, backrest on the -Y side."""
    out = [box(frame, (0, 0, 0.44), (0.23, 0.23, 0.025), mat, tag)]
    for sx in (-0.2, 0.2):
        for sy in (-0.2, 0.2):
            out.append(box(frame, (sx, sy, 0.21), (0.02, 0.02, 0.21), mat, tag))
    out.append(box(frame, (0, -0.21, 0.72), (0.22, 0.02, 0.26), mat, tag))
    return out


def table(frame: np.ndarray, hx: float, hy: float, height: float, mat: str, tag: str) -> list[Shape]:
    out = [box(frame, (0, 0, height - 0.02), (hx, hy, 0.02), mat, tag)]
    for sx in (-hx + 0.04, hx - 0.04):
        for sy in (-hy + 0.04, hy - 0.04):
            out.append(
                box(frame, (sx, sy, (height - 0.04) / 2), (0.025, 0.025, (height - 0.04) / 2), mat, tag)
            )
    return out


def shelf(
    frame: np.ndarray,
    hx: float,
    hy: float,
    height: float,
    levels: int,
    mat: str,
    book_mats: list[str],
    rng: np.random.Generator,
    tag: str,
) -> list[Shape]:
    """Open shelf: two sides, a back, `levels` planks, random books/boxes on each plank."""
    out = [box(frame, (sx, 0, height / 2), (0.015, hy, height / 2), mat, tag) for sx in (-hx, hx)]
    out.append(box(frame, (0, hy - 0.01, height / 2), (hx, 0.01, height / 2), mat, tag))
    for k in range(levels + 1):
        z = 0.03 + k * (height - 0.06) / levels
        out.append(box(frame, (0, 0, z), (hx, hy, 0.015), mat, tag))
        if k == levels:
            break
        x = -hx + 0.04
        while x < hx - 0.1 and book_mats:
            w, h = rng.uniform(0.02, 0.08), rng.uniform(0.12, min(0.3, (height - 0.06) / levels - 0.04))
            out.append(
                box(
                    frame,
                    (x + w / 2, 0, z + 0.015 + h / 2),
                    (w / 2, hy * 0.8, h / 2),
                    book_mats[int(rng.integers(len(book_mats)))],
                    tag,
                )
            )
            x += w + rng.uniform(0.0, 0.12)
    return out


def lamp(
    frame: np.ndarray, height: float, shade_r: float, mat: str, shade_mat: str, tag: str, room: int
) -> tuple[list[Shape], Light]:
    """Floor or table lamp: base, pole, open cylindrical shade, a bulb (point light) inside it."""
    out = [
        cylinder(frame, (0, 0, 0), 0.12 if height > 1 else 0.07, 0.03, mat, tag),
        cylinder(frame, (0, 0, 0), 0.012, height - 0.15, mat, tag),
        cylinder(frame, (0, 0, height - 0.25), shade_r, 0.25, shade_mat, tag),
    ]
    return out, Light("point", local(frame, 0, 0, height - 0.12), tag, room)


def rug(frame: np.ndarray, hx: float, hy: float, mat: str, tag: str) -> list[Shape]:
    return [box(frame, (0, 0, 0.004), (hx, hy, 0.004), mat, tag)]


def photo_frame(
    frame: np.ndarray, hx: float, hz: float, frame_mat: str, photo_mat: str, tag: str
) -> list[Shape]:
    """Framed photo on a wall: `frame` puts the wall surface at y = 0 facing -Y (into the room)."""
    border = 0.03
    rect = Shape(
        "rectangle",
        frame @ transform((0, -0.021, 0), 0.0, (hx, 1, hz)) @ _rect_facing_minus_y(),
        photo_mat,
        tag,
    )
    return [box(frame, (0, -0.01, 0), (hx + border, 0.01, hz + border), frame_mat, tag), rect]


def _rect_facing_minus_y() -> np.ndarray:
    """Rotate the canonical rectangle (z = 0, normal +Z, u along +X, v along +Y) to face -Y, v up."""
    return np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float)


def mesh_item(frame: np.ndarray, parts, scale: float, mats: list[str], tag: str) -> list[Shape]:
    """A converted glTF model (assets.MeshAsset parts), one Shape per part."""
    s = frame @ transform((0, 0, 0), 0.0, (scale, scale, scale))
    return [Shape("ply", s, m, tag, ply=p.ply) for p, m in zip(parts, mats, strict=True)]

"""Asset library: surface textures, glTF furniture (converted once to PLY + PNG for Mitsuba) and
photos for frames and rugs, split into a training and a held-out (evaluation-only) partition.

Conversion: glTF is +Y up; our world is +Z up (x, y, z)_gltf -> (x, -z, y)_world, so a model's
front (+Z in glTF) faces -Y; each model is recentred so its footprint is centred on the origin
and its lowest point sits at z = 0. Converted files live in a per-user cache folder keyed by the
source file's hash and are written atomically, so concurrent processes may share it.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_open, atomic_write, list_images

log = logging.getLogger(__name__)
# Held out of training (evaluation split only): every 4th texture / photo in sorted order, and these models.
HELD_OUT_MODELS = ("sofa_03", "painted_wooden_cabinet_02")
_GLTF_TO_WORLD = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


@dataclass(frozen=True)
class MeshPart:
    """One converted glTF primitive: a PLY (positions, normals, UVs) and its base-colour PNG ("" if none)."""

    ply: str
    texture: str
    colour: tuple[float, float, float]


@dataclass(frozen=True)
class MeshAsset:
    """A furniture model in world units: parts, footprint size (x, y) and height in metres."""

    name: str
    parts: tuple[MeshPart, ...]
    size: tuple[float, float, float]


def write_ply(
    path: Path, vertices: np.ndarray, normals: np.ndarray, uv: np.ndarray, faces: np.ndarray
) -> None:
    """Binary little-endian PLY with x y z nx ny nz u v per vertex and triangle faces (atomic)."""
    vdt = np.dtype([(n, "<f4") for n in ("x", "y", "z", "nx", "ny", "nz", "u", "v")])
    v = np.empty(len(vertices), vdt)
    for i, n in enumerate(("x", "y", "z")):
        v[n], v["n" + n] = vertices[:, i], normals[:, i]
    v["u"], v["v"] = uv[:, 0], uv[:, 1]
    fdt = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    f = np.empty(len(faces), fdt)
    f["n"], f["i"] = 3, faces
    header = "ply\nformat binary_little_endian 1.0\n" + f"element vertex {len(v)}\n"
    header += "".join(f"property float {n}\n" for n in vdt.names)
    header += f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
    with atomic_open(path, "wb") as fh:
        fh.write(header.encode() + v.tobytes() + f.tobytes())


def cache_dir() -> Path:
    return Path(
        os.environ.get("HOMELOC_RENDER_CACHE", Path(tempfile.gettempdir()) / f"homeloc_render_{os.getuid()}")
    )


def convert_gltf(path: Path, out: Path) -> MeshAsset:
    """glTF -> PLY parts + PNG textures under out (skipping files already there)."""
    import trimesh

    scene = trimesh.load(path, force="scene")
    meshes = scene.dump(concatenate=False)
    verts_all = np.concatenate([m.vertices @ _GLTF_TO_WORLD.T for m in meshes])
    lo, hi = verts_all.min(0), verts_all.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    parts = []
    for i, m in enumerate(meshes):
        ply, png = out / f"part{i}.ply", out / f"part{i}.png"
        mat = getattr(m.visual, "material", None)
        tex = getattr(mat, "baseColorTexture", None)
        factor = getattr(mat, "baseColorFactor", None)
        colour = tuple(float(c) / 255 for c in factor[:3]) if factor is not None else (0.6, 0.6, 0.6)
        if not ply.exists():
            uv = getattr(m.visual, "uv", None)
            uv = np.zeros((len(m.vertices), 2)) if uv is None else np.asarray(uv)
            verts = m.vertices @ _GLTF_TO_WORLD.T + shift
            write_ply(ply, verts, m.vertex_normals @ _GLTF_TO_WORLD.T, uv, np.asarray(m.faces))
        if tex is not None and not png.exists():
            import io

            buf = io.BytesIO()
            tex.convert("RGB").save(buf, format="PNG")
            atomic_write(png, buf.getvalue())
        parts.append(MeshPart(str(ply), str(png) if tex is not None else "", colour))
    size = hi - lo
    return MeshAsset(
        path.name.replace("_1k.gltf", ""), tuple(parts), (float(size[0]), float(size[1]), float(size[2]))
    )


def _split(items: list, split: str) -> list:
    """Training partition: all but every 4th (sorted) item; evaluation: the held-out ones first."""
    items = sorted(items)
    held = items[3::4]
    return (
        [x for x in items if x not in held]
        if split == "train"
        else held + [x for x in items if x not in held]
    )


class AssetLibrary:
    """Textures, meshes and photos of one split. Missing folders give empty lists (procedural only).

    textures: sorted texture paths (str); photos: sorted image paths (str); meshes: name -> MeshAsset
    (converted lazily, on first use).
    """

    def __init__(self, root: str, photos: list[str], split: str = "train"):
        self.root, self.split = Path(root) if root else None, split
        tex_dir = self.root / "robosuite_textures" if self.root else None
        textures = [str(p) for p in sorted(tex_dir.glob("*.jpg"))] if tex_dir and tex_dir.is_dir() else []
        self.textures = _split(textures, split)
        photo_files: list[str] = []
        for folder in photos:
            if Path(folder).is_dir():
                photo_files += [str(p) for p in list_images(folder)]
        self.photos = _split(photo_files, split)
        gltf_dir = self.root / "polyhaven" if self.root else None
        gltfs = sorted(gltf_dir.glob("*.gltf")) if gltf_dir and gltf_dir.is_dir() else []
        names = [g.name.replace("_1k.gltf", "") for g in gltfs]
        keep = [n for n in names if (n in HELD_OUT_MODELS) == (split == "eval") or split == "eval"]
        self._gltf = {n: g for n, g in zip(names, gltfs, strict=True) if n in keep and n != "tea_set_01"}
        self.mesh_names = sorted(self._gltf, key=lambda n: (n not in HELD_OUT_MODELS, n))
        self.small_props = [g for g in gltfs if "tea_set" in g.name]
        self._meshes: dict[str, MeshAsset] = {}

    def mesh(self, name: str) -> MeshAsset:
        if name not in self._meshes:
            path = self._gltf.get(name) or next(g for g in self.small_props if name in g.name)
            out = cache_dir() / f"{name}-{file_sha256(path)[:12]}"
            out.mkdir(parents=True, exist_ok=True)
            self._meshes[name] = convert_gltf(path, out)
        return self._meshes[name]


def texture_file(path: str, max_side: int = 512) -> str:
    """A cached copy of an image file with its longer side at most max_side (PNG): faster scene loads."""
    import cv2

    from homeloc.runtime.hashing import file_sha256_cached
    from homeloc.runtime.io import read_image, write_image

    src = Path(path)
    out = cache_dir() / "textures" / f"{src.stem}-{file_sha256_cached(src)[:12]}-{max_side}.png"
    if not out.exists():
        img = read_image(src)
        s = max_side / max(img.shape[:2])
        if s < 1:
            img = cv2.resize(
                img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA
            )
        write_image(out, img)
    return str(out)

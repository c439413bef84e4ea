"""Mitsuba 3 scenes and render passes (the only module that imports mitsuba).

Per (home, day, lighting) a `SceneSet` holds: `main` (every shape and material, sky portals in
the windows, ceiling panels, lamps, an IR spot moved to each camera), `sun` (the same without
the portals, lit by the sun alone: a portal would shadow the sunbeam, and light adds up, so
main + sun is the whole image), `geom` (shapes only, for depth) and `base` (day 0's shapes,
for the changed mask). Depth is the `aov` integrator's ray distance at pixel centres (1 sample,
no jitter), converted to z; colour is the path tracer's linear radiance, denoised with
mitsuba-oidn (albedo + normal guides) when configured.

Camera axes: Mitsuba's camera looks along +Z with +Y up and +X to the left; OpenCV's
(x right, y down, z forward) c2w is Mitsuba's times diag(-1, -1, 1, 1).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.render.assets import write_ply
from homeloc.data_synthesis.render.furniture import Shape
from homeloc.data_synthesis.render.lighting import Lighting

FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
_mi = None


def mitsuba():
    """Import mitsuba and set its variant once (HOMELOC_MITSUBA_VARIANT, default scalar_rgb: the
    llvm_* variants crashed on these machines; cuda_ad_rgb where a GPU exists)."""
    global _mi
    if _mi is None:
        import mitsuba as mi

        mi.set_variant(os.environ.get("HOMELOC_MITSUBA_VARIANT", "scalar_rgb"))
        mi.set_log_level(mi.LogLevel.Error)
        _mi = mi
    return _mi


def _rgb(v) -> dict:
    return {"type": "rgb", "value": [float(x) for x in v]}


def _diffuse(mat, texture_file) -> dict:
    if mat.texture:
        refl = {"type": "bitmap", "filename": texture_file(mat.texture), "wrap_mode": "repeat"}
    else:
        refl = _rgb(mat.colour)
    return {"type": "diffuse", "reflectance": refl}


def _xf(m: np.ndarray):
    return mitsuba().ScalarTransform4f(np.asarray(m, np.float64).tolist())


def _facing(centre, normal, hw: float, hh: float) -> np.ndarray:
    """Canonical rectangle -> centred at `centre`, normal `normal`; for a horizontal normal its v
    axis is up, for a vertical one it follows +Y."""
    n = np.asarray(normal, float)
    up = np.array([0.0, 0, 1]) if abs(n[2]) < 0.9 else np.array([0.0, 1, 0])
    along = np.cross(up, n)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = along * hw, up * hh, n, centre
    return m


class SceneBuilder:
    """Turns a home + the day's items + a Lighting into Mitsuba scene dicts. workdir: where mesh
    arrays are written as PLY (content-addressed, reused); texture_file: path -> loadable file."""

    def __init__(self, workdir: Path, texture_file, max_depth: int):
        self.workdir, self.texture_file, self.max_depth = Path(workdir), texture_file, max_depth
        self.workdir.mkdir(parents=True, exist_ok=True)

    def _ply(self, arrays: dict) -> str:
        h = hashlib.sha256(
            b"".join(np.ascontiguousarray(arrays[k]).tobytes() for k in sorted(arrays))
        ).hexdigest()[:20]
        path = self.workdir / f"{h}.ply"
        if not path.exists():
            write_ply(path, arrays["vertices"], arrays["normals"], arrays["uv"], arrays["faces"])
        return str(path)

    def _shape(self, s: Shape, with_bsdf: bool) -> dict:
        d: dict = {"type": s.kind, "to_world": _xf(s.to_world)}
        if s.kind == "ply":
            d["filename"] = s.ply
        elif s.kind == "mesh":
            d = {"type": "ply", "filename": self._ply(s.arrays), "face_normals": True}
        if with_bsdf:
            mid = f"{s.material}__{s.back_material}" if s.back_material else s.material
            d["bsdf"] = {"type": "ref", "id": mid}
        return d

    def _bsdfs(self, materials: dict, shapes: list[Shape]) -> dict:
        out = {}
        for s in shapes:
            if s.back_material:
                out[f"{s.material}__{s.back_material}"] = {
                    "type": "twosided",
                    "front": _diffuse(materials[s.material], self.texture_file),
                    "back": _diffuse(materials[s.back_material], self.texture_file),
                }
            elif s.material not in out:
                out[s.material] = {
                    "type": "twosided",
                    "bsdf": _diffuse(materials[s.material], self.texture_file),
                }
        return out

    def _emitter_mesh(self, parts: list[dict], radiance, bsdf_rgb) -> dict:
        """Several rectangles/bulbs as ONE shape, so a pass has exactly one emitter: Mitsuba orders a
        scene's emitters differently from load to load, which would change the noise (not the
        expectation) and break byte-reproducibility."""
        d = {
            "type": "ply",
            "filename": self._ply(_merge(parts)),
            "face_normals": True,
            "bsdf": {"type": "diffuse", "reflectance": _rgb(bsdf_rgb)},
        }
        if radiance is not None:
            d["emitter"] = {"type": "area", "radiance": _rgb(radiance)}
        return d

    def _lights(self, home, items, lighting: Lighting | None, pass_: tuple[str, object]) -> dict:
        kind, value = pass_
        out: dict = {}
        if kind != "sun" and home.windows:
            portals = [
                _rect_arrays(
                    np.asarray(w.centre) - 0.05 * np.asarray(w.normal),
                    w.normal,
                    w.width / 2 + 0.05,
                    w.height / 2 + 0.05,
                )
                for w in home.windows
            ]
            out["portals"] = self._emitter_mesh(portals, value if kind == "sky" else None, (0, 0, 0))
        lit = [
            lt for lt in home.ceiling_lights if kind == "ceiling" and lighting.ceiling.get(lt.room) == value
        ]
        unlit = [lt for lt in home.ceiling_lights if lt not in lit]
        for name, group, rad in (("panels_on", lit, value), ("panels_off", unlit, None)):
            if group:
                quads = [_rect_arrays(lt.position, (0, 0, -1), lt.size, lt.size) for lt in group]
                out[name] = self._emitter_mesh(quads, rad, (0.9, 0.9, 0.9))
        lamps = [lt for it in items for lt in it.lights]
        on = [i for i in range(len(lamps)) if kind == "lamps" and lighting.lamps.get(i) == value]
        for name, idx, rad in (
            ("bulbs_on", on, None if not on else tuple(v / (np.pi * BULB_R**2) for v in value)),
            ("bulbs_off", [i for i in range(len(lamps)) if i not in on], None),
        ):
            if idx:
                out[name] = self._emitter_mesh(
                    [_bulb_arrays(lamps[i].position) for i in idx], rad, (0.9, 0.9, 0.85)
                )
        if kind == "ir":
            out["ir"] = {
                "type": "spot",
                "to_world": _xf(np.eye(4)),
                "intensity": _rgb((value,) * 3),
                "cutoff_angle": 40.0,
                "beam_width": 28.0,
            }
        if kind == "sun":
            out["sun"] = {
                "type": "directional",
                "direction": [-v for v in lighting.sun_dir],
                "irradiance": _rgb(lighting.sun),
            }
        return out

    def scene(
        self, home, items, lighting: Lighting | None, pass_: tuple[str, object] = ("geom", None)
    ) -> dict:
        """One light pass (see light_passes) with every shape, or ("geom", None): shapes only, for depth."""
        shapes = list(home.structure) + [s for it in items for s in it.shapes]
        d: dict = {"type": "scene"}
        if pass_[0] == "geom":
            d["integrator"] = {"type": "aov", "aovs": "dd.y:depth"}
            for i, s in enumerate(shapes):
                d[f"s{i:05d}"] = self._shape(s, False)
            windows = [
                _rect_arrays(
                    np.asarray(w.centre) - 0.05 * np.asarray(w.normal),
                    w.normal,
                    w.width / 2 + 0.05,
                    w.height / 2 + 0.05,
                )
                for w in home.windows
            ]
            panels = [_rect_arrays(lt.position, (0, 0, -1), lt.size, lt.size) for lt in home.ceiling_lights]
            bulbs = [_bulb_arrays(lt.position) for it in items for lt in it.lights]
            d["openings"] = {
                "type": "ply",
                "filename": self._ply(_merge(windows + panels + bulbs)),
                "face_normals": True,
            }
            return d
        d["integrator"] = {
            "type": "aov",
            "aovs": "alb:albedo,nn:sh_normal",
            "img": {"type": "path", "max_depth": self.max_depth},
        }
        d.update(self._bsdfs(home.materials, shapes))
        for i, s in enumerate(shapes):
            d[f"s{i:05d}"] = self._shape(s, True)
        d.update(self._lights(home, items, lighting, pass_))
        return d


BULB_R = 0.03


def _merge(parts: list[dict]) -> dict:
    offs = np.cumsum([0] + [len(p["vertices"]) for p in parts[:-1]])
    return {
        k: np.concatenate([p[k] + (o if k == "faces" else 0) for p, o in zip(parts, offs, strict=True)])
        for k in ("vertices", "normals", "uv", "faces")
    }


def _rect_arrays(centre, normal, hw: float, hh: float) -> dict:
    m = _facing(centre, normal, hw, hh)
    corners = np.array([[-1, -1, 0, 1], [1, -1, 0, 1], [1, 1, 0, 1], [-1, 1, 0, 1]], float) @ m.T
    n = np.tile(np.asarray(normal, float), (4, 1))
    return {
        "vertices": corners[:, :3],
        "normals": n,
        "uv": np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float),
        "faces": np.array([[0, 1, 2], [0, 2, 3]]),
    }


def _bulb_arrays(position) -> dict:
    """An octahedron of radius BULB_R (outward faces)."""
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    return {"vertices": v * BULB_R + np.asarray(position), "normals": v, "uv": np.zeros((6, 2)), "faces": f}


def light_passes(lighting: Lighting) -> list[tuple[str, object]]:
    """One pass per emitter group (light adds up): sky through the windows, each ceiling-panel
    radiance, each bulb intensity, the IR spot, the sun (without portals, which would shadow it)."""
    out: list[tuple[str, object]] = [("sky", lighting.sky)] if max(lighting.sky) > 0 else []
    out += [("ceiling", r) for r in sorted(set(lighting.ceiling.values()))]
    out += [("lamps", i) for i in sorted(set(lighting.lamps.values()))]
    out += [("ir", lighting.ir)] if lighting.ir > 0 else []
    out += [("sun", None)] if lighting.sun_dir is not None else []
    return out or [("dark", None)]


@dataclass
class SceneSet:
    passes: list
    geom: object
    base: object | None
    lighting: Lighting


def load_scenes(builder: SceneBuilder, home, items, base_items, lighting: Lighting) -> SceneSet:
    mi = mitsuba()
    passes = [
        mi.load_dict(builder.scene(home, items, lighting, p), parallel=False) for p in light_passes(lighting)
    ]
    base = (
        mi.load_dict(builder.scene(home, base_items, None), parallel=False)
        if base_items is not None
        else None
    )
    return SceneSet(passes, mi.load_dict(builder.scene(home, items, None), parallel=False), base, lighting)


def _sensor(pose_c2w: np.ndarray, size, fov_deg: float, spp: int, jitter: bool):
    h, w = size
    sampler = (
        {"type": "independent", "sample_count": spp}
        if jitter
        else {"type": "stratified", "sample_count": 1, "jitter": False}
    )
    return mitsuba().load_dict(
        {
            "type": "perspective",
            "fov": float(fov_deg),
            "fov_axis": "x",
            "near_clip": 0.01,
            "far_clip": 100.0,
            "to_world": _xf(pose_c2w @ FLIP),
            "sampler": sampler,
            "film": {
                "type": "hdrfilm",
                "width": int(w),
                "height": int(h),
                "rfilter": {"type": "box"},
                "pixel_format": "rgb",
            },
        }
    )


def ray_norms(K: np.ndarray, size) -> np.ndarray:
    """||K^-1 [u, v, 1]|| per pixel (HxW): ray distance / z."""
    h, w = size
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    return np.sqrt(x * x + y * y + 1.0)


def render_depth(scene, pose, K, size, fov_deg) -> np.ndarray:
    """HxW float32 z-depth in metres at pixel centres (0 = no surface)."""
    img = np.array(mitsuba().render(scene, sensor=_sensor(pose, size, fov_deg, 1, False), spp=1))
    return (img[..., 0] / ray_norms(K, size)).astype(np.float32)


def _aim_ir(scene, pose: np.ndarray) -> None:
    mi = mitsuba()
    params = mi.traverse(scene)
    src = pose[:3, 3] + pose[:3, :3] @ np.array([0.0, 0.05, 0.0])
    target, up = src + pose[:3, 2], -pose[:3, 1]
    params["ir.to_world"] = mi.ScalarTransform4f().look_at(
        origin=src.tolist(), target=target.tolist(), up=up.tolist()
    )
    params.update()


def render_radiance(
    scenes: SceneSet, pose, size, fov_deg: float, spp: int, seed: int, denoise: str
) -> np.ndarray:
    """HxWx3 float32 linear radiance: the sum of the light passes, spp split evenly between them."""
    mi = mitsuba()
    n = max(1, round(spp / len(scenes.passes)))
    rgb, albedo, normal = None, None, None
    for k, (scene, (kind, _)) in enumerate(zip(scenes.passes, light_passes(scenes.lighting), strict=True)):
        if kind == "ir":
            _aim_ir(scene, pose)
        img = np.array(mi.render(scene, sensor=_sensor(pose, size, fov_deg, n, True), spp=n, seed=seed + k))
        if rgb is None:
            rgb, albedo, normal = img[..., :3] * (kind != "dark"), img[..., 3:6], img[..., 6:9]
        else:
            rgb = rgb + img[..., :3]
    rgb = np.ascontiguousarray(np.maximum(rgb, 0), np.float32)
    if denoise == "oidn":
        import mitsuba_oidn

        rgb = mitsuba_oidn.denoise(
            rgb, np.ascontiguousarray(albedo, np.float32), np.ascontiguousarray(normal, np.float32), hdr=True
        )
    return np.maximum(np.asarray(rgb, np.float32), 0)


def changed_mask(depth: np.ndarray, base_depth: np.ndarray | None) -> np.ndarray:
    """HxW bool: the visible surface differs from the reference day's (depth differs by > 1 cm + 2%)."""
    if base_depth is None:
        return np.zeros(depth.shape, bool)
    return np.abs(depth - base_depth) > 0.01 + 0.02 * np.minimum(depth, base_depth)

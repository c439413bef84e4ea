"""The path a long-term patrol drives and the robot's dock, written beside the frames.

Every round drives the home's path (``trajectory.home_path``: a polyline every 5 cm through every
room) once, from its start to its end; each frame's camera centre lies on it
(``trajectory.sequence_poses``), or with ``--longterm.lateral_m`` up to that far beside it, and
looks along it, turned by the round's look-around. The robot docks at the path's start, facing
along it (it backs onto its dock and leaves driving forward), and returns there after every round.
So the robot's odometry between its dock and a frame, or between two frames of a round, integrates
the path between their positions: the distance along it, the path's own turning, and the
look-around turn at each end (:func:`driven`; for a round that wanders beside the path, still the
path's: the evaluator takes only the size of its simulated odometry noise from it).

cameras.json of a long-term home gets ``patrol_path`` = ``{"points": N x 2 (x, y metres),
"dock_c2w": 4 x 4}`` and every frame ``path_m`` (its position along the path, metres: its nearest
point's). A folder rendered before they were written gets them from ``homeloc-synthesize
render-path --data DIR`` (:func:`add_patrol_path`): the path is rebuilt from the manifest's
configuration and seed, every frame must lie on it, the images are not touched, and the manifest's
digests are updated.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.render.trajectory import look_pose, path_heading
from homeloc.data_synthesis.shards import DatasetError
from homeloc.runtime.io import atomic_write

ON_PATH_M = 1e-3  # a frame further than this from the rebuilt path was not rendered on it
DECIMALS = 4  # 0.1 mm: the path and positions as written (the poses are written to 1e-6)


def arc_lengths(path: np.ndarray) -> np.ndarray:
    """(N,) distance along the path to each vertex, metres."""
    return np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]


def path_position(path: np.ndarray, xy) -> tuple[float, float]:
    """(position along the path, distance from it) of the point ``xy``: its nearest point on the
    polyline."""
    a, d = path[:-1], np.diff(path, axis=0)
    t = np.clip(
        np.einsum("ij,ij->i", np.asarray(xy, np.float64) - a, d) / np.maximum((d**2).sum(1), 1e-18), 0, 1
    )
    off = np.linalg.norm(a + t[:, None] * d - xy, axis=1)
    k = int(np.argmin(off))
    return float(arc_lengths(path)[k] + t[k] * np.linalg.norm(d[k])), float(off[k])


def _vertex(seg: np.ndarray, s: float) -> int:
    """The vertex whose heading a pose at ``s`` takes (as ``sequence_poses`` picks it)."""
    return int(np.clip(np.searchsorted(seg, s), 1, len(seg) - 1))


def heading_at(path: np.ndarray, s: float) -> float:
    """The path's heading (rad) at position ``s``."""
    return float(path_heading(path, _vertex(arc_lengths(path), s)))


def path_turning(path: np.ndarray, s0: float, s1: float) -> float:
    """Total turning (rad, unsigned) of the path's heading between positions ``s0`` and ``s1``."""
    seg = arc_lengths(path)
    lo, hi = sorted((_vertex(seg, s0), _vertex(seg, s1)))
    yaw = np.array([path_heading(path, i) for i in range(lo, hi + 1)])
    return float(np.abs((np.diff(yaw) + np.pi) % (2 * np.pi) - np.pi).sum())


def driven(path: np.ndarray, a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """(metres, radians) the robot drives and turns from ``a`` to ``b``, each (position along the
    path, camera heading): along the path between them, turning from the look-around back to the
    path at ``a``, with the path, then to ``b``'s look-around."""
    look = [abs(float((yaw - heading_at(path, s) + np.pi) % (2 * np.pi) - np.pi)) for s, yaw in (a, b)]
    return abs(b[0] - a[0]), look[0] + path_turning(path, a[0], b[0]) + look[1]


def dock_pose(path: np.ndarray, height: float) -> np.ndarray:
    """Camera-to-world pose (OpenCV axes) of the robot at its dock: the path's start, facing along it."""
    return look_pose((path[0][0], path[0][1], height), heading_at(path, 0.0), 0.0, 0.0)


def patrol_record(path: np.ndarray, height: float) -> dict:
    """cameras.json's ``patrol_path`` of a home."""
    return {"points": path.round(DECIMALS).tolist(), "dock_c2w": dock_pose(path, height).round(6).tolist()}


def add_positions(rows: list[dict], path: np.ndarray, where: str, lateral_m: float = 0.0) -> None:
    """Set ``path_m`` of every cameras.json frame entry of ``rows``; DatasetError (naming ``where``)
    when a frame lies further from the path than ``lateral_m`` (the rounds' sideways wander)."""
    for row in rows:
        s, off = path_position(path, np.asarray(row["pose_c2w"], np.float64)[:2, 3])
        if off > ON_PATH_M + lateral_m:
            raise DatasetError(
                f"{where}: frame {row['name']} lies {off:.3f} m off the home's path "
                "(rendered with another version of the renderer?)"
            )
        row["path_m"] = round(s, DECIMALS)


def add_patrol_path(data: str | Path) -> list[Path]:
    """Add ``patrol_path`` and the frames' ``path_m`` to every home of a long-term rendered folder
    that lacks them (rebuilding each home's path from the manifest); returns the cameras.json files
    written. The images are not touched; the manifest's digests are updated."""
    from homeloc.data_synthesis.render.assets import AssetLibrary
    from homeloc.data_synthesis.render.config import RenderConfig
    from homeloc.data_synthesis.render.home import make_home
    from homeloc.data_synthesis.render.layout import MANIFEST, home_digest

    root = Path(data)
    if not (root / MANIFEST).is_file():
        raise DatasetError(f"{root}: no {MANIFEST} (not a rendered folder)")
    manifest = json.loads((root / MANIFEST).read_text())
    resolved = manifest.get("config", {})
    if "patrol" not in resolved:
        raise DatasetError(f"{root / MANIFEST}: not a long-term render (no patrol; render --days)")
    cfg = RenderConfig(**resolved["config"])
    assets, written = AssetLibrary(cfg.assets, cfg.photos, cfg.split), []
    for name, entry in sorted(manifest["homes"].items()):
        path = root / name / "cameras.json"
        cams = json.loads(path.read_text())
        if "patrol_path" not in cams:
            if home_digest(root / name) != entry["sha256"]:
                raise DatasetError(
                    f"{root / name}: files do not match the manifest (rerun the render to redo it)"
                )
            home = make_home(cfg, assets, resolved["seed"], int(name.split("_")[-1]))
            lateral = float(resolved["patrol"].get("longterm", {}).get("lateral_m", 0.0))
            add_positions(cams["frames"], home.path, str(path), lateral)
            cams["patrol_path"] = patrol_record(home.path, home.camera_height)
            written.append(atomic_write(path, json.dumps(cams, indent=1)))
        # also completes a run killed between the two writes (only this command adds patrol_path)
        entry["sha256"] = home_digest(root / name)
        atomic_write(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return written

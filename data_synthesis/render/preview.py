"""Previews: one home under every lighting scenario as a PNG grid (rows: lightings, columns:
poses), and one image pair per lighting (day-0 noon view vs the scenario's view of a nearby pose)
with ground-truth correspondences from depth + poses drawn (occlusion-tested)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.render import engine
from homeloc.data_synthesis.render.assets import AssetLibrary, texture_file
from homeloc.data_synthesis.render.camera_model import develop
from homeloc.data_synthesis.render.changes import day_items
from homeloc.data_synthesis.render.config import RenderConfig
from homeloc.data_synthesis.render.home import home_rng, make_home
from homeloc.data_synthesis.render.lighting import LIGHTINGS, make_lighting
from homeloc.data_synthesis.render.trajectory import intrinsics, sequence_poses
from homeloc.runtime.geometry import depth_correspondences
from homeloc.runtime.io import read_image, write_image


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 8 + 7 * len(text)), 14), (0, 0, 0), -1)
    cv2.putText(out, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _render_views(cfg: RenderConfig, seed: int, index: int, poses, lighting_names):
    """{lighting: [(rgb, depth)]} for one home on day 0, the same poses under every lighting."""
    assets = AssetLibrary(cfg.assets, cfg.photos, cfg.split)
    home = make_home(cfg, assets, seed, index)
    poses = poses(home)
    out = {}
    with tempfile.TemporaryDirectory() as work:
        builder = engine.SceneBuilder(Path(work), texture_file, cfg.max_depth)
        items, _ = day_items(home, 0, home_rng(seed, index, cfg.split, 100))
        K = intrinsics(cfg.size, cfg.fov_deg)
        for li, name in enumerate(lighting_names):
            lighting = make_lighting(name, home_rng(seed, index, cfg.split, 500 + li), home)
            scenes = engine.load_scenes(builder, home, items, None, lighting)
            views = []
            for k, pose in enumerate(poses):
                rad = engine.render_radiance(
                    scenes, pose, cfg.size, cfg.fov_deg, cfg.spp, 1000 * li + k, cfg.denoise
                )
                rgb, _ = develop(
                    rad, cfg.camera, np.random.default_rng([seed, index, li, k]), lighting.mono, False
                )
                views.append((rgb, engine.render_depth(scenes.geom, pose, K, cfg.size, cfg.fov_deg)))
            out[name] = views
    return out, poses, K


def lighting_grid(cfg: RenderConfig, seed: int, index: int, views: int, out: Path) -> Path:
    """Rows: every lighting scenario; columns: `views` poses along the home's path. Returns out."""
    names = list(LIGHTINGS)
    rendered, _, _ = _render_views(
        cfg,
        seed,
        index,
        lambda h: sequence_poses(h.path, h.camera_height, views, home_rng(seed, index, cfg.split, 10)),
        names,
    )
    rows = [
        np.hstack([_label(rgb, name if k == 0 else "") for k, (rgb, _) in enumerate(rendered[name])])
        for name in names
    ]
    return write_image(out, np.vstack(rows))


def draw_matches(
    img0: np.ndarray, img1: np.ndarray, xy: np.ndarray, valid: np.ndarray, grid=(6, 8)
) -> np.ndarray:
    """Side-by-side pair with lines for ground-truth correspondences on a grid of valid pixels."""
    h, w = img0.shape[:2]
    canvas = np.hstack([img0, img1]).copy()
    ys, xs = np.nonzero(valid)
    if len(ys) == 0:
        return canvas
    rng = np.random.default_rng(0)
    pick = rng.choice(len(ys), min(grid[0] * grid[1], len(ys)), replace=False)
    for n, i in enumerate(pick):
        colour = tuple(
            int(c) for c in cv2.applyColorMap(np.uint8([[255 * n / len(pick)]]), cv2.COLORMAP_HSV)[0, 0]
        )
        p0 = (int(xs[i]), int(ys[i]))
        p1 = (int(round(xy[ys[i], xs[i], 0])) + w, int(round(xy[ys[i], xs[i], 1])))
        cv2.line(canvas, p0, p1, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, p0, 2, colour, -1)
        cv2.circle(canvas, p1, 2, colour, -1)
    return canvas


def lighting_pairs(cfg: RenderConfig, seed: int, index: int, out_dir: Path) -> list[Path]:
    """One PNG per lighting: the noon view 0 vs the scenario's view 1 from a nearby pose."""

    def poses(h):
        """A pose on the path and a nearby one (0.3 m right, 0.15 m on, turned 12 degrees): a revisit."""
        p0 = sequence_poses(h.path, h.camera_height, 8, home_rng(seed, index, cfg.split, 10))[2]
        c, s = np.cos(0.2), np.sin(0.2)
        step = np.array([[c, 0, s, 0.3], [0, 1, 0, 0], [-s, 0, c, 0.15], [0, 0, 0, 1.0]])
        return [p0, p0 @ step]

    names = list(LIGHTINGS)
    rendered, (pose0, pose1), K = _render_views(cfg, seed, index, poses, names)
    (rgb0, d0), _ = rendered["sun_noon"]
    paths = []
    for name in names:
        rgb1, d1 = rendered[name][1]
        xy, valid = depth_correspondences(d0, d1, K, pose0, K, pose1)
        img = draw_matches(rgb0, rgb1, xy, valid)
        paths.append(
            write_image(
                Path(out_dir) / f"pair_sun_noon_vs_{name}.png",
                _label(img, f"sun_noon -> {name}: {valid.mean():.0%} of pixels with GT"),
            )
        )
    return paths


def days_grid(root: str | Path, out: Path, home: str | None = None, place: int | None = None) -> Path:
    """One place of a months-long sequence across its days, read from the rendered frames (nothing is
    rendered): the frame `place` of every patrol round, a week per row (days left to right, the
    day's rounds side by side), half size, labelled with day, lighting and the large changes that
    started or ended that day. home: a home folder name (default: the first); place: default the
    middle of the round. Returns out."""
    root = Path(root)
    hdir = root / (home or min((p.name for p in root.glob("home_*")), default="home_00000"))
    if not (hdir / "cameras.json").is_file():
        raise FileNotFoundError(f"{hdir / 'cameras.json'}: missing (not a finished rendered home)")
    cams = json.loads((hdir / "cameras.json").read_text())
    if "days" not in cams:
        raise ValueError(
            f"{hdir / 'cameras.json'}: not a long-term sequence (render --days ... --frames-per-day ...)"
        )
    per_round = cams["patrol"]["frames_per_round"]
    k = per_round // 2 if place is None else place
    if not 0 <= k < per_round:
        raise ValueError(f"--place must be in 0..{per_round - 1}, got {place}")
    events = {d["day"]: d["new_large_changes"] for d in cams["days"]}
    tiles = []
    for f in (f for f in cams["frames"] if f["name"].endswith(f"_f{k:03d}")):
        img = read_image(hdir / "rgb" / f"{f['name']}.png")
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
        img = _label(img, f"d{f['day']} {f['lighting']}")
        new = events.get(f["day"]) if f.get("round", 0) == 0 else None
        tiles.append(_label_bottom(img, " ".join(new)) if new else img)
    cols = 7 * len(cams["patrol"]["longterm"]["rounds"])
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)]
    return write_image(out, np.vstack(rows))


def _label_bottom(img: np.ndarray, text: str) -> np.ndarray:
    """`text` in yellow on a black band at the bottom (a large change on this day)."""
    out = img.copy()
    h = out.shape[0]
    cv2.rectangle(out, (0, h - 14), (min(out.shape[1], 8 + 6 * len(text)), h), (0, 0, 0), -1)
    cv2.putText(out, text, (3, h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (255, 220, 0), 1, cv2.LINE_AA)
    return out

"""`render_homes`: N homes x M frames into DIR/<home>/ (cameras.json, rgb/, depth/, changed/),
resumable and byte-reproducible.

A home is the unit of work. Each frame's three PNGs are written atomically, so a killed run leaves
only whole files; a rerun keeps frames whose three files exist (they are deterministic: same
bytes) and renders the rest. cameras.json is written last, then the home is listed in
DIR/manifest.json with the sha256 of its files; a listed home whose files no longer match is
redone. A folder made with another configuration is refused unless overwrite.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.render import engine
from homeloc.data_synthesis.render.assets import AssetLibrary, texture_file
from homeloc.data_synthesis.render.camera_model import develop
from homeloc.data_synthesis.render.changes import day_items
from homeloc.data_synthesis.render.config import Patrol, RenderConfig
from homeloc.data_synthesis.render.home import Home, home_rng, make_home
from homeloc.data_synthesis.render.layout import MANIFEST, home_digest, home_dir_name
from homeloc.data_synthesis.render.lighting import LIGHTINGS, make_lighting
from homeloc.data_synthesis.render.trajectory import intrinsics, sequence_poses
from homeloc.runtime.io import atomic_write, encode_image

log = logging.getLogger(__name__)
KIND = "render"


@dataclass(frozen=True)
class Sequence:
    """One traversal of the home's path: its name, day, lighting and frame count."""

    name: str
    index: int
    day: int
    lighting: str
    frames: int


def plan_sequences(cfg: RenderConfig, seed: int, index: int, frames: int) -> list[Sequence]:
    """Sequence 0: day 0 under cfg.map_lighting (the map); then random days and weighted lightings."""
    rng = home_rng(seed, index, cfg.split, 3)
    names = sorted(cfg.lightings)
    w = np.array([cfg.lightings[n] for n in names], float)
    out, left = [], frames
    for s in range(math.ceil(frames / cfg.frames_per_sequence)):
        n = min(cfg.frames_per_sequence, left)
        day, light = (
            (0, cfg.map_lighting)
            if s == 0
            else (int(rng.integers(cfg.days)), names[int(rng.choice(len(names), p=w / w.sum()))])
        )
        out.append(Sequence(f"s{s:02d}_day{day}_{light}", s, day, light, n))
        left -= n
    return out


def _frame_files(hdir: Path, name: str) -> list[Path]:
    return [hdir / "rgb" / f"{name}.png", hdir / "depth" / f"{name}.png", hdir / "changed" / f"{name}.png"]


def sequence_entries(
    home: Home, seq: Sequence, cfg: RenderConfig, rng: np.random.Generator, lateral_m: float = 0.0
) -> list[dict]:
    """The cameras.json entries of one traversal of the home's path (poses drawn from rng; with
    ``lateral_m``, wandering up to that far beside it: trajectory.sequence_poses)."""
    doors = [d[:2] for d in home.doors]
    poses = sequence_poses(home.path, home.camera_height, seq.frames, rng, lateral_m, doors)
    return [
        {
            "name": f"{seq.name}_f{k:03d}",
            "pose_c2w": p.round(6).tolist(),
            "lighting": seq.lighting,
            "day": seq.day,
            "sequence": seq.name,
        }
        for k, p in enumerate(poses)
    ]


def missing_frames(hdir: Path, entries: list[dict]) -> list[int]:
    """Indices of the entries whose three PNGs are not all on disk (a finished frame is kept)."""
    return [k for k, e in enumerate(entries) if not all(f.exists() for f in _frame_files(hdir, e["name"]))]


def render_frames(
    scenes: engine.SceneSet, entries: list[dict], todo: list[int], cfg: RenderConfig, key: tuple, hdir: Path
) -> None:
    """Render entries[k] for k in todo and write their PNGs atomically. key = (seed, index, sequence
    index): with k, it seeds the path tracer and the camera model, so a frame's bytes depend on it alone."""
    K = intrinsics(cfg.size, cfg.fov_deg)
    for k in todo:
        pose, name = np.array(entries[k]["pose_c2w"]), entries[k]["name"]
        depth = engine.render_depth(scenes.geom, pose, K, cfg.size, cfg.fov_deg)
        base = (
            engine.render_depth(scenes.base, pose, K, cfg.size, cfg.fov_deg)
            if scenes.base is not None
            else None
        )
        frame_seed = int(np.random.default_rng([*key, k]).integers(2**31))
        radiance = engine.render_radiance(
            scenes, pose, cfg.size, cfg.fov_deg, cfg.spp, frame_seed, cfg.denoise
        )
        rgb, _ = develop(radiance, cfg.camera, np.random.default_rng([*key, k, 1]), scenes.lighting.mono)
        mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
        rgb_f, depth_f, changed_f = _frame_files(hdir, name)
        atomic_write(depth_f, encode_image(mm, ".png"))
        atomic_write(changed_f, encode_image(engine.changed_mask(depth, base).astype(np.uint8) * 255, ".png"))
        atomic_write(rgb_f, encode_image(rgb, ".png"))


def render_sequence(
    home: Home,
    seq: Sequence,
    cfg: RenderConfig,
    seed: int,
    index: int,
    builder,
    hdir: Path,
    base_items_cache: dict,
) -> list[dict]:
    """Render (or keep) every frame of one sequence; returns its cameras.json frame entries."""
    entries = sequence_entries(home, seq, cfg, home_rng(seed, index, cfg.split, 10 + seq.index))
    todo = missing_frames(hdir, entries)
    if not todo:
        return entries
    items, changes = day_items(home, seq.day, home_rng(seed, index, cfg.split, 100 + seq.day))
    if seq.day and "base" not in base_items_cache:
        base_items_cache["base"] = day_items(home, 0, home_rng(seed, index, cfg.split, 100))[0]
    lighting = make_lighting(seq.lighting, home_rng(seed, index, cfg.split, 200 + seq.index), home)
    scenes = engine.load_scenes(
        builder, home, items, base_items_cache.get("base") if seq.day else None, lighting
    )
    render_frames(scenes, entries, todo, cfg, (seed, index, seq.index), hdir)
    log.info("%s %s: %d frames (%s)", home.name, seq.name, len(todo), ", ".join(changes) or "no changes")
    return entries


def render_home(
    cfg: RenderConfig, assets: AssetLibrary, seed: int, index: int, frames: int, hdir: Path, workdir: Path
) -> Path:
    """Render one home into hdir; returns hdir/cameras.json (written last)."""
    home = make_home(cfg, assets, seed, index)
    builder = engine.SceneBuilder(workdir, texture_file, cfg.max_depth)
    entries, cache = [], {}
    for seq in plan_sequences(cfg, seed, index, frames):
        entries += render_sequence(home, seq, cfg, seed, index, builder, hdir, cache)
    return atomic_write(hdir / "cameras.json", json.dumps(cameras(cfg, home, entries), indent=1))


def cameras(cfg: RenderConfig, home: Home, entries: list[dict], **extra) -> dict:
    """The cameras.json document of a home (extra keys after the frames: long-term days, schedule)."""
    return {
        "K": intrinsics(cfg.size, cfg.fov_deg).round(6).tolist(),
        "width": cfg.size[1],
        "height": cfg.size[0],
        "home": home.name,
        "rooms": [list(map(float, r)) for r in home.rooms],
        "camera_height": round(home.camera_height, 4),
        "frames": entries,
        **extra,
    }


def _check(
    cfg: RenderConfig, homes: int, frames: int, only_homes: list[int] | None, patrol: Patrol | None
) -> None:
    names = set(cfg.lightings) | {cfg.map_lighting}
    names |= {n for r in patrol.longterm.rounds for n in r} if patrol else set()
    unknown = sorted(names - set(LIGHTINGS))
    if unknown:
        raise ValueError(f"unknown lighting scenario(s) {unknown}; known: {', '.join(LIGHTINGS)}")
    if homes < 1 or frames < 1:
        raise ValueError(f"--homes and --frames-per-home must be >= 1, got {homes} and {frames}")
    bad = sorted(i for i in only_homes or [] if not 0 <= i < homes)
    if bad:
        raise ValueError(f"--only_homes {bad} out of range 0..{homes - 1}")


def _open_manifest(out: Path, resolved: dict, chash: str, homes: int, overwrite: bool) -> dict:
    """The manifest to resume (same config hash) or a fresh one (none, or overwrite of another config)."""
    manifest = shards.read_manifest(out)
    if manifest is not None and manifest.get("config_hash") != chash:
        if not overwrite:
            raise shards.DatasetError(
                f"{out / MANIFEST}: this folder holds renders made with another configuration; "
                "pass --overwrite to replace them or choose another --out"
            )
        for p in out.glob("home_*"):
            shutil.rmtree(p)
        manifest = None
    if manifest is None:
        manifest = {
            "format_version": 1,
            "kind": KIND,
            "config_hash": chash,
            "config": resolved,
            "num": homes,
            "homes": {},
            "complete": False,
        }
    return manifest


def render_homes(
    out: str | Path,
    homes: int,
    frames_per_home: int,
    seed: int = 0,
    cfg: RenderConfig | None = None,
    overwrite: bool = False,
    only_homes: list[int] | None = None,
    patrol: Patrol | None = None,
) -> Path:
    """Render (or resume) `homes` homes of `frames_per_home` frames into out; returns out/manifest.json.
    With a patrol (long-term mode), each home is one months-long sequence (longterm.py) and
    frames_per_home must be patrol.days * patrol.frames_per_day."""
    cfg = cfg or RenderConfig()
    _check(cfg, homes, frames_per_home, only_homes, patrol)
    if patrol is not None and frames_per_home != patrol.days * patrol.frames_per_day:
        raise ValueError(f"frames_per_home {frames_per_home} != --days x --frames-per-day")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    resolved = {"config": cfg.to_dict(), "seed": seed, "frames_per_home": frames_per_home}
    if patrol is not None:  # only then: the hash of renders without a patrol stays what it was
        resolved["patrol"] = patrol.to_dict()
    chash = shards.config_hash({"kind": KIND, **resolved, "homes": homes})
    manifest = _open_manifest(out, resolved, chash, homes, overwrite)
    assets = AssetLibrary(cfg.assets, cfg.photos, cfg.split)
    t0, done = time.time(), 0
    with tempfile.TemporaryDirectory(prefix="homeloc_render_") as work:
        for index in only_homes if only_homes is not None else range(homes):
            name, hdir = home_dir_name(index), out / home_dir_name(index)
            entry = manifest["homes"].get(name)
            if entry and (hdir / "cameras.json").exists() and home_digest(hdir) == entry["sha256"]:
                continue
            if patrol is None:
                render_home(cfg, assets, seed, index, frames_per_home, hdir, Path(work))
            else:  # imported here: longterm.py builds on this module's frame rendering
                from homeloc.data_synthesis.render.longterm import render_patrol_home

                render_patrol_home(cfg, patrol, assets, seed, index, hdir, Path(work))
            manifest["homes"][name] = {"frames": frames_per_home, "sha256": home_digest(hdir)}
            manifest["complete"] = len(manifest["homes"]) == homes
            manifest["elapsed_s"] = round(manifest.get("elapsed_s", 0.0) + time.time() - t0, 1)
            t0, done = time.time(), done + 1
            atomic_write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    manifest["complete"] = len(manifest["homes"]) == homes
    atomic_write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return out / MANIFEST

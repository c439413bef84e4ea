"""The `render`, `render-preview`, `render-export` and `render-path` subcommands of
homeloc-synthesize (registered in data_synthesis/cli.py's SUBCOMMANDS); thin wrappers over
jobs.render_homes, preview.*, products.* and patrol_path.add_patrol_path."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from jsonargparse import ActionConfigFile, Namespace

from homeloc.data_synthesis.cli_errors import OneLineParser as ArgumentParser  # one-line errors
from homeloc.data_synthesis.cli_errors import PositiveInt, UsageError
from homeloc.data_synthesis.render.config import LongTermConfig, Patrol, RenderConfig
from homeloc.runtime.io import atomic_write

PRODUCTS = ("pairs3d", "pose", "loops", "places")


def parse_size(text: str | list | tuple) -> tuple[int, int]:
    """'240x320' (H x W) or [240, 320] -> (240, 320)."""
    if isinstance(text, list | tuple):
        h, w = text
    else:
        parts = str(text).lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"--size must be HxW, e.g. 240x320, got {text!r}")
        h, w = parts
    return int(h), int(w)


def add_render(sub) -> None:
    p = ArgumentParser(
        description="Path-traced procedural homes (Mitsuba 3): rgb, depth, changed masks and poses "
        "per frame, revisits across days and lightings. Layout: docs/synthesis.md, 'Rendered homes'."
    )
    p.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML file with any of these options (configs/synth/render*.yaml)",
    )
    p.add_argument("--out", type=str, required=True, help="output folder (created; resumable)")
    p.add_argument(
        "--homes", type=int, default=2, help="number of homes (long-term mode: one months-long sequence each)"
    )
    p.add_argument(
        "--frames-per-home",
        type=PositiveInt | None,
        default=None,
        help="frames per home over several random sequences (default 20; not with --days)",
    )
    p.add_argument(
        "--days",
        type=PositiveInt | None,
        default=None,
        help="long-term mode (with --frames-per-day): D simulated days per home, the robot's patrol each "
        "day under that day's lightings, small daily and scheduled large changes (--longterm)",
    )
    p.add_argument(
        "--frames-per-day",
        type=PositiveInt | None,
        default=None,
        help="long-term mode: frames per day, split evenly over the patrol rounds (a multiple of "
        "len(--longterm.rounds), 2 by default: a daylight and an evening/night round)",
    )
    p.add_argument("--size", type=str | None, default=None, help="HxW, e.g. 240x320 (default: synth.size)")
    p.add_argument("--seed", type=int, default=0, help="seed: home i depends only on (seed, split, i)")
    p.add_argument("--only_homes", type=int, nargs="+", default=None, help="render only these home indices")
    p.add_argument("--overwrite", type=bool, default=False, help="replace renders made with another config")
    p.add_argument(
        "--synth", type=RenderConfig, default=RenderConfig(), help="render settings (RenderConfig)"
    )
    p.add_argument(
        "--longterm",
        type=LongTermConfig,
        default=LongTermConfig(),
        help="long-term mode: patrol rounds' lighting pools, their sideways wander (lateral_m) and the large-change schedule (LongTermConfig)",
    )
    sub.add_subcommand("render", p, help="render procedural homes under day/night lightings")


def _cfg(args: Namespace) -> RenderConfig:
    synth = args.synth if isinstance(args.synth, RenderConfig) else RenderConfig(**_plain(args.synth))
    if args.get("size"):
        synth.size = parse_size(args.size)
    return synth


def _plain(x):
    if hasattr(x, "as_dict"):
        x = x.as_dict()
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items() if k != "__path__"}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def _patrol(args: Namespace) -> Patrol | None:
    """The long-term patrol of --days/--frames-per-day, or None (random sequences); one-line errors."""
    days, per_day = args.get("days"), args.get("frames_per_day")
    if days is None and per_day is None:
        return None
    if days is None or per_day is None:
        raise UsageError("--days and --frames-per-day go together (long-term mode): give both or neither")
    if args.get("frames_per_home") is not None:
        raise UsageError("--frames-per-home does not apply with --days (frames = days x --frames-per-day)")
    lt = (
        args.longterm
        if isinstance(args.longterm, LongTermConfig)
        else LongTermConfig(**_plain(args.longterm))
    )
    return Patrol(int(days), int(per_day), lt)


def run_render(args: Namespace) -> int:
    from homeloc.data_synthesis.render.jobs import render_homes
    from homeloc.data_synthesis.render.layout import verify_render

    cfg, patrol = _cfg(args), _patrol(args)
    if patrol is None:
        frames = int(args.get("frames_per_home") or 20)
    else:
        frames = patrol.days * patrol.frames_per_day
    manifest = render_homes(
        args.out, args.homes, frames, args.seed, cfg, args.overwrite, args.only_homes, patrol
    )
    resolved = {"out": args.out, "homes": args.homes, "frames_per_home": frames, "seed": args.seed}
    if patrol is not None:
        resolved.update(patrol.to_dict())
    resolved["synth"] = cfg.to_dict()
    atomic_write(os.path.join(args.out, "config.yaml"), yaml.safe_dump(_plain(resolved), sort_keys=False))
    verify_render(manifest.parent)
    what = f"{frames} frames" if patrol is None else f"{patrol.days} days x {patrol.frames_per_day} frames"
    print(f"{manifest.parent}: {args.homes} homes x {what} rendered and verified")
    return 0


def add_preview(sub) -> None:
    p = ArgumentParser(
        description="One home under every lighting scenario, as one PNG grid (and, with "
        "--pairs, one image pair per scenario with drawn ground-truth correspondences); with --data, "
        "one place of a rendered long-term sequence across its days."
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--out", type=str, required=True, help="output PNG (the grid)")
    p.add_argument("--home", type=int, default=0, help="home index")
    p.add_argument("--seed", type=int, default=0, help="seed")
    p.add_argument("--views", type=int, default=3, help="camera poses (columns)")
    p.add_argument("--size", type=str | None, default=None, help="HxW per tile")
    p.add_argument(
        "--pairs", type=str | None, default=None, help="also write per-lighting pair PNGs into this folder"
    )
    p.add_argument(
        "--synth", type=RenderConfig, default=RenderConfig(), help="render settings (RenderConfig)"
    )
    p.add_argument(
        "--data",
        type=str | None,
        default=None,
        help="a long-term rendered folder (render --days): instead, a grid of one place across its days "
        "(the frames on disk, nothing rendered; --home picks the home)",
    )
    p.add_argument(
        "--place", type=int | None, default=None, help="with --data: frame index within a patrol round"
    )
    sub.add_subcommand("render-preview", p, help="preview a rendered home under every lighting")


def run_preview(args: Namespace) -> int:
    from homeloc.data_synthesis.render.preview import lighting_grid, lighting_pairs

    if args.get("data"):
        from homeloc.data_synthesis.render.layout import home_dir_name
        from homeloc.data_synthesis.render.preview import days_grid

        print(f"days grid: {days_grid(args.data, Path(args.out), home_dir_name(args.home), args.place)}")
        return 0
    cfg = _cfg(args)
    print(f"grid: {lighting_grid(cfg, args.seed, args.home, args.views, Path(args.out))}")
    if args.pairs:
        for path in lighting_pairs(cfg, args.seed, args.home, Path(args.pairs)):
            print(f"pair: {path}")
    return 0


def add_export(sub) -> None:
    p = ArgumentParser(
        description="Products made from a rendered folder: pairs3d (keypoint training pairs, "
        "sharded like `pairs`), pose (relative-pose pair list), loops (loop-closure sequences), "
        "places (places folder for homeloc-evaluate places)."
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--data", type=str, required=True, help="rendered folder (homeloc-synthesize render)")
    p.add_argument("--product", type=str, required=True, help=" | ".join(PRODUCTS))
    p.add_argument("--out", type=str, required=True, help="output folder")
    p.add_argument("--num", type=int, default=1000, help="pairs to draw (pairs3d, pose)")
    p.add_argument("--seed", type=int, default=0, help="seed for drawing pairs")
    p.add_argument(
        "--min_overlap", type=float, default=0.3, help="co-visible share of pixels for a pair/positive"
    )
    p.add_argument("--overwrite", type=bool, default=False, help="replace an export made with other options")
    sub.add_subcommand("render-export", p, help="3-D pairs, pose pairs, loop sequences, places from renders")


def run_export(args: Namespace) -> int:
    from homeloc.data_synthesis.render import products

    if args.product not in PRODUCTS:
        raise ValueError(f"--product must be one of {', '.join(PRODUCTS)}, got {args.product!r}")
    fn = {
        "pairs3d": products.export_pairs3d,
        "pose": products.export_pose_pairs,
        "loops": products.export_loops,
        "places": products.export_places,
    }[args.product]
    print(
        f"{args.product}: {fn(args.data, args.out, num=args.num, seed=args.seed, min_overlap=args.min_overlap, overwrite=args.overwrite)}"
    )
    return 0


def add_path(sub) -> None:
    p = ArgumentParser(
        description="Add the patrol's path and the robot's dock (cameras.json patrol_path, each frame's "
        "path_m) to a long-term folder rendered before the renderer wrote them; images untouched."
    )
    p.add_argument("--data", type=str, required=True, help="a long-term rendered folder (render --days)")
    sub.add_subcommand("render-path", p, help="add the patrol path and dock to a long-term render")


def run_path(args: Namespace) -> int:
    from homeloc.data_synthesis.render.patrol_path import add_patrol_path

    written = add_patrol_path(args.data)
    print(f"{args.data}: patrol path added to {len(written)} home(s)")
    return 0

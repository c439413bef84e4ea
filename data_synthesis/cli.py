"""`homeloc-synthesize`: make pair, shapes and place datasets; preview them.

Thin wrapper over data_synthesis.jobs; every subcommand takes --config YAML (see configs/synth/),
prints its resolved config with --print_config and writes it next to the output.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from jsonargparse import ActionConfigFile, ActionSubCommands, Namespace
from jsonargparse.typing import restricted_number_type

from homeloc.data_synthesis import jobs, preview, shards, stats
from homeloc.data_synthesis.cli_errors import (
    ClosedUnitInterval,
    NonNegativeInt,
    PositiveInt,
    UsageError,
    debug_requested,
    run_guarded,
)
from homeloc.data_synthesis.cli_errors import OneLineParser as ArgumentParser  # every parser: one-line errors
from homeloc.data_synthesis.export_pairs import export_pairs_txt
from homeloc.data_synthesis.export_places import EXPORT_INFO, export_places_eval
from homeloc.data_synthesis.pairs import PairConfig
from homeloc.data_synthesis.place_jobs import synthesize_places
from homeloc.data_synthesis.places import PlaceConfig
from homeloc.data_synthesis.render import cli as render_cli
from homeloc.runtime.io import ImageReadError, atomic_write

SOURCE_HELP = "sources: skimage | folder:DIR | webcam:DIR | hpatches:DIR, each with optional @WEIGHT"
IMAGE_FORMAT_HELP = ".jpg (q95, compact) or .png (lossless)"
STRICT_HELP = "stop at the first unreadable source image (default: skip it, report the count)"
ImageFormat = Literal[".jpg", ".png"]
Size = tuple[PositiveInt, PositiveInt]
Views = restricted_number_type("Views", int, (">=", 2))
# The `places` description (kept as the first paragraph of the former places module's docstring).
PLACES_DESCRIPTION = (
    "Place datasets for the global (place) descriptor: views of one place under other light and\n"
    "small viewpoint changes, in groups of hard negatives, plus an export to the evaluator's layout."
)


def _common(p: ArgumentParser, shard_size: int) -> None:
    """Options of every dataset-writing subcommand (pairs, shapes, places)."""
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--out", type=str, required=True, help="output folder (created; resumable)")
    p.add_argument("--num", type=PositiveInt, default=1000, help="number of samples (>= 1)")
    p.add_argument(
        "--seed",
        type=NonNegativeInt,
        default=0,
        help="dataset seed (>= 0): sample i depends only on (seed, i)",
    )
    p.add_argument(
        "--workers", type=PositiveInt, default=1, help="processes writing shards in parallel (>= 1)"
    )
    p.add_argument("--shard_size", type=PositiveInt, default=shard_size, help="samples per tar shard (>= 1)")
    p.add_argument(
        "--only_shards",
        type=NonNegativeInt,
        nargs="+",
        default=None,
        help="regenerate/write only these shard numbers (cluster job arrays)",
    )
    p.add_argument("--overwrite", type=bool, default=False, help="replace a dataset made with another config")


# ------------------------------------------------------------------------------- pairs and shapes


def _add_pairs(sub: ActionSubCommands) -> None:
    pairs = ArgumentParser(description="Synthesized day/night image pairs with exact homography and masks.")
    _common(pairs, 500)
    pairs.add_argument("--source", type=str, nargs="+", default=["skimage"], help=SOURCE_HELP)
    pairs.add_argument("--synth", type=PairConfig, default=PairConfig(), help="pair synthesis settings")
    pairs.add_argument("--image_format", type=ImageFormat, default=".jpg", help=IMAGE_FORMAT_HELP)
    pairs.add_argument("--strict", type=bool, default=False, help=STRICT_HELP)
    sub.add_subcommand("pairs", pairs, help="synthesize a pair dataset")


def _add_shapes(sub: ActionSubCommands) -> None:
    shapes = ArgumentParser(description="MagicPoint-style synthetic shapes with exact corner keypoints.")
    _common(shapes, 1000)
    shapes.add_argument("--size", type=Size, default=(240, 320), help="image height, width")
    sub.add_subcommand("shapes", shapes, help="synthesize a synthetic-shapes dataset")


def _run_pairs(root: ArgumentParser, cfg: Namespace) -> int:
    args = cfg.pairs
    try:
        synth = root.instantiate_classes(cfg).pairs.synth
    except ValueError as e:
        raise UsageError(f"--synth: {e}") from None
    manifest = jobs.synthesize_pairs(
        args.source,
        args.out,
        args.num,
        args.seed,
        synth,
        args.workers,
        args.shard_size,
        args.overwrite,
        args.only_shards,
        args.image_format,
        args.strict,
    )
    return _finish_dataset(root, cfg, args, manifest)


def _run_shapes(root: ArgumentParser, cfg: Namespace) -> int:
    args = cfg.shapes
    manifest = jobs.synthesize_shapes(
        args.out,
        args.num,
        args.seed,
        tuple(args.size),
        args.workers,
        args.shard_size,
        args.overwrite,
        args.only_shards,
    )
    return _finish_dataset(root, cfg, args, manifest)


def _finish_dataset(root: ArgumentParser, cfg: Namespace, args: Namespace, manifest: Path) -> int:
    """Write the whole resolved config (root parser's dump, `command:` included) next to the data,
    then verify it (see _verify_written)."""
    atomic_write(os.path.join(args.out, "config.yaml"), root.dump(cfg, skip_none=False))
    return _verify_written(manifest, args.only_shards, "samples")


# --------------------------------------------------------------------------- verify, export-pairs


def _add_verify(sub: ActionSubCommands) -> None:
    verify = ArgumentParser(description="Check every shard of a dataset against its manifest.")
    verify.add_argument("--data", type=str, required=True, help="dataset folder")
    sub.add_subcommand("verify", verify, help="verify a dataset's checksums")


def _run_verify(args: Namespace) -> int:
    m = shards.verify(args.data)
    print(
        f"{args.data}: {m['kind']} dataset OK, {sum(s['count'] for s in m['shards'].values())} samples in {len(m['shards'])} shards"
    )
    return 0


def _add_export_pairs(sub: ActionSubCommands) -> None:
    export = ArgumentParser(
        description="Write a pair dataset as image files + pairs.txt (what homeloc-evaluate reads)."
    )
    export.add_argument("--data", type=str, required=True, help="pair dataset folder")
    export.add_argument("--out", type=str, required=True, help="output folder (images/ and pairs.txt)")
    export.add_argument(
        "--limit", type=PositiveInt | None, default=None, help="export at most this many pairs"
    )
    sub.add_subcommand("export-pairs", export, help="export pairs for evaluation")


def _run_export_pairs(args: Namespace) -> int:
    print(f"pairs file: {export_pairs_txt(args.data, args.out, args.limit)}")
    return 0


# ------------------------------------------------------------------------- places, places-eval


def _add_places(sub: ActionSubCommands) -> None:
    p = ArgumentParser(
        description=PLACES_DESCRIPTION + " Groups of far-apart crops of one source are hard negatives."
    )
    _common(p, 200)
    p.add_argument("--source", type=str, nargs="+", default=["skimage"], help=SOURCE_HELP)
    p.add_argument("--views", type=Views, default=4, help="views per place, >= 2 (view 0 is day-like)")
    p.add_argument(
        "--places_per_source",
        type=PositiveInt,
        default=4,
        help="places per group sharing one source image (hard negatives of each other)",
    )
    p.add_argument("--size", type=Size, default=(240, 320), help="image height, width")
    p.add_argument("--synth", type=PlaceConfig, default=PlaceConfig(), help="place synthesis settings")
    p.add_argument("--image_format", type=ImageFormat, default=".jpg", help=IMAGE_FORMAT_HELP)
    p.add_argument("--strict", type=bool, default=False, help=STRICT_HELP)
    sub.add_subcommand("places", p, help="synthesize a place-recognition dataset")


def _run_places(args: Namespace) -> int:
    try:
        synth = args.synth if isinstance(args.synth, PlaceConfig) else PlaceConfig(**_as_dict(args.synth))
    except (TypeError, ValueError) as e:
        raise UsageError(f"--synth: {e}") from None
    manifest = synthesize_places(
        args.source,
        args.out,
        args.num,
        args.seed,
        args.views,
        args.places_per_source,
        tuple(args.size),
        synth,
        args.workers,
        args.shard_size,
        args.overwrite,
        args.only_shards,
        args.image_format,
        args.strict,
    )
    # Unlike pairs/shapes, only this subcommand's options are written (no `command:` wrapper), with
    # the synth block resolved to plain values: the file's layout is what existing datasets hold.
    resolved = {k: v for k, v in _as_dict(args).items() if k not in ("config", "__path__")}
    resolved["synth"] = synth.to_dict()
    atomic_write(Path(args.out) / "config.yaml", yaml.safe_dump(_plain(resolved), sort_keys=False))
    return _verify_written(manifest, args.only_shards, "places")


def _verify_written(manifest: Path, only_shards: list[int] | None, noun: str) -> int:
    """Verify the whole dataset, unless only some shards were written (the others may be on other
    machines of a job array)."""
    if only_shards is None:
        m = shards.verify(manifest.parent)
        skipped = m.get("skipped_sources", {})
        note = f"; {len(skipped)} unreadable source images skipped (see {shards.MANIFEST})" if skipped else ""
        print(f"{manifest.parent}: {m['num']} {noun} written and verified{note}")
    else:
        print(f"{manifest}: shards {only_shards} written")
    return 0


def _add_places_eval(sub: ActionSubCommands) -> None:
    e = ArgumentParser(
        description="Export a places dataset as database/ + queries/ + ground_truth.csv "
        "(the generic places folder homeloc-evaluate reads)."
    )
    e.add_argument(
        "--data", type=str, required=True, help="places dataset folder (homeloc-synthesize places)"
    )
    e.add_argument("--out", type=str, required=True, help="output folder")
    e.add_argument(
        "--query_presets",
        type=list[str],
        default=["night_lamp", "night_ir", "dusk"],
        help="views lit by these presets become queries",
    )
    e.add_argument(
        "--include_real", type=bool, default=True, help="real webcam captures (views 1..) are queries too"
    )
    e.add_argument(
        "--same_place_iou",
        type=ClosedUnitInterval,
        default=0.3,
        help="crops of one source image overlapping this much count as the same place",
    )
    e.add_argument(
        "--overwrite", type=bool, default=False, help="replace an export made with other data/options"
    )
    sub.add_subcommand("places-eval", e, help="export a places dataset for evaluation")


def _run_places_eval(args: Namespace) -> int:
    gt = export_places_eval(
        args.data, args.out, tuple(args.query_presets), args.include_real, args.same_place_iou, args.overwrite
    )
    info = json.loads((gt.parent / EXPORT_INFO).read_text())
    print(f"{gt.parent}: {info['database']} database images, {info['queries']} queries")
    return 0


def _as_dict(ns: Any) -> dict:
    """A jsonargparse Namespace (or a plain mapping) as a dict."""
    return ns.as_dict() if hasattr(ns, "as_dict") else dict(ns)


def _plain(x: Any) -> Any:
    """Tuples -> lists etc., so yaml.safe_dump accepts the resolved config."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, int | float) and not isinstance(x, bool):  # PositiveInt etc. -> int
        return int(x) if isinstance(x, int) else float(x)
    return x


# ------------------------------------------------------------------------------ subcommand table

RunFn = Callable[[ArgumentParser, Namespace], int]


@dataclass(frozen=True)
class Subcommand:
    """add: builds the subcommand's parser and registers it (under the table's name) on the root's
    subcommands; run: executes it with the root parser and the whole parsed config."""

    add: Callable[[ActionSubCommands], None]
    run: RunFn


def _own(run: Callable[[Namespace], int]) -> RunFn:
    """Adapt a run(args) that needs only its own subcommand's options (most of them)."""

    def run_own(root: ArgumentParser, cfg: Namespace) -> int:
        return run(cfg[cfg.command])

    return run_own


# Every subcommand, in --help order. Plain imports above: a module that fails to import breaks the
# CLI loudly instead of silently dropping its subcommand.
SUBCOMMANDS: dict[str, Subcommand] = {
    "pairs": Subcommand(_add_pairs, _run_pairs),
    "shapes": Subcommand(_add_shapes, _run_shapes),
    "verify": Subcommand(_add_verify, _own(_run_verify)),
    "export-pairs": Subcommand(_add_export_pairs, _own(_run_export_pairs)),
    "preview": Subcommand(preview.add_subcommand, _own(preview.run)),
    "places": Subcommand(_add_places, _own(_run_places)),
    "places-eval": Subcommand(_add_places_eval, _own(_run_places_eval)),
    "stats": Subcommand(stats.add_subcommand, _own(stats.run)),
    "render": Subcommand(render_cli.add_render, _own(render_cli.run_render)),
    "render-preview": Subcommand(render_cli.add_preview, _own(render_cli.run_preview)),
    "render-export": Subcommand(render_cli.add_export, _own(render_cli.run_export)),
    "render-path": Subcommand(render_cli.add_path, _own(render_cli.run_path)),
}


def parser() -> ArgumentParser:
    """The root parser with every subcommand of SUBCOMMANDS registered, in table order."""
    root = ArgumentParser(
        prog="homeloc-synthesize", description=__doc__, env_prefix="HOMELOC", default_env=False
    )
    sub = root.add_subcommands(dest="command")
    for name, cmd in SUBCOMMANDS.items():
        before = set(sub.choices)
        cmd.add(sub)
        added = set(sub.choices) - before
        if added != {name}:  # a builder that registers another name would make `name` unreachable
            raise RuntimeError(f"homeloc-synthesize: the builder of {name!r} registered {sorted(added)}")
    return root


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; one line on stderr on an error: 2 for a bad option, dataset or source,
    1 for a failed run (output folder, a worker that died, ...); --debug (or -v): the traceback."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    debug, argv = debug_requested(argv)
    p = parser()
    cfg = p.parse_args(argv)
    return run_guarded(
        f"homeloc-synthesize {cfg.command}",
        lambda: SUBCOMMANDS[cfg.command].run(p, cfg),
        debug,
        usage_errors=(shards.DatasetError, ImageReadError, FileNotFoundError, ValueError, KeyError),
    )


if __name__ == "__main__":
    sys.exit(main())

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
from typing import Any

import yaml
from jsonargparse import ActionConfigFile, ActionSubCommands, ArgumentParser, Namespace

from homeloc.data_synthesis import jobs, preview, shards, stats
from homeloc.data_synthesis.export_pairs import export_pairs_txt
from homeloc.data_synthesis.export_places import EXPORT_INFO, export_places_eval
from homeloc.data_synthesis.pairs import PairConfig
from homeloc.data_synthesis.place_jobs import synthesize_places
from homeloc.data_synthesis.places import PlaceConfig
from homeloc.runtime.io import ImageReadError, atomic_write

SOURCE_HELP = "sources: skimage | folder:DIR | webcam:DIR | hpatches:DIR, each with optional @WEIGHT"
IMAGE_FORMAT_HELP = ".jpg (q95, compact) or .png (lossless)"
# The `places` description (kept as the first paragraph of the former places module's docstring).
PLACES_DESCRIPTION = (
    "Place datasets for the global (place) descriptor: views of one place under other light and\n"
    "small viewpoint changes, in groups of hard negatives, plus an export to the evaluator's layout."
)


def _common(p: ArgumentParser, shard_size: int) -> None:
    """Options of every dataset-writing subcommand (pairs, shapes, places)."""
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--out", type=str, required=True, help="output folder (created; resumable)")
    p.add_argument("--num", type=int, default=1000, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="dataset seed: sample i depends only on (seed, i)")
    p.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")
    p.add_argument("--shard_size", type=int, default=shard_size, help="samples per tar shard")
    p.add_argument(
        "--only_shards",
        type=int,
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
    pairs.add_argument("--image_format", type=str, default=".jpg", help=IMAGE_FORMAT_HELP)
    sub.add_subcommand("pairs", pairs, help="synthesize a pair dataset")


def _add_shapes(sub: ActionSubCommands) -> None:
    shapes = ArgumentParser(description="MagicPoint-style synthetic shapes with exact corner keypoints.")
    _common(shapes, 1000)
    shapes.add_argument("--size", type=tuple[int, int], default=(240, 320), help="image height, width")
    sub.add_subcommand("shapes", shapes, help="synthesize a synthetic-shapes dataset")


def _run_pairs(root: ArgumentParser, cfg: Namespace) -> int:
    args = cfg.pairs
    synth = root.instantiate_classes(cfg).pairs.synth
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
    export.add_argument("--limit", type=int | None, default=None, help="export at most this many pairs")
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
    p.add_argument("--views", type=int, default=4, help="views per place (view 0 is day-like)")
    p.add_argument(
        "--places_per_source",
        type=int,
        default=4,
        help="places per group sharing one source image (hard negatives of each other)",
    )
    p.add_argument("--size", type=tuple[int, int], default=(240, 320), help="image height, width")
    p.add_argument("--synth", type=PlaceConfig, default=PlaceConfig(), help="place synthesis settings")
    p.add_argument("--image_format", type=str, default=".jpg", help=IMAGE_FORMAT_HELP)
    sub.add_subcommand("places", p, help="synthesize a place-recognition dataset")


def _run_places(args: Namespace) -> int:
    synth = args.synth if isinstance(args.synth, PlaceConfig) else PlaceConfig(**_as_dict(args.synth))
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
        print(f"{manifest.parent}: {m['num']} {noun} written and verified")
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
        type=float,
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
    """Run one subcommand; 2 (message on stderr) on a bad dataset, source or option."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    p = parser()
    cfg = p.parse_args(argv)
    try:
        return SUBCOMMANDS[cfg.command].run(p, cfg)
    except (shards.DatasetError, ImageReadError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"homeloc-synthesize {cfg.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

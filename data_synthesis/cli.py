"""`homeloc-synthesize`: make pair, shapes and place datasets; preview them.

Thin wrapper over data_synthesis.jobs; every subcommand takes --config YAML (see configs/synth/),
prints its resolved config with --print_config and writes it next to the output.
"""

from __future__ import annotations

import logging
import os
import sys

from jsonargparse import ActionConfigFile, ArgumentParser

from homeloc.data_synthesis.pairs import PairConfig


def _common(p: ArgumentParser, shard_size: int) -> None:
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--out", type=str, required=True, help="output folder (created; resumable)")
    p.add_argument("--num", type=int, default=1000, help="number of samples")
    p.add_argument("--seed", type=int, default=0, help="dataset seed: sample i depends only on (seed, i)")
    p.add_argument("--workers", type=int, default=1, help="processes writing shards in parallel")
    p.add_argument("--shard_size", type=int, default=shard_size, help="samples per tar shard")
    p.add_argument("--only_shards", type=int, nargs="+", default=None,
                   help="regenerate/write only these shard numbers (cluster job arrays)")
    p.add_argument("--overwrite", type=bool, default=False, help="replace a dataset made with another config")


def parser() -> ArgumentParser:
    root = ArgumentParser(prog="homeloc-synthesize", description=__doc__, env_prefix="HOMELOC", default_env=False)
    sub = root.add_subcommands(dest="command")

    pairs = ArgumentParser(description="Synthesized day/night image pairs with exact homography and masks.")
    _common(pairs, 500)
    pairs.add_argument("--source", type=str, nargs="+", default=["skimage"],
                       help="sources: skimage | folder:DIR | webcam:DIR | hpatches:DIR, each with optional @WEIGHT")
    pairs.add_argument("--synth", type=PairConfig, default=PairConfig(), help="pair synthesis settings")
    pairs.add_argument("--image_format", type=str, default=".jpg", help=".jpg (q95, compact) or .png (lossless)")
    sub.add_subcommand("pairs", pairs, help="synthesize a pair dataset")

    shapes = ArgumentParser(description="MagicPoint-style synthetic shapes with exact corner keypoints.")
    _common(shapes, 1000)
    shapes.add_argument("--size", type=tuple[int, int], default=(240, 320), help="image height, width")
    sub.add_subcommand("shapes", shapes, help="synthesize a synthetic-shapes dataset")

    verify = ArgumentParser(description="Check every shard of a dataset against its manifest.")
    verify.add_argument("--data", type=str, required=True, help="dataset folder")
    sub.add_subcommand("verify", verify, help="verify a dataset's checksums")

    export = ArgumentParser(description="Write a pair dataset as image files + pairs.txt (what homeloc-evaluate reads).")
    export.add_argument("--data", type=str, required=True, help="pair dataset folder")
    export.add_argument("--out", type=str, required=True, help="output folder (images/ and pairs.txt)")
    export.add_argument("--limit", type=int | None, default=None, help="export at most this many pairs")
    sub.add_subcommand("export-pairs", export, help="export pairs for evaluation")

    _add_optional(sub)
    return root


def _add_optional(sub) -> None:
    """Subcommands living in their own modules (preview, places, places-eval, stats)."""
    for mod in ("homeloc.data_synthesis.preview", "homeloc.data_synthesis.places", "homeloc.data_synthesis.stats"):
        try:
            m = __import__(mod, fromlist=["add_subcommand"])
        except ImportError:
            continue
        m.add_subcommand(sub)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    from homeloc.data_synthesis import jobs, shards
    from homeloc.runtime.io import ImageReadError

    p = parser()
    cfg = p.parse_args(argv)
    cmd = cfg.command
    args = cfg[cmd]
    try:
        if cmd in ("pairs", "shapes"):
            if cmd == "pairs":
                synth = p.instantiate_classes(cfg)[cmd].synth
                manifest = jobs.synthesize_pairs(args.source, args.out, args.num, args.seed, synth, args.workers,
                                                 args.shard_size, args.overwrite, args.only_shards, args.image_format)
            else:
                manifest = jobs.synthesize_shapes(args.out, args.num, args.seed, tuple(args.size), args.workers,
                                                  args.shard_size, args.overwrite, args.only_shards)
            from homeloc.runtime.io import atomic_write

            atomic_write(os.path.join(args.out, "config.yaml"), p.dump(cfg, skip_none=False))
            m = shards.verify(manifest.parent) if args.only_shards is None else None
            print(f"{manifest.parent}: {m['num'] if m else 'partial'} samples written and verified" if m else f"{manifest}: shards {args.only_shards} written")
        elif cmd == "export-pairs":
            from homeloc.data_synthesis.export_pairs import export_pairs_txt

            print(f"pairs file: {export_pairs_txt(args.data, args.out, args.limit)}")
        elif cmd == "verify":
            m = shards.verify(args.data)
            print(f"{args.data}: {m['kind']} dataset OK, {sum(s['count'] for s in m['shards'].values())} samples in {len(m['shards'])} shards")
        else:
            import importlib

            mod, fn = {"preview": ("homeloc.data_synthesis.preview", "run"), "places": ("homeloc.data_synthesis.places", "run"),
                       "places-eval": ("homeloc.data_synthesis.places", "run_eval"), "stats": ("homeloc.data_synthesis.stats", "run")}[cmd]
            return getattr(importlib.import_module(mod), fn)(args)
    except (shards.DatasetError, ImageReadError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"homeloc-synthesize {cmd}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

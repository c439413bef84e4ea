"""`homeloc-train`: fit | validate | test (LightningCLI, YAML configs in configs/train/) and label.

    homeloc-train fit --config configs/train/keypoints_cpu.yaml [--ckpt_path last]
    homeloc-train label --checkpoint CKPT --images DIR --out DIR
    homeloc-train cache-teacher --data PAIRS [PAIRS3D ...] --out CACHE [--teacher aliked-n16|xfeat]
    homeloc-train pack-pairs --data PAIRS [PAIRS3D ...] --teacher_cache CACHE --out PACKED

Errors are one line on stderr (2: a bad option or config value, 1: a failed run); --debug (or -v)
shows the traceback.
"""

from __future__ import annotations

import os
import sys

from homeloc.data_synthesis.cli_errors import UsageError, debug_requested, run_guarded


def _label(argv: list[str]) -> int:
    from jsonargparse import CLI

    from homeloc.train.label import label_images

    out = CLI(label_images, args=argv, as_positional=False)
    print(f"labels written: {out}")
    return 0


def _cache_teacher(argv: list[str]) -> int:
    from homeloc.data_synthesis.cli_errors import OneLineParser
    from homeloc.train.teacher_cache import build_teacher_cache

    parser = OneLineParser(prog="homeloc-train cache-teacher", description=build_teacher_cache.__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="pair folders (pairs / pairs3d)")
    parser.add_argument("--out", required=True, help="cache folder (created; resumable)")
    parser.add_argument(
        "--teacher", default="aliked-n16", help="aliked-n16 | aliked-t16 | aliked-n32 | xfeat"
    )
    a = parser.parse_args(argv)
    print(f"teacher cache written: {build_teacher_cache(a.data, a.out, a.teacher)}")
    return 0


def _pack_pairs(argv: list[str]) -> int:
    from homeloc.data_synthesis.cli_errors import OneLineParser, PositiveInt
    from homeloc.train.packed_pairs import pack_pairs

    parser = OneLineParser(prog="homeloc-train pack-pairs", description=pack_pairs.__doc__)
    parser.add_argument("--data", nargs="+", required=True, help="pair folders (pairs / pairs3d), in order")
    parser.add_argument("--out", required=True, help="packed folder (created; resumable)")
    parser.add_argument("--teacher_cache", default=None, help="cache-teacher folder covering every image")
    parser.add_argument("--descriptors", action="store_true", help="also store the teacher descriptors")
    parser.add_argument("--shard_size", type=PositiveInt, default=200, help="pairs per shard")
    parser.add_argument("--overwrite", action="store_true", help="replace a pack made with other inputs")
    a = parser.parse_args(argv)
    out = pack_pairs(a.data, a.out, a.teacher_cache, a.descriptors, a.shard_size, a.overwrite)
    print(f"packed pairs written: {out}")
    return 0


def _innermost(e: BaseException) -> BaseException:
    """The exception at the bottom of a chain (jsonargparse wraps a constructor's ValueError)."""
    while (e.__cause__ or e.__context__) is not None:
        e = e.__cause__ or e.__context__
    return e


def _fit(argv: list[str]) -> int:
    import warnings

    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    # argv is sys.argv[1:] (less --debug) on purpose: not the mistake this warning is about
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")

    from homeloc.data_synthesis.cli_errors import OneLineErrors

    class Parser(OneLineErrors, LightningArgumentParser):
        pass

    class CLI(LightningCLI):
        def instantiate_classes(self) -> None:
            """A model/data/trainer argument its class refuses (an unknown preset...) is bad usage."""
            try:
                super().instantiate_classes()
            except (ValueError, TypeError, KeyError) as e:
                text = str(e)
                part = (
                    "--data" if "DataModule" in text else "--model" if "LightningModule" in text else "config"
                )
                raise UsageError(f"{part}: {_innermost(e)}") from e

    CLI(
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=argv,
        save_config_kwargs={"overwrite": True},
        parser_class=Parser,
        parser_kwargs={"prog": "homeloc-train", "description": __doc__},
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("WANDB_MODE", "offline")  # no network on robots or here
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    debug, argv = debug_requested(argv)
    if argv and argv[0] == "label":
        return run_guarded("homeloc-train label", lambda: _label(argv[1:]), debug)
    if argv and argv[0] == "cache-teacher":
        return run_guarded(
            "homeloc-train cache-teacher", lambda: _cache_teacher(argv[1:]), debug, (ValueError,)
        )
    if argv and argv[0] == "pack-pairs":
        from homeloc.data_synthesis.shards import DatasetError
        from homeloc.train.teacher_cache import CacheMiss

        return run_guarded(
            "homeloc-train pack-pairs",
            lambda: _pack_pairs(argv[1:]),
            debug,
            (ValueError,),
            (DatasetError, CacheMiss),
        )
    prog = f"homeloc-train {argv[0]}" if argv and not argv[0].startswith("-") else "homeloc-train"
    return run_guarded(prog, lambda: _fit(argv), debug)


if __name__ == "__main__":
    sys.exit(main())

"""`homeloc-evaluate`: matching, places and speed comparisons of our models against peers.

A thin wrapper over eval.evaluate_matching.run_matching, eval.evaluate_places.run_places and
eval.speed.run_speed. Every subcommand accepts --config FILE.yaml and --print_config.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ActionConfigFile, ArgumentParser

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.eval.errors import EvalError

SPEC_HELP = (
    "dataset: a path whose kind is detected from its layout, or KIND:PATH with KIND one of "
    "pairs (pairs.txt file), hpatches (i_*/v_* folders), wxbs (category/scene/corrs.txt), "
    "webcam (scene folders of YYYYMMDD_HHMMSS images), places (database/ queries/ "
    "ground_truth.csv), nordland (summer/ winter/). Formats: docs/evaluate.md"
)


def _flag(parser: ArgumentParser, name: str, help: str) -> None:
    parser.add_argument(
        name, type=bool, nargs="?", const=True, default=False, help=help + " (the flag alone means true)"
    )


def _common(parser: ArgumentParser, task: str) -> None:
    from homeloc.eval.methods import method_help

    parser.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    parser.add_argument(
        "--methods",
        type=str,
        nargs="+",
        required=True,
        help=f"methods to compare in one table; NAME or NAME:ARG (ours:PATH = an exported .onnx or a torch checkpoint). Available: {method_help(task)}",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder (summary.json, table.md, plots, CSV, config.yaml)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads for OpenCV, torch, ONNX Runtime and faiss"
    )


def _cache(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--cache-dir",
        type=Path | None,
        default=None,
        help="feature cache folder (default: OUT/cache); keyed by method, model-file hash, image content, resize, keypoint budget",
    )
    _flag(parser, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    _flag(
        parser,
        "--recompute",
        "ignore cached features and extract again (e.g. after changing a method's code)",
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="homeloc-evaluate",
        description="Evaluate local features (matching), place descriptors (places) and runtime (speed) under lighting change, ours side by side with peers.",
    )
    sub = parser.add_subcommands(dest="command", required=True)
    sub.add_subcommand(
        "matching", _matching_parser(), help="keypoint matching: repeatability, MMA, homography accuracy, WxBS GT recall"
    )
    sub.add_subcommand("places", _places_parser(), help="place recognition: R@1/5/10, AUC_PR, R@100P")
    sub.add_subcommand("speed", _speed_parser(), help="runtime: ms/frame, size_mb, gmacs")
    return parser


def _matching_parser() -> ArgumentParser:
    m = ArgumentParser(
        description="Match image pairs with mutual nearest neighbours and score them against ground truth (homography or WxBS correspondences)."
    )
    _common(m, "local")
    m.add_argument("--data", type=str, required=True, help=SPEC_HELP)
    m.add_argument(
        "--max-keypoints",
        type=int,
        default=1024,
        help="keypoint budget per image, the same for every method (highest scores kept)",
    )
    m.add_argument(
        "--resize",
        type=int,
        default=640,
        help="downscale images so the longer side is at most this many px before extraction (0 = keep); keypoints are mapped back to the original pixels",
    )
    _cache(m)
    _flag(
        m,
        "--webcam-homography",
        "webcam: warp the second image by a seeded random homography (GT = that H) instead of identity GT",
    )
    m.add_argument(
        "--webcam-buckets",
        type=Literal["brightness", "hour"],
        default="brightness",
        help="webcam lighting buckets: brightness relative to the scene's median (night < 0.60 <= dusk < 0.85 <= day), or capture hour from the file name (night 21-05h, dusk 05-08h and 17-21h, day 08-17h)",
    )
    m.add_argument("--seed", type=int, default=0, help="seed of the webcam random homographies")
    m.add_argument(
        "--wxbs-categories",
        type=str,
        nargs="+",
        default=None,
        help="WxBS categories to evaluate (default all; the lighting ones are WGALBS WGLBS WLABS)",
    )
    m.add_argument(
        "--h-threshold",
        type=float,
        default=3.0,
        help="USAC_MAGSAC inlier threshold (px) for homography estimation",
    )
    m.add_argument(
        "--f-threshold",
        type=float,
        default=1.0,
        help="USAC_MAGSAC inlier threshold (px) for fundamental-matrix estimation (WxBS)",
    )
    m.add_argument(
        "--visualize",
        type=int,
        default=3,
        help="number of pairs drawn with matches (green correct, red wrong) per method",
    )
    return m


def _places_parser() -> ArgumentParser:
    p = ArgumentParser(
        description="Retrieve the database image of each query by cosine similarity; recall@1/5/10, top-1 precision-recall AUC and recall at 100% precision."
    )
    _common(p, "places")
    p.add_argument("--data", type=str, required=True, help=SPEC_HELP)
    p.add_argument(
        "--resize",
        type=int,
        default=640,
        help="longer-side limit (px) for methods that resize (vlad_sift, ours)",
    )
    p.add_argument(
        "--max-keypoints",
        type=int,
        default=1024,
        help="keypoint budget passed to methods built on local features (ours)",
    )
    _cache(p)
    p.add_argument(
        "--nordland-split",
        type=Literal["all", "first2of3", "last3rd"],
        default="last3rd",
        help="Nordland places kept (ordered by frame): all, the first two thirds (training), or the last third (held out, default)",
    )
    p.add_argument(
        "--nordland-tolerance",
        type=int,
        default=2,
        help="Nordland: database places within +-N positions of the query's own count as correct",
    )
    return p


def _speed_parser() -> ArgumentParser:
    s = ArgumentParser(description="Median milliseconds per frame after warm-up, model file size and GMACs.")
    _common(s, "local")
    s.add_argument("--size", type=str, default="480x640", help="input size HxW")
    s.add_argument("--max-keypoints", type=int, default=1024, help="keypoint budget")
    s.add_argument(
        "--image",
        type=Path | None,
        default=None,
        help="image to time on (resized to --size); default a synthetic textured image",
    )
    s.add_argument("--warmup", type=int, default=5, help="untimed warm-up runs")
    s.add_argument("--runs", type=int, default=20, help="timed runs (the median is reported)")
    _flag(s, "--overwrite", "replace results of a different configuration in OUT (otherwise refused)")
    return s


def _run(command: str, ns) -> Path:
    args = {k: v for k, v in vars(ns).items() if k not in ("config", "__path__")}
    if command == "matching":
        from homeloc.eval.config import MatchingConfig
        from homeloc.eval.evaluate_matching import run_matching

        return run_matching(MatchingConfig(**args))
    if command == "places":
        from homeloc.eval.config import PlacesConfig
        from homeloc.eval.evaluate_places import run_places

        return run_places(PlacesConfig(**args))
    from homeloc.eval.config import SpeedConfig
    from homeloc.eval.speed import run_speed

    return run_speed(SpeedConfig(**args))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 evaluation error, 2 usage error)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    parser = build_parser()
    ns = parser.parse_args(argv)
    command = ns.command
    sub_ns = ns[command]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        from homeloc.runtime.io import ImageReadError

        out = _run(command, sub_ns)
    except (EvalError, DataError, ImageReadError, FileNotFoundError) as e:
        print(f"homeloc-evaluate {command}: error: {e}", file=sys.stderr)
        return 1
    print((out / "table.md").read_text())
    print(f"results in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

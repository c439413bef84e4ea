"""`homeloc-export`: a trained checkpoint -> fp32 (and int8) ONNX for the robot, with parity reports.

A thin wrapper over ``export.pipeline.export_model``; accepts ``--config FILE.yaml`` (e.g. the
``config.yaml`` an earlier export wrote) and ``--print_config``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ActionConfigFile
from jsonargparse.typing import restricted_number_type

from homeloc.data_synthesis.cli_errors import (
    ClosedUnitInterval,
    NonNegativeInt,
    PositiveInt,
    debug_requested,
    run_guarded,
)
from homeloc.data_synthesis.cli_errors import OneLineParser as ArgumentParser  # one-line errors

OPSET = restricted_number_type("Opset", int, (">=", 17))


def _flag(parser: ArgumentParser, name: str, help: str, default: bool = False) -> None:
    parser.add_argument(
        name, type=bool, nargs="?", const=True, default=default, help=help + " (the flag alone means true)"
    )


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="homeloc-export",
        description=(
            "Export a KeypointNet or PlaceNet checkpoint (ours or Lightning) to ONNX (opset 17, "
            "homeloc.* metadata), optionally static int8 QDQ, and write parity reports: "
            "OUT/<kind>.fp32.onnx, OUT/<kind>.int8.onnx, OUT/parity.json, OUT/parity.md, OUT/config.yaml."
        ),
    )
    p.add_argument("--config", action=ActionConfigFile, help="YAML file with any of these options")
    p.add_argument("--checkpoint", type=Path, required=True, help="model.save() file or Lightning .ckpt")
    p.add_argument(
        "--kind",
        type=Literal["keypoints", "places"],
        required=True,
        help="which network the checkpoint holds",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    _int8_options(p)
    _model_options(p)
    _parity_options(p)
    _flag(p, "--overwrite", "replace an export of other options in OUT (otherwise refused)")
    return p


def _int8_options(p: ArgumentParser) -> None:
    _flag(
        p, "--int8", "also write a static int8 QDQ model (per-channel weights), calibrated on --calibration"
    )
    p.add_argument(
        "--calibration",
        type=str,
        nargs="+",
        default=["skimage"],
        help="calibration image sources (data_synthesis specs): skimage, folder:DIR, webcam:DIR, hpatches:DIR, SPEC@WEIGHT",
    )
    p.add_argument("--num-calibration", type=PositiveInt, default=200, help="number of calibration images")
    p.add_argument(
        "--calibration-size",
        type=PositiveInt,
        nargs=2,
        default=None,
        help="H W of keypoint calibration images (default 480 640; places use their input size)",
    )
    p.add_argument(
        "--night-share",
        type=ClosedUnitInterval,
        default=0.5,
        help="share of calibration images relit by the night_lamp / night_ir / dusk presets",
    )
    p.add_argument(
        "--seed", type=NonNegativeInt, default=0, help="seed of calibration images and parity pairs"
    )


def _model_options(p: ArgumentParser) -> None:
    p.add_argument(
        "--input-size",
        type=PositiveInt,
        nargs=2,
        default=None,
        help="places: H W the network runs at, when the checkpoint does not record input_size (default 128 160)",
    )
    p.add_argument(
        "--model-version",
        type=str | None,
        default=None,
        help="homeloc.model_version (default STEM[-stepN]-WEIGHTSHASH)",
    )
    p.add_argument("--opset", type=OPSET, default=17, help="ONNX opset (>= 17)")


def _parity_options(p: ArgumentParser) -> None:
    _flag(p, "--parity", "write parity.json / parity.md", default=True)
    p.add_argument(
        "--parity-data",
        type=str | None,
        default=None,
        help="keypoints: pair set (default webcam:../shared/data/webcam with seeded homographies, synthetic pairs when absent; "
        "'synthetic'; 'none'; or any homography dataset spec of homeloc-evaluate); places: place set (default "
        "nordland:../shared/data/nordland_64x32_summer_winter, last third; 'none')",
    )
    p.add_argument(
        "--parity-pairs",
        type=PositiveInt,
        default=32,
        help="keypoints: number of pairs drawn from the pair set",
    )
    p.add_argument(
        "--parity-limit",
        type=PositiveInt | None,
        default=None,
        help="places: keep the first N places (default all)",
    )
    p.add_argument(
        "--max-keypoints",
        type=PositiveInt,
        default=1024,
        help="keypoints kept per image in the parity metrics",
    )
    p.add_argument(
        "--detection-threshold",
        type=float | None,
        default=None,
        help="keypoints: the heatmap probability this model's keypoints need, recorded in the ONNX "
        "metadata for the runtime (default: none recorded, the runtime's 0.02)",
    )
    p.add_argument(
        "--latency-runs", type=PositiveInt, default=20, help="timed runs per backend (median reported)"
    )
    p.add_argument(
        "--latency-threads", type=PositiveInt, nargs="+", default=[1, 2], help="thread counts timed"
    )


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 done, 2 a bad option or checkpoint/data (one line naming it), 1 a failed run;
    --debug (or -v): the traceback instead of the line."""
    debug, argv = debug_requested(argv)
    parser = build_parser()
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("onnxruntime").setLevel(logging.WARNING)
    from homeloc.data_synthesis.formats.errors import DataError
    from homeloc.export.checkpoint import CheckpointError
    from homeloc.export.pipeline import ExportConfig, ExportError, export_model

    args = {k: v for k, v in vars(ns).items() if k not in ("config", "__path__")}

    def run() -> int:
        out = export_model(ExportConfig(**args))
        print(out)
        parity_md = out / "parity.md"
        if parity_md.is_file():
            print(parity_md.read_text())
        return 0

    usage = (CheckpointError, ExportError, DataError, FileNotFoundError)
    return run_guarded("homeloc-export", run, debug, usage_errors=usage)


if __name__ == "__main__":
    sys.exit(main())

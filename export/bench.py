"""Export benchmark: ONNX Runtime fp32 vs int8 latency (1 and 2 threads), sizes, export cost.

    python -m homeloc.export.bench [--checkpoint keypoints:PATH places:PATH ...] [--runs 10]

Without checkpoints it exports untrained networks (BatchNorm statistics from synthetic images so
activation ranges are realistic): the ``edge`` KeypointNet at 480x640 and PlaceNet with the
``keypoint:edge`` and ``mobilenetv3_small`` trunks at 128x160. int8 is the export job's static QDQ
(``export.quantize``) calibrated on a few synthetic images; latency is the median of ``--runs``
interleaved single-image runs after warm-up (``export.timing``). Prints one markdown table.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from homeloc.export.calibration import calibration_images, synthetic_images
from homeloc.export.checkpoint import load_checkpoint
from homeloc.export.onnx_export import export_onnx, export_places_onnx
from homeloc.export.quantize import (
    FLOAT_MODULES,
    PLACES_FLOAT_MODULES,
    PLACES_QUANTIZED_OPS,
    QUANTIZED_OPS,
    quantize_int8,
)
from homeloc.export.timing import time_sessions

log = logging.getLogger(__name__)

KEYPOINT_SIZE = (480, 640)


@torch.no_grad()
def _calibrate_bn(model: nn.Module, images: list[np.ndarray]) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    for img in images:
        model(torch.from_numpy(img))
    model.eval()


def default_models() -> list[tuple[str, str, nn.Module, tuple[int, int]]]:
    """(name, kind, untrained model, input size) of the benchmarked defaults."""
    from homeloc.models.keypoints import KeypointNet
    from homeloc.models.places import PlaceNet

    torch.manual_seed(0)
    out: list[tuple[str, str, nn.Module, tuple[int, int]]] = []
    kp = KeypointNet("edge")
    _calibrate_bn(kp, synthetic_images(4, *KEYPOINT_SIZE, seed=1))
    out.append(("keypoints edge", "keypoints", kp, KEYPOINT_SIZE))
    for backbone in ("keypoint:edge", "mobilenetv3_small"):
        net = PlaceNet(backbone)
        _calibrate_bn(net, [np.repeat(x, 3, axis=1) for x in synthetic_images(4, *net.input_size, seed=2)])
        out.append((f"places {backbone}", "places", net, net.input_size))
    return out


def bench_one(
    kind: str, model: nn.Module, size: tuple[int, int], tmp: Path, runs: int, calib: int, threads: list[int]
) -> dict:
    """Export, quantize and time one model; returns a row of the table."""
    gray = kind == "keypoints"
    t0 = time.perf_counter()
    fp32 = (
        export_onnx(model, tmp / "fp32.onnx", height=size[0], width=size[1])
        if gray
        else export_places_onnx(model, tmp / "fp32.onnx", size)
    )
    t1 = time.perf_counter()
    images = [c.array for c in calibration_images([], calib, size, gray=gray)]
    int8 = quantize_int8(
        fp32,
        tmp / "int8.onnx",
        images,
        FLOAT_MODULES if gray else PLACES_FLOAT_MODULES,
        QUANTIZED_OPS if gray else PLACES_QUANTIZED_OPS,
    )
    t2 = time.perf_counter()
    row = {
        "export_s": t1 - t0,
        "quantize_s": t2 - t1,
        "fp32_mb": fp32.stat().st_size / 1e6,
        "int8_mb": int8.stat().st_size / 1e6,
    }
    x = images[0]
    for t in threads:
        ms = time_sessions({"fp32": fp32, "int8": int8}, x, runs, threads=t)
        row[f"fp32_{t}"], row[f"int8_{t}"] = ms["fp32"], ms["int8"]
    return row


def run(checkpoints: list[str], runs: int = 10, calib: int = 8, threads: tuple[int, ...] = (1, 2)) -> str:
    """Benchmark the given ``KIND:PATH`` checkpoints (default: untrained presets); markdown table."""
    if checkpoints:
        models = []
        for spec in checkpoints:
            kind, _, path = spec.partition(":")
            loaded = load_checkpoint(path, kind)
            size = loaded.input_size or KEYPOINT_SIZE
            models.append((f"{kind} {Path(path).name}", kind, loaded.model, size))
    else:
        models = default_models()
    rows = {}
    for name, kind, model, size in models:
        with tempfile.TemporaryDirectory(prefix="homeloc-bench-") as tmp:
            rows[name] = (size, bench_one(kind, model, size, Path(tmp), runs, calib, list(threads)))
    load = os.getloadavg()[0]
    head = "| model | input | export s | quantize s | fp32 MB | int8 MB | " + " | ".join(
        f"fp32 ms {t}t | int8 ms {t}t | speed-up {t}t" for t in threads
    )
    lines = [
        f"Export: ONNX Runtime CPU, median of {runs} interleaved runs, batch 1; {os.cpu_count()} cores, "
        f"1-min load average {load:.1f} (shared machine: absolute numbers move, ratios less)",
        "",
        head + " |",
        "|---|---|---|---|---|---|" + "---|---|---|" * len(threads),
    ]
    for name, (size, r) in rows.items():
        cells = [
            f"{r[f'fp32_{t}']:.2f} | {r[f'int8_{t}']:.2f} | {r[f'fp32_{t}'] / r[f'int8_{t}']:.2f}x"
            for t in threads
        ]
        lines.append(
            f"| {name} | {size[0]}x{size[1]} | {r['export_s']:.1f} | {r['quantize_s']:.1f} | {r['fp32_mb']:.2f} | "
            f"{r['int8_mb']:.2f} | " + " | ".join(cells) + " |"
        )
    lines += ["", "Target (issue 6): int8 >= 2x faster than ORT fp32."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", nargs="*", default=[], help="KIND:PATH, KIND keypoints or places")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--calibration", type=int, default=8, help="synthetic calibration images")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    print(run(args.checkpoint, args.runs, args.calibration, tuple(args.threads)))


if __name__ == "__main__":
    main()

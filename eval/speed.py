"""`homeloc-evaluate speed`: median ms/frame after warm-up, model size, GMACs; and count_macs()."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from homeloc.eval.config import SpeedConfig, prepare_out, set_threads
from homeloc.eval.errors import EvalError
from homeloc.eval.methods import create_method
from homeloc.export.timing import time_interleaved
from homeloc.runtime.io import read_image

log = logging.getLogger(__name__)


def count_macs(module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on zeros of `input_shape` (models.macs counts them:
    Conv/ConvTranspose/Linear layers; pooling, normalisation and activations are not counted)."""
    import torch

    from homeloc.models.macs import count_macs as _count

    param = next(module.parameters(), None)
    x = torch.zeros(input_shape, dtype=param.dtype if param is not None else torch.float32)
    return _count(module, x)


def parse_size(size: str) -> tuple[int, int]:
    """'480x640' -> (480, 640) as (height, width)."""
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise EvalError(f"--size must look like HxW (e.g. 480x640), got {size!r}") from None
    if h < 32 or w < 32:
        raise EvalError(f"--size must be at least 32x32, got {size!r}")
    return h, w


def synthetic_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic textured RGB test image (smoothed noise plus shapes), when none is given."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(
        rng.uniform(0, 255, (height // 16 + 1, width // 16 + 1)).astype(np.float32), (width, height)
    )
    img = cv2.GaussianBlur(base + rng.normal(0, 12, (height, width)).astype(np.float32), (0, 0), 1.0)
    for _ in range(40):
        c = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if rng.random() < 0.5:
            cv2.circle(img, c, int(rng.integers(5, 40)), float(rng.integers(0, 255)), -1)
        else:
            d = (c[0] + int(rng.integers(10, 80)), c[1] + int(rng.integers(10, 80)))
            cv2.rectangle(img, c, d, float(rng.integers(0, 255)), -1)
    gray = np.clip(img, 0, 255).astype(np.uint8)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)


def static_info(method, image: np.ndarray) -> dict:
    """size_mb (deployed model file), gmacs (torch `net` attribute), keypoints on the image."""
    x = method.net_input(image) if hasattr(method, "net_input") and hasattr(method, "dense") else None
    deployed = method.deployed_file(image) if hasattr(method, "deployed_file") else method.model_file
    return {
        "size_mb": Path(deployed).stat().st_size / 1e6 if deployed is not None else None,
        "gmacs": count_macs(method.net, tuple(x.shape)) / 1e9
        if x is not None and hasattr(method, "net")
        else None,
        "keypoints": float(len(method.extract(image))),
    }


def measure(methods: dict[str, object], image: np.ndarray, warmup: int, runs: int) -> dict[str, dict]:
    """Per method: ms (whole extract), ms_net (dense network alone, for methods exposing
    net_input()/dense()), size_mb, gmacs, keypoints. Methods are timed interleaved."""
    full = {k: (lambda m=m: m.extract(image)) for k, m in methods.items()}
    nets = {}
    for k, m in methods.items():
        if hasattr(m, "net_input") and hasattr(m, "dense"):
            x = m.net_input(image)
            nets[k] = lambda m=m, x=x: m.dense(x)
    # Round-robin timing (run r of every method, then r + 1): background load hits all alike.
    ms = time_interleaved(full, runs, warmup)
    ms_net = time_interleaved(nets, runs, warmup) if nets else {}
    return {k: {"ms": ms[k], "ms_net": ms_net.get(k), **static_info(m, image)} for k, m in methods.items()}


def run_speed(config: SpeedConfig) -> Path:
    """Time every method on one image of --size; writes DIR/summary.json and DIR/table.md."""
    from homeloc.eval import report
    from homeloc.runtime.machine import cpu_line

    set_threads(config.threads)
    h, w = parse_size(config.size)
    out = Path(config.out)
    prepare_out(out, config, "speed")
    source = read_image(config.image) if config.image else synthetic_image(h, w)
    image = cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA)
    methods = {
        spec: create_method(
            spec, "local", max_keypoints=config.max_keypoints, resize=max(h, w), threads=config.threads
        )
        for spec in config.methods
    }
    set_threads(config.threads)
    log.info("timing %s at %dx%d, interleaved", ", ".join(methods), h, w)
    summary = measure(methods, image, config.warmup, config.runs)
    report.write_json(out / "summary.json", summary)
    src = config.image if config.image else "a synthetic textured image"
    title = (
        f"Speed at {h}x{w}, {config.threads} thread(s), median of {config.runs} interleaved runs "
        f"after {config.warmup} warm-up"
    )
    notes = [
        f"input: {src}, resized to {w}x{h}; budget {config.max_keypoints} keypoints",
        "ms/frame: the whole extract() (preprocessing, network, NMS/top-k, descriptors); ms net: the dense network alone",
        "GMACs: conv/linear multiply-accumulates of the dense network (hook counter); size: weights file (ONNX file for *-onnx)",
        f"CPU: {cpu_line()}",
    ]
    report.write_table(out / "table.md", report.speed_table(summary, title, notes))
    return out

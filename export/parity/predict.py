"""Running the parity backends: torch, ONNX Runtime fp32, ONNX Runtime int8.

Each backend is a callable ``input array -> outputs`` so that every metric treats them alike;
torch is the reference and always comes first (``BACKENDS`` order). Keypoint outputs go through
the robot's own numpy post-processing (``homeloc.runtime.postprocess``) for every backend, so the
comparison is of what the robot would see. Also here: the latency table (interleaved timing) and
the size/hash of each backend's weights.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from homeloc.export.timing import ort_session, time_interleaved
from homeloc.runtime.machine import cpu_line

BACKENDS = ("torch", "onnx_fp32", "onnx_int8")
Backend = Callable[[np.ndarray], Any]


def _ort_backends(fp32: Path, int8: Path | None, threads: int) -> dict[str, Any]:
    """ORT sessions for the fp32 model and, when given, the int8 model (report order)."""
    sessions = {"onnx_fp32": ort_session(fp32, threads)}
    if int8 is not None:
        sessions["onnx_int8"] = ort_session(int8, threads)
    return sessions


def keypoint_backends(model: nn.Module, fp32: Path, int8: Path | None, threads: int) -> dict[str, Backend]:
    """``{backend: fn}``, fn: 1 x 1 x H x W float32 -> [logits, dense descriptors] (numpy).

    ORT sessions use ``threads`` intra-op threads; torch uses whatever is set globally
    (``latency_table`` sets it). Order: torch, onnx_fp32[, onnx_int8].
    """
    sessions = _ort_backends(fp32, int8, threads)

    def run_torch(x: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            return [t.numpy() for t in model(torch.from_numpy(x))]

    fns: dict[str, Backend] = {"torch": run_torch}
    for k, s in sessions.items():
        fns[k] = lambda x, s=s: s.run(None, {"image": x})
    return fns


def place_backends(model: nn.Module, fp32: Path, int8: Path | None, threads: int) -> dict[str, Backend]:
    """``{backend: fn}``, fn: N x 3 x H x W float32 -> N x D global descriptors (numpy).

    Same threading and order as ``keypoint_backends``.
    """
    sessions = _ort_backends(fp32, int8, threads)

    def run_torch(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    fns: dict[str, Backend] = {"torch": run_torch}
    for k, s in sessions.items():
        fns[k] = lambda x, s=s: s.run(None, {"image": x})[0]
    return fns


# ------------------------------------------------------------------------------------ keypoints
@dataclass
class KeypointExtraction:
    """Every backend's outputs on one image.

    dense: {backend: [logits, dense descriptors]} at network scale; features: {backend:
    ``runtime.postprocess.Features``} at network scale; scale: (sx, sy) from network-scale pixels
    back to the original image's.
    """

    dense: dict[str, Any]
    features: dict[str, Any]
    scale: np.ndarray

    def in_original_pixels(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{backend: (keypoints in original-image pixels, descriptors)}, for MMA against the
        original homography (pixel centres map to pixel centres, as in ``eval``)."""
        return {b: ((f.keypoints + 0.5) * self.scale - 0.5, f.descriptors) for b, f in self.features.items()}


def extract_keypoints(
    fns: Mapping[str, Backend], image: np.ndarray, resize: int, max_keypoints: int
) -> KeypointExtraction:
    """Run every backend on ``image`` (RGB uint8, downscaled to a ``resize`` longer side) and
    post-process each output to its top-``max_keypoints`` keypoints."""
    from homeloc.runtime.postprocess import postprocess, prepare_image, resize_longer

    small = resize_longer(image, resize)
    x, size = prepare_image(small)
    sy, sx = image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]
    dense = {b: fn(x) for b, fn in fns.items()}
    feats = {b: postprocess(d[0], d[1], size, max_keypoints=max_keypoints) for b, d in dense.items()}
    return KeypointExtraction(dense, feats, np.array([sx, sy], np.float32))


# ------------------------------------------------------------------------------------ places
def place_descriptors(fns: Mapping[str, Backend], images: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """{backend: N x D descriptors} of ``images`` (N x 3 x H x W), run ``batch`` images at a time."""
    return {
        b: np.concatenate([fn(images[i : i + batch]) for i in range(0, len(images), batch)])
        for b, fn in fns.items()
    }


# ------------------------------------------------------------------------------------ latency, sizes
def latency_table(
    make_fns: Callable[[int], dict[str, Callable]], image: np.ndarray, runs: int, threads: Sequence[int]
) -> dict[str, Any]:
    """``{"size": "HxW", "runs": runs, "threads_<t>": {backend: median ms}}``, backends interleaved.

    Also ``load_average_1min``, ``cpu_count``, ``batch``: on a shared CPU the load explains the
    numbers. torch runs with ``torch.set_num_threads(t)`` (restored afterwards)."""
    out: dict[str, Any] = {
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_line(),
        "size": f"{image.shape[2]}x{image.shape[3]}",
        "batch": int(image.shape[0]),
        "runs": runs,
    }
    before = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(int(t))
            fns = make_fns(int(t))
            ms = time_interleaved({k: (lambda fn=fn: fn(image)) for k, fn in fns.items()}, runs, warmup=3)
            out[f"threads_{t}"] = {k: round(v, 3) for k, v in ms.items()}
    finally:
        torch.set_num_threads(before)
    return out


def file_info(path: Path | None) -> dict[str, Any] | None:
    """``{path (file name), bytes, sha256}`` of a model file; None when absent."""
    if path is None or not Path(path).is_file():
        return None
    data = Path(path).read_bytes()
    return {"path": Path(path).name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def state_info(model: nn.Module) -> dict[str, Any]:
    """Size of the torch weights (state dict tensors), for comparison with the ONNX files."""
    return {
        "path": "state_dict",
        "bytes": int(sum(v.numel() * v.element_size() for v in model.state_dict().values())),
    }


def backend_files(model: nn.Module, fp32: Path, int8: Path | None) -> dict[str, Any]:
    """The report's ``files`` section: torch's state dict size, both ONNX files (None if absent)."""
    return {"torch": state_info(model), "onnx_fp32": file_info(fp32), "onnx_int8": file_info(int8)}

"""Keypoint parity: a keypoint network's ONNX exports against its torch model.

Every backend's dense outputs go through the same numpy post-processing
(``runtime.postprocess.postprocess``, top-``max_keypoints``); against torch we measure the share
of keypoints reproduced within 1 px, the descriptor cosine at those shared keypoints (both dense
maps sampled at the torch keypoint) and the largest dense-output difference; on a homography pair
set, MMA@1/3/5 of mutual-nearest-neighbour matches; latency at 480x640; file sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from homeloc.export.parity.data import ParityPair, keypoint_latency_image, synthetic_pairs
from homeloc.export.parity.fidelity import (
    keypoint_accuracy,
    keypoint_fidelity,
    keypoint_overlap,
    max_abs_diff,
    pair_mma,
    reference_fidelity,
    unit_cosine,
)
from homeloc.export.parity.predict import (
    Backend,
    KeypointExtraction,
    backend_files,
    extract_keypoints,
    keypoint_backends,
    latency_table,
)
from homeloc.export.parity.targets import target_rows

FIDELITY_FALLBACK_PAIRS = 4  # synthetic pairs for the fidelity metrics when no pair set is given


@dataclass
class KeypointTally:
    """Per-image and per-pair measurements of every backend, collected over the parity images.

    ``backends`` is in report order with the reference (torch) first; the other lists hold one
    entry per image (fidelity) or per homography pair (MMA), in the order they were added.
    """

    backends: list[str]
    overlap: dict[str, list[np.ndarray]] = field(default_factory=dict)
    cosine: dict[str, list[np.ndarray]] = field(default_factory=dict)
    max_abs: dict[str, list[float]] = field(default_factory=dict)  # [logits, descriptors]
    counts: dict[str, list[int]] = field(default_factory=dict)
    mma: dict[str, list[np.ndarray]] = field(default_factory=dict)
    matches: dict[str, list[int]] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        others = self.backends[1:]
        self.overlap = {b: [] for b in others}
        self.cosine = {b: [] for b in others}
        self.max_abs = {b: [0.0, 0.0] for b in others}
        self.counts = {b: [] for b in self.backends}
        self.mma = {b: [] for b in self.backends}
        self.matches = {b: [] for b in self.backends}

    def add_image(self, ex: KeypointExtraction) -> None:
        """Fidelity of one image: keypoint counts, overlap and cosine against torch, max abs."""
        from homeloc.runtime.postprocess import sample_descriptors

        ref = ex.features["torch"]
        for b in self.backends:
            self.counts[b].append(len(ex.features[b].keypoints))
        for b in self.backends[1:]:
            self.max_abs[b][0] = max(self.max_abs[b][0], max_abs_diff(ex.dense[b][0], ex.dense["torch"][0]))
            self.max_abs[b][1] = max(self.max_abs[b][1], max_abs_diff(ex.dense[b][1], ex.dense["torch"][1]))
            shared = keypoint_overlap(ref.keypoints, ex.features[b].keypoints)
            self.overlap[b].append(shared)
            # the candidate's dense map sampled at torch's keypoints: descriptor drift alone,
            # not mixed with keypoint drift
            cand = sample_descriptors(ex.dense[b][1], ref.keypoints[shared])
            self.cosine[b].append(unit_cosine(ref.descriptors[shared], cand))

    def add_pair(self, pair: ParityPair, ex0: KeypointExtraction, ex1: KeypointExtraction) -> None:
        """MMA of one homography pair for every backend (keypoints in original pixels)."""
        self.buckets.append(pair.bucket)
        f0, f1 = ex0.in_original_pixels(), ex1.in_original_pixels()
        for b in self.backends:
            row, n = pair_mma(f0[b][0], f0[b][1], f1[b][0], f1[b][1], pair.H)
            self.mma[b].append(row)
            self.matches[b].append(n)

    def fidelity(self) -> dict[str, Any]:
        """The report's ``fidelity`` section: each ONNX backend, then torch (the reference)."""
        out = {
            b: keypoint_fidelity(self.overlap[b], self.cosine[b], *self.max_abs[b], self.counts[b])
            for b in self.backends[1:]
        }
        out["torch"] = reference_fidelity(self.counts["torch"])
        return out


def measure_pairs(
    fns: Mapping[str, Backend], pairs: Sequence[ParityPair], mma: bool, resize: int, max_keypoints: int
) -> KeypointTally:
    """Run every backend on both images of each pair: fidelity per image and, when ``mma``, MMA
    per pair (``pairs`` then need a ground-truth ``H``). Returns the filled tally."""
    tally = KeypointTally(list(fns))
    for pair in pairs:
        ex0 = extract_keypoints(fns, pair.image0, resize, max_keypoints)
        ex1 = extract_keypoints(fns, pair.image1, resize, max_keypoints)
        tally.add_image(ex0)
        tally.add_image(ex1)
        if mma:
            tally.add_pair(pair, ex0, ex1)
    return tally


def keypoint_parity(
    model: nn.Module,
    fp32_path: str | Path,
    int8_path: str | Path | None = None,
    pairs: Sequence[ParityPair] = (),
    skipped: str | None = None,
    data: str | None = None,
    max_keypoints: int = 1024,
    resize: int = 640,
    latency_runs: int = 20,
    latency_threads: Sequence[int] = (1, 2),
    latency_image: np.ndarray | None = None,
) -> dict[str, Any]:
    """Parity of a keypoint network's ONNX exports against torch (see the module docstring).

    Args:
        model: the torch ``KeypointNet`` (eval mode, CPU).
        pairs: homography pairs (``load_keypoint_pairs``); their images also serve for the
            fidelity metrics. Empty: fidelity on ``synthetic_pairs(4)``, no MMA (``skipped`` says why).
        data: the pair set's spec, recorded in the report.
        resize: images are downscaled to this longer side before extraction (keypoints mapped back
            to the original pixels for MMA, as in ``eval``); overlap is measured at network scale.
        latency_image: 1 x 1 x 480 x 640 float32 (default: the first pair image, cover-resized).

    Returns the report dict (written by ``write_report``): kind, backends, reference,
    max_keypoints, resize, fidelity, accuracy, latency_ms, files, targets.
    """
    fp32_path, int8_path = Path(fp32_path), (Path(int8_path) if int8_path else None)
    model = model.eval()
    fns = keypoint_backends(model, fp32_path, int8_path, threads=1)
    fidelity_pairs = list(pairs) if pairs else synthetic_pairs(FIDELITY_FALLBACK_PAIRS)
    # the synthetic fallback is for fidelity only: MMA stays "skipped"
    tally = measure_pairs(fns, fidelity_pairs, bool(pairs), resize, max_keypoints)
    if latency_image is None:
        latency_image = keypoint_latency_image(fidelity_pairs[0].image0)
    latency = latency_table(
        lambda t: keypoint_backends(model, fp32_path, int8_path, t),
        latency_image,
        latency_runs,
        latency_threads,
    )
    report = {
        "kind": "keypoints",
        "backends": tally.backends,
        "reference": "torch",
        "max_keypoints": max_keypoints,
        "resize": resize,
        "fidelity": tally.fidelity(),
        "accuracy": keypoint_accuracy(data, skipped, tally.buckets, tally.mma, tally.matches),
        "latency_ms": latency,
        "files": backend_files(model, fp32_path, int8_path),
    }
    report["targets"] = target_rows(report, "keypoints")
    return report

"""Parity reports: torch vs ONNX Runtime fp32 vs ONNX Runtime int8, with the issue's targets.

Keypoints (``keypoint_parity``): every backend's dense outputs go through the same numpy
post-processing (``runtime.postprocess.postprocess``, top-1024); against torch we measure the
share of keypoints reproduced within 1 px, the descriptor cosine at those shared keypoints (both
dense maps sampled at the torch keypoint) and the largest dense-output difference; on a
homography pair set, MMA@1/3/5 of mutual-nearest-neighbour matches (``runtime.matching``,
``train.metrics``); latency at 480x640 with 1 and 2 threads (median after warm-up, backends
interleaved); file sizes.

Places (``place_parity``): descriptor cosine against torch, recall@1/5 on a place set
(``data_synthesis.formats.places``), latency at the fixed input size, file sizes.

Targets (``TARGETS``), reported whether met or not: int8 >= 2x faster than ORT fp32, int8
keypoint overlap >= 0.9, MMA@3 loss of int8 vs ORT fp32 <= 1 point.

Modules, one job each:

- ``data``: the inputs (homography pairs, place images and sets), seeded;
- ``predict``: running the backends (torch, ORT fp32, ORT int8), latency, weight file sizes;
- ``fidelity``: the metrics, pure functions (numbers in, numbers out);
- ``targets``: the targets judged on a finished report;
- ``keypoints`` / ``places``: ``keypoint_parity`` / ``place_parity``, data -> backends -> metrics;
- ``report``: ``parity.json`` and ``parity.md``.

This package re-exports the names that other modules import from ``homeloc.export.parity``.
"""

from __future__ import annotations

from homeloc.export.parity.data import (
    DEFAULT_KEYPOINT_DATA,
    DEFAULT_PLACE_DATA,
    LATENCY_SIZE,
    ParityPair,
    load_keypoint_pairs,
    load_place_images,
    stratified_choice,
    synthetic_pairs,
)
from homeloc.export.parity.fidelity import MMA_THRESHOLDS, OVERLAP_PX, keypoint_overlap
from homeloc.export.parity.keypoints import keypoint_parity
from homeloc.export.parity.places import place_parity
from homeloc.export.parity.predict import BACKENDS, latency_table
from homeloc.export.parity.report import to_markdown, write_report
from homeloc.export.parity.targets import TARGETS

__all__ = [
    "BACKENDS",
    "DEFAULT_KEYPOINT_DATA",
    "DEFAULT_PLACE_DATA",
    "LATENCY_SIZE",
    "MMA_THRESHOLDS",
    "OVERLAP_PX",
    "TARGETS",
    "ParityPair",
    "keypoint_overlap",
    "keypoint_parity",
    "latency_table",
    "load_keypoint_pairs",
    "load_place_images",
    "place_parity",
    "stratified_choice",
    "synthetic_pairs",
    "to_markdown",
    "write_report",
]

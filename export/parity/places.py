"""Place parity: a place network's ONNX exports against its torch model.

Global-descriptor cosine and largest difference against torch, recall@1/5 on a place set (when
one is given and present), latency at the network's fixed input size, file sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from homeloc.export.parity.data import DEFAULT_PLACE_DATA, load_place_set
from homeloc.export.parity.fidelity import place_accuracy, place_fidelity
from homeloc.export.parity.predict import backend_files, latency_table, place_backends, place_descriptors
from homeloc.export.parity.targets import target_rows


def place_parity(
    model: nn.Module,
    fp32_path: str | Path,
    int8_path: str | Path | None,
    input_size: tuple[int, int],
    data: str | None = DEFAULT_PLACE_DATA,
    limit: int | None = None,
    batch: int = 32,
    latency_runs: int = 20,
    latency_threads: Sequence[int] = (1, 2),
    seed: int = 0,
) -> dict[str, Any]:
    """Parity of a place network's ONNX exports against torch (see the module docstring).

    data: a ``data_synthesis.formats.places`` spec (Nordland: its last third); ``none`` or a
    missing folder skips recall and measures cosine on synthetic images. limit: keep the first N
    places. input_size: the network's (H, W). batch: images per backend call.

    Returns the report dict (written by ``write_report``): kind, backends, reference, input_size,
    fidelity, accuracy, latency_ms, files, targets.
    """
    fp32_path, int8_path = Path(fp32_path), (Path(int8_path) if int8_path else None)
    model = model.eval()
    fns = place_backends(model, fp32_path, int8_path, threads=1)
    backends = list(fns)
    places = load_place_set(data, limit, input_size, seed)
    desc = place_descriptors(fns, places.images, batch)
    latency = latency_table(
        lambda t: place_backends(model, fp32_path, int8_path, t),
        places.images[:1],
        latency_runs,
        latency_threads,
    )
    report = {
        "kind": "places",
        "backends": backends,
        "reference": "torch",
        "input_size": list(input_size),
        "fidelity": {b: place_fidelity(desc[b], desc["torch"]) for b in backends[1:]},
        "accuracy": place_accuracy(data, places.skipped, desc, places.database, places.positives),
        "latency_ms": latency,
        "files": backend_files(model, fp32_path, int8_path),
    }
    report["targets"] = target_rows(report, "places")
    return report

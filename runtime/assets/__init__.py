"""Shipped edge models (package data) and ONNX metadata helpers.

The export job (``homeloc-export``) writes the files this package ships beside this module:
``keypoints.int8.onnx``, ``keypoints.fp32.onnx``, ``places.int8.onnx``, ``places.fp32.onnx``.
:func:`shipped_model` finds them; ``Frontend``, ``GlobalDescriptor`` and ``LoopClosureDetector``
use it when given ``model_path=None``.
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
KINDS = ("keypoints", "places")
PRECISIONS = ("int8", "fp32")


def shipped_model(kind: str, precision: str = "int8") -> Path:
    """Path of the shipped ``{kind}.{precision}.onnx``.

    Raises ValueError for an unknown kind/precision and FileNotFoundError when the file is not
    there (nothing exported yet, or a source checkout without the export step).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    path = ASSETS_DIR / f"{kind}.{precision}.onnx"
    if not path.is_file():
        raise FileNotFoundError(
            f"no shipped model yet: {path} is missing (export one with `homeloc-export --kind {kind}"
            f"{' --int8' if precision == 'int8' else ''} --out {ASSETS_DIR}` or pass model_path=...)"
        )
    return path


def resolve_model(model_path: str | os.PathLike | None, kind: str, precision: str = "int8") -> Path:
    """``model_path`` as a Path (checked to exist), or the shipped ``kind`` model when None."""
    if model_path is None:
        return shipped_model(kind, precision)
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: model file does not exist")
    return path


def session_options(threads: int):
    """onnxruntime SessionOptions for a small CPU box: ``threads`` intra-op threads, one inter-op."""
    import onnxruntime as ort

    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: the runtime logs through Python logging
    return opts


def open_session(path: Path, threads: int, providers: list[str] | None = None):
    """An ORT InferenceSession (CPU by default); errors name the file."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=providers or ["CPUExecutionProvider"]
        )
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types; re-raise naming the file
        raise ValueError(f"{path}: not a loadable ONNX model ({e})") from e


def model_metadata(session) -> dict[str, str]:
    """The model's ``metadata_props`` (``homeloc.*`` keys) from an ORT session."""
    return dict(session.get_modelmeta().custom_metadata_map)


def check_kind(metadata: dict[str, str], expected: str, path: Path) -> None:
    """Refuse a model whose ``homeloc.kind`` says it is another kind (absent: accepted)."""
    kind = metadata.get("homeloc.kind")
    if kind is not None and kind != expected:
        raise ValueError(f"{path}: is a {kind!r} model (homeloc.kind), expected {expected!r}")



"""Shipped edge models (package data) and ONNX metadata helpers.

The export job (``homeloc-export``) writes the files this package ships beside this module:
``keypoints.int8.onnx``, ``keypoints.fp32.onnx``, ``places.int8.onnx``, ``places.fp32.onnx``, and
``python -m homeloc.export.frontend --ship`` the one-pass ``frontend.{int8,fp32}.onnx`` (keypoint
outputs plus the global place descriptor, ``homeloc.kind=keypoints``).
:func:`shipped_model` finds them; ``Frontend``, ``GlobalDescriptor`` and ``LoopClosureDetector``
use it when given ``model_path=None``.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

from homeloc.runtime.hashing import file_sha256_cached

ASSETS_DIR = Path(__file__).resolve().parent
KINDS = ("keypoints", "places", "frontend")
PRECISIONS = ("int8", "fp32")
MANIFEST = "MANIFEST.json"  # sha256 of every shipped file, written by homeloc.export.ship


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
        how = (
            "python -m homeloc.export.frontend --head CKPT --ship"
            if kind == "frontend"
            else f"homeloc-export --kind {kind}{' --int8' if precision == 'int8' else ''} --out {ASSETS_DIR}"
        )
        raise FileNotFoundError(
            f"no shipped model yet: {path} is missing (export one with `{how}` or pass model_path=...)"
        )
    verify_shipped(path)
    return path


def verify_shipped(path: Path) -> None:
    """Check a shipped file against its sha256 in ASSETS_DIR/MANIFEST.json; ValueError naming the
    file on a mismatch (a modified or damaged model). Files the manifest does not list (and
    checkouts without a manifest) are not checked. Hashes are remembered per (size, mtime)."""
    listed = _manifest()
    if listed is None:
        return
    manifest = ASSETS_DIR / MANIFEST
    expected = _listed_hash(listed, path.name)
    if expected is None:
        return
    actual = file_sha256_cached(path)
    if actual != expected:
        raise ValueError(
            f"{path}: sha256 {actual[:12]}... does not match {manifest} ({expected[:12]}...): the shipped "
            "model was modified or damaged; reinstall it"
        )


def replaced_graphs(path: str | os.PathLike) -> frozenset[str]:
    """Graph hashes (:func:`graph_sha256`) of the earlier files that the shipped model at ``path``
    replaced when the same trained weights were quantized again: ``homeloc.export.requantize``
    lists them in MANIFEST.json under the kind's ``"replaces"``. A map built with one of those
    files takes this one (its descriptors come from the same weights; docs/export.md, "Maps built
    with the replaced files"). Empty for a file outside ASSETS_DIR or not listed; the file itself
    is checked against the manifest (ValueError naming it when modified)."""
    p = Path(path).resolve()
    listed = _manifest()
    if listed is None or p.parent != ASSETS_DIR.resolve():
        return frozenset()
    verify_shipped(p)
    out: set[str] = set()
    for entry in listed.values():
        if isinstance(entry, dict):
            out.update(entry.get("replaces", {}).get(p.name, ()))
    return frozenset(out)


def _manifest() -> dict | None:
    """ASSETS_DIR/MANIFEST.json, None without one; ValueError naming it when unreadable."""
    manifest = ASSETS_DIR / MANIFEST
    if not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{manifest}: unreadable manifest of the shipped models ({e})") from None


def _listed_hash(listed: dict, name: str) -> str | None:
    for entry in listed.values():
        files = entry.get("files", {}) if isinstance(entry, dict) else {}
        if name in files:
            return files[name]
    return None


def graph_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of an ONNX file's serialized graph (its initializers, i.e. the weights, the Constant
    nodes and the operators), without the metadata: two files with the same metadata but changed
    weights differ. Remembered per (resolved path, size, mtime); a wire-format scan, no onnx import."""
    p = Path(path).resolve()
    st = p.stat()
    return _graph_sha256_keyed(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _graph_sha256_keyed(path: str, size: int, mtime_ns: int) -> str:
    data = memoryview(Path(path).read_bytes())
    h = hashlib.sha256()
    found = False
    for field, value in _fields(data):
        if field == 7:  # ModelProto.graph
            h.update(value)
            found = True
    if not found:
        raise ValueError(f"{path}: not an ONNX model (no graph)")
    return h.hexdigest()


def _varint(data: memoryview, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint")
        b = data[i]
        value |= (b & 0x7F) << shift
        i += 1
        if b < 0x80:
            return value, i
        shift += 7


def _fields(data: memoryview):
    """(field number, bytes) of the length-delimited fields of one protobuf message."""
    i, n = 0, len(data)
    try:
        while i < n:
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(data, i)
            elif wire == 1:
                i += 8
            elif wire == 5:
                i += 4
            elif wire == 2:
                length, i = _varint(data, i)
                if i + length > n:
                    raise ValueError("truncated field")
                yield field, data[i : i + length]
                i += length
            else:
                raise ValueError(f"unsupported wire type {wire}")
    except ValueError as e:
        raise ValueError(f"not an ONNX model ({e})") from None


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

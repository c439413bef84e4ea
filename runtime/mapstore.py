"""Versioned, checksummed binary container for maps: JSON metadata + numpy arrays, no pickle.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic b"HLMP\\r\\n\\x1a\\n" (PNG-style: catches text-mode and truncation damage)
    8       4     format version (uint32), currently 1
    12      8     payload size in bytes (uint64)
    20      32    SHA-256 of the payload
    52      ...   payload: uint32 JSON length, JSON (UTF-8), then the arrays' raw bytes
                  (C order, little-endian) at the offsets, relative to the end of the JSON,
                  that the JSON gives

The JSON holds ``{"meta": {...}, "arrays": [{"name", "dtype", "shape", "offset", "nbytes"}]}``;
dtypes are restricted to plain numeric types. Files are written atomically (temp file, fsync,
rename). Reading verifies magic, version, size and checksum before decoding anything, so a
flipped byte or a truncated file raises :class:`MapFormatError` naming the file, never a
silently wrong map.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
import time
from pathlib import Path

import numpy as np

from homeloc.runtime.io import atomic_write

MAGIC = b"HLMP\r\n\x1a\n"
VERSION = 1
_HEADER = struct.Struct("<8sIQ32s")  # magic, version, payload size, sha256
_ALLOWED_DTYPES = {"|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8", "|b1"}


class MapFormatError(ValueError):
    """A map file is not readable: wrong format, unsupported version, truncated or corrupt."""


def _dtype_str(a: np.ndarray) -> str:
    s = (a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype).str
    if s not in _ALLOWED_DTYPES:
        raise ValueError(f"array dtype {a.dtype} is not storable (allowed: plain numeric types)")
    return s


def encode(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """The whole file as bytes (header + payload)."""
    specs, blobs, offset = [], [], 0
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        dtype = _dtype_str(a)
        data = a.astype(dtype, copy=False).tobytes()
        pad = -offset % 8
        blobs.append(b"\0" * pad + data)
        offset += pad
        specs.append(
            {"name": name, "dtype": dtype, "shape": list(a.shape), "offset": offset, "nbytes": len(data)}
        )
        offset += len(data)
    head = json.dumps({"meta": meta, "arrays": specs}, sort_keys=True).encode()
    payload = struct.pack("<I", len(head)) + head + b"".join(blobs)
    return _HEADER.pack(MAGIC, VERSION, len(payload), hashlib.sha256(payload).digest()) + payload


ORPHAN_AGE_S = 10.0  # a temp file of a map write older than this was left by a killed writer


def clean_orphans(folder: str | os.PathLike, min_age_s: float = ORPHAN_AGE_S) -> list[Path]:
    """Remove the temp files (``.NAME.XXXX.tmp``) that killed map writes left in ``folder``: those
    that are empty or start with the map magic bytes and are older than ``min_age_s`` (a write in
    progress elsewhere is younger). Returns the removed paths."""
    removed, now = [], time.time()
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            st = tmp.lstat()
            if not stat.S_ISREG(st.st_mode) or now - st.st_mtime < min_age_s:
                continue
            with open(tmp, "rb") as f:
                head = f.read(len(MAGIC))
            if head in (b"", MAGIC) or MAGIC.startswith(head):
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            continue
    return removed


def write(path: str | os.PathLike, meta: dict, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write a container file; returns its path.

    Refuses (ValueError) to replace a symlink or anything but a regular file; the temp file is
    removed when the write fails or is interrupted, and orphans of killed writes in the folder
    are cleaned first (:func:`clean_orphans`)."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise ValueError(f"{path}: refusing to replace a symlink or a non-regular file with a map")
    data = encode(meta, arrays)
    if path.parent.is_dir():
        clean_orphans(path.parent)
    return atomic_write(path, data)


def decode(data: bytes, name: str = "<bytes>") -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) from the bytes of a container file; ``name`` is used in error messages."""
    if len(data) < _HEADER.size:
        if not MAGIC.startswith(data[: len(MAGIC)]):
            raise MapFormatError(f"{name}: not a homeloc map file (bad magic bytes)")
        raise MapFormatError(
            f"{name}: truncated map file ({len(data)} bytes, the header alone is {_HEADER.size})"
        )
    magic, version, size, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise MapFormatError(f"{name}: not a homeloc map file (bad magic bytes)")
    if version != VERSION:
        raise MapFormatError(
            f"{name}: map format version {version} is not supported (this runtime reads {VERSION})"
        )
    payload = memoryview(data)[_HEADER.size :]
    if len(payload) < size:
        raise MapFormatError(f"{name}: truncated map file (payload {len(payload)} of {size} bytes)")
    if len(payload) > size:
        raise MapFormatError(f"{name}: {len(payload) - size} unexpected trailing bytes after the map payload")
    if hashlib.sha256(payload).digest() != digest:
        raise MapFormatError(f"{name}: checksum mismatch (SHA-256 of the payload): the map file is corrupt")
    try:
        (jlen,) = struct.unpack_from("<I", payload)
        doc = json.loads(bytes(payload[4 : 4 + jlen]).decode())
        base = 4 + jlen
        arrays = {}
        for spec in doc["arrays"]:
            dtype = spec["dtype"]
            if dtype not in _ALLOWED_DTYPES:
                raise ValueError(f"dtype {dtype!r} not allowed")
            shape = tuple(int(s) for s in spec["shape"])
            start, nbytes = base + int(spec["offset"]), int(spec["nbytes"])
            if start + nbytes > len(payload) or nbytes != int(np.prod(shape)) * np.dtype(dtype).itemsize:
                raise ValueError(f"array {spec['name']!r} does not fit the payload")
            arrays[spec["name"]] = (
                np.frombuffer(payload[start : start + nbytes], dtype=dtype).reshape(shape).copy()
            )
        return doc["meta"], arrays
    except (ValueError, KeyError, TypeError, struct.error) as e:
        # checksum passed, so this is a writer bug or a hand-made file, not bit rot
        raise MapFormatError(f"{name}: malformed map payload ({e})") from None


def read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(meta, arrays) of a container file; MapFormatError naming the file when it is damaged."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: map file does not exist")
    clean_orphans(path.parent)
    return decode(path.read_bytes(), str(path))

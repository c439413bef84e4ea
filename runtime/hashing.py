"""Content hashes: the one SHA-256 helper for files and JSON-able values (model identity, shard
manifests, caches, provenance)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (constant memory for big models)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256_cached(path: str | os.PathLike) -> str:
    """:func:`file_sha256`, remembered per (resolved path, size, mtime): benchmark loops hash the
    same images and models again and again; a rewritten file is hashed anew."""
    p = Path(path).resolve()
    st = p.stat()
    return _file_sha256_keyed(str(p), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=100_000)
def _file_sha256_keyed(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def json_sha256(obj: Any) -> str:
    """Hex SHA-256 of :func:`canonical_json` of a value, so equal values hash equal."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()


def canonical_json(obj: Any) -> str:
    """Sorted-key compact JSON; non-JSON values (paths, tuples) via ``str``/lists."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)

"""The error every benchmark-format reader raises; CLIs turn it into a one-line message."""

from __future__ import annotations

import os
from pathlib import Path


class DataError(ValueError):
    """Malformed or missing benchmark data; the message names the file (and line when known)."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def read_text(path: str | os.PathLike) -> str:
    """A text file of a benchmark (UTF-8); DataError naming it when it holds binary data."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(path, f"not a UTF-8 text file (binary data at byte {e.start})") from None

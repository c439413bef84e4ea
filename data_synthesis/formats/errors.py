"""The error every benchmark-format reader raises; CLIs turn it into a one-line message."""

from __future__ import annotations

import os


class DataError(ValueError):
    """Malformed or missing benchmark data; the message names the file (and line when known)."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")

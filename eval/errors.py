"""Errors raised by the evaluation package; the CLI turns them into one-line messages."""

from __future__ import annotations

import os


class EvalError(Exception):
    """Base class: a problem the user can fix (bad data, unknown method, missing model)."""


class DataError(EvalError):
    """Malformed or missing evaluation data; the message names the file (and line when known)."""

    def __init__(self, path: str | os.PathLike, message: str, line: int | None = None):
        self.path = str(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class MethodError(EvalError):
    """A method name that is unknown, unavailable (missing package/model) or misused."""

"""Errors raised by the evaluation package; the CLI turns them into one-line messages.

Malformed data raises ``homeloc.data_synthesis.formats.errors.DataError`` (owned by the readers).
"""

from __future__ import annotations


class EvalError(Exception):
    """Base class: a problem the user can fix (unknown method, missing model, bad options)."""


class MethodError(EvalError):
    """A method name that is unknown, unavailable (missing package/model) or misused."""

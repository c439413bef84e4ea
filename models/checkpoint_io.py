"""Reading a torch checkpoint safely: the one ``torch.load(weights_only=True)`` of our checkpoints.

A file that is not a homeloc checkpoint (a pickle holding code, any other file) is refused with a
ValueError naming it, and never with torch's hint to retry with ``weights_only=False`` (which would
run whatever code the file holds).
"""

from __future__ import annotations

import os
import pickle
from typing import Any


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``. FileNotFoundError for a missing file; ValueError
    "PATH: not a homeloc checkpoint (...)" for anything the weights-only loader refuses."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: not a homeloc checkpoint: it holds Python objects other than tensors and plain "
            "values, which the weights-only loader refuses (homeloc never runs code from a checkpoint)"
        ) from None
    except Exception as e:  # noqa: BLE001 - zip, pickle and torch errors come in many types
        raise ValueError(
            f"{path}: not a homeloc checkpoint (unreadable by the weights-only loader: {_reason(e)})"
        ) from None


def _reason(e: Exception) -> str:
    """The first line of torch's message, without its advice to load with weights_only=False."""
    first = (str(e).strip().splitlines() or [""])[0]
    if "weights_only" in first or not first:
        return type(e).__name__
    return f"{type(e).__name__}: {first[:200]}"

"""Torch-free edge runtime: what a SLAM system imports on the robot.

    from homeloc.runtime import Frontend, GlobalDescriptor, LoopClosureDetector

Depends only on numpy, OpenCV, onnxruntime and faiss; importing it must never import torch
(a test checks this in a subprocess). The public names load lazily (PEP 562), so
``import homeloc.runtime`` costs nothing until a class is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from homeloc import __version__

if TYPE_CHECKING:
    from homeloc.runtime.features import Features
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.loop_closure import LoopClosureDetector
    from homeloc.runtime.places import GlobalDescriptor

# public name -> submodule that defines it
_LAZY = {
    "Features": "features",
    "Frontend": "frontend",
    "GlobalDescriptor": "places",
    "LoopClosureDetector": "loop_closure",
}

__all__ = ["Features", "Frontend", "GlobalDescriptor", "LoopClosureDetector", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value  # cache: later lookups skip this hook
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

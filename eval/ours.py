"""The `ours` / `ours:PATH` method: the one place where the shipped model plugs into evaluation.

Until a model issue lands this raises a clear "no shipped model yet" error. To wire a model,
replace `ours_factory` below (or call `eval.methods.register_method("ours", factory,
tasks=("local", "places"), overwrite=True)` from a module imported by eval.methods). The factory
gets a MethodRequest: `request.arg` is PATH from `ours:PATH` (an exported .onnx or a torch
checkpoint) or None for the shipped default; `request.task` is "local" (return a
LocalFeatureExtractor) or "places" (return a PlaceDescriber); max_keypoints/resize/threads are
the evaluation's settings. Set the returned object's `model_file` so the feature cache is keyed
by the weights' hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from eval.errors import MethodError

if TYPE_CHECKING:
    from eval.methods import MethodRequest


def ours_factory(request: MethodRequest):
    """Stub: no model of ours is shipped yet."""
    if request.arg is not None and not Path(request.arg).exists():
        raise MethodError(f"ours:{request.arg}: model file not found")
    raise MethodError(
        "ours: no shipped model yet - the model issues have not landed; evaluate the peers "
        "(orb sift akaze xfeat | thumbnail vlad_sift) meanwhile"
    )

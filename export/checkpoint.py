"""Load a keypoint or place checkpoint for export, with the provenance that goes into the ONNX metadata.

Accepted files (``torch.load(weights_only=True)``):

- ours: ``{"state_dict", "hparams"}`` written by ``KeypointNet.save`` / ``PlaceNet.save``;
- Lightning checkpoints of ``train.keypoints.KeypointSystem`` / ``train.places.PlaceSystem``
  (weights under ``model.``, the system's arguments in ``hyper_parameters``).

The networks themselves are built by ``KeypointNet.from_checkpoint`` / ``PlaceNet.from_checkpoint``;
this module adds what export needs around them (training-config hash, model version, places input
size) and turns every failure into a ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from homeloc.models.checkpoint_io import load_checkpoint as load_weights_only
from homeloc.runtime.hashing import json_sha256

log = logging.getLogger(__name__)

Kind = Literal["keypoints", "places"]
KINDS: tuple[str, ...] = ("keypoints", "places")
DEFAULT_PLACES_INPUT_SIZE: tuple[int, int] = (128, 160)  # train.place_data.PlacesData's default size


class CheckpointError(ValueError):
    """A checkpoint that cannot be exported; the message names the file and the problem."""


@dataclass
class LoadedCheckpoint:
    """A network ready for export plus its provenance.

    model: the ``KeypointNet`` or ``PlaceNet`` in eval mode on CPU.
    architecture: what rebuilds the network (the model's ``hparams``; for keypoints also the full
        resolved ``config``), JSON-serialisable.
    training_config: Lightning ``hyper_parameters`` when present, else None.
    config_hash: sha256 (hex) of the canonical JSON of ``training_config`` when present, else of
        ``architecture``.
    weights_hash: sha256 (hex) of the state dict (names, dtypes, shapes and bytes, sorted by name).
    global_step: the Lightning step, None for our plain format.
    input_size: (H, W) the places network runs at (None for keypoints).
    input_size_source: where ``input_size`` came from ("hyper_parameters", "option" or "default").
    """

    path: Path
    kind: str
    model: nn.Module
    architecture: dict[str, Any]
    training_config: dict[str, Any] | None
    config_hash: str
    weights_hash: str
    global_step: int | None = None
    input_size: tuple[int, int] | None = None
    input_size_source: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def format(self) -> str:
        return "lightning" if self.training_config is not None else "homeloc"

    @property
    def default_model_version(self) -> str:
        """``<file stem>[-step<N>]-<first 12 hex of the weights hash>``: changes with the weights."""
        step = f"-step{self.global_step}" if self.global_step is not None else ""
        return f"{self.path.stem}{step}-{self.weights_hash[:12]}"


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k].detach().cpu().contiguous().reshape(-1)
        h.update(f"{k}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.view(torch.uint8).numpy().tobytes() if v.numel() else b"")
    return h.hexdigest()


def read_checkpoint(path: str | os.PathLike) -> Mapping[str, Any]:
    """The raw checkpoint dict; CheckpointError naming the file if it is missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        ckpt = load_weights_only(path, "cpu")
    except ValueError as e:  # names the file; never suggests weights_only=False
        raise CheckpointError(str(e)) from None
    if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a checkpoint (expected a dict with a 'state_dict')")
    return ckpt


def _training_config(ckpt: Mapping[str, Any]) -> dict[str, Any] | None:
    hp = ckpt.get("hyper_parameters")
    return dict(hp) if isinstance(hp, Mapping) else None


def _find_input_size(ckpt: Mapping[str, Any]) -> tuple[int, int] | None:
    """``input_size`` (or a datamodule's ``size``) from hparams / hyper_parameters, if recorded."""
    for key, names in (
        ("hparams", ("input_size",)),
        ("hyper_parameters", ("input_size",)),
        ("datamodule_hyper_parameters", ("input_size", "size")),
    ):
        hp = ckpt.get(key)
        if not isinstance(hp, Mapping):
            continue
        for name in names:
            if hp.get(name) is not None:
                return _parse_size(hp[name], f"{key}.{name}")
    return None


def _parse_size(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, str):
        value = value.replace("x", ",").split(",")
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise CheckpointError(f"{what}: expected (height, width), got {value!r}") from None
    if h <= 0 or w <= 0:
        raise CheckpointError(f"{what}: height and width must be positive, got {h}x{w}")
    return h, w


def _places_input_size(path: Path, ckpt: dict, option: tuple[int, int] | None) -> tuple[tuple[int, int], str]:
    """(input size, where it came from): the checkpoint's record, else the option, else the default."""
    recorded = _find_input_size(ckpt)
    if recorded is not None:
        if option is not None and _parse_size(option, "--input-size") != recorded:
            log.warning("%s records input_size %s; --input-size %s ignored", path, recorded, tuple(option))
        return recorded, "hyper_parameters"
    if option is not None:
        return _parse_size(option, "--input-size"), "option"
    log.warning(
        "%s records no input_size; exporting at the default %dx%d (--input-size H W)",
        path,
        *DEFAULT_PLACES_INPUT_SIZE,
    )
    return DEFAULT_PLACES_INPUT_SIZE, "default"


def load_checkpoint(
    path: str | os.PathLike, kind: str, input_size: tuple[int, int] | None = None
) -> LoadedCheckpoint:
    """Build the network of ``kind`` ("keypoints" | "places") from ``path`` for export.

    For places, the input size is the checkpoint's recorded ``input_size`` when there is one,
    else ``input_size`` (an explicit option), else ``DEFAULT_PLACES_INPUT_SIZE`` (128 x 160).

    Raises:
        CheckpointError: missing/unreadable file, wrong kind, weights that do not fit; the message
            names the file.
    """
    path = Path(path)
    if kind not in KINDS:
        raise CheckpointError(f"{path}: unknown kind {kind!r}; choose one of {KINDS}")
    ckpt = read_checkpoint(path)
    training = _training_config(ckpt)
    step = ckpt.get("global_step") if training is not None else None
    try:
        if kind == "keypoints":
            from homeloc.models.keypoints import KeypointNet

            model = KeypointNet.from_checkpoint(path)
            architecture = dict(model.hparams)
            architecture["config"] = model.config.to_dict()
        else:
            from homeloc.models.places import PlaceNet

            model = PlaceNet.from_checkpoint(path)
            architecture = dict(model.hparams)
    except CheckpointError:
        raise
    except (ValueError, RuntimeError, KeyError, TypeError) as e:
        msg = str(e)
        if str(path) not in msg:
            msg = f"{path}: {msg}"
        raise CheckpointError(f"{msg} (is this a {kind} checkpoint?)") from None
    model = model.cpu().eval()
    size, source = None, None
    if kind == "places":
        size, source = _places_input_size(path, ckpt, input_size)
        if hasattr(model, "input_size"):
            model.input_size = size
        architecture["input_size"] = list(size)
    return LoadedCheckpoint(
        path=path,
        kind=kind,
        model=model,
        architecture=architecture,
        training_config=training,
        config_hash=json_sha256(training if training is not None else architecture),
        weights_hash=state_dict_sha256(model.state_dict()),
        global_step=int(step) if isinstance(step, int) else None,
        input_size=size,
        input_size_source=source,
    )

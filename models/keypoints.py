"""SuperPoint-style keypoint detector + descriptor: the dense core of the SLAM frontend.

``KeypointNet(preset)`` maps a gray image to cell-8 detector logits and dense descriptors with
fixed tensor ops only (Conv, BatchNorm, ReLU, max-pool, pixel-unshuffle, bilinear resize, add,
concat, L2 normalisation): no data-dependent control flow, so it exports to ONNX (opset 17,
dynamic H/W) and quantizes to int8 QDQ cleanly. Sparse post-processing (softmax, NMS, top-k,
refinement, descriptor sampling) lives in ``models.postprocess`` and its numpy twin
``runtime.postprocess``.

Presets (``KeypointNet.PRESETS``; GMACs at 640x480, see ``python -m homeloc.export.bench_presets``):

- ``edge``: the product default for the robot CPU. XFeat-like early downsampling (stride-2
  stem, narrow 1/2 and 1/4 stages), the bulk of the compute at 1/8, a small 1/16-1/32 pyramid
  fused back into 1/8 for context (lighting changes need context more than resolution), a
  1/4-resolution skip into the detector head for sub-cell localisation, 64-d descriptors.
- ``edge_wide``: ``edge``'s layout with about twice the channels from 1/4 down (3x the GMACs,
  0.70x XFeat's time in int8); starts from a trained ``edge`` run (``models.widen``).
- ``superpoint``: the reference widths (VGG-like 64-64-128-128 encoder with max-pool
  downsampling, 256-wide heads, 256-d descriptors), written here from the paper, for comparison.
- ``tiny``: a few thousand parameters, for CI-speed training and export tests.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from homeloc.models.keypoint_config import CELL, PRESETS, KeypointNetConfig, cumulative_strides


class ConvBlock(nn.Sequential):
    """Conv (no bias) -> BatchNorm (folded at export) -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1) -> None:
        padding = (kernel - 1) // 2 if kernel != stride else 0  # kernel == stride: patchify conv
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def _stage(cin: int, cout: int, depth: int, stride: int, downsample: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    if stride > 1 and downsample == "pool":
        layers.append(nn.MaxPool2d(stride))
        stride = 1
    kernel = 4 if stride == 4 else 3
    layers.append(ConvBlock(cin, cout, kernel, stride))
    layers.extend(ConvBlock(cout, cout) for _ in range(depth - 1))
    return nn.Sequential(*layers)


class KeypointNet(nn.Module):
    """Dense keypoint network: image -> (cell-8 detector logits, dense unit descriptors).

    Args:
        preset: a key of ``KeypointNet.PRESETS`` ("edge", "superpoint", "tiny").
        descriptor_dim: overrides the preset's descriptor dimension D.
        config: a full ``KeypointNetConfig`` instead of a preset (experiments); ``preset`` is then
            only recorded as a label.

    Input normalisation (inside the network, exported with it): ``x = (image - 0.5) / 0.25``,
    i.e. ``INPUT_MEAN`` and ``INPUT_STD``; no per-image statistics (InstanceNorm-free), so the
    photometric robustness has to come from training.
    """

    PRESETS = PRESETS
    INPUT_MEAN = 0.5
    INPUT_STD = 0.25
    CELL = CELL

    def __init__(
        self,
        preset: str = "edge",
        descriptor_dim: int | None = None,
        config: KeypointNetConfig | None = None,
    ) -> None:
        super().__init__()
        self._custom_config = config is not None and config != PRESETS.get(preset)
        if config is None:
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
            config = PRESETS[preset]
        if descriptor_dim is not None:
            if int(descriptor_dim) < 1:
                raise ValueError(f"descriptor_dim must be positive, got {descriptor_dim}")
            config = dataclasses.replace(config, descriptor_dim=int(descriptor_dim))
        self.preset = preset
        self.config = config
        self.descriptor_dim = config.descriptor_dim

        cin = 1
        self.stages = nn.ModuleList()
        self._fine_index = -1
        for i, ((cout, depth, stride), cum) in enumerate(
            zip(config.stages, cumulative_strides(config.stages), strict=True)
        ):
            self.stages.append(_stage(cin, cout, depth, stride, config.downsample))
            if cum == 4:
                self._fine_index = i
            cin = cout
        width = cin  # channels at 1/8

        self.pyramid = nn.ModuleList()
        self.laterals = nn.ModuleList()
        pin = width
        for cout, depth in config.pyramid:
            self.pyramid.append(_stage(pin, cout, depth, 2, config.downsample))
            self.laterals.append(nn.Conv2d(cout, width, 1))
            pin = cout
        self.fuse = nn.Sequential(*(ConvBlock(width, width) for _ in range(config.fuse_depth)))

        self.fine = None
        if config.fine_width > 0:
            # a 2x2/2 conv == pixel-unshuffle + 1x1 conv, without the 6-D transpose (slow in int8)
            self.fine = ConvBlock(config.stages[self._fine_index][0], config.fine_width, kernel=2, stride=2)
        self.detector = ConvBlock(width, config.head_width)
        self.detector_out = nn.Conv2d(config.head_width + config.fine_width, CELL * CELL + 1, 1)
        self.descriptor = ConvBlock(width, config.head_width)
        self.descriptor_out = nn.Conv2d(config.head_width, config.descriptor_dim, 1)

    # ------------------------------------------------------------------ forward
    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """Dense detector logits and descriptors.

        Args:
            image: B x 1 x H x W float32 (float16/bfloat16 accepted) gray values in [0, 1];
                H and W multiples of 8.

        Returns:
            logits: B x 65 x H/8 x W/8, same float dtype; channel ``c < 64`` scores pixel
                ``(y, x) = (8*i + c // 8, 8*j + c % 8)`` of cell ``(i, j)``, channel 64 is the
                "no keypoint" dustbin (softmax over the 65 channels, SuperPoint style).
            descriptors: B x D x H/8 x W/8, L2-normalised over channels; cell ``(i, j)`` describes
                the pixel ``(8*j + 3.5, 8*i + 3.5)`` (its centre).

        Raises:
            ValueError: wrong rank, channel count, dtype, or H/W not multiples of 8.
        """
        if not _exporting():
            check_image(image)
        x, fine = self.encode(image)
        det = self.detector(x)
        if fine is not None:
            det = torch.cat([det, fine], dim=1)
        logits = self.detector_out(det)
        desc = self.descriptor_out(self.descriptor(x))
        desc = F.normalize(desc, p=2.0, dim=1, eps=1e-6)
        return logits, desc

    def encode(self, image: Tensor) -> tuple[Tensor, Tensor | None]:
        """Shared trunk: fused 1/8 features (B x C x H/8 x W/8) and the optional 1/4 -> 1/8 fine
        features for the detector. The place network can pool the first (one forward, two uses)."""
        x = (image - self.INPUT_MEAN) * (1.0 / self.INPUT_STD)
        fine = None
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i == self._fine_index and self.fine is not None:
                fine = self.fine(x)
        if len(self.pyramid):
            feats, y = x, x
            for stage, lateral in zip(self.pyramid, self.laterals, strict=True):
                y = stage(y)
                feats = feats + F.interpolate(
                    lateral(y), size=x.shape[-2:], mode="bilinear", align_corners=False
                )
            x = feats
        return self.fuse(x), fine

    # ------------------------------------------------------------------ checkpoints
    @property
    def hparams(self) -> dict[str, Any]:
        """What ``from_checkpoint`` needs to rebuild this network (plain, weights_only-safe)."""
        h: dict[str, Any] = {"preset": self.preset, "descriptor_dim": self.descriptor_dim}
        if self._custom_config:
            h["config"] = self.config.to_dict()
        return h

    def save(self, path: str | os.PathLike, half: bool = False) -> None:
        """Write ``{"state_dict", "hparams"}`` atomically (temp file + fsync + rename).

        half: floating-point tensors stored as float16 (half the bytes: a network that must travel
        in a lent machine's 64 MiB); ``from_checkpoint`` casts them back to float32."""
        from homeloc.runtime.io import atomic_open

        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        with atomic_open(path, "wb") as f:
            torch.save({"state_dict": state, "hparams": self.hparams}, f)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, map_location: str | torch.device = "cpu"
    ) -> KeypointNet:
        """Load a network saved by ``save`` or a Lightning checkpoint of a module holding it.

        Accepted files (read with ``torch.load(weights_only=True)``):
        - ours: ``{"state_dict": ..., "hparams": {"preset", "descriptor_dim"[, "config"]}}``;
        - Lightning: ``{"state_dict": {"model.<key>": ...}, "hyper_parameters": {...}}`` whose
          hyper-parameters hold ``preset``/``descriptor_dim`` (top level or in one nested dict);
          keys outside ``model.`` (teacher, losses) are ignored.

        Returns the network in eval mode on ``map_location``. Raises ValueError naming the file
        when the content, hyper-parameters, shapes or dtypes do not fit.
        """
        from homeloc.models.checkpoint_io import load_checkpoint

        ckpt = load_checkpoint(path, map_location)
        if not isinstance(ckpt, Mapping) or "state_dict" not in ckpt:
            raise ValueError(f"{path}: not a checkpoint (expected a dict with a 'state_dict')")
        state = ckpt["state_dict"]
        if "hparams" in ckpt:
            hparams = ckpt["hparams"]
        elif "hyper_parameters" in ckpt:
            hparams = _find_hparams(ckpt["hyper_parameters"])
            if hparams is None:
                raise ValueError(f"{path}: Lightning hyper_parameters hold no 'preset'")
            prefixed = {k[len("model.") :]: v for k, v in state.items() if k.startswith("model.")}
            if not prefixed:
                raise ValueError(f"{path}: Lightning state_dict has no 'model.' keys")
            state = prefixed
        else:
            raise ValueError(f"{path}: checkpoint has neither 'hparams' nor 'hyper_parameters'")
        if not isinstance(hparams, Mapping) or "preset" not in hparams:
            raise ValueError(f"{path}: hparams must be a dict with 'preset', got {hparams!r}")
        config = hparams.get("config")
        model = cls(
            preset=str(hparams["preset"]),
            descriptor_dim=hparams.get("descriptor_dim"),
            config=KeypointNetConfig.from_dict(config) if config is not None else None,
        )
        model.load_checked(state, source=str(path))
        return model.to(map_location).eval()

    def load_checked(self, state: Mapping[str, Tensor], source: str = "state_dict") -> None:
        """``load_state_dict(strict=True)`` with one clear error listing every mismatch."""
        own = self.state_dict()
        problems = []
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if missing:
            problems.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            problems.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        for k in sorted(set(own) & set(state)):
            v = state[k]
            if not isinstance(v, Tensor):
                problems.append(f"{k}: not a tensor ({type(v).__name__})")
            elif v.shape != own[k].shape:
                problems.append(f"{k}: shape {tuple(v.shape)}, expected {tuple(own[k].shape)}")
            elif v.dtype != own[k].dtype and not (v.dtype == torch.float16 and own[k].is_floating_point()):
                problems.append(f"{k}: dtype {v.dtype}, expected {own[k].dtype}")
        if problems:
            raise ValueError(
                f"{source}: does not fit KeypointNet(preset={self.preset!r}, "
                f"descriptor_dim={self.descriptor_dim}): " + "; ".join(problems)
            )
        self.load_state_dict(state, strict=True)  # copies cast float16 weights (save(half=True))


def _find_hparams(h: Any) -> Mapping[str, Any] | None:
    if isinstance(h, Mapping):
        if "preset" in h:
            return h
        for v in h.values():
            if isinstance(v, Mapping) and "preset" in v:
                return v
    return None


_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def check_image(image: Tensor) -> None:
    """Raise ValueError unless image is a B x 1 x H x W float tensor with H, W multiples of 8."""
    if not isinstance(image, Tensor):
        raise ValueError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 4:
        raise ValueError(f"image must be B x 1 x H x W, got shape {tuple(image.shape)}")
    if image.shape[1] != 1:
        raise ValueError(
            f"image must have 1 (gray) channel, got {image.shape[1]} (shape {tuple(image.shape)})"
        )
    if image.dtype not in _FLOAT_DTYPES:
        raise ValueError(
            f"image must be float32 in [0, 1], got dtype {image.dtype} (convert uint8 with /255)"
        )
    h, w = image.shape[-2:]
    if h % CELL or w % CELL or h == 0 or w == 0:
        raise ValueError(
            f"image height and width must be positive multiples of {CELL}, got {h}x{w} (pad first)"
        )


def _exporting() -> bool:
    """True while traced/exported (shape checks would specialise the dynamic H/W)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        return True
    is_exporting = getattr(torch.compiler, "is_exporting", None)
    return bool(is_exporting and is_exporting()) or torch.compiler.is_compiling()

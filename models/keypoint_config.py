"""KeypointNet's architecture description: ``KeypointNetConfig`` and the named ``PRESETS``
(``edge``, ``superpoint``, ``tiny``), with the measurements behind the product default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CELL = 8  # detector cell size and descriptor stride, in pixels


@dataclass(frozen=True)
class KeypointNetConfig:
    """Architecture of a ``KeypointNet``; all fields are plain ints/strings/tuples (checkpoint-safe).

    stages: ``(channels, depth, stride)`` per encoder stage; the first of the ``depth`` 3x3
        Conv-BN-ReLU blocks applies ``stride`` (1, 2 or 4); the strides must multiply to 8.
    downsample: ``"conv"`` (strided convolution; stride 4 is a 4x4/4 patchify conv) or
        ``"pool"`` (max-pool by ``stride``, then stride-1 convs, as in SuperPoint).
    pyramid: ``(channels, depth)`` of extra stages below 1/8 (each halves the resolution again);
        each is projected by a 1x1 conv to the 1/8 width, resized bilinearly to 1/8 and added.
    fuse_depth: 3x3 blocks applied at 1/8 after the pyramid sum.
    head_width: width of the 3x3 block that opens each head (detector and descriptor).
    fine_width: when > 0, the stride-4 stage output goes through a 2x2/2 Conv-BN-ReLU block of
        this width (all 4 sub-positions kept in channels) and is concatenated into the detector
        head input (sub-cell localisation).
    descriptor_dim: descriptor channels D.
    """

    stages: tuple[tuple[int, int, int], ...]
    downsample: str = "conv"
    pyramid: tuple[tuple[int, int], ...] = ()
    fuse_depth: int = 0
    head_width: int = 64
    fine_width: int = 0
    descriptor_dim: int = 64

    def __post_init__(self) -> None:
        stride = 1
        for channels, depth, s in self.stages:
            if channels < 1 or depth < 1 or s not in (1, 2, 4):
                raise ValueError(f"bad stage (channels={channels}, depth={depth}, stride={s})")
            stride *= s
        if stride != CELL:
            raise ValueError(f"encoder strides multiply to {stride}, expected {CELL}")
        if self.downsample not in ("conv", "pool"):
            raise ValueError(f"downsample must be 'conv' or 'pool', got {self.downsample!r}")
        if self.fine_width > 0 and 4 not in cumulative_strides(self.stages):
            raise ValueError("fine_width > 0 needs an encoder stage at stride 4")
        if min(self.head_width, self.descriptor_dim) < 1:
            raise ValueError("head_width and descriptor_dim must be positive")

    def to_dict(self) -> dict[str, Any]:
        return {k: _as_lists(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> KeypointNetConfig:
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown KeypointNetConfig fields: {sorted(unknown)}")
        kw = dict(d)
        kw["stages"] = tuple(tuple(int(v) for v in s) for s in kw["stages"])
        kw["pyramid"] = tuple(tuple(int(v) for v in s) for s in kw.get("pyramid", ()))
        return cls(**kw)


def _as_lists(v: Any) -> Any:
    return [_as_lists(x) for x in v] if isinstance(v, tuple | list) else v


def cumulative_strides(stages: tuple[tuple[int, int, int], ...]) -> list[int]:
    out, s = [], 1
    for _, _, stride in stages:
        s *= stride
        out.append(s)
    return out


# Descriptor dimension of `edge`: 64. Inside the network D hardly matters (64 -> 128 measured
# 1.395 -> 1.415 GMACs and 11.3 -> 11.7 ms int8 at 640x480), so the SLAM side decides: mutual-NN
# matching (N*N*D) and the per-keyframe local-feature memory both halve with 64-d, and XFeat
# shows 64-d matches well at this network size. `KeypointNet("edge", descriptor_dim=128)`
# remains one argument away if day/night training says it pays.
#
# Why `edge` looks like this (measured with export.bench_presets, ORT 1 thread, 640x480): int8 latency
# is far under budget (~12 ms vs XFeat fp32 ~26-38 ms), so GMACs (<= 1.5) is the binding limit
# and goes where day/night matching needs it: depth at 1/8 plus a cheap 1/16-1/32 pyramid for
# context. Depthwise-separable 3x3 blocks ran ~3x faster per layer in int8 but with 8x fewer
# MACs per layer; full 3x3 convs were kept since the latency target is met without them and they
# are the safer choice for post-training int8. The 1/4 -> 1/8 detector skip is a 2x2/2 conv,
# not pixel-unshuffle + 1x1: same function, but the 6-D transpose cost 2.3 ms in int8.
PRESETS: dict[str, KeypointNetConfig] = {
    "edge": KeypointNetConfig(
        stages=((16, 1, 2), (32, 2, 2), (64, 2, 2)),
        downsample="conv",
        pyramid=((96, 2), (128, 2)),
        fuse_depth=1,
        head_width=64,
        fine_width=32,
        descriptor_dim=64,
    ),
    # `edge` widened (1/4 stage 48, 1/8 width 128, pyramid 128-160, heads 128): 4.26 GMACs, int8
    # 13.4 ms = 0.70x XFeat's fp32 ONNX time in one export.bench_presets run (edge: 1.40 GMACs,
    # 6.7 ms, 0.35x), inside #14's 0.8x budget. Same layout as `edge`, so it can start from a
    # trained `edge` run (models.widen). Issue #14: is capacity what `edge` lacks? Session 16, same
    # data and steps: yes, webcam +0.026, WxBS +0.032, HPatches +0.028 (docs/training.md, run W).
    "edge_wide": KeypointNetConfig(
        stages=((16, 1, 2), (48, 2, 2), (128, 2, 2)),
        downsample="conv",
        pyramid=((128, 2), (160, 2)),
        fuse_depth=1,
        head_width=128,
        fine_width=32,
        descriptor_dim=64,
    ),
    "superpoint": KeypointNetConfig(
        stages=((64, 2, 1), (64, 2, 2), (128, 2, 2), (128, 2, 2)),
        downsample="pool",
        head_width=256,
        descriptor_dim=256,
    ),
    "tiny": KeypointNetConfig(
        stages=((8, 1, 2), (16, 1, 2), (24, 1, 2)),
        pyramid=((32, 1),),
        head_width=24,
        fine_width=8,
        descriptor_dim=16,
    ),
}

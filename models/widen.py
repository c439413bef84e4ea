"""Start a wider ``KeypointNet`` from a trained narrower one, computing the same function.

Training a wider network from scratch costs hours of CPU the narrow one already spent; so every
tensor of the narrow network is copied into the leading slice of the wide one's (Net2Net's idea,
with zeros instead of duplicated channels): the weights by which an old output channel would read
a new input channel are zero, so the old channels compute exactly what they did, while the new
channels start at PyTorch's default init and feed nothing until training gives them weight. The
outputs (65 detector logits, D descriptor channels) keep their sizes, so in eval mode the wide
network's outputs equal the narrow one's (tested), and training starts where the narrow run ended.

Only widths may differ: the stage/pyramid/fuse depths, strides, downsampling, the fine branch's
presence and the descriptor dimension must match.
"""

from __future__ import annotations

from torch import Tensor

from homeloc.models.keypoints import KeypointNet


def widen_into(small: KeypointNet, big: KeypointNet) -> None:
    """Copy ``small``'s parameters and buffers into ``big`` (in place) so that ``big`` computes
    ``small``'s function; raises ValueError naming the first layer that cannot be widened."""
    a, b = small.config, big.config
    same = (
        [(d, s) for _, d, s in a.stages] == [(d, s) for _, d, s in b.stages]
        and [d for _, d in a.pyramid] == [d for _, d in b.pyramid]
        and a.fuse_depth == b.fuse_depth
        and a.downsample == b.downsample
        and (a.fine_width > 0) == (b.fine_width > 0)
        and a.descriptor_dim == b.descriptor_dim
    )
    if not same:
        raise ValueError(
            "widen_into: only channel widths may differ (depths, strides, downsampling, the fine "
            f"branch and descriptor_dim must match): {a} vs {b}"
        )
    src = small.state_dict()
    dst = big.state_dict()
    if set(src) != set(dst):
        raise ValueError(f"widen_into: different layers: {sorted(set(src) ^ set(dst))[:5]}")
    out = {}
    for key, w in src.items():
        v = dst[key]
        if w.ndim != v.ndim or any(x > y for x, y in zip(w.shape, v.shape, strict=True)):
            raise ValueError(f"widen_into: {key} has shape {tuple(w.shape)}, larger than {tuple(v.shape)}")
        if key == "detector_out.weight":
            # its input is cat([detector head, fine branch]): each part sits at its own offset
            out[key] = _detector_out(w, v.clone(), a.head_width, b.head_width)
        elif w.ndim == 4:
            out[key] = _conv(w, v.clone())
        else:
            v = v.clone()
            v[tuple(slice(0, n) for n in w.shape)] = w
            out[key] = v
    big.load_state_dict(out, strict=True)


def _conv(w: Tensor, v: Tensor) -> Tensor:
    o, i = w.shape[:2]
    v[:o, i:] = 0  # old outputs ignore the new inputs
    v[:o, :i] = w
    return v


def _detector_out(w: Tensor, v: Tensor, head_small: int, head_big: int) -> Tensor:
    """65 outputs either way; the input is [head | fine], so both parts move to their offsets."""
    fine = w.shape[1] - head_small
    v[:, head_small:head_big] = 0
    v[:, head_big + fine :] = 0
    v[:, :head_small] = w[:, :head_small]
    v[:, head_big : head_big + fine] = w[:, head_small:]
    return v

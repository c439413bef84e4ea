"""Multiply-accumulate counting with forward hooks on Conv2d / ConvTranspose2d / Linear.

Counts only the layers that dominate the cost of our networks; BatchNorm, ReLU, pooling,
resizing and element-wise adds are ignored (a few % of the total at most).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    per_output = (module.in_channels // module.groups) * kh * kw
    return out.numel() * per_output


def _deconv_macs(module: nn.ConvTranspose2d, inp: torch.Tensor) -> int:
    kh, kw = module.kernel_size
    # every input element is multiplied into out_channels/groups * kh * kw outputs
    return inp.numel() * (module.out_channels // module.groups) * kh * kw


def _linear_macs(module: nn.Linear, out: torch.Tensor) -> int:
    return out.numel() * module.in_features


@torch.no_grad()
def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``model(*inputs)`` (whole batch).

    Returns an int (divide by 1e9 for GMACs). The model is run once; hooks are removed after.
    """
    total = 0

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.ConvTranspose2d):
            total += _deconv_macs(module, args[0])
        elif isinstance(module, nn.Conv2d):
            total += _conv_macs(module, out)
        elif isinstance(module, nn.Linear):
            total += _linear_macs(module, out)

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear)
    ]
    try:
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())

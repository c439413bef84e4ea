"""widen_into: a wider KeypointNet started from a narrower one computes the same function."""

import dataclasses

import pytest
import torch

from homeloc.models.keypoint_config import PRESETS
from homeloc.models.keypoints import KeypointNet
from homeloc.models.widen import widen_into


def _trained_like(model: KeypointNet) -> KeypointNet:
    """Random BatchNorm statistics and affine terms, so a slicing mistake cannot hide behind
    identity BNs."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def test_wider_network_starts_with_the_same_outputs():
    torch.manual_seed(0)
    small = _trained_like(KeypointNet("tiny"))
    cfg = dataclasses.replace(
        PRESETS["tiny"],
        stages=((12, 1, 2), (20, 1, 2), (40, 1, 2)),
        pyramid=((48, 1),),
        head_width=40,
        fine_width=12,
    )
    big = KeypointNet("tiny", config=cfg)
    widen_into(small, big)
    big.eval()
    x = torch.rand(2, 1, 64, 96)
    with torch.no_grad():
        (l0, d0), (l1, d1) = small(x), big(x)
    assert torch.allclose(l0, l1, atol=1e-5) and torch.allclose(d0, d1, atol=1e-5)
    # the zeroed weights (old outputs reading new channels) get gradients: after the first step the
    # new channels reach the outputs and are trained like the rest
    big.train()
    logits, desc = big(x)
    (logits.square().mean() + desc.sum()).backward()
    assert big.descriptor_out.weight.grad[:, 24:].abs().sum() > 0  # head width 24 -> 40
    assert big.detector_out.weight.grad[:, 24:40].abs().sum() > 0
    assert big.detector[0].weight.grad[:24, 24:].abs().sum() > 0  # 1/8 width 24 -> 40


def test_only_widths_may_differ():
    small = KeypointNet("tiny")
    deeper = KeypointNet("tiny", config=dataclasses.replace(PRESETS["tiny"], fuse_depth=2))
    with pytest.raises(ValueError, match="only channel widths"):
        widen_into(small, deeper)
    narrower = KeypointNet("tiny", config=dataclasses.replace(PRESETS["tiny"], head_width=8))
    with pytest.raises(ValueError, match="larger than"):
        widen_into(small, narrower)


def test_keypoint_system_widens_its_init_checkpoint(tmp_path):
    """KeypointSystem(preset=wider, init_checkpoint=narrow run) starts with the narrow run's outputs."""
    from homeloc.train.keypoints import KeypointSystem

    small = _trained_like(KeypointNet("edge"))
    small.save(tmp_path / "edge.pt")
    system = KeypointSystem(
        preset="edge_wide", stage="pairs", teacher="none", init_checkpoint=str(tmp_path / "edge.pt")
    )
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        (l0, d0), (l1, d1) = small(x), system.model.eval()(x)
    assert system.model.config == PRESETS["edge_wide"]
    assert torch.allclose(l0, l1, atol=1e-4) and torch.allclose(d0, d1, atol=1e-5)

"""Online relighting of training pairs (train.augment): only the images change, every read draws
anew, bad options are refused before training."""

import pytest
import torch

from homeloc.train.augment import RelitPairs, relight_gray
from homeloc.train.data import PairsData


class _Pairs(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.image = (torch.rand(1, 24, 32, generator=g) * 255).round() / 255

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {
            "image0": self.image.clone(),
            "image1": self.image.clone(),
            "warp_0to1": torch.zeros(24, 32, 2),
        }


def test_relight_keeps_shape_range_and_uint8_steps():
    import numpy as np

    img = _Pairs()[0]["image0"]
    out = relight_gray(img, "night_lamp", np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(out * 255, (out * 255).round())
    assert (out - img).abs().mean() > 0.01  # relit, not a copy


def test_relit_pairs_change_only_images_and_draw_anew():
    base = _Pairs()
    relit = RelitPairs(base, ["night_lamp"], p=1.0)
    torch.manual_seed(0)
    a, b = relit[0], relit[0]
    assert not torch.equal(a["image0"], base[0]["image0"]) and not torch.equal(a["image0"], b["image0"])
    assert torch.equal(a["warp_0to1"], base[0]["warp_0to1"])
    off = RelitPairs(base, ["night_lamp"], p=0.0)[0]
    assert torch.equal(off["image1"], base[0]["image1"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"augment_presets": ["moonlight"]}, "unknown"), ({"augment_p": 1.5}, "probability")],
)
def test_pairs_data_refuses_bad_augment_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PairsData(**{"augment_p": 0.5, **kwargs})

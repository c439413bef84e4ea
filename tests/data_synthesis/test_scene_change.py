"""Scene-change recipes: the mask covers every changed pixel; pairs keep change1 inside valid1."""

import numpy as np
import pytest

from homeloc.data_synthesis.pairs import PairConfig, make_pair, sample_rng
from homeloc.data_synthesis.scene_change import SCENE_RECIPES, apply_scene_changes
from homeloc.data_synthesis.sources import SourceMix

IMG = np.random.default_rng(0).random((60, 80, 3), dtype=np.float32)
TEX = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)


@pytest.mark.parametrize("name", sorted(SCENE_RECIPES))
def test_pixels_outside_the_mask_are_unchanged(name):
    changed_any = 0
    for i in range(20):
        kw = {"texture": TEX} if name == "occluder" else {}
        out, mask, params = SCENE_RECIPES[name](IMG.copy(), sample_rng(0, i), **kw)
        assert out.shape == IMG.shape and mask.shape == IMG.shape[:2] and mask.dtype == bool
        assert np.array_equal(out[~mask], IMG[~mask]), f"{name}: pixels changed outside the mask"
        assert out.min() >= 0 and out.max() <= 1 and isinstance(params, dict)
        changed_any += mask.any()
    assert changed_any >= 15


def test_apply_scene_changes_union_and_lazy_texture():
    calls = []

    def texture():
        calls.append(1)
        return TEX

    out, mask, applied = apply_scene_changes(
        IMG.copy(), sample_rng(1, 0), {"occluder": 1.0, "new_object": 1.0}, texture
    )
    assert [a["recipe"] for a in applied] == ["occluder", "new_object"] and len(calls) == 1
    assert np.array_equal(out[~mask], IMG[~mask])
    _, mask0, applied0 = apply_scene_changes(IMG.copy(), sample_rng(1, 0), {"occluder": 0.0}, texture)
    assert applied0 == [] and not mask0.any() and len(calls) == 1, "texture drawn only when used"
    with pytest.raises(KeyError, match="unknown scene-change recipe"):
        apply_scene_changes(IMG, sample_rng(1, 0), {"flood": 1.0})


def test_pair_change_mask_inside_valid_mask():
    mix = SourceMix(["skimage"])
    cfg = PairConfig(size=(60, 80), scene_change={"occluder": 1.0, "moved_object": 1.0, "new_object": 1.0})
    for i in range(4):
        s = make_pair(mix, cfg, 0, i)
        assert s.change1.any() and not (s.change1 & ~s.valid1).any()
        assert {r["recipe"] for r in s.meta["scene_change"]} == {"occluder", "moved_object", "new_object"}

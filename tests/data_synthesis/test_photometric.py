"""Photometric recipes: documented ranges respected, outputs in range, presets, helpers."""

import numpy as np
import pytest

from homeloc.data_synthesis import photometric as ph
from homeloc.data_synthesis import recipes_base as rb
from homeloc.data_synthesis.pairs import sample_rng

IMG = np.random.default_rng(0).random((48, 64, 3), dtype=np.float32)


@pytest.mark.parametrize("name", sorted(ph.RECIPES))
def test_recipe_params_within_documented_ranges_and_output_in_range(name):
    ranges = ph.RECIPES[name].ranges
    assert ph.RECIPES[name].doc, f"{name} has no documentation"
    for i in range(25):
        rng = sample_rng(1, i)
        params = ph.sample_params(name, rng)
        assert set(params) == set(ranges)
        for k, v in params.items():
            assert ranges[k][0] <= v <= ranges[k][1], (name, k, v)
        out, used = ph.apply_recipe(name, IMG, rng, params=params)
        assert used == params
        assert out.shape == IMG.shape and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", sorted(ph.RECIPES))
def test_recipe_extremes_of_its_range(name):
    ranges = ph.RECIPES[name].ranges
    for pick in (0, 1):
        params = {k: r[pick] for k, r in ranges.items()}
        out, _ = ph.apply_recipe(name, IMG, sample_rng(2, pick), params=params)
        assert out.shape == IMG.shape and 0 <= out.min() and out.max() <= 1


def test_overrides_must_stay_inside_the_documented_range():
    rng = np.random.default_rng(0)
    lo, hi = ph.RECIPES["exposure"].ranges["ev"]
    p = ph.sample_params("exposure", rng, {"ev": (lo, lo + 0.1)})
    assert lo <= p["ev"] <= lo + 0.1
    with pytest.raises(ValueError, match="documented range"):
        ph.sample_params("exposure", rng, {"ev": (lo - 1, hi)})
    with pytest.raises(ValueError, match="documented range"):
        ph.sample_params("exposure", rng, {"ev": (hi, lo)})  # inverted
    with pytest.raises(KeyError, match="no parameter"):
        ph.sample_params("exposure", rng, {"gain": (0, 1)})
    with pytest.raises(KeyError, match="unknown photometric recipe"):
        ph.sample_params("sepia", rng)


def test_every_preset_override_lies_inside_its_recipe_range():
    for preset, steps in ph.PRESETS.items():
        for step in steps:
            assert step.recipe in ph.RECIPES, (preset, step.recipe)
            assert 0 <= step.p <= 1
            for k, (lo, hi) in step.ranges.items():
                base = ph.RECIPES[step.recipe].ranges[k]
                assert base[0] <= lo <= hi <= base[1], (preset, step.recipe, k)


@pytest.mark.parametrize("preset", sorted(ph.PRESETS))
def test_presets_record_what_they_apply_within_ranges(preset):
    steps = {s.recipe: s for s in ph.PRESETS[preset]}
    for i in range(12):
        out, applied = ph.apply_preset(preset, (IMG * 255).astype(np.uint8), sample_rng(3, i))
        assert out.shape == IMG.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
        for a in applied:
            step = steps[a["recipe"]]
            for k, v in a["params"].items():
                lo, hi = step.ranges.get(k, ph.RECIPES[a["recipe"]].ranges[k])
                assert lo - 1e-9 <= v <= hi + 1e-9, (preset, a["recipe"], k, v)


def test_presets_are_deterministic_and_differ_by_seed():
    for preset in ("night_lamp", "night_ir", "dusk", "day"):
        a, ra = ph.apply_preset(preset, IMG, sample_rng(4, 0))
        b, rb = ph.apply_preset(preset, IMG, sample_rng(4, 0))
        c, _ = ph.apply_preset(preset, IMG, sample_rng(4, 1))
        assert np.array_equal(a, b) and ra == rb
        assert not np.array_equal(a, c)


def test_unknown_preset_names_it():
    with pytest.raises(KeyError, match="unknown preset 'noon'"):
        ph.apply_preset("noon", IMG, np.random.default_rng(0))


def test_night_presets_darken_and_ir_is_gray():
    rng = np.random.default_rng(0)
    bright = np.clip(IMG * 0.5 + 0.4, 0, 1)
    lows = [ph.apply_preset("night_lamp", bright, sample_rng(5, i))[0].mean() for i in range(10)]
    assert np.median(lows) < bright.mean()
    ir, _ = ph.apply_preset("night_ir", bright, rng)
    assert np.allclose(ir[..., 0], ir[..., 1]) and np.allclose(ir[..., 1], ir[..., 2])


def test_relight_is_linear_light_gain():
    g = np.linspace(0.1, 3.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    colour = np.array([1.0, 0.7, 0.4], np.float32)
    ref = ph.to_srgb(ph.to_linear(IMG) * g[..., None] * colour)
    assert np.allclose(ph.relight(IMG, g, colour), ref, atol=1e-5)
    assert np.allclose(ph.relight(IMG, 2.0), ph.to_srgb(ph.to_linear(IMG) * 2.0), atol=1e-5)
    assert np.allclose(ph.relight(IMG, colour), ph.to_srgb(ph.to_linear(IMG) * colour), atol=1e-5)


def test_coarse_fields_interpolate_exactly_inside():
    shape = (48, 64)
    gx, gy = rb.coarse_grid(shape)
    xs, ys = rb.pixel_grid(shape)
    field = rb.upsample_field(3 * gx - 2 * gy + 1, shape)
    exact = 3 * xs - 2 * ys + 1
    m = rb.COARSE * 2  # bilinear is exact for linear fields away from the clamped border
    assert np.abs(field[m:-m, m:-m] - exact[m:-m, m:-m]).max() < 1e-4


def test_standard_normal_and_to_uint8():
    n = ph.standard_normal(np.random.default_rng(0), (200, 300))
    assert n.dtype == np.float32 and abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    assert np.array_equal(n, ph.standard_normal(np.random.default_rng(0), (200, 300)))
    u = ph.to_uint8(np.array([[-0.5, 0.0, 0.5, 1.0, 2.0]], np.float32))
    assert u.dtype == np.uint8 and u.tolist() == [[0, 0, 128, 255, 255]]


def test_blur_kernels_are_normalised():
    for length in (3.0, 7.5, 15.0):
        k = ph.motion_kernel(length, 0.7)
        assert k.shape[0] % 2 == 1 and abs(k.sum() - 1) < 1e-5
    for r in (1.0, 2.5, 4.0):
        k = ph.disk_kernel(r)
        assert abs(k.sum() - 1) < 1e-5 and k.shape == (2 * int(np.ceil(r)) + 1,) * 2


def test_parse_steps_from_yaml_like_spec():
    steps = ph.parse_steps([{"recipe": "lamp", "p": 0.5, "ranges": {"power": [1, 2]}}, {"recipe": "jpeg"}])
    assert steps[0].ranges == {"power": (1, 2)} and steps[1].p == 1.0
    out, applied = ph.apply_preset(steps, IMG, np.random.default_rng(0))
    assert out.shape == IMG.shape and all(a["recipe"] in ("lamp", "jpeg") for a in applied)

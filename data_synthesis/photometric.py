"""Photometric recipes: what changes in a home over a day, as a registry of named, ranged steps.

Every recipe takes an RGB float32 image in [0, 1] and returns one of the same shape and range.
Parameters are drawn from documented ranges by `apply_recipe` with the sample's own rng, and the
drawn values are returned so a dataset records exactly what was applied. Presets (`day`, `dusk`,
`night_lamp`, `night_ir`, `glare`, ...) are lists of (recipe, probability, range overrides).

Recipes are registered by name in ``recipes_base.RECIPES``: tone, colour, low light and sensor
in ``recipes_tone``; spatially varying light in ``recipes_light``; blur and compression in ``recipes_optics``
(imported below so that every recipe is registered when this module is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from homeloc.data_synthesis.recipes_base import (
    COARSE,
    RECIPES,
    Range,
    Recipe,
    register,
    relight,
    standard_normal,
    to_linear,
    to_srgb,
    to_uint8,
)
from homeloc.data_synthesis.recipes_optics import disk_kernel, motion_kernel

# Imported for their @register side effect, in this order (RECIPES keeps it): every recipe is
# registered once photometric is imported.
# isort: off
from homeloc.data_synthesis import recipes_tone  # noqa: F401
from homeloc.data_synthesis import recipes_light  # noqa: F401
from homeloc.data_synthesis import recipes_optics  # noqa: F401
# isort: on

__all__ = [
    "COARSE", "PRESETS", "RECIPES", "Range", "Recipe", "Step", "apply_preset", "apply_recipe",
    "disk_kernel", "motion_kernel", "parse_steps", "register", "relight", "sample_params",
    "standard_normal", "to_linear", "to_srgb", "to_uint8",
]  # fmt: skip


# --- presets and application ------------------------------------------------------------------


@dataclass
class Step:
    recipe: str
    p: float = 1.0
    ranges: dict[str, Range] = field(default_factory=dict)  # overrides of the recipe's ranges


PRESETS: dict[str, list[Step]] = {
    "identity": [],
    "day": [
        Step("exposure", 1.0, {"ev": (-0.4, 0.4)}),
        Step("white_balance", 0.7, {"kelvin": (4800, 6500), "strength": (0.3, 0.7)}),
        Step("gamma", 0.5, {"gamma": (0.85, 1.15)}),
        Step("sun_patch", 0.25),
        Step("shadow", 0.25, {"darkness": (0.2, 0.6)}),
        Step("sensor_noise", 0.5, {"sigma": (0.003, 0.015)}),
        Step("jpeg", 0.3, {"quality": (60, 95)}),
    ],
    "dusk": [
        Step("exposure", 1.0, {"ev": (-1.5, -0.5)}),
        Step("white_balance", 1.0, {"kelvin": (3200, 12000), "strength": (0.5, 0.9)}),  # golden .. blue hour
        Step("lamp", 0.4, {"ambient": (0.3, 0.7), "power": (0.3, 1.5)}),
        Step("low_light", 1.0, {"scale": (0.25, 0.6)}),
        Step("denoise", 0.4),
        Step("shadow", 0.2, {"softness": (0.03, 0.08)}),
        Step("jpeg", 0.3, {"quality": (50, 90)}),
    ],
    "night_lamp": [
        # tungsten cast, or (> 6500 K) the camera's AWB pulling the lamps' warm light back towards grey
        Step("white_balance", 1.0, {"kelvin": (2500, 10000), "strength": (0.3, 1.0)}),
        Step("lamp", 1.0),
        Step("low_light", 1.0, {"scale": (0.03, 0.25)}),
        Step("denoise", 0.4),
        Step("glare", 0.2, {"intensity": (0.2, 0.6)}),
        Step("motion_blur", 0.2, {"length": (3, 9)}),
        Step("jpeg", 0.4, {"quality": (40, 90)}),
    ],
    "night_ir": [
        Step("ir_night", 1.0),
        Step("denoise", 0.4),
        Step("motion_blur", 0.15, {"length": (3, 7)}),
        Step("defocus", 0.15, {"radius": (1, 2)}),
        Step("jpeg", 0.4, {"quality": (40, 90)}),
    ],
    "glare": [
        Step("exposure", 1.0, {"ev": (0.0, 1.0)}),
        Step("overexposed_window", 0.7),
        Step("sun_patch", 0.6),
        Step("glare", 1.0),
        Step("jpeg", 0.3, {"quality": (50, 95)}),
    ],
    "blur": [Step("motion_blur", 0.6), Step("defocus", 0.6)],
}


def sample_params(name: str, rng: np.random.Generator, overrides: dict[str, Range] | None = None) -> dict:
    """Draw each parameter of recipe `name` from its range (overrides must lie inside it)."""
    if name not in RECIPES:
        raise KeyError(f"unknown photometric recipe {name!r}; known: {sorted(RECIPES)}")
    ranges = dict(RECIPES[name].ranges)
    for k, (lo, hi) in (overrides or {}).items():
        if k not in ranges:
            raise KeyError(f"recipe {name!r} has no parameter {k!r}; it has {sorted(ranges)}")
        base = ranges[k]
        if lo > hi or lo < base[0] - 1e-9 or hi > base[1] + 1e-9:
            raise ValueError(f"recipe {name!r}: range {k}={lo, hi} leaves the documented range {base}")
        ranges[k] = (lo, hi)
    return {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in ranges.items()}


def apply_recipe(name, img, rng, overrides=None, params=None):
    """Apply one recipe; returns (image, the parameters used)."""
    params = params if params is not None else sample_params(name, rng, overrides)
    out = RECIPES[name].fn(img, rng, **params)
    return np.clip(out, 0, 1).astype(np.float32, copy=False), params


def apply_preset(preset: str | list[Step], img: np.ndarray, rng: np.random.Generator):
    """Run a preset's steps (each with its probability). img: HxWx3 float32 [0,1] or uint8.

    Returns (image float32 [0,1], list of {"recipe": name, "params": {...}} actually applied).
    """
    if isinstance(preset, str) and preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    steps = PRESETS[preset] if isinstance(preset, str) else preset
    out = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    applied = []
    for step in steps:
        if rng.random() >= step.p:
            continue
        out, params = apply_recipe(step.recipe, out, rng, step.ranges)
        applied.append({"recipe": step.recipe, "params": params})
    return out, applied


def parse_steps(spec: list[dict]) -> list[Step]:
    """Steps from YAML: [{recipe: lamp, p: 0.5, ranges: {power: [1, 2]}}, ...]."""
    return [
        Step(s["recipe"], float(s.get("p", 1.0)), {k: tuple(v) for k, v in s.get("ranges", {}).items()})
        for s in spec
    ]

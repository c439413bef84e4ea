"""Lighting scenarios, by name (LIGHTINGS): each draws a Lighting for a home from an rng.

Units: radiance in kcd/m^2-like units (a white surface in full sun at noon reaches about 30, a
clear sky seen through a window 2-6, a lamp-lit wall at night about 0.01): the renderer keeps
these physical ratios and the camera model (camera_model.py) exposes for them, so night frames
are dark and noisy for the same reason a real camera's are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NIGHT_SKY = (2e-4, 2.5e-4, 4e-4)


@dataclass
class Lighting:
    """sun_dir: unit vector towards the sun (None: no sun); sun: its irradiance (RGB); sky: radiance of
    the sky seen through every window; ceiling: room -> panel radiance; lamps: lamp index (in
    home.lamps order) -> point intensity; ir: intensity of the illuminator at the camera (0: none),
    in which case the frame is monochrome."""

    name: str
    sky: tuple[float, float, float]
    sun_dir: tuple[float, float, float] | None = None
    sun: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ceiling: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    lamps: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    ir: float = 0.0

    @property
    def mono(self) -> bool:
        return self.ir > 0


def _sun(rng, elev: tuple[float, float], azim: tuple[float, float]) -> tuple[float, float, float]:
    e, a = np.radians(rng.uniform(*elev)), np.radians(rng.uniform(*azim))
    return (float(np.cos(e) * np.cos(a)), float(np.cos(e) * np.sin(a)), float(np.sin(e)))


def _scale(c, s: float) -> tuple[float, float, float]:
    return tuple(float(v * s) for v in c)


def _warm_white(rng) -> tuple[float, float, float]:
    """A bulb colour between warm (2700 K-like) and neutral white."""
    t = rng.uniform(0, 1)
    return (1.0, 0.78 + 0.2 * t, 0.52 + 0.42 * t)


def _lamps_on(rng, home, share: float) -> dict[int, tuple[float, float, float]]:
    """The same bulb in every lamp that is on (one emitter group: see engine.py)."""
    bulb = _scale(_warm_white(rng), rng.uniform(0.05, 0.12))
    return {i: bulb for i in range(len(home.lamps)) if rng.random() < share}


def sun_morning(rng, home) -> Lighting:
    return Lighting(
        "sun_morning",
        _scale((0.55, 0.7, 1.0), rng.uniform(1.5, 3.0)),
        _sun(rng, (8, 22), (50, 130)),
        _scale((1.0, 0.82, 0.62), rng.uniform(40, 70)),
    )


def sun_noon(rng, home) -> Lighting:
    return Lighting(
        "sun_noon",
        _scale((0.6, 0.75, 1.0), rng.uniform(3.0, 6.0)),
        _sun(rng, (40, 65), (0, 360)),
        _scale((1.0, 0.97, 0.92), rng.uniform(80, 110)),
    )


def sun_evening(rng, home) -> Lighting:
    return Lighting(
        "sun_evening",
        _scale((1.0, 0.72, 0.6), rng.uniform(0.8, 2.0)),
        _sun(rng, (4, 15), (230, 310)),
        _scale((1.0, 0.6, 0.32), rng.uniform(25, 50)),
    )


def overcast(rng, home) -> Lighting:
    return Lighting("overcast", _scale((0.95, 0.97, 1.0), rng.uniform(1.0, 3.0)))


def dusk(rng, home) -> Lighting:
    return Lighting(
        "dusk", _scale((0.35, 0.45, 1.0), rng.uniform(0.01, 0.06)), lamps=_lamps_on(rng, home, 0.4)
    )


def ceiling(rng, home) -> Lighting:
    c = _scale(_warm_white(rng), rng.uniform(1.0, 2.5))
    return Lighting("ceiling", NIGHT_SKY, ceiling={i: c for i in range(len(home.rooms))})


def lamps(rng, home) -> Lighting:
    lit = _lamps_on(rng, home, 1.0)
    return Lighting("lamps", NIGHT_SKY, lamps=lit, ceiling={} if lit else {0: (0.3, 0.25, 0.2)})


def night_lamp(rng, home) -> Lighting:
    n = len(home.lamps)
    if n == 0:
        return Lighting(
            "night_lamp",
            NIGHT_SKY,
            ceiling={int(rng.integers(len(home.rooms))): _scale(_warm_white(rng), 0.3)},
        )
    return Lighting(
        "night_lamp",
        NIGHT_SKY,
        lamps={int(rng.integers(n)): _scale(_warm_white(rng), rng.uniform(0.05, 0.12))},
    )


def ir_dark(rng, home) -> Lighting:
    return Lighting("ir_dark", (0.0, 0.0, 0.0), ir=float(rng.uniform(0.01, 0.03)))


def mixed(rng, home) -> Lighting:
    room = int(rng.integers(len(home.rooms)))
    return Lighting(
        "mixed",
        _scale((0.8, 0.85, 1.0), rng.uniform(0.2, 1.0)),
        lamps=_lamps_on(rng, home, 0.7),
        ceiling={room: _scale(_warm_white(rng), rng.uniform(0.8, 2.0))},
    )


LIGHTINGS: dict[str, Callable] = {
    f.__name__: f
    for f in (sun_morning, sun_noon, sun_evening, overcast, dusk, ceiling, lamps, night_lamp, ir_dark, mixed)
}


def make_lighting(name: str, rng, home) -> Lighting:
    if name not in LIGHTINGS:
        raise KeyError(f"unknown lighting scenario {name!r}; known: {', '.join(LIGHTINGS)}")
    return LIGHTINGS[name](rng, home)

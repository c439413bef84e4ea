"""The long-term plot: daily lines for short sequences, weekly means for months."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from homeloc.eval.plots import WEEKLY_AFTER_DAYS, block_means, plot_changes, plot_longterm


def test_block_means_keep_day_zero_alone_and_average_weeks():
    x, y = block_means([0, 1, 2, 7, 8, 15], [0.2, 1.0, 0.5, 0.0, 1.0, 0.5])
    assert x == pytest.approx([0.0, 10 / 3, 8.0, 15.0])
    assert y == pytest.approx([0.2, 0.5, 1.0, 0.5])


def test_block_means_of_a_gap_skip_empty_weeks():
    x, y = block_means([1, 30], [1.0, 0.0], width=7)
    assert (x, y) == ([1.0, 30.0], [1.0, 0.0])


def _rows(days: int, success) -> list[dict]:
    return [
        {"day": d, "success": success(d), "false": 0.0, "map_bytes": 1000 * (d + 1)} for d in range(days + 1)
    ]


@pytest.mark.parametrize("days", [20, WEEKLY_AFTER_DAYS + 30])
def test_plot_longterm_writes_a_png(tmp_path, days):
    rng = np.random.default_rng(0)
    maps = {
        "odometry": _rows(days, lambda d: 1.0),
        "static": _rows(days, lambda d: float(rng.integers(0, 9)) / 8 * max(0.0, 1 - d / days)),
    }
    out = plot_longterm(tmp_path / "longterm.png", maps, budget_bytes=50_000)
    img = cv2.imread(str(out))
    assert img is not None and img.shape[0] > 200 and img.shape[1] > 400


def test_plot_changes_writes_a_png_with_or_without_declarations(tmp_path):
    events = [{"kind": "repaint", "room": 1, "day": 7, "detected": True},
              {"kind": "rearrange", "room": 0, "day": 10, "detected": False},
              {"kind": "decorations", "room": 0, "day": 12, "detected": False, "visible": False}]  # fmt: skip
    declared = {"longterm": [(3, 0, "failures"), (7, 1, "colour")], "odometry": [(8, 1, "colour")]}
    for name, ev, decl in (("some", events, declared), ("none", [], {"odometry": []})):
        img = cv2.imread(str(plot_changes(tmp_path / f"{name}.png", ev, decl)))
        assert img is not None and img.shape[0] > 150 and img.shape[1] > 400

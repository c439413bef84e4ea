"""Real-vs-synthetic night statistics and the benchmark report."""

import json

import numpy as np
import pytest

from homeloc.data_synthesis import bench, captures, stats
from homeloc.runtime.io import write_image


def test_noise_sigma_recovers_known_noise():
    base = np.tile(np.linspace(40, 200, 320), (240, 1))
    rng = np.random.default_rng(0)
    for sigma in (2.0, 5.0, 10.0):
        g = np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).round().astype(np.uint8)
        assert stats.noise_sigma(g) == pytest.approx(sigma, rel=0.15)
    assert stats.noise_sigma(np.full((50, 60), 255, np.uint8)) != stats.noise_sigma(
        np.full((50, 60), 255, np.uint8)
    )  # NaN


def test_colour_cast_and_luminance():
    warm = np.zeros((20, 30, 3), np.uint8)
    warm[...] = (200, 120, 60)
    chroma, rb = stats.colour_cast(warm)
    assert rb == pytest.approx(200 / 60) and chroma > 20
    gray = np.full((20, 30, 3), 100, np.uint8)
    assert stats.colour_cast(gray)[0] < 0.1 and stats.colour_cast(gray)[1] == pytest.approx(1)
    s = stats.image_stats(gray)
    assert s["p5"] == s["p50"] == s["p95"] == 100


def test_local_hour_and_buckets():
    from pathlib import Path

    assert captures.local_hour(Path("20130701_024700.jpg"), "frankfurt") == pytest.approx(4 + 47 / 60)  # CEST
    assert captures.local_hour(Path("20131201_172400.jpg"), "frankfurt") == pytest.approx(18.4)  # CET
    assert captures.local_hour(Path("20130701_024700.jpg"), "unknown") == pytest.approx(2 + 47 / 60)  # UTC
    assert captures.local_hour(Path("IMG_0001.jpg"), "frankfurt") is None
    assert [captures.bucket_from_hour(h) for h in (2, 6, 12, 18, 22)] == [
        "night",
        "dusk",
        "day",
        "dusk",
        "night",
    ]
    assert [captures.bucket_from_brightness(r) for r in (0.3, 0.7, 1.0)] == ["night", "dusk", "day"]


def test_stats_report_on_a_small_fake_webcam(tmp_path):
    rng = np.random.default_rng(0)
    base = (rng.random((60, 80, 3)) * 200 + 30).astype(np.uint8)
    for scene in ("a", "b"):
        for t, gain in (("20200601_120000", 1.0), ("20200601_130000", 0.95), ("20200601_235900", 0.2)):
            write_image(tmp_path / "cams" / scene / f"{t}.png", (base * gain).astype(np.uint8))
    md = stats.write_stats(tmp_path / "cams", tmp_path / "out", seeds=1, size=(48, 64))
    text = md.read_text()
    assert "| synth night_lamp |" in text and "Coverage" in text
    st = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert st["groups"]["real night (hour)"]["n"] == 2 and st["groups"]["synth night_ir"]["n"] == 4
    cov = st["coverage"]["real night (hour) by synth night presets"]
    assert 0 <= cov["covered_all_metrics"] <= 1 and set(stats.METRICS) <= set(cov)


@pytest.mark.slow
def test_stats_on_shared_webcam(shared_data, tmp_path):
    md = stats.write_stats(shared_data / "webcam", tmp_path, seeds=1)
    assert "real night (brightness)" in md.read_text()


def test_bench_markdown_from_results():
    r = {
        "sources": ["skimage"],
        "size": [240, 320],
        "cpu_count": 2,
        "loadavg_before": 1.0,
        "loadavg_after": 1.2,
        "warm_cache_s": 0.5,
        "target_pairs_per_s_2_cores": 250.0,
        "pairs_1_worker": {"per_s": 120.0, "cpu_per_s": 130.0},
        "pairs_2_workers": {"per_s": 230.0, "cpu_per_s": 260.0},
        "presets_ms": {"preset day": 2.0},
        "shapes_per_s": 150.0,
        "shapes_cpu_per_s": 160.0,
        "places_per_s": 30.0,
        "places_cpu_per_s": 32.0,
    }
    md = bench.to_markdown(r)
    assert "pairs/s, 2 workers" in md and "0.92 of 250/s" in md and "| preset day | 2.00 |" in md


@pytest.mark.slow
def test_bench_runs(monkeypatch):
    r = bench.run_bench(["skimage"], n_pairs=10, n_other=8, repeat=1)
    assert r["pairs_1_worker"]["per_s"] > 0 and r["pairs_2_workers"]["pairs"] == 20

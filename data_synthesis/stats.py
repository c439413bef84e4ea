"""Do the synthetic night recipes cover real night images? Image statistics, real vs synthesized.

Real: the static-webcam captures (`../shared/data/webcam/<scene>/YYYYMMDD_HHMMSS.*`), each put in
a day / dusk / night bucket two ways: by capture hour (file names are UTC, the AMOS archive's
convention, converted to each scene's local time; see SCENE_TZ) and by brightness (mean luma
relative to the scene's median). Synthesized: the night presets (dusk, night_lamp, night_ir)
applied to the real *day* captures with several seeds, the way pair synthesis uses them.

Per image, at the synthesis resolution (240x320): luminance percentiles p5/p50/p95 (0-255);
noise sigma (gray levels: Immerkaer's estimate, sqrt(pi/2) * mean |residual| / 6 of a
Laplacian-difference kernel, over the flattest half of the unsaturated pixels); colour cast (mean Lab chroma, and mean R / mean B). The report
gives each group's median and range, and for real night images the share inside the range the
night presets span. It measures coverage only: the recipes are not fitted to these images (some
real lighting data is held out to measure generalisation).

`homeloc-synthesize stats --webcam ../shared/data/webcam --out reports/synth/stats` writes
stats.md and stats.json (atomic writes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.captures import SCENE_TZ, Capture, load_captures, luminance
from homeloc.data_synthesis.pairs import sample_rng
from homeloc.data_synthesis.photometric import PRESETS, apply_preset, to_uint8
from homeloc.runtime.io import atomic_write
from homeloc.runtime.reliability import noise_sigma

log = logging.getLogger(__name__)
METRICS = ("p5", "p50", "p95", "noise", "chroma", "r_over_b")
METRIC_DOC = {
    "p5": "luminance 5th percentile (0-255)",
    "p50": "luminance median (0-255)",
    "p95": "luminance 95th percentile (0-255)",
    "noise": "noise sigma in flat regions (gray levels)",
    "chroma": "mean Lab chroma (colour saturation / cast)",
    "r_over_b": "mean R / mean B (>1 warm, <1 cool)",
}
DEFAULT_PRESETS = ("dusk", "night_lamp", "night_ir")


# ------------------------------------------------------------------------------------- metrics


def colour_cast(img: np.ndarray) -> tuple[float, float]:
    """(mean Lab chroma, mean R / mean B) over unsaturated pixels of an RGB uint8 image."""
    if img.ndim == 2:
        return 0.0, 1.0
    lab = cv2.cvtColor(img.astype(np.float32) * np.float32(1 / 255), cv2.COLOR_RGB2Lab)
    ok = (img.max(axis=2) < 250) & (img.max(axis=2) > 5)
    if ok.sum() < 100:
        ok = np.ones(img.shape[:2], bool)
    chroma = float(np.hypot(lab[..., 1], lab[..., 2])[ok].mean())
    r, b = float(img[..., 0][ok].mean()), float(img[..., 2][ok].mean())
    return chroma, r / max(b, 1e-3)


def image_stats(img: np.ndarray) -> dict[str, float]:
    """All metrics of one RGB (or gray) uint8 image."""
    y = luminance(img)
    p5, p50, p95 = (float(v) for v in np.percentile(y, [5, 50, 95]))
    chroma, rb = colour_cast(img)
    return {"p5": p5, "p50": p50, "p95": p95, "noise": noise_sigma(y), "chroma": chroma, "r_over_b": rb}


# ------------------------------------------------------------------------------------- report


def summarise(rows: list[dict[str, float]]) -> dict:
    """Per metric: median, min, max, p10, p90 over images (NaNs dropped)."""
    out = {"n": len(rows)}
    for m in METRICS:
        v = np.array([r[m] for r in rows], np.float64)
        v = v[np.isfinite(v)]
        out[m] = (
            {
                "median": float(np.median(v)),
                "min": float(v.min()),
                "max": float(v.max()),
                "p10": float(np.percentile(v, 10)),
                "p90": float(np.percentile(v, 90)),
            }
            if len(v)
            else None
        )
    return out


def coverage(real: list[dict[str, float]], synth: list[dict[str, float]]) -> dict:
    """Share of real images whose metric lies inside the synthesized [min, max] (per metric and all
    metrics at once), and how far outside the misses lie."""
    out = {"n_real": len(real), "n_synth": len(synth)}
    if not real or not synth:
        return out
    inside_all = np.ones(len(real), bool)
    for m in METRICS:
        s = np.array([r[m] for r in synth], np.float64)
        s = s[np.isfinite(s)]
        v = np.array([r[m] for r in real], np.float64)
        lo, hi = float(s.min()), float(s.max())
        inside = ~np.isfinite(v) | ((v >= lo) & (v <= hi))
        inside_all &= inside
        out[m] = {
            "synth_min": lo,
            "synth_max": hi,
            "real_min": float(np.nanmin(v)),
            "real_max": float(np.nanmax(v)),
            "covered": float(inside.mean()),
            "below": int((v < lo).sum()),
            "above": int((v > hi).sum()),
        }
    out["covered_all_metrics"] = float(inside_all.mean())
    return out


def synthesize_night(day: list[Capture], presets, seeds: int, seed: int = 0) -> dict[str, list[dict]]:
    """Each preset applied `seeds` times to every day capture (rng from (seed, image, preset))."""
    out = {}
    for p_i, preset in enumerate(presets):
        rows = []
        for i, c in enumerate(day):
            for s in range(seeds):
                rng = sample_rng(seed, i * seeds + s, 100 + p_i)
                img, _ = apply_preset(preset, c.image, rng)
                rows.append(image_stats(to_uint8(img)))
        out[preset] = rows
    return out


def _bucket(c: Capture, mode: str) -> str | None:
    return c.hour_bucket if mode == "hour" else c.brightness_bucket


def _bucket_counts(caps: list[Capture]) -> dict[str, dict[str, int]]:
    """{"<scene> <mode>": {bucket: number of captures}} for both bucketing modes."""
    return {
        f"{s} {m}": {
            b: sum(1 for c in caps if c.scene == s and _bucket(c, m) == b) for b in ("day", "dusk", "night")
        }
        for s in sorted({c.scene for c in caps})
        for m in ("hour", "brightness")
    }


def compute_stats(
    webcam: str | Path,
    presets=DEFAULT_PRESETS,
    seeds: int = 3,
    size=(240, 320),
    seed: int = 0,
    max_day: int = 40,
) -> dict:
    """The whole comparison as a JSON-able dict (see the module docstring)."""
    for p in presets:
        if p not in PRESETS:
            raise KeyError(f"unknown preset {p!r}; known: {sorted(PRESETS)}")
    caps = load_captures(webcam, tuple(size))
    per = {id(c): image_stats(c.image) for c in caps}
    groups: dict[str, list[dict]] = {}
    for mode in ("hour", "brightness"):
        for b in ("day", "dusk", "night"):
            groups[f"real {b} ({mode})"] = [per[id(c)] for c in caps if _bucket(c, mode) == b]
    # Sources for synthesis: captures that are day by both measures (spread over scenes, capped).
    day = [c for c in caps if c.hour_bucket in ("day", None) and c.brightness_bucket == "day"]
    day = day[:: max(1, len(day) // max_day)][:max_day]
    synth = synthesize_night(day, presets, seeds, seed)
    for p, rows in synth.items():
        groups[f"synth {p}"] = rows
    night_presets = [p for p in presets if p != "dusk"] or list(presets)
    synth_night = [r for p in night_presets for r in synth[p]]
    synth_all = [r for p in presets for r in synth[p]]
    groups["synth night (" + "+".join(night_presets) + ")"] = synth_night
    real_night = {m: [per[id(c)] for c in caps if _bucket(c, m) == "night"] for m in ("hour", "brightness")}
    real_dusk = {m: [per[id(c)] for c in caps if _bucket(c, m) == "dusk"] for m in ("hour", "brightness")}
    agree = sum(c.hour_bucket == c.brightness_bucket for c in caps if c.hour_bucket)
    return {
        "webcam": str(webcam),
        "size": list(size),
        "presets": list(presets),
        "seeds_per_image": seeds,
        "synth_sources": [str(c.path.relative_to(Path(webcam))) for c in day],
        "scene_tz": SCENE_TZ,
        "bucket_counts": _bucket_counts(caps),
        "hour_brightness_agreement": agree / max(1, sum(1 for c in caps if c.hour_bucket)),
        "groups": {k: summarise(v) for k, v in groups.items() if v},
        "coverage": {
            **{
                f"real night ({m}) by synth night presets": coverage(real_night[m], synth_night)
                for m in real_night
            },
            **{
                f"real night+dusk ({m}) by all synth presets": coverage(
                    real_night[m] + real_dusk[m], synth_all
                )
                for m in real_night
            },
        },
        "metrics": METRIC_DOC,
    }


def _cell(s: dict | None) -> str:
    if s is None:
        return "–"
    return f"{s['median']:.3g} [{s['min']:.3g}–{s['max']:.3g}]"


def to_markdown(st: dict) -> str:
    lines = [
        "# Synthesized vs real night images",
        "",
        f"Real: {st['webcam']} (all captures, {st['size'][0]}x{st['size'][1]}). Synthesized: presets "
        f"{', '.join(st['presets'])} on {len(st['synth_sources'])} day captures x {st['seeds_per_image']} seeds. "
        "Cells: median [min–max] over images.",
        "",
        "| group | n | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for name, g in st["groups"].items():
        lines.append(f"| {name} | {g['n']} | " + " | ".join(_cell(g[m]) for m in METRICS) + " |")
    lines += [
        "",
        "## Coverage: share of real images inside the synthesized range",
        "",
        "| real set | n | " + " | ".join(METRICS) + " | all metrics |",
        "|---|---|" + "---|" * (len(METRICS) + 1),
    ]
    for name, c in st["coverage"].items():
        if "covered_all_metrics" not in c:
            lines.append(f"| {name} | {c['n_real']} | " + " | ".join("–" for _ in METRICS) + " | – |")
            continue
        cells = []
        for m in METRICS:
            d = c[m]
            miss = f" ({d['below']}↓ {d['above']}↑)" if d["below"] or d["above"] else ""
            cells.append(f"{d['covered']:.0%}{miss}")
        lines.append(
            f"| {name} | {c['n_real']} | " + " | ".join(cells) + f" | {c['covered_all_metrics']:.0%} |"
        )
    lines += [
        "",
        "↓/↑: real images below / above the synthesized range.",
        "",
        "Bucket counts per scene (day/dusk/night): "
        + "; ".join(f"{k}: {v['day']}/{v['dusk']}/{v['night']}" for k, v in st["bucket_counts"].items()),
        f"Hour and brightness buckets agree on {st['hour_brightness_agreement']:.0%} of captures.",
        "",
        "Metrics: " + "; ".join(f"**{k}** {v}" for k, v in st["metrics"].items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def write_stats(
    webcam: str | Path,
    out: str | Path,
    presets=DEFAULT_PRESETS,
    seeds: int = 3,
    size=(240, 320),
    seed: int = 0,
) -> Path:
    """Compute and write out/stats.json and out/stats.md (atomically); returns the .md path."""
    out = Path(out)
    st = compute_stats(webcam, presets, seeds, size, seed)
    atomic_write(out / "stats.json", json.dumps(st, indent=1))
    return atomic_write(out / "stats.md", to_markdown(st))


# ------------------------------------------------------------------------------------------ CLI


def add_subcommand(sub) -> None:
    from homeloc.data_synthesis.cli_errors import NonNegativeInt, OneLineParser, PositiveInt

    p = OneLineParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--webcam", type=str, default="../shared/data/webcam", help="webcam root: <scene>/YYYYMMDD_HHMMSS.*"
    )
    p.add_argument(
        "--out", type=str, default="reports/synth/stats", help="folder for stats.md and stats.json"
    )
    p.add_argument("--presets", type=list[str], default=list(DEFAULT_PRESETS), help="presets to synthesize")
    p.add_argument(
        "--seeds", type=PositiveInt, default=3, help="synthesized images per day capture and preset"
    )
    p.add_argument(
        "--size", type=tuple[PositiveInt, PositiveInt], default=(240, 320), help="analysis height, width"
    )
    p.add_argument("--seed", type=NonNegativeInt, default=0, help="random seed of the synthesis")
    sub.add_subcommand("stats", p, help="compare synthesized night images with real night captures")


def run(args) -> int:
    md = write_stats(args.webcam, args.out, tuple(args.presets), args.seeds, tuple(args.size), args.seed)
    print(md.read_text())
    print(f"wrote {md} and {md.with_suffix('.json')}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from homeloc.data_synthesis.cli import main as cli_main

    return cli_main(["stats", *(argv if argv is not None else __import__("sys").argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())

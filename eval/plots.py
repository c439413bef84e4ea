"""PNG figures: MMA vs threshold, precision-recall curves, matches drawn green/red."""

from __future__ import annotations

import io
import re
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.formats.matching import MatchPair
from homeloc.runtime.io import atomic_write, write_image
from homeloc.train.metrics import MMA_THRESHOLDS


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _figure().close(fig)
    return atomic_write(path, buf.getvalue())


def plot_mma(path: Path, summary: dict) -> Path | None:
    """MMA vs pixel threshold, one line per method; one panel for all pairs and one per bucket."""
    if not any(e.get("MMA@1") is not None for e in summary.values()):
        return None
    plt = _figure()
    panels = ["all"]
    for e in summary.values():
        panels += [b for b in e.get("buckets", {}) if b not in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for m, e in summary.items():
            entry = e if panel == "all" else e.get("buckets", {}).get(panel)
            if not entry or entry.get("MMA@1") is None:
                continue
            ax.plot(MMA_THRESHOLDS, [entry[f"MMA@{t}"] for t in MMA_THRESHOLDS], marker="o", ms=3, label=m)
        ax.set_title(f"{panel} pairs")
        ax.set_xlabel("threshold [px]")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("MMA")
    axes[0][0].legend(fontsize=8)
    return _save(fig, path)


def plot_pose_errors(path: Path, errors: dict[str, list[float]], max_deg: float = 30.0) -> Path:
    """Cumulative share of pairs with pose error <= x degrees, one line per method (the curve whose
    area gives AUC@5/10/20)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    xs = np.linspace(0, max_deg, 301)
    for m, e in errors.items():
        e = np.asarray(e, np.float64)
        ax.plot(xs, [(e <= x).mean() if e.size else 0.0 for x in xs], label=m)
    for t in (5, 10, 20):
        ax.axvline(t, color="gray", lw=0.5, ls=":")
    ax.set_xlabel("max(rotation, translation) error [deg]")
    ax.set_ylabel("share of pairs")
    ax.set_xlim(0, max_deg)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_pr(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """Top-1 precision-recall curve per method."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 3.6))
    for m, (precision, recall) in curves.items():
        ax.plot(recall, precision, label=m)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def draw_matches(
    path: Path,
    pair: MatchPair,
    p0: np.ndarray,
    p1: np.ndarray,
    correct: np.ndarray,
    title: str,
    height: int = 360,
) -> Path:
    """Both images side by side (scaled to `height`), correct matches green, wrong ones red."""
    im0, im1 = pair.image0.load(), pair.image1.load()
    s0, s1 = height / im0.shape[0], height / im1.shape[0]
    a = cv2.resize(im0, (round(im0.shape[1] * s0), height), interpolation=cv2.INTER_AREA)
    b = cv2.resize(im1, (round(im1.shape[1] * s1), height), interpolation=cv2.INTER_AREA)
    canvas = np.concatenate([a, b], axis=1).copy()
    off = a.shape[1]
    order = np.argsort(correct, kind="stable")  # red first, green on top
    for i in order:
        x0, y0 = p0[i] * s0
        x1, y1 = p1[i] * s1
        color = (0, 200, 0) if correct[i] else (230, 0, 0)
        cv2.line(canvas, (int(x0), int(y0)), (int(x1 + off), int(y1)), color, 1, cv2.LINE_AA)
    text = f"{title}: {int(np.sum(correct))}/{len(correct)} correct"
    cv2.putText(canvas, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return write_image(path, canvas)


def plot_reliability_diagram(path: Path, frame: list[dict], pair: list[dict]) -> Path:
    """Reliability diagram: observed success rate per predicted-probability bin, both predictors."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(4.5, 4.0))
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls=":")
    for name, bins in (("min frame reliability", frame), ("pair confidence", pair)):
        pts = [(b["predicted"], b["observed"], b["count"]) for b in bins if b["count"]]
        if pts:
            x, y, n = map(np.array, zip(*pts, strict=True))
            ax.plot(x, y, marker="o", label=name)
            ax.scatter(x, y, s=10 + 60 * n / n.max(), alpha=0.3)
    ax.set_xlabel("predicted probability of registering")
    ax.set_ylabel("observed success rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


WEEKLY_AFTER_DAYS = 28  # longer sequences: 8 frames a day make daily shares too jumpy to read


def block_means(x: list[int], y: list[float], width: int = 7) -> tuple[list[float], list[float]]:
    """Means of ``y`` over consecutive blocks of ``width`` days (days ``x``: day 0, the day the maps
    are made, alone; then days 1 to ``width``, ...), each at the block's mean day: the trend a daily
    curve of few frames hides."""
    blocks: dict[int, list[tuple[int, float]]] = {}
    for d, v in zip(x, y, strict=True):
        blocks.setdefault(0 if d <= 0 else 1 + (int(d) - 1) // width, []).append((d, v))
    pts = [blocks[b] for b in sorted(blocks)]
    return [float(np.mean([d for d, _ in p])) for p in pts], [float(np.mean([v for _, v in p])) for p in pts]


def plot_longterm(path: Path, days: dict[str, list[dict]], budget_bytes: int | None) -> Path:
    """Localization success (solid), false localizations (dotted) and, where the noise floor was
    measured and some localizations were not seen above it, the seen ones (dashed) per day, and map
    bytes per day, one line per map (``days``: map name -> the summary's day rows). Sequences longer
    than ``WEEKLY_AFTER_DAYS`` draw the daily shares as faint dots and the lines as weekly means
    (false localizations stay daily: one is one too many)."""
    plt = _figure()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 4.4))
    span = max((r["day"] for rows in days.values() for r in rows), default=0)
    weekly = span > WEEKLY_AFTER_DAYS

    def curve(x, y):  # what the lines draw: daily values or weekly means
        return block_means(x, y) if weekly else (x, y)

    for name, rows in days.items():
        x = [r["day"] for r in rows]
        ok = [r["success"] for r in rows]
        line = ax0.plot(*curve(x, ok), marker="o", ms=3,
                        label=f"{name} success" + (" (7-day mean)" if weekly else ""))[0]  # fmt: skip
        color = line.get_color()
        if weekly:
            ax0.plot(x, ok, ls="none", marker="o", ms=2, alpha=0.25, color=color)
        ax0.plot(x, [r["false"] for r in rows], ls=":", color=color, label=f"{name} false")
        if any(r.get("seen") is not None and r["seen"] < r["success"] for r in rows):
            xs = [r["day"] for r in rows if r.get("seen") is not None]
            ys = [r["seen"] for r in rows if r.get("seen") is not None]
            ax0.plot(*curve(xs, ys), ls="--", lw=1, color=color, label=f"{name} seen above the noise floor")
        mb = [r["map_bytes"] / 1e6 for r in rows]
        ax1.plot(x, mb, marker="o", ms=3, color=color, label=name)
    if budget_bytes is not None:
        ax1.axhline(budget_bytes / 1e6, color="gray", ls="--", lw=0.8, label="budget")
    ax0.set_ylim(-0.02, 1.02)
    ax0.set_xlabel("day")
    ax0.set_ylabel("share of the day's frames")
    ax1.set_xlabel("day")
    ax1.set_ylabel("map [MB]")
    for ax in (ax0, ax1):
        ax.grid(alpha=0.3)
    # below the axes: with four maps and their seen lines the legend would hide the curves
    ax0.legend(fontsize=6, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    ax1.legend(fontsize=7)
    return _save(fig, path)


KIND_MARKERS = {"rearrange": "^", "decorations": "*", "repaint": "s"}  # scheduled large changes
SIGNAL_MARKERS = {"failures": "x", "colour": "o"}  # what declared a change (runtime Update.change_signal)


def plot_changes(path: Path, events: list[dict], declared: dict[str, list[tuple[int, int, str]]]) -> Path:
    """One home's major changes by day (x) and room (y): the renderer's scheduled large changes
    (``events``: the ``change_detection`` rows, kind, room, day and detected; grey, filled when the
    first map of ``declared`` detected it, hollow when not; dotted when its row's ``visible`` is
    False) and each map's declarations
    (``declared``: map name -> (day, room, signal), one row of markers per map just above its room)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for kind, marker in KIND_MARKERS.items():
        for hit, shown in ((True, True), (False, True), (True, False), (False, False)):
            # shown False: the patrol's frames hardly saw it (row "visible" False); dotted, pale
            e = [r for r in events if r["kind"].startswith(kind) and r["detected"] == hit
                 and (r.get("visible") is not False) == shown]  # fmt: skip
            if e:
                ax.scatter([r["day"] for r in e], [r["room"] for r in e], marker=marker, s=150,
                           facecolors="0.6" if hit else "none", edgecolors="0.3" if shown else "0.7",
                           linestyles="solid" if shown else "dotted",
                           label=f"{kind} ({'detected' if hit else 'missed'}{'' if shown else ', not in view'})")  # fmt: skip
    for k, (name, decl) in enumerate(declared.items()):
        color = f"C{k}"
        for signal, marker in SIGNAL_MARKERS.items():
            d = [(day, room) for day, room, s in decl if s == signal]
            if d:
                ax.scatter([x for x, _ in d], [y + 0.18 * (k + 1) for _, y in d], marker=marker, s=30,
                           color=color, label=f"{name}: declared ({signal})")  # fmt: skip
    rooms = sorted({r["room"] for r in events} | {room for decl in declared.values() for _, room, _ in decl})
    ax.set_yticks(rooms, [f"room {r}" for r in rooms])
    ax.set_ylim(min(rooms, default=0) - 0.5, max(rooms, default=0) + 0.5 + 0.18 * len(declared))
    ax.set_xlabel("day")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    else:
        ax.text(0.5, 0.5, "no large change scheduled, none declared", ha="center", transform=ax.transAxes)
    return _save(fig, path)

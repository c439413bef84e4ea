"""What each map of a long-term replay costs per frame, against the append baseline measured in the
same run (pure functions over the frame records; the timings are the replay's own, so they compare
maps, not machines)."""

from __future__ import annotations

import numpy as np

PEER = "append"  # the baseline every map's time is a ratio to: a plain loop-closure map


def timing_summary(frames: list[dict], maps: list[str], first_day: int = 0) -> dict:
    """summary.json's ``ms_per_frame``: per map, the median, 90th percentile and mean milliseconds of a
    frame's whole step (its features included) over the frames after ``first_day`` (the mapping day,
    when the maps are near empty), and ``vs_append``, the median over the append map's median."""
    later = [r for r in frames if r["day"] > first_day]
    out = {}
    for m in maps:
        ms = np.array([r[m]["ms"] for r in later if m in r], np.float64)
        if len(ms):
            out[m] = {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)), "mean": float(ms.mean()),
                      "frames": int(len(ms))}  # fmt: skip
    peer = out.get(PEER, {}).get("median")
    for t in out.values():
        t["vs_append"] = None if not peer else t["median"] / peer
    return out


def timing_line(timing: dict) -> str:
    """The table.md line of a :func:`timing_summary`."""

    def cell(m: str, t: dict) -> str:
        ratio = "" if t["vs_append"] is None else f", {t['vs_append']:.2f}x append"
        return f"{m} {t['median']:.1f} / {t['p90']:.1f}{ratio}"

    return ("Time per frame after the mapping day (the whole step, features included; median / 90th "
            "percentile ms, this run): " + "; ".join(cell(m, t) for m, t in timing.items()) + ".")  # fmt: skip

"""Issue #17's targets, checked on a long-term replay's records (pure functions).

A map meets them when every day after the mapping day localizes at least ``SUCCESS`` of each home's
frames with none false (counted per home and day: a pooled day would let one home's good day hide
another's bad one), and its bytes stay within the budget after the first ``WEEK`` days. The first
and last week's success say whether a map decays (the static baseline should, visibly).
"""

from __future__ import annotations

SUCCESS = 0.95  # the per-day success
WEEK = 7  # days: memory must be flat after the first week


def home_days(frames: list[dict], method: str, first_day: int) -> list[dict]:
    """Per (home, day) after ``first_day``: frames, correct and false localizations of ``method``
    (frame records as the evaluator writes them: ``home``, ``day``, ``{method: {"verdict"}}``)."""
    cells: dict[tuple[str, int], dict] = {}
    for r in frames:
        if r["day"] <= first_day:
            continue
        c = cells.setdefault((r["home"], int(r["day"])), {"home": r["home"], "day": int(r["day"]), "frames": 0,
                                                          "correct": 0, "false": 0})  # fmt: skip
        v = r[method]["verdict"]
        c["frames"] += 1
        c["correct"] += v == "correct"
        c["false"] += v == "false"
    return [cells[k] for k in sorted(cells)]


def met(cell: dict) -> bool:
    """Does one home-day meet the target (success >= SUCCESS, nothing false)?"""
    return cell["correct"] >= SUCCESS * cell["frames"] and cell["false"] == 0


def week_success(cells: list[dict], days: set[int]) -> float | None:
    """Share of correct localizations over the frames of ``days`` (None: no frame)."""
    n = sum(c["frames"] for c in cells if c["day"] in days)
    return sum(c["correct"] for c in cells if c["day"] in days) / n if n else None


def target_check(frames: list[dict], rows: list[dict], method: str, budget_bytes: int | None) -> dict:
    """The targets for one map: ``frames`` the evaluator's frame records, ``rows`` the map's day rows
    (``day``, ``map_bytes``; the first row is the mapping day).

    Returns ``{"home_days", "home_days_met", "missed": ["home day D: correct/frames, F false", ...],
    "frames", "correct", "false", "bytes_after_week": [min, max] or None, "within_budget": bool or
    None (no budget or no day after the first week), "first_week_success", "last_week_success"}``.
    """
    first = rows[0]["day"]
    cells = home_days(frames, method, first)
    after = [r["map_bytes"] for r in rows if r["day"] >= first + WEEK]
    days = sorted({c["day"] for c in cells})
    return {
        "home_days": len(cells),
        "home_days_met": sum(met(c) for c in cells),
        "missed": [
            f"{c['home']} day {c['day']}: {c['correct']}/{c['frames']}, {c['false']} false"
            for c in cells
            if not met(c)
        ],  # fmt: skip
        "frames": sum(c["frames"] for c in cells),
        "correct": sum(c["correct"] for c in cells),
        "false": sum(c["false"] for c in cells),
        "bytes_after_week": [min(after), max(after)] if after else None,
        "within_budget": None if budget_bytes is None or not after else max(after) <= budget_bytes,
        "first_week_success": week_success(cells, set(days[:WEEK])),
        "last_week_success": week_success(cells, set(days[-WEEK:])),
    }


def targets_line(targets: dict[str, dict], budget_bytes: int | None) -> str:
    """One Markdown paragraph: per map, the home-days meeting the target, frames correct / false,
    bytes after the first week, and the first and last week's success."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{x:.3f}"

    parts = []
    for m, t in targets.items():
        b = t["bytes_after_week"]
        mem = "–" if b is None else f"{b[0]:,}-{b[1]:,} B" + ("" if t["within_budget"] is None else
                                                              " (within)" if t["within_budget"] else " (OVER)")  # fmt: skip
        parts.append(f"{m} {t['home_days_met']} of {t['home_days']} home-days, {t['correct']} / {t['false']} of "
                     f"{t['frames']} frames correct / false, {mem}, success first week {pct(t['first_week_success'])}"
                     f" -> last week {pct(t['last_week_success'])}")  # fmt: skip
    budget = "no budget" if budget_bytes is None else f"budget {budget_bytes:,} B"
    return (f"Targets (issue #17: every day after the mapping day >= {SUCCESS} of each home's frames correct and "
            f"none false; memory within the budget after the first {WEEK} days; {budget}): " + "; ".join(parts) + ".")  # fmt: skip

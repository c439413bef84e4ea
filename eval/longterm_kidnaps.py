"""Where an odometry map's localizations fall after undetected kidnaps (pure functions).

``homeloc-evaluate longterm --odometry-kidnap P`` carries the robot, unseen, at a share P of the
odometry steps (:func:`.longterm_methods.kidnapped`). A prior that followed such a step sits at the
old spot until a strict localization elsewhere or the dock re-seeds it, so the frames are split
three ways: the frames the robot was carried to, the later frames before the next dock (the prior
may still be wrong there), and the rest (no kidnap since the dock: what the map does anyway).
"""

from __future__ import annotations

GROUPS = ("carried_to", "after", "rest")


def kidnap_group(record: dict) -> str:
    """The group of one frame record (``kidnapped``: carried to this frame; ``carried``: a kidnap since
    the last dock, this frame's included)."""
    if record.get("kidnapped"):
        return "carried_to"
    return "after" if record.get("carried") else "rest"


def kidnap_summary(frames: list[dict], share: float, method: str = "odometry", first_day: int = 0) -> dict:
    """summary.json's ``kidnaps``: the share drawn, the frames carried to (after ``first_day``, the
    mapping day), and per group of :func:`kidnap_group` the frames and ``method``'s correct, false
    and unlocalized ones."""
    later = [r for r in frames if r["day"] > first_day]
    groups = {g: {"frames": 0, "correct": 0, "false": 0, "none": 0} for g in GROUPS}
    for r in later:
        c = groups[kidnap_group(r)]
        v = r[method]["verdict"]
        c["frames"] += 1
        c[v if v in ("correct", "false") else "none"] += 1
    return {"share": share, "frames": [r["name"] for r in later if r.get("kidnapped")], "method": method,
            "groups": groups}  # fmt: skip


def kidnap_line(k: dict) -> str:
    """The table.md line of a :func:`kidnap_summary`."""
    g = k["groups"]

    def cell(name: str) -> str:
        c = g[name]
        return f"{c['correct']} / {c['false']} / {c['none']} of {c['frames']}"

    return (f"Kidnaps (--odometry-kidnap {k['share']}): the robot was carried, unseen, to {len(k['frames'])} "
            f"frames. {k['method']} map correct / false / not localized: on the frames carried to "
            f"{cell('carried_to')}; on the later frames before the next dock {cell('after')}; on the rest "
            f"{cell('rest')}.")  # fmt: skip

"""Where an odometry map's localizations fall after undetected odometry faults (pure functions).

``homeloc-evaluate longterm --odometry-kidnap P`` carries the robot, unseen, at a share P of the
odometry steps (:func:`.longterm_methods.kidnapped`); ``--odometry-slip P`` lets its wheels slip
(:func:`.longterm_methods.slipped`). A prior that followed such a step sits at the wrong spot until a
strict localization elsewhere or the dock re-seeds it, so the frames are split three ways: the frames
the fault led to, the later frames before the next dock (the prior may still be wrong there), and
the rest (no fault since the dock: what the map does anyway).
"""

from __future__ import annotations

GROUPS = ("carried_to", "after", "rest")
# per fault: (the record's key for "this step", the key for "since the last dock", table words)
FAULTS = {
    "kidnaps": ("kidnapped", "carried", "--odometry-kidnap", "the robot was carried, unseen, to", "carried to"),
    "slips": ("slipped", "slipped_since", "--odometry-slip", "the wheels slipped, unseen, on the way to",
              "slipped to"),
}  # fmt: skip


def kidnap_group(record: dict, fault: str = "kidnaps") -> str:
    """The group of one frame record for ``fault`` (kidnaps: ``kidnapped``, carried to this frame,
    and ``carried``, a kidnap since the last dock, this frame's included; slips: ``slipped`` and
    ``slipped_since``). The first group keeps its kidnap name, ``carried_to``, for both."""
    at, since = FAULTS[fault][:2]
    if record.get(at):
        return "carried_to"
    return "after" if record.get(since) else "rest"


def kidnap_summary(
    frames: list[dict], share: float, method: str = "odometry", first_day: int = 0, fault: str = "kidnaps"
) -> dict:
    """summary.json's ``kidnaps`` (or ``slips``): the share drawn, the frames the fault led to (after
    ``first_day``, the mapping day), and per group of :func:`kidnap_group` the frames and ``method``'s
    correct, false and unlocalized ones."""
    later = [r for r in frames if r["day"] > first_day]
    groups = {g: {"frames": 0, "correct": 0, "false": 0, "none": 0} for g in GROUPS}
    for r in later:
        c = groups[kidnap_group(r, fault)]
        v = r[method]["verdict"]
        c["frames"] += 1
        c[v if v in ("correct", "false") else "none"] += 1
    at = FAULTS[fault][0]
    return {"share": share, "frames": [r["name"] for r in later if r.get(at)], "method": method,
            "groups": groups, "fault": fault}  # fmt: skip


def kidnap_line(k: dict) -> str:
    """The table.md line of a :func:`kidnap_summary`."""
    g = k["groups"]
    fault = k.get("fault", "kidnaps")
    _, _, option, happened, to = FAULTS[fault]

    def cell(name: str) -> str:
        c = g[name]
        return f"{c['correct']} / {c['false']} / {c['none']} of {c['frames']}"

    return (f"{fault.capitalize()} ({option} {k['share']}): {happened} {len(k['frames'])} "
            f"frames. {k['method']} map correct / false / not localized: on the frames {to} "
            f"{cell('carried_to')}; on the later frames before the next dock {cell('after')}; on the rest "
            f"{cell('rest')}.")  # fmt: skip

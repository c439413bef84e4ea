"""How well the odometry map knows where the robot is (pure functions over the frame records).

After every frame the evaluator records how far the map's pose prior lies from the rendered pose
(``belief_m``, ``belief_deg``; None while the prior is dropped). With ``--odometry-map-poses
belief`` that is the pose a new experience is filed at, so its error enters the map itself.
"""

from __future__ import annotations

import numpy as np


def belief_summary(frames: list[dict], first_day: int = 0, method: str = "odometry") -> dict | None:
    """summary.json's ``belief``: over ``method``'s records after ``first_day`` (the mapping day),
    the share of frames with a prior (``held``) and the median and 90th percentile of its position
    (metres) and heading (degrees) error; the same over the mapping day (``mapping_day``: the
    poses the first experiences are filed at in belief mode). None when no record has the fields."""
    rows = [r for r in frames if method in r and "belief_m" in r[method]]
    if not rows:
        return None

    def stats(recs: list[dict]) -> dict:
        m = np.array([x["belief_m"] for x in recs if x["belief_m"] is not None], float)
        d = np.array([x["belief_deg"] for x in recs if x["belief_deg"] is not None], float)

        def q(a: np.ndarray, p: float) -> float | None:
            return round(float(np.percentile(a, p)), 3) if len(a) else None

        return {"frames": len(recs), "held": round(len(m) / max(len(recs), 1), 3),
                "m_median": q(m, 50), "m_p90": q(m, 90), "deg_median": q(d, 50), "deg_p90": q(d, 90)}  # fmt: skip

    later = [r[method] for r in rows if r["day"] > first_day]
    first = [r[method] for r in rows if r["day"] <= first_day]
    return {"method": method, **stats(later), "mapping_day": stats(first)}


def belief_line(b: dict, poses: str) -> str:
    """The table.md line of a :func:`belief_summary`; ``poses``: ``--odometry-map-poses``."""
    filed = ("new experiences filed there (--odometry-map-poses belief)" if poses == "belief"
             else "new experiences filed at the rendered pose (--odometry-map-poses exact)")  # fmt: skip
    f = b["mapping_day"]
    return (f"Where the {b['method']} map's prior puts the robot ({filed}): after the mapping day a prior on "
            f"{b['held']:.3f} of {b['frames']} frames, {b['m_median']} m / {b['deg_median']} deg off at the "
            f"median, {b['m_p90']} m / {b['deg_p90']} deg at the 90th percentile; on the mapping day "
            f"{f['held']:.3f} of {f['frames']}, {f['m_median']} m / {f['deg_median']} deg, "
            f"{f['m_p90']} m / {f['deg_p90']} deg.")  # fmt: skip

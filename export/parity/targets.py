"""The issue's targets for an export, judged on a finished report (pure: report dict in, rows out).

Reported whether met or not: int8 >= 2x faster than ORT fp32 (per thread count), int8 keypoint
overlap >= 0.9, MMA@3 loss of int8 vs ORT fp32 <= 1 point. A target that was not measured (no
int8 model, no pair set) has ``met`` None and a ``note`` saying why, so a report never claims a
pass it did not check.
"""

from __future__ import annotations

from typing import Any

TARGETS = {
    "int8_speedup": 2.0,  # ORT fp32 ms / ORT int8 ms, >=
    "keypoint_overlap": 0.9,  # int8 vs torch, top-1024 within 1 px, >=
    "mma3_loss_points": 1.0,  # (ORT fp32 - ORT int8) MMA@3 in percentage points, <=
}


def target_row(name: str, value: float | None, op: str, target: float, unit: str = "") -> dict[str, Any]:
    """``{name, value (4 digits or None), target ("<op> <target><unit>"), met}``.

    op is ``">="`` or ``"<="``; ``met`` is None when ``value`` is None (not measured).
    """
    met = None if value is None else (value >= target if op == ">=" else value <= target)
    return {
        "name": name,
        "value": None if value is None else round(float(value), 4),
        "target": f"{op} {target:g}{unit}",
        "met": met,
    }


def speedup_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One int8 speed-up row per ``threads_<t>`` latency entry (None without an int8 timing)."""
    rows = []
    lat = report.get("latency_ms", {})
    has_int8 = "onnx_int8" in report["backends"]
    for key in sorted(k for k in lat if k.startswith("threads_")):
        t = lat[key]
        value = t["onnx_fp32"] / t["onnx_int8"] if has_int8 and t.get("onnx_int8") else None
        rows.append(
            target_row(
                f"int8 speed-up vs ORT fp32, {key.split('_')[1]} thread(s)",
                value,
                ">=",
                TARGETS["int8_speedup"],
                "x",
            )
        )
    return rows


def keypoint_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The keypoint-only rows: int8 keypoint overlap, MMA@3 loss (fp32 - int8, in points)."""
    has_int8 = "onnx_int8" in report["backends"]
    fid = report["fidelity"].get("onnx_int8", {})
    rows = [
        target_row(
            "int8 top-1024 keypoint overlap within 1 px (vs torch)",
            fid.get("keypoint_overlap"),
            ">=",
            TARGETS["keypoint_overlap"],
        )
    ]
    acc = report["accuracy"]
    loss = None
    if has_int8 and acc.get("onnx_fp32") and acc.get("onnx_int8"):
        loss = 100.0 * (acc["onnx_fp32"]["MMA@3"] - acc["onnx_int8"]["MMA@3"])
    row = target_row("MMA@3 loss, ORT fp32 - int8 (points)", loss, "<=", TARGETS["mma3_loss_points"])
    if loss is None and has_int8:
        row["note"] = f"no pair set ({acc.get('skipped')})"
    rows.append(row)
    return rows


def target_rows(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """All target rows of a ``kind`` ("keypoints" or "places") report; see ``target_row``.

    Needs the report's ``backends``, ``latency_ms`` and, for keypoints, ``fidelity`` and
    ``accuracy``. Without an int8 model every row is noted as such.
    """
    rows = speedup_rows(report)
    if kind == "keypoints":
        rows += keypoint_rows(report)
    if "onnx_int8" not in report["backends"]:
        for r in rows:
            r["note"] = "no int8 model (export without --int8)"
    return rows

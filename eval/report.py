"""Writing results: summary.json, per-pair/per-query CSV and the Markdown comparison table."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from homeloc.runtime.io import atomic_write

MATCHING_COLUMNS = [
    ("pairs", "pairs", "d"),
    ("keypoints", "kpts", ".0f"),
    ("matches", "matches", ".1f"),
    ("repeatability@3", "rep@3", ".3f"),
    ("MMA@1", "MMA@1", ".3f"),
    ("MMA@3", "MMA@3", ".3f"),
    ("MMA@5", "MMA@5", ".3f"),
    ("MMA@10", "MMA@10", ".3f"),
    ("HA@1", "HA@1", ".3f"),
    ("HA@3", "HA@3", ".3f"),
    ("HA@5", "HA@5", ".3f"),
    ("HA@10", "HA@10", ".3f"),
    ("GT@5px", "GT@5px", ".3f"),
    ("epi_err_px", "epi err px", ".1f"),
]
PLACES_COLUMNS = [
    ("queries", "queries", "d"),
    ("R@1", "R@1", ".3f"),
    ("R@5", "R@5", ".3f"),
    ("R@10", "R@10", ".3f"),
    ("AUC_PR", "AUC PR", ".3f"),
    ("R@100P", "R@100P", ".3f"),
]
SPEED_COLUMNS = [
    ("ms", "ms/frame", ".1f"),
    ("ms_net", "ms net", ".1f"),
    ("size_mb", "size MB", ".2f"),
    ("gmacs", "GMACs", ".2f"),
    ("keypoints", "kpts", ".0f"),
]


def finite_or_none(obj):
    """Recursively replace inf/nan floats by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path: Path, data) -> Path:
    return atomic_write(path, json.dumps(finite_or_none(data), indent=2) + "\n")


def write_pairs_csv(path: Path, rows: list[dict]) -> Path:
    """One row per (method, pair/query); list values (MMA) are spread into MMA@k columns."""
    flat = []
    for r in rows:
        row = {}
        for k, v in r.items():
            if k == "mma":
                for i, x in enumerate(v or [None] * 10, start=1):
                    row[f"MMA@{i}"] = x
            else:
                row[k] = v
        flat.append(row)
    buf = io.StringIO()
    if flat:
        w = csv.DictWriter(buf, fieldnames=list(flat[0]))
        w.writeheader()
        for row in flat:
            w.writerow({k: _cell(v) for k, v in row.items()})
    return atomic_write(path, buf.getvalue())


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "inf" if math.isinf(v) else f"{v:.6g}"
    if isinstance(v, set | list | tuple):
        return " ".join(str(x) for x in v)
    return str(v)


def _fmt(v, spec: str) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf"
    return format(v, spec)


def markdown_table(rows: list[dict], columns: list[tuple[str, str, str]], lead: list[str]) -> str:
    """Rows (dicts) as a Markdown table; `lead` keys come first as text; columns with no value
    in any row are dropped."""
    cols = [c for c in columns if any(r.get(c[0]) is not None for r in rows)]
    head = "| " + " | ".join(lead + [c[1] for c in cols]) + " |"
    sep = "|" + "|".join(["---"] * len(lead) + ["---:"] * len(cols)) + "|"
    body = [
        "| " + " | ".join([str(r[k]) for k in lead] + [_fmt(r.get(c[0]), c[2]) for c in cols]) + " |"
        for r in rows
    ]
    return "\n".join([head, sep, *body])


def matching_table(summary: dict, title: str, notes: list[str] | None = None) -> str:
    """All pairs first, then one block of rows per bucket."""
    rows = [{"bucket": "all", "method": m, **e} for m, e in summary.items()]
    buckets: list[str] = []
    for e in summary.values():
        buckets += [b for b in e.get("buckets", {}) if b not in buckets]
    for b in buckets:
        rows += [
            {"bucket": b, "method": m, **e["buckets"][b]}
            for m, e in summary.items()
            if b in e.get("buckets", {})
        ]
    lines = [f"## {title}", "", markdown_table(rows, MATCHING_COLUMNS, ["bucket", "method"]), ""]
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines).rstrip() + "\n"


def places_table(summary: dict, title: str, notes: list[str] | None = None) -> str:
    rows = [{"method": m, **e} for m, e in summary.items()]
    lines = [f"## {title}", "", markdown_table(rows, PLACES_COLUMNS, ["method"]), ""]
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines).rstrip() + "\n"


def speed_table(summary: dict, title: str, notes: list[str] | None = None) -> str:
    rows = [{"method": m, **e} for m, e in summary.items()]
    lines = [f"## {title}", "", markdown_table(rows, SPEED_COLUMNS, ["method"]), ""]
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines).rstrip() + "\n"


POSE_COLUMNS = [
    ("AUC@5", "AUC@5", ".3f"),
    ("AUC@10", "AUC@10", ".3f"),
    ("AUC@20", "AUC@20", ".3f"),
    ("median_error_deg", "median err [deg]", ".2f"),
    ("pose_found", "pose found", ".2f"),
    ("matches", "matches", ".0f"),
    ("inliers", "inliers", ".0f"),
    ("pairs", "pairs", "d"),
]


def pose_table(summary: dict, title: str, notes: list[str] | None = None) -> str:
    rows = [{"method": m, **e} for m, e in summary.items()]
    lines = [f"## {title}", "", markdown_table(rows, POSE_COLUMNS, ["method"]), ""]
    lines += [f"- {n}" for n in notes or []]
    return "\n".join(lines).rstrip() + "\n"


def write_table(path: Path, text: str) -> Path:
    return atomic_write(path, text)

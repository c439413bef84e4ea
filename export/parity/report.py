"""Writing a parity report: ``parity.json`` (the dict as is) and ``parity.md`` (tables).

The Markdown is read by people deciding whether to ship an export (and pasted into the model
card), so targets come first and misses are spelled MISSED. Both files are written atomically:
a crashed export never leaves a half-written report that looks complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeloc.runtime.io import atomic_write


def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``parity.json`` and ``parity.md`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    j = atomic_write(out_dir / "parity.json", json.dumps(report, indent=2, sort_keys=False) + "\n")
    m = atomic_write(out_dir / "parity.md", to_markdown(report))
    return j, m


def _f(v: Any, digits: int = 3, suffix: str = "") -> str:
    """A table cell: floats to ``digits`` decimals, None as ``-``, anything else as is."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{suffix}"
    return f"{v}{suffix}"


def to_markdown(report: dict[str, Any]) -> str:
    """The parity report as markdown tables (targets first, misses marked MISSED).

    Sections: title, provenance (when present), targets, fidelity against torch, matching accuracy
    (keypoints) or place recognition (places), latency and size. Ends with a newline.
    """
    lines = [f"# Export parity: {report['kind']}", ""]
    lines += _provenance_lines(report.get("provenance", {}))
    lines += _target_lines(report["targets"])
    lines += ["", "## Fidelity against torch", ""]
    if report["kind"] == "keypoints":
        lines += _keypoint_fidelity_lines(report)
        lines += _matching_lines(report["accuracy"], report["backends"])
    else:
        lines += _place_fidelity_lines(report)
        lines += _recall_lines(report["accuracy"], report["backends"])
    lines += _latency_lines(report)
    return "\n".join(lines) + "\n"


def _provenance_lines(prov: dict[str, Any]) -> list[str]:
    """Checkpoint and int8 calibration lines plus a blank line; nothing without provenance."""
    if not prov:
        return []
    lines = [
        f"checkpoint `{prov.get('checkpoint')}` (model_version `{prov.get('model_version')}`, "
        f"config_hash `{str(prov.get('config_hash'))[:12]}`), homeloc {prov.get('homeloc_version')}",
    ]
    if prov.get("calibration"):
        c = prov["calibration"]
        lines.append(
            f"int8 calibration: {c.get('images')} images from {', '.join(c.get('sources') or ['synthetic'])} at "
            f"{c.get('size')}, {c.get('night')} relit ({', '.join(c.get('presets') or [])}), seed {c.get('seed')}"
            + (", 7-bit weights" if c.get("reduce_range") else "")
        )
    if prov.get("requantized"):
        lines.append(requantized_line(prov["requantized"]))
    lines.append("")
    return lines


def requantized_line(r: dict[str, Any]) -> str:
    """One line saying an int8 file was quantized again from the shipped fp32 one (export.requantize)."""
    bits = "7-bit" if r.get("reduce_range") else "8-bit"
    return (
        f"int8 quantized again from the shipped fp32 model by `{r.get('by')}` ({bits} weights), "
        f"replacing the int8 file with sha256 `{str(r.get('replaces_int8_sha256'))[:12]}`"
    )


def _target_lines(targets: list[dict[str, Any]]) -> list[str]:
    """The targets table: met / MISSED / not measured (with the row's note)."""
    lines = ["## Targets", "", "| target | value | required | status |", "|---|---|---|---|"]
    for t in targets:
        status = (
            "met" if t["met"] else ("MISSED" if t["met"] is False else f"not measured ({t.get('note', '')})")
        )
        lines.append(f"| {t['name']} | {_f(t['value'], 3)} | {t['target']} | {status} |")
    return lines


def _keypoint_fidelity_lines(report: dict[str, Any]) -> list[str]:
    """Keypoint fidelity table: torch as the reference row, then each ONNX backend."""
    fid = report["fidelity"]
    lines = [
        f"Top-{report['max_keypoints']} keypoints (runtime.postprocess) on {fid['torch']['images']} images, longer side "
        f"<= {report['resize']} px; cosine of both dense descriptor maps sampled at the shared torch keypoints.",
        "",
        "| backend | keypoints/image | overlap @1px | worst image | cosine mean | cosine p05 | cosine min | max abs logits | max abs desc |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| torch | {_f(fid['torch']['keypoints_mean'], 1)} | (reference) | | | | | | |",
    ]
    for b in (b for b in report["backends"] if b != "torch"):
        f, c = fid[b], fid[b]["descriptor_cosine"]
        lines.append(
            f"| {b} | {_f(f['keypoints_mean'], 1)} | {_f(f['keypoint_overlap'], 4)} | {_f(f['keypoint_overlap_min_image'], 4)} | "
            f"{_f(c['mean'], 4)} | {_f(c['p05'], 4)} | {_f(c['min'], 4)} | {f['max_abs_logits']:.2e} | {f['max_abs_descriptors']:.2e} |"
        )
    return lines


def _matching_lines(acc: dict[str, Any], backends: list[str]) -> list[str]:
    """MMA table (one MMA@3 column per lighting bucket), or the reason it was skipped."""
    lines = ["", "## Matching accuracy (mutual nearest neighbours, homography ground truth)", ""]
    if acc.get("skipped"):
        return [*lines, f"Skipped: {acc['skipped']}."]
    buckets = acc.get("buckets", {})
    bk = ", ".join(f"{k} {v}" for k, v in buckets.items())
    lines += [
        f"{acc['pairs']} pairs from `{acc.get('data', '')}` (lighting of the second image: {bk}).",
        "",
        "| backend | MMA@1 | MMA@3 | MMA@5 | matches/pair | "
        + " | ".join(f"MMA@3 {k}" for k in buckets)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(buckets),
    ]
    for b in backends:
        e = acc[b]
        per = " | ".join(_f(e["by_bucket"].get(k), 4) for k in buckets)
        lines.append(
            f"| {b} | {_f(e['MMA@1'], 4)} | {_f(e['MMA@3'], 4)} | {_f(e['MMA@5'], 4)} | {_f(e['matches_mean'], 1)} | {per} |"
        )
    return lines


def _place_fidelity_lines(report: dict[str, Any]) -> list[str]:
    """Place descriptor fidelity table, one row per ONNX backend."""
    fid = report["fidelity"]
    others = [b for b in report["backends"] if b != "torch"]
    size = report["input_size"]
    lines = [
        f"Global descriptors of {fid[others[0]]['images'] if others else 0} images at {size[0]}x{size[1]}.",
        "",
        "| backend | cosine mean | cosine p05 | cosine min | max abs |",
        "|---|---|---|---|---|",
    ]
    for b in others:
        c = fid[b]["descriptor_cosine"]
        lines.append(
            f"| {b} | {_f(c['mean'], 5)} | {_f(c['p05'], 5)} | {_f(c['min'], 5)} | {fid[b]['max_abs_descriptor']:.2e} |"
        )
    return lines


def _recall_lines(acc: dict[str, Any], backends: list[str]) -> list[str]:
    """Recall@1/5 table, or the reason it was skipped."""
    lines = ["", "## Place recognition", ""]
    if acc.get("skipped"):
        return [*lines, f"Skipped: {acc['skipped']}."]
    lines += [
        f"`{acc['data']}`: {acc['queries']} queries against {acc['database']} database images (cosine, top-k).",
        "",
        "| backend | R@1 | R@5 |",
        "|---|---|---|",
    ]
    for b in backends:
        lines.append(f"| {b} | {_f(acc[b]['R@1'], 4)} | {_f(acc[b]['R@5'], 4)} |")
    return lines


def _latency_lines(report: dict[str, Any]) -> list[str]:
    """Latency (median ms per thread count) and file size table, with the load it was timed under."""
    lat = report["latency_ms"]
    thread_keys = sorted(k for k in lat if k.startswith("threads_"))
    lines = [
        "",
        "## Latency and size",
        "",
        f"Median ms per {lat['size']} input (batch {lat.get('batch', 1)}) over {lat['runs']} interleaved runs after warm-up; "
        f"CPU ({lat.get('cpu') or str(lat.get('cpu_count')) + ' cores'}, 1-min load average {lat.get('load_average_1min')} "
        "when timing started: other processes share them), ONNX Runtime with 1 inter-op thread.",
        "",
        "| backend | " + " | ".join(f"{k.split('_')[1]} thread(s) ms" for k in thread_keys) + " | file MB |",
        "|---|" + "---|" * len(thread_keys) + "---|",
    ]
    for b in report["backends"]:
        info = report["files"].get(b)
        mb = _f(info["bytes"] / 1e6, 3) if info else "-"
        lines.append(f"| {b} | " + " | ".join(_f(lat[k].get(b), 2) for k in thread_keys) + f" | {mb} |")
    return lines

"""What this CPU offers int8 inference, in one line for reports that time models (torch-free).

The same int8 ONNX model runs at different speed, and at full-range weights even computes
differently, depending on the CPU's int8 dot-product instructions: with VNNI (x86) or the Arm dot
product they accumulate exactly; with AVX2 alone onnxruntime's uint8 x int8 kernels sum pairs into
saturating 16-bit lanes and gain less over fp32 (docs/export.md, "int8"). A timing without the CPU
named cannot be compared with another machine's.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: str | None = None) -> tuple[str, set[str]]:
    """(model name, feature flags) from ``cpuinfo`` (the text of /proc/cpuinfo; read when None).
    Without it (not Linux): (``platform.processor()`` or "unknown CPU", no flags)."""
    if cpuinfo is None:
        try:
            cpuinfo = CPUINFO.read_text()
        except OSError:
            cpuinfo = ""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model or platform.processor() or "unknown CPU", flags


def int8_dot(flags: set[str]) -> str:
    """The int8 dot-product instructions among ``flags``, as a report says it."""
    if flags & {"avx512_vnni", "avx_vnni"}:
        return "VNNI"
    if "asimddp" in flags:
        return "Arm dot product"
    if "avx2" in flags:
        return "AVX2 without VNNI"
    return "none known"


def cpu_line(cpuinfo: str | None = None) -> str:
    """E.g. ``AMD EPYC, 2 cores, int8 dot product: AVX2 without VNNI``."""
    model, flags = cpu_flags(cpuinfo)
    return f"{model}, {os.cpu_count()} cores, int8 dot product: {int8_dot(flags)}"

"""The export job as one function: checkpoint in, a folder of ONNX models and parity reports out.

``export_model(ExportConfig(checkpoint=..., kind="keypoints", out=DIR, int8=True))`` writes

- ``DIR/<kind>.fp32.onnx`` (always) and ``DIR/<kind>.int8.onnx`` (with ``int8``),
- ``DIR/parity.json`` + ``DIR/parity.md`` (unless ``parity=False``),
- ``DIR/config.yaml``: the resolved options (feed it back with ``--config``),
- ``DIR/manifest.json``: the options, the checkpoint file's size/mtime/weights hash and the
  sha256 of every output (what "up to date" is judged by),

all atomically. A folder already holding the results of the same options and the same checkpoint
file is left alone (returned at once); other options are refused without ``overwrite``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeloc.export.checkpoint import KINDS, LoadedCheckpoint, load_checkpoint
from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_write, make_output_dir

log = logging.getLogger(__name__)


class ExportError(Exception):
    """A problem the user can fix (existing output of other options, bad option values)."""


@dataclass
class ExportConfig:
    """Options of ``homeloc-export`` (see ``export.cli`` for their help)."""

    checkpoint: Path
    kind: str
    out: Path
    int8: bool = False
    calibration: list[str] = field(default_factory=lambda: ["skimage"])
    num_calibration: int = 200
    calibration_size: tuple[int, int] | None = None
    night_share: float = 0.5
    seed: int = 0
    input_size: tuple[int, int] | None = None
    model_version: str | None = None
    parity: bool = True
    parity_data: str | None = None
    parity_pairs: int = 32
    parity_limit: int | None = None
    max_keypoints: int = 1024
    latency_runs: int = 20
    latency_threads: list[int] = field(default_factory=lambda: [1, 2])
    opset: int = 17
    overwrite: bool = False
    detection_threshold: float | None = None

    def __post_init__(self) -> None:
        self.checkpoint, self.out = Path(self.checkpoint), Path(self.out)
        if self.kind not in KINDS:
            raise ExportError(f"--kind must be one of {KINDS}, got {self.kind!r}")
        if self.int8 and self.num_calibration < 1:
            raise ExportError(f"--num-calibration must be >= 1 with --int8, got {self.num_calibration}")
        if not 0.0 <= self.night_share <= 1.0:
            raise ExportError(f"--night-share must lie in [0, 1], got {self.night_share}")
        if self.opset < 17:
            raise ExportError(f"--opset must be >= 17, got {self.opset}")
        if self.detection_threshold is not None and (
            self.kind != "keypoints" or not 0.0 <= self.detection_threshold < 1.0
        ):
            raise ExportError(
                f"--detection-threshold must be in [0, 1) and only for --kind keypoints, got {self.detection_threshold}"
            )
        for name in ("calibration_size", "input_size"):
            v = getattr(self, name)
            if v is not None:
                v = tuple(int(x) for x in v)
                if len(v) != 2 or min(v) <= 0:
                    raise ExportError(
                        f"--{name.replace('_', '-')} needs a positive height and width, got {v}"
                    )
                setattr(self, name, v)
        if self.kind == "keypoints" and self.calibration_size and any(s % 8 for s in self.calibration_size):
            raise ExportError(
                f"--calibration-size must be multiples of 8 for keypoints, got {self.calibration_size}"
            )
        if any(int(t) < 1 for t in self.latency_threads):
            raise ExportError(f"--latency-threads must be >= 1, got {self.latency_threads}")

    def options(self) -> dict[str, Any]:
        """Plain YAML-able options (what ``config.yaml`` holds; ``overwrite`` excluded)."""
        d = asdict(self)
        d.pop("overwrite")
        return json.loads(json.dumps(d, default=str))


def output_paths(out: Path, kind: str) -> dict[str, Path]:
    return {
        "fp32": out / f"{kind}.fp32.onnx",
        "int8": out / f"{kind}.int8.onnx",
        "parity_json": out / "parity.json",
        "parity_md": out / "parity.md",
        "config": out / "config.yaml",
        "manifest": out / "manifest.json",
    }


def _checkpoint_stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _up_to_date(config: ExportConfig, paths: dict[str, Path]) -> bool:
    """True when OUT holds the results of these options and this checkpoint file; raises
    ExportError when it holds results of other options (unless overwrite)."""
    if not paths["manifest"].is_file():
        return False
    manifest = json.loads(paths["manifest"].read_text())
    previous, stamp = manifest.get("options", {}), manifest.get("checkpoint_file")
    if previous != config.options():
        if config.overwrite:
            return False
        changed = sorted(
            k for k in set(previous) | set(config.options()) if previous.get(k) != config.options().get(k)
        )
        raise ExportError(
            f"{config.out} holds an export with other options ({', '.join(changed)}); pass --overwrite to replace it"
        )
    if config.overwrite or not config.checkpoint.is_file() or stamp != _checkpoint_stamp(config.checkpoint):
        return False
    outputs = manifest.get("outputs", {})
    return bool(outputs) and all(
        (config.out / name).is_file() and file_sha256(config.out / name) == digest
        for name, digest in outputs.items()
    )


def export_model(config: ExportConfig) -> Path:
    """Run the export job; returns ``config.out``. See the module docstring for the outputs.

    Raises:
        CheckpointError: the checkpoint cannot be exported (message names the file).
        ExportError: OUT holds other results, or bad options.
        DataError: a given parity dataset is malformed (homeloc.data_synthesis.formats.errors).
    """
    out = config.out
    paths = output_paths(out, config.kind)
    if _up_to_date(config, paths):
        log.info("%s is up to date (same options and checkpoint); nothing to do", out)
        return out
    loaded = load_checkpoint(config.checkpoint, config.kind, config.input_size)
    make_output_dir(out)
    for k in ("manifest", "config", "parity_json", "parity_md", "int8"):
        paths[k].unlink(missing_ok=True)  # never leave results of an older run beside new models

    from homeloc.export.onnx_export import (
        check_onnx,
        export_checkpoint,
        homeloc_version,
        metadata_for,
        set_metadata,
    )

    log.info("exporting %s (%s) to %s", config.checkpoint, config.kind, paths["fp32"])
    export_checkpoint(loaded, paths["fp32"], opset=config.opset, model_version=config.model_version)
    calibration_info = None
    if config.int8:
        calibration_info = quantize_checkpoint(loaded, config, paths)
        set_metadata(paths["int8"], metadata_for(loaded, "int8", config.model_version))
        check_onnx(paths["int8"])
    if config.parity:
        report = run_parity(loaded, config, paths)
        report["provenance"] = _provenance(loaded, config, calibration_info)
        from homeloc.export.parity import write_report

        write_report(out, report)
        _log_targets(report)
    if config.detection_threshold is not None:  # parity above ran every backend at the runtime's default
        from homeloc.export.onnx_export import set_detection_threshold

        for k in ("fp32", "int8"):
            if paths[k].is_file():
                set_detection_threshold(paths[k], config.detection_threshold)
    atomic_write(paths["config"], yaml.safe_dump(config.options(), sort_keys=False))
    written = [k for k in ("fp32", "int8", "parity_json", "parity_md", "config") if paths[k].is_file()]
    manifest = {
        "options": config.options(),
        "checkpoint_file": _checkpoint_stamp(config.checkpoint),
        "weights_sha256": loaded.weights_hash,
        "homeloc_version": homeloc_version(),
        "outputs": {paths[k].name: file_sha256(paths[k]) for k in written},
    }
    atomic_write(paths["manifest"], json.dumps(manifest, indent=2) + "\n")
    return out


def _provenance(loaded: LoadedCheckpoint, config: ExportConfig, calibration: dict | None) -> dict:
    """What made the exported model, recorded in parity.json."""
    from homeloc.export.onnx_export import homeloc_version

    return {
        "checkpoint": str(config.checkpoint),
        "checkpoint_format": loaded.format,
        "global_step": loaded.global_step,
        "model_version": config.model_version or loaded.default_model_version,
        "config_hash": loaded.config_hash,
        "weights_sha256": loaded.weights_hash,
        "homeloc_version": homeloc_version(),
        "architecture": loaded.architecture,
        "input_size": list(loaded.input_size) if loaded.input_size else None,
        "calibration": calibration,
    }


def quantize_checkpoint(
    loaded: LoadedCheckpoint, config: ExportConfig, paths: dict[str, Path]
) -> dict[str, Any]:
    """Calibrate and write ``<kind>.int8.onnx``; returns what the calibration set was."""
    from homeloc.export.calibration import NIGHT_PRESETS, calibration_images
    from homeloc.export.quantize import RECIPES, quantize_int8

    keypoints = loaded.kind == "keypoints"
    size = loaded.input_size if not keypoints else (config.calibration_size or (480, 640))
    images = calibration_images(
        config.calibration,
        config.num_calibration,
        size,
        gray=keypoints,
        seed=config.seed,
        night_share=config.night_share,
    )
    quantize_int8(
        paths["fp32"],
        paths["int8"],
        [c.array for c in images],
        *RECIPES[loaded.kind],
    )
    return {
        "sources": list(config.calibration),
        "images": len(images),
        "size": f"{size[0]}x{size[1]}",
        "night": sum(c.preset is not None for c in images),
        "presets": list(NIGHT_PRESETS),
        "seed": config.seed,
        "reduce_range": True,  # quantize_int8's default: 7-bit weights
    }


def run_parity(loaded: LoadedCheckpoint, config: ExportConfig, paths: dict[str, Path]) -> dict[str, Any]:
    """The parity report of the models just written (keypoint or place metrics)."""
    from homeloc.export import parity

    int8 = paths["int8"] if config.int8 else None
    if loaded.kind == "keypoints":
        data = config.parity_data or parity.DEFAULT_KEYPOINT_DATA
        pairs, skipped = parity.load_keypoint_pairs(data, config.parity_pairs, config.seed)
        if not pairs and config.parity_data is None and config.parity_pairs > 0:
            log.warning("default pair set: %s; using synthetic pairs instead", skipped)
            data = "synthetic"
            pairs, skipped = parity.load_keypoint_pairs(data, config.parity_pairs, config.seed)
        return parity.keypoint_parity(
            loaded.model,
            paths["fp32"],
            int8,
            pairs,
            skipped=skipped,
            data=data,
            max_keypoints=config.max_keypoints,
            latency_runs=config.latency_runs,
            latency_threads=config.latency_threads,
        )
    return parity.place_parity(
        loaded.model,
        paths["fp32"],
        int8,
        loaded.input_size,
        data=config.parity_data or parity.DEFAULT_PLACE_DATA,
        limit=config.parity_limit,
        latency_runs=config.latency_runs,
        latency_threads=config.latency_threads,
        seed=config.seed,
    )


def _log_targets(report: dict[str, Any]) -> None:
    for t in report["targets"]:
        status = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        level = logging.WARNING if t["met"] is False else logging.INFO
        log.log(level, "target %s: %s (%s) %s", t["name"], t["value"], t["target"], status)

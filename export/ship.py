"""Ship trained models inside the package: `python -m homeloc.export.ship --keypoints CKPT --places CKPT`.

Exports fp32 + static int8 ONNX of both networks (export.pipeline, with parity reports), saves the
torch weights (plain state_dict format, loaded with weights_only=True) for fine-tuning, and copies
the provenance that made them — resolved training configs, training metrics CSV, data manifests —
into `runtime/assets/`, with a MANIFEST.json of sha256 hashes. `runtime.assets.shipped_model`
(and so `--methods ours`, the runtime and export defaults) then finds them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_write

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"


def _copy(src: Path, dst: Path) -> Path:
    return atomic_write(dst, src.read_bytes())


def _run_dir(ckpt: Path) -> Path:
    """runs/<name>/checkpoints/x.ckpt -> runs/<name>."""
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent


def _run_records(run: Path) -> list[Path]:
    """A run folder's configs and curves: csv/version_*/{config.yaml,metrics.csv} (Lightning's CSV
    logger) and a top-level metrics.csv / throughput.json (what the GPU recipe returns)."""
    found = sorted(run.glob("csv/version_*/config.yaml")) + sorted(run.glob("csv/version_*/metrics.csv"))
    return found + [run / n for n in ("metrics.csv", "throughput.json") if (run / n).is_file()]


def ship_one(
    kind: str,
    ckpt: Path,
    assets: Path,
    exports: Path,
    calibration: list[str],
    parity_data: str | None,
    data_manifests: list[Path],
    earlier_runs: list[Path] = (),
    detection_threshold: float | None = None,
) -> dict:
    from homeloc.export.pipeline import ExportConfig, export_model

    out = export_model(
        ExportConfig(
            checkpoint=ckpt,
            kind=kind,
            out=exports / kind,
            int8=True,
            calibration=calibration,
            parity_data=parity_data,
            overwrite=True,
            detection_threshold=detection_threshold,
        )
    )
    files = {}
    for name in (f"{kind}.fp32.onnx", f"{kind}.int8.onnx", "parity.json", "parity.md"):
        dst = assets / (name if name.endswith(".onnx") else f"{kind}.{name}")
        _copy(out / name, dst)
        files[dst.name] = file_sha256(dst)
    if kind == "keypoints":
        from homeloc.models.keypoints import KeypointNet as Net
    else:
        from homeloc.models.places import PlaceNet as Net
    Net.from_checkpoint(ckpt).save(assets / f"{kind}.pt")
    files[f"{kind}.pt"] = file_sha256(assets / f"{kind}.pt")
    prov = assets / "provenance" / kind
    for stale in prov.glob("*"):  # a previous model's configs/curves must not pass for this one's
        if stale.is_file():
            stale.unlink()
    # The run's own configs and curves (a resumed run logs into a new csv/version_N: every segment is
    # kept), then those of the runs it was continued from (e.g. GPU runs that returned only model.pt +
    # metrics), prefixed by their folder names, oldest first as given.
    for prefix, run in [("", _run_dir(ckpt)), *((f"{e.name}_", e) for e in earlier_runs)]:
        for src in _run_records(run):
            tag = f"_{src.parent.name}" if src.parent.name.startswith("version_") else ""
            name = f"{prefix}{src.stem}{tag}{src.suffix}"
            files[f"provenance/{kind}/{name}"] = file_sha256(_copy(src, prov / name))
    for m in data_manifests:
        dst = prov / f"data_{m.parent.name}_manifest.json"
        files[f"provenance/{kind}/{dst.name}"] = file_sha256(_copy(m, dst))
    return {"checkpoint": str(ckpt), "checkpoint_sha256": file_sha256(ckpt), "files": files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m homeloc.export.ship",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--keypoints", type=Path, help="keypoint checkpoint to ship")
    p.add_argument("--places", type=Path, help="place checkpoint to ship")
    p.add_argument("--assets", type=Path, default=ASSETS, help="destination (default runtime/assets)")
    p.add_argument("--exports", type=Path, default=Path("exports"), help="working folder for export outputs")
    p.add_argument(
        "--calibration",
        nargs="+",
        default=[
            "skimage",
            "folder:../shared/data/tum_rgbd_snippets",
            "webcam:../shared/data/webcam/chamonix",
        ],
        help="calibration sources (data_synthesis source specs; night relighting is added)",
    )
    p.add_argument(
        "--places-data",
        nargs="*",
        type=Path,
        default=[],
        help="place dataset folders used in training (their manifests are recorded)",
    )
    p.add_argument(
        "--earlier-runs",
        nargs="*",
        type=Path,
        default=[],
        help="run folders the keypoint checkpoint was continued from (their curves join the provenance)",
    )
    p.add_argument(
        "--detection-threshold",
        type=float,
        help="the keypoint model's own detection threshold, recorded in its ONNX metadata",
    )
    a = p.parse_args(argv)
    for run in a.earlier_runs:  # checked before anything is exported or copied
        if not _run_records(run):
            p.error(f"--earlier-runs {run}: no csv/version_*/metrics.csv, metrics.csv or throughput.json")
    a.assets.mkdir(parents=True, exist_ok=True)
    manifest_path = a.assets / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    calib = [c for c in a.calibration if c == "skimage" or Path(c.split(":", 1)[-1].split("@")[0]).exists()]
    if a.keypoints:
        manifest["keypoints"] = ship_one(
            "keypoints",
            a.keypoints,
            a.assets,
            a.exports,
            calib,
            None,
            [],
            a.earlier_runs,
            a.detection_threshold,
        )
    if a.places:
        manifests = [d / "manifest.json" for d in a.places_data if (d / "manifest.json").exists()]
        manifest["places"] = ship_one("places", a.places, a.assets, a.exports, calib, None, manifests)
    atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    print(f"shipped into {a.assets}")
    for k, v in manifest.items():
        print(f"  {k}: {v['checkpoint']} -> {', '.join(sorted(v['files']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

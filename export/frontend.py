"""Export the one-pass frontend: keypoints + global place descriptor in one ONNX graph (fp32 + int8).

    python -m homeloc.export.frontend --head runs/global_head/checkpoints/last.ckpt [--ship]

writes ``OUT/frontend.fp32.onnx``, ``OUT/frontend.int8.onnx`` (outputs ``logits``, ``descriptors``,
``global``; ``homeloc.kind=keypoints`` so every keypoint consumer accepts it), ``OUT/parity.json``
+ ``parity.md``, and with ``--ship`` copies them into ``runtime/assets`` as ``frontend.*`` with the
head's weights (``frontend_head.pt``), its training config/curve, and their sha256 in MANIFEST.json.
The shipped ``keypoints.*.onnx`` are never touched.

int8: the keypoint part is quantized exactly as ``homeloc-export --kind keypoints`` does it (same
calibration sources, count, size, seed, night share, float modules): the head reads only the
float L2-normalised descriptors, so the keypoint outputs equal the shipped int8 keypoint model's
(the parity report checks it). NetVLAD stays float (it lost recall in int8 in the place model); the
4096 -> 256 projection is int8 as in the place model (file 4.9 -> 1.8 MB, R@1 unchanged on the
three dev sets, docs/runtime.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from homeloc.export.checkpoint import load_checkpoint, state_dict_sha256
from homeloc.export.onnx_export import (
    OPSET,
    _export,
    check_onnx,
    metadata_for,
    read_metadata,
    set_detection_threshold,
    set_metadata,
)
from homeloc.export.wrappers import FrontendExport
from homeloc.models.global_head import FrontendNet, GlobalHead
from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_write
from homeloc.runtime.postprocess import THRESHOLD_KEY

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"
CALIBRATION = ["skimage", "folder:../shared/data/tum_rgbd_snippets", "webcam:../shared/data/webcam/chamonix"]


def build(keypoints: Path, head: Path) -> tuple[FrontendNet, dict]:
    """The combined network and the metadata it adds to the keypoint model's."""
    loaded = load_checkpoint(keypoints, "keypoints")
    g = GlobalHead.from_checkpoint(head)
    net = FrontendNet(loaded.model, g).eval()
    extra = {
        "homeloc.outputs": "logits,descriptors,global",
        "homeloc.global_dim": str(g.out_dim),
        "homeloc.global_head": f"netvlad{g.clusters}{'+attention' if g.attention is not None else ''}"
        f"+proj{g.out_dim_arg or 0} over the descriptor map",
        "homeloc.keypoints_weights_sha256": loaded.weights_hash,
        "homeloc.head_weights_sha256": state_dict_sha256(g.state_dict()),
        # identity of the graph (runtime maps compare it): keypoint and head weights together
        "homeloc.weights_sha256": state_dict_sha256(net.state_dict()),
    }
    return net, {"loaded": loaded, "extra": extra}


def export(
    net: FrontendNet, info: dict, out: Path, calibration: list[str], num: int = 200, seed: int = 0
) -> dict:
    """fp32 + int8 ONNX in ``out``; returns {"fp32": path, "int8": path, "calibration": {...}}."""
    from homeloc.export.calibration import calibration_images
    from homeloc.export.quantize import RECIPES, quantize_int8

    out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = out / "frontend.fp32.onnx", out / "frontend.int8.onnx"
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height_8", 3: "width_8"},
            "descriptors": {0: "batch", 2: "height_8", 3: "width_8"}, "global": {0: "batch"}}  # fmt: skip
    _export(FrontendExport(net), (torch.rand(1, 1, 64, 96),), fp32, FrontendExport.input_names,
            FrontendExport.output_names, axes, OPSET)  # fmt: skip
    set_metadata(fp32, metadata_for(info["loaded"], "fp32") | info["extra"])
    check_onnx(fp32)
    if num == 0:
        return {"fp32": fp32, "int8": None, "calibration": None}
    images = calibration_images(calibration, num, (480, 640), gray=True, seed=seed, night_share=0.5)
    quantize_int8(fp32, int8, [c.array for c in images], *RECIPES["frontend"])
    set_metadata(int8, metadata_for(info["loaded"], "int8") | info["extra"])
    check_onnx(int8)
    calib = {
        "sources": calibration,
        "images": len(images),
        "size": "480x640",
        "seed": seed,
        "night_share": 0.5,
        "reduce_range": True,  # quantize_int8's default: 7-bit weights
    }
    return {"fp32": fp32, "int8": int8, "calibration": calib}


def parity(
    net: FrontendNet, fp32: Path, int8: Path, keypoints_int8: Path | None, images: list[np.ndarray]
) -> dict:
    """Global-descriptor cosine torch vs fp32 vs int8, and the int8 keypoint outputs vs the shipped
    int8 keypoint model's (max |difference|; 0 = the same keypoints and descriptors)."""
    import onnxruntime as ort

    def session(p):
        return ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])

    s32, s8 = session(fp32), session(int8)
    kp = session(keypoints_int8) if keypoints_int8 else None
    cos32, cos8, dlog, ddesc = [], [], [], []
    for x in images:
        with torch.no_grad():
            ref = net(torch.from_numpy(x))[2].numpy()
        g32 = s32.run(["global"], {"image": x})[0]
        lg8, de8, g8 = s8.run(["logits", "descriptors", "global"], {"image": x})
        cos32.append(float((ref * g32).sum()))
        cos8.append(float((g32 * g8).sum()))
        if kp is not None:
            lk, dk = kp.run(["logits", "descriptors"], {"image": x})
            dlog.append(float(np.abs(lk - lg8).max()))
            ddesc.append(float(np.abs(dk - de8).max()))
    return {
        "images": len(images),
        "global_cosine_fp32_vs_torch_min": min(cos32),
        "global_cosine_int8_vs_fp32_min": min(cos8),
        "global_cosine_int8_vs_fp32_mean": float(np.mean(cos8)),
        # the file name and content hash, not the path: the report is shipped and must not name a machine
        "keypoints_int8_reference": Path(keypoints_int8).name if kp is not None else None,
        "keypoints_int8_reference_sha256": file_sha256(keypoints_int8) if kp is not None else None,
        "logits_max_abs_diff_vs_keypoints_int8": max(dlog) if dlog else None,
        "descriptors_max_abs_diff_vs_keypoints_int8": max(ddesc) if ddesc else None,
    }


def parity_markdown(report: dict) -> str:
    from homeloc.export.parity.report import requantized_line

    rows = "\n".join(f"| {k} | {v} |" for k, v in report.items() if not isinstance(v, dict))
    note = f"{requantized_line(report['requantized'])}\n\n" if report.get("requantized") else ""
    return f"# Frontend (keypoints + global) parity\n\n{note}| check | value |\n|---|---|\n{rows}\n"


def _run_logs(checkpoint: Path, prefix: str = "") -> list[tuple[Path, str]]:
    """The logged configs and metrics (Lightning CSVLogger folders) of the run that wrote
    ``checkpoint`` (RUN/checkpoints/x.ckpt or RUN/x.pt), with their shipped names."""
    run = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
    logs = sorted(run.glob("csv/version_*/config.yaml")) + sorted(run.glob("csv/version_*/metrics.csv"))
    return [(s, f"{prefix}{s.stem}_{s.parent.name}{s.suffix}") for s in logs]


def ship(out: Path, head: Path, assets: Path = ASSETS) -> dict:
    """Copy the export into ``assets`` as ``frontend.*`` (+ head weights and the head's training
    provenance) and record their sha256 under "frontend" in MANIFEST.json."""
    files = {}
    for name, dst in (("frontend.fp32.onnx", "frontend.fp32.onnx"), ("frontend.int8.onnx", "frontend.int8.onnx"),
                      ("parity.json", "frontend.parity.json"), ("parity.md", "frontend.parity.md")):  # fmt: skip
        atomic_write(assets / dst, (out / name).read_bytes())
        files[dst] = file_sha256(assets / dst)
    GlobalHead.from_checkpoint(head).save(assets / "frontend_head.pt")
    files["frontend_head.pt"] = file_sha256(assets / "frontend_head.pt")
    prov = assets / "provenance" / "frontend"
    for stale in prov.glob("*"):
        if stale.is_file():
            stale.unlink()
    sources = _run_logs(head)
    grid = head.with_suffix(".json")  # a head with a grid branch fitted onto a trained one
    if grid.is_file():
        base = Path(json.loads(grid.read_text())["base_head"])
        sources = [(grid, "grid_branch.json"), *_run_logs(base, "base_")]
    for src, name in sources:
        dst = prov / name
        atomic_write(dst, src.read_bytes())
        files[f"provenance/frontend/{dst.name}"] = file_sha256(dst)
    manifest_path = assets / "MANIFEST.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest["frontend"] = {"checkpoint": str(head), "checkpoint_sha256": file_sha256(head), "files": files}
    atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest["frontend"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m homeloc.export.frontend", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--head", type=Path, required=True, help="GlobalHead checkpoint (GlobalHeadSystem last.ckpt)"
    )
    p.add_argument(
        "--keypoints", type=Path, default=ASSETS / "keypoints.pt", help="keypoint weights (default: shipped)"
    )
    p.add_argument("--out", type=Path, default=Path("exports/frontend"), help="output folder")
    p.add_argument(
        "--calibration", nargs="+", default=CALIBRATION, help="int8 calibration sources (as keypoints)"
    )
    p.add_argument(
        "--num-calibration",
        type=int,
        default=200,
        help="int8 calibration images (as keypoints; 0: fp32 only)",
    )
    p.add_argument(
        "--detection-threshold",
        type=float,
        help="the keypoints' detection threshold, recorded in the metadata (default: the one the "
        "shipped keypoints.int8.onnx records when --keypoints is the shipped model)",
    )
    p.add_argument("--ship", action="store_true", help="copy into runtime/assets as frontend.* (+ MANIFEST)")
    a = p.parse_args(argv)
    for path, opt in ((a.head, "--head"), (a.keypoints, "--keypoints")):
        if not path.is_file():
            p.error(f"{opt} {path}: no such file")
    if a.num_calibration < 0 or (a.ship and a.num_calibration == 0):
        p.error(f"--num-calibration {a.num_calibration}: must be >= 0, and > 0 with --ship (it ships int8)")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    net, info = build(a.keypoints, a.head)
    paths = export(net, info, a.out, a.calibration, a.num_calibration)
    if paths["int8"] is None:
        print(f"fp32 only: {paths['fp32']}")
        return 0
    from homeloc.export.calibration import calibration_images

    # parity on other images than the calibration set (seed 1), at the robot's 480x640
    check = [c.array for c in calibration_images(a.calibration, 16, (480, 640), gray=True, seed=1)]
    shipped = ASSETS / "keypoints.int8.onnx"
    same_keypoints = a.keypoints.resolve() == (ASSETS / "keypoints.pt").resolve() and shipped.is_file()
    threshold = a.detection_threshold
    if threshold is None and same_keypoints:
        threshold = read_metadata(shipped).get(THRESHOLD_KEY)
    if threshold is not None:
        for k in ("fp32", "int8"):
            set_detection_threshold(paths[k], float(threshold))
    report = parity(net, paths["fp32"], paths["int8"], shipped if same_keypoints else None, check)
    report["calibration"] = paths["calibration"]
    report["head_checkpoint"] = str(a.head)
    atomic_write(a.out / "parity.json", json.dumps(report, indent=1))
    atomic_write(a.out / "parity.md", parity_markdown(report))
    print(parity_markdown(report))
    if a.ship:
        entry = ship(a.out, a.head)
        print(f"shipped into {ASSETS}: {', '.join(sorted(entry['files']))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

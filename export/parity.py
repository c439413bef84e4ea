"""Parity reports: torch vs ONNX Runtime fp32 vs ONNX Runtime int8, with the issue's targets.

Keypoints (``keypoint_parity``): every backend's dense outputs go through the same numpy
post-processing (``runtime.postprocess.postprocess``, top-1024); against torch we measure the
share of keypoints reproduced within 1 px, the descriptor cosine at those shared keypoints (both
dense maps sampled at the torch keypoint) and the largest dense-output difference; on a
homography pair set, MMA@1/3/5 of mutual-nearest-neighbour matches (``eval.matching``,
``eval.metrics``); latency at 480x640 with 1 and 2 threads (median after warm-up, backends
interleaved); file sizes.

Places (``place_parity``): descriptor cosine against torch, recall@1/5 on a place set
(``eval.data_places``), latency at the fixed input size, file sizes.

Targets (``TARGETS``), reported whether met or not: int8 >= 2x faster than ORT fp32, int8
keypoint overlap >= 0.9, MMA@3 loss of int8 vs ORT fp32 <= 1 point.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from homeloc.export.calibration import NIGHT_PRESETS, resize_cover
from homeloc.export.timing import ort_session, time_interleaved
from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)

DEFAULT_KEYPOINT_DATA = "webcam:../shared/data/webcam"
DEFAULT_PLACE_DATA = "nordland:../shared/data/nordland_64x32_summer_winter"
LATENCY_SIZE = (480, 640)  # H x W: the robot camera's 640x480
MMA_THRESHOLDS = (1, 3, 5)
OVERLAP_PX = 1.0
BACKENDS = ("torch", "onnx_fp32", "onnx_int8")
TARGETS = {
    "int8_speedup": 2.0,  # ORT fp32 ms / ORT int8 ms, >=
    "keypoint_overlap": 0.9,  # int8 vs torch, top-1024 within 1 px, >=
    "mma3_loss_points": 1.0,  # (ORT fp32 - ORT int8) MMA@3 in percentage points, <=
}


# ------------------------------------------------------------------------------------ data
@dataclass
class ParityPair:
    """Two RGB uint8 images and the homography H mapping image0 pixels to image1 pixels."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    H: np.ndarray
    bucket: str = ""


def load_keypoint_pairs(spec: str | None, n: int = 32, seed: int = 0) -> tuple[list[ParityPair], str | None]:
    """Up to ``n`` homography pairs for MMA, and the reason when there are none.

    spec: ``synthetic`` (skimage photos warped by a seeded homography, the second view relit by a
    night preset), ``none``, or any ``eval.data_matching`` spec with homography ground truth;
    webcam scenes get a seeded random homography on the second image (``eval.data_matching.
    load_webcam``). A missing dataset is skipped (reason returned), a malformed one raises.
    """
    if spec is None or spec == "none" or n <= 0:
        return [], "no pair set requested"
    if spec == "synthetic":
        return synthetic_pairs(n, seed), None
    from homeloc.eval.data_matching import (
        MATCHING_KINDS,
        PLACES_KINDS,
        WebcamOptions,
        load_matching_dataset,
        split_spec,
    )

    _, path = split_spec(spec, MATCHING_KINDS + PLACES_KINDS)
    if not path.exists():
        return [], f"{path} not found"
    ds = load_matching_dataset(spec, webcam=WebcamOptions(homography=True, seed=seed))
    pairs = [p for p in ds.pairs if p.H is not None]
    if not pairs:
        return [], f"{spec}: no pairs with homography ground truth"
    chosen = stratified_choice([p.bucket for p in pairs], n, seed)
    out = []
    for i in chosen:
        p = pairs[i]
        out.append(
            ParityPair(p.name, p.image0.load(), p.image1.load(), np.asarray(p.H, np.float64), p.bucket)
        )
    return out, None


def stratified_choice(buckets: Sequence[str], n: int, seed: int = 0) -> list[int]:
    """``n`` indices drawn in turn from each lighting bucket (night, dusk, day, others; seeded
    order within a bucket), so the rare night pairs are all represented; sorted."""
    rng = np.random.default_rng(seed)
    order = {"night": 0, "dusk": 1, "day": 2}
    groups = [
        list(rng.permutation([i for i, b in enumerate(buckets) if b == k]))
        for k in sorted(set(buckets), key=lambda k: (order.get(k, 3), k))
    ]
    chosen: list[int] = []
    while len(chosen) < min(n, len(buckets)):
        for g in groups:
            if g and len(chosen) < n:
                chosen.append(int(g.pop(0)))
    return sorted(chosen)


def synthetic_pairs(n: int, seed: int = 0, size: tuple[int, int] = LATENCY_SIZE) -> list[ParityPair]:
    """``n`` pairs from scikit-image's bundled photos: image1 = image0 warped by a seeded random
    homography, relit by ``night_lamp`` / ``night_ir`` / ``dusk`` in turn (every fourth stays day)."""
    from homeloc.data_synthesis.photometric import apply_preset
    from homeloc.data_synthesis.sources import skimage_photos
    from homeloc.eval.data_matching import random_homography

    photos = skimage_photos()
    h, w = size
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        name, photo = photos[int(rng.integers(len(photos)))]
        img0 = resize_cover(photo, size)
        H = random_homography(w, h, rng)
        img1 = cv2.warpPerspective(img0, H, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        preset = None if i % 4 == 3 else NIGHT_PRESETS[i % 4 % len(NIGHT_PRESETS)]
        if preset is not None:
            relit, _ = apply_preset(preset, img1, rng)
            img1 = np.clip(relit * 255.0 + 0.5, 0, 255).astype(np.uint8)
        out.append(ParityPair(f"synthetic/{i:03d}-{name}", img0, img1, H, preset or "day"))
    return out


# ------------------------------------------------------------------------------------ metrics
def keypoint_overlap(ref: np.ndarray, cand: np.ndarray, px: float = OVERLAP_PX) -> np.ndarray:
    """Boolean mask over ``ref`` (N x 2): a keypoint of ``cand`` lies within ``px`` pixels."""
    if len(ref) == 0:
        return np.zeros(0, bool)
    if len(cand) == 0:
        return np.zeros(len(ref), bool)
    d2 = ((ref[:, None, :].astype(np.float64) - cand[None, :, :]) ** 2).sum(-1)
    return d2.min(axis=1) <= px * px


def _stats(values: list[float] | np.ndarray, digits: int = 6) -> dict[str, float | None]:
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {"mean": None, "p05": None, "min": None}
    return {
        "mean": round(float(v.mean()), digits),
        "p05": round(float(np.percentile(v, 5)), digits),
        "min": round(float(v.min()), digits),
    }


def _file_info(path: Path | None) -> dict[str, Any] | None:
    if path is None or not Path(path).is_file():
        return None
    data = Path(path).read_bytes()
    return {"path": Path(path).name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _state_info(model: nn.Module) -> dict[str, Any]:
    """Size of the torch weights (state dict tensors), for comparison with the ONNX files."""
    return {
        "path": "state_dict",
        "bytes": int(sum(v.numel() * v.element_size() for v in model.state_dict().values())),
    }


def _targets(report: dict, kind: str) -> list[dict[str, Any]]:
    """Target rows: name, value, target, met (None when not measured, with ``note``)."""
    rows = []
    lat = report.get("latency_ms", {})
    has_int8 = "onnx_int8" in report["backends"]
    for key in sorted(k for k in lat if k.startswith("threads_")):
        t = lat[key]
        value = t["onnx_fp32"] / t["onnx_int8"] if has_int8 and t.get("onnx_int8") else None
        rows.append(
            _row(
                f"int8 speed-up vs ORT fp32, {key.split('_')[1]} thread(s)",
                value,
                ">=",
                TARGETS["int8_speedup"],
                "x",
            )
        )
    if kind == "keypoints":
        fid = report["fidelity"].get("onnx_int8", {})
        rows.append(
            _row(
                "int8 top-1024 keypoint overlap within 1 px (vs torch)",
                fid.get("keypoint_overlap"),
                ">=",
                TARGETS["keypoint_overlap"],
            )
        )
        acc = report["accuracy"]
        loss = None
        if has_int8 and acc.get("onnx_fp32") and acc.get("onnx_int8"):
            loss = 100.0 * (acc["onnx_fp32"]["MMA@3"] - acc["onnx_int8"]["MMA@3"])
        row = _row("MMA@3 loss, ORT fp32 - int8 (points)", loss, "<=", TARGETS["mma3_loss_points"])
        if loss is None and has_int8:
            row["note"] = f"no pair set ({acc.get('skipped')})"
        rows.append(row)
    if not has_int8:
        for r in rows:
            r["note"] = "no int8 model (export without --int8)"
    return rows


def _row(name: str, value: float | None, op: str, target: float, unit: str = "") -> dict[str, Any]:
    met = None if value is None else (value >= target if op == ">=" else value <= target)
    return {
        "name": name,
        "value": None if value is None else round(float(value), 4),
        "target": f"{op} {target:g}{unit}",
        "met": met,
    }


# ------------------------------------------------------------------------------------ keypoints
def _keypoint_backends(model: nn.Module, fp32: Path, int8: Path | None, threads: int) -> dict[str, Callable]:
    sessions = {"onnx_fp32": ort_session(fp32, threads)}
    if int8 is not None:
        sessions["onnx_int8"] = ort_session(int8, threads)

    def run_torch(x: np.ndarray):
        with torch.inference_mode():
            return [t.numpy() for t in model(torch.from_numpy(x))]

    fns: dict[str, Callable] = {"torch": run_torch}
    for k, s in sessions.items():
        fns[k] = lambda x, s=s: s.run(None, {"image": x})
    return fns


def keypoint_parity(
    model: nn.Module,
    fp32_path: str | Path,
    int8_path: str | Path | None = None,
    pairs: Sequence[ParityPair] = (),
    skipped: str | None = None,
    data: str | None = None,
    max_keypoints: int = 1024,
    resize: int = 640,
    latency_runs: int = 20,
    latency_threads: Sequence[int] = (1, 2),
    latency_image: np.ndarray | None = None,
) -> dict[str, Any]:
    """Parity of a keypoint network's ONNX exports against torch (see the module docstring).

    Args:
        model: the torch ``KeypointNet`` (eval mode, CPU).
        pairs: homography pairs (``load_keypoint_pairs``); their images also serve for the
            fidelity metrics. Empty: fidelity on ``synthetic_pairs(4)``, no MMA (``skipped`` says why).
        data: the pair set's spec, recorded in the report.
        resize: images are downscaled to this longer side before extraction (keypoints mapped back
            to the original pixels for MMA, as in ``eval``); overlap is measured at network scale.
        latency_image: 1 x 1 x 480 x 640 float32 (default: the first pair image, cover-resized).

    Returns the report dict (written by ``write_report``).
    """
    from homeloc.eval.extract import resize_longer
    from homeloc.eval.matching import mutual_nearest_neighbours
    from homeloc.eval.metrics import matching_accuracy, reprojection_errors
    from homeloc.runtime.postprocess import postprocess, prepare_image, sample_descriptors

    fp32_path, int8_path = Path(fp32_path), (Path(int8_path) if int8_path else None)
    model = model.eval()
    fns = _keypoint_backends(model, fp32_path, int8_path, threads=1)
    backends = list(fns)
    fidelity_pairs = list(pairs) if pairs else synthetic_pairs(4)
    overlap: dict[str, list[np.ndarray]] = {b: [] for b in backends[1:]}
    cosine: dict[str, list[np.ndarray]] = {b: [] for b in backends[1:]}
    max_abs: dict[str, list[float]] = {b: [0.0, 0.0] for b in backends[1:]}
    counts: dict[str, list[int]] = {b: [] for b in backends}
    mma: dict[str, list[np.ndarray]] = {b: [] for b in backends}
    matches: dict[str, list[int]] = {b: [] for b in backends}
    buckets: list[str] = []

    def extract_all(image: np.ndarray) -> dict[str, Any]:
        small = resize_longer(image, resize)
        x, size = prepare_image(small)
        sy, sx = image.shape[0] / small.shape[0], image.shape[1] / small.shape[1]
        dense = {b: fn(x) for b, fn in fns.items()}
        feats = {b: postprocess(d[0], d[1], size, max_keypoints=max_keypoints) for b, d in dense.items()}
        ref = feats["torch"]
        for b in backends:
            counts[b].append(len(feats[b].keypoints))
        for b in backends[1:]:
            max_abs[b][0] = max(max_abs[b][0], float(np.abs(dense[b][0] - dense["torch"][0]).max()))
            max_abs[b][1] = max(max_abs[b][1], float(np.abs(dense[b][1] - dense["torch"][1]).max()))
            shared = keypoint_overlap(ref.keypoints, feats[b].keypoints)
            overlap[b].append(shared)
            kp = ref.keypoints[shared]
            cand = sample_descriptors(dense[b][1], kp)
            cosine[b].append((ref.descriptors[shared] * cand).sum(axis=1))
        scale = np.array([sx, sy], np.float32)
        return {b: ((f.keypoints + 0.5) * scale - 0.5, f.descriptors) for b, f in feats.items()}

    for pair in fidelity_pairs:
        f0, f1 = extract_all(pair.image0), extract_all(pair.image1)
        if not pairs:
            continue
        buckets.append(pair.bucket)
        for b in backends:
            idx = mutual_nearest_neighbours(f0[b][1], f1[b][1], "l2")
            err = reprojection_errors(f0[b][0][idx[:, 0]], f1[b][0][idx[:, 1]], pair.H)
            mma[b].append(matching_accuracy(err, MMA_THRESHOLDS))
            matches[b].append(len(idx))

    fidelity = {}
    for b in backends[1:]:
        shared_all = np.concatenate(overlap[b]) if overlap[b] else np.zeros(0, bool)
        fidelity[b] = {
            "images": len(overlap[b]),
            "keypoint_overlap": round(float(shared_all.mean()), 4) if shared_all.size else None,
            "keypoint_overlap_min_image": round(min(float(o.mean()) for o in overlap[b] if o.size), 4)
            if any(o.size for o in overlap[b])
            else None,
            "descriptor_cosine": _stats(np.concatenate(cosine[b]) if cosine[b] else []),
            "max_abs_logits": float(max_abs[b][0]),
            "max_abs_descriptors": float(max_abs[b][1]),
            "keypoints_mean": round(float(np.mean(counts[b])), 1),
        }
    fidelity["torch"] = {
        "images": len(counts["torch"]),
        "keypoints_mean": round(float(np.mean(counts["torch"])), 1),
    }

    accuracy: dict[str, Any] = {
        "data": data,
        "pairs": len(buckets),
        "skipped": None if pairs else (skipped or "no pairs"),
    }
    if pairs:
        accuracy["buckets"] = {k: buckets.count(k) for k in sorted(set(buckets))}
        for b in backends:
            arr = np.array(mma[b])
            entry = {f"MMA@{t}": round(float(arr[:, i].mean()), 4) for i, t in enumerate(MMA_THRESHOLDS)}
            entry["matches_mean"] = round(float(np.mean(matches[b])), 1)
            entry["by_bucket"] = {
                k: round(float(arr[[j for j, x in enumerate(buckets) if x == k], 1].mean()), 4)
                for k in sorted(set(buckets))
            }
            accuracy[b] = entry

    if latency_image is None:
        rgb = resize_cover(fidelity_pairs[0].image0, LATENCY_SIZE).astype(np.float32) / 255.0
        latency_image = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[None, None]
    latency = latency_table(
        lambda t: _keypoint_backends(model, fp32_path, int8_path, t),
        latency_image,
        latency_runs,
        latency_threads,
    )
    report = {
        "kind": "keypoints",
        "backends": backends,
        "reference": "torch",
        "max_keypoints": max_keypoints,
        "resize": resize,
        "fidelity": fidelity,
        "accuracy": accuracy,
        "latency_ms": latency,
        "files": {
            "torch": _state_info(model),
            "onnx_fp32": _file_info(fp32_path),
            "onnx_int8": _file_info(int8_path),
        },
    }
    report["targets"] = _targets(report, "keypoints")
    return report


def latency_table(
    make_fns: Callable[[int], dict[str, Callable]], image: np.ndarray, runs: int, threads: Sequence[int]
) -> dict[str, Any]:
    """``{"size": "HxW", "runs": runs, "threads_<t>": {backend: median ms}}``, backends interleaved.

    torch runs with ``torch.set_num_threads(t)`` (restored afterwards)."""
    out: dict[str, Any] = {
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
        "size": f"{image.shape[2]}x{image.shape[3]}",
        "batch": int(image.shape[0]),
        "runs": runs,
    }
    before = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(int(t))
            fns = make_fns(int(t))
            ms = time_interleaved({k: (lambda fn=fn: fn(image)) for k, fn in fns.items()}, runs, warmup=3)
            out[f"threads_{t}"] = {k: round(v, 3) for k, v in ms.items()}
    finally:
        torch.set_num_threads(before)
    return out


# ------------------------------------------------------------------------------------ places
def load_place_images(paths: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """N x 3 x H x W float32 RGB in [0, 1], resized like training (INTER_AREA when shrinking)."""
    from homeloc.runtime.io import read_image

    h, w = size
    out = np.empty((len(paths), 3, h, w), np.float32)
    for i, p in enumerate(paths):
        img = read_image(p)
        interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
        out[i] = cv2.resize(img, (w, h), interpolation=interp).transpose(2, 0, 1).astype(np.float32) / 255.0
    return out


def _place_backends(model: nn.Module, fp32: Path, int8: Path | None, threads: int) -> dict[str, Callable]:
    sessions = {"onnx_fp32": ort_session(fp32, threads)}
    if int8 is not None:
        sessions["onnx_int8"] = ort_session(int8, threads)

    def run_torch(x: np.ndarray):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    fns: dict[str, Callable] = {"torch": run_torch}
    for k, s in sessions.items():
        fns[k] = lambda x, s=s: s.run(None, {"image": x})[0]
    return fns


def place_parity(
    model: nn.Module,
    fp32_path: str | Path,
    int8_path: str | Path | None,
    input_size: tuple[int, int],
    data: str | None = DEFAULT_PLACE_DATA,
    limit: int | None = None,
    batch: int = 32,
    latency_runs: int = 20,
    latency_threads: Sequence[int] = (1, 2),
    seed: int = 0,
) -> dict[str, Any]:
    """Parity of a place network's ONNX exports against torch (see the module docstring).

    data: an ``eval.data_places`` spec (Nordland: its last third); ``none`` or a missing folder
    skips recall and measures cosine on synthetic images. limit: keep the first N places.
    """
    from homeloc.eval.data_places import load_places_dataset
    from homeloc.eval.metrics import recall_at_k

    fp32_path, int8_path = Path(fp32_path), (Path(int8_path) if int8_path else None)
    model = model.eval()
    fns = _place_backends(model, fp32_path, int8_path, threads=1)
    backends = list(fns)
    skipped, ds = None, None
    if data is None or data in ("none", "synthetic"):
        skipped = (
            "no place set requested" if data != "synthetic" else "synthetic images have no place ground truth"
        )
    else:
        path = Path(str(data).split(":", 1)[-1])
        if not path.exists():
            skipped = f"{path} not found"
        else:
            ds = load_places_dataset(data)
    if ds is not None:
        db_paths, q_paths, positives = list(ds.database), list(ds.queries), list(ds.positives)
        if limit:
            db_paths, q_paths = db_paths[:limit], q_paths[:limit]
            positives = [{j for j in p if j < len(db_paths)} for p in positives[: len(q_paths)]]
        images = load_place_images(db_paths + q_paths, input_size)
    else:
        from homeloc.export.calibration import calibration_images

        images = np.concatenate(
            [c.array for c in calibration_images(["skimage"], 16, input_size, gray=False, seed=seed)]
        )
    desc = {
        b: np.concatenate([fn(images[i : i + batch]) for i in range(0, len(images), batch)])
        for b, fn in fns.items()
    }
    fidelity = {}
    for b in backends[1:]:
        cos = (desc[b] * desc["torch"]).sum(axis=1) / (
            np.linalg.norm(desc[b], axis=1) * np.linalg.norm(desc["torch"], axis=1) + 1e-12
        )
        fidelity[b] = {
            "images": len(images),
            "descriptor_cosine": _stats(cos),
            "max_abs_descriptor": float(np.abs(desc[b] - desc["torch"]).max()),
        }
    accuracy: dict[str, Any] = {"data": data, "skipped": skipped}
    if ds is not None:
        n_db = len(db_paths)
        accuracy |= {"database": n_db, "queries": len(q_paths)}
        for b in backends:
            db, q = desc[b][:n_db], desc[b][n_db:]
            ranked = np.argsort(-(q @ db.T), axis=1, kind="stable")[:, :5]
            r = recall_at_k(ranked, positives, (1, 5))
            accuracy[b] = {"R@1": round(r[1], 4), "R@5": round(r[5], 4)}
    latency = latency_table(
        lambda t: _place_backends(model, fp32_path, int8_path, t), images[:1], latency_runs, latency_threads
    )
    report = {
        "kind": "places",
        "backends": backends,
        "reference": "torch",
        "input_size": list(input_size),
        "fidelity": fidelity,
        "accuracy": accuracy,
        "latency_ms": latency,
        "files": {
            "torch": _state_info(model),
            "onnx_fp32": _file_info(fp32_path),
            "onnx_int8": _file_info(int8_path),
        },
    }
    report["targets"] = _targets(report, "places")
    return report


# ------------------------------------------------------------------------------------ report files
def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``parity.json`` and ``parity.md`` into ``out_dir`` atomically; returns both paths."""
    out_dir = Path(out_dir)
    j = atomic_write(out_dir / "parity.json", json.dumps(report, indent=2, sort_keys=False) + "\n")
    m = atomic_write(out_dir / "parity.md", to_markdown(report))
    return j, m


def _f(v: Any, digits: int = 3, suffix: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}{suffix}"
    return f"{v}{suffix}"


def to_markdown(report: dict[str, Any]) -> str:
    """The parity report as markdown tables (targets first, misses marked MISSED)."""
    kind = report["kind"]
    backends = report["backends"]
    lines = [f"# Export parity: {kind}", ""]
    prov = report.get("provenance", {})
    if prov:
        lines += [
            f"checkpoint `{prov.get('checkpoint')}` (model_version `{prov.get('model_version')}`, "
            f"config_hash `{str(prov.get('config_hash'))[:12]}`), homeloc {prov.get('homeloc_version')}",
        ]
        if prov.get("calibration"):
            c = prov["calibration"]
            lines.append(
                f"int8 calibration: {c.get('images')} images from {', '.join(c.get('sources') or ['synthetic'])} at "
                f"{c.get('size')}, {c.get('night')} relit ({', '.join(c.get('presets') or [])}), seed {c.get('seed')}"
            )
        lines.append("")
    lines += ["## Targets", "", "| target | value | required | status |", "|---|---|---|---|"]
    for t in report["targets"]:
        status = (
            "met" if t["met"] else ("MISSED" if t["met"] is False else f"not measured ({t.get('note', '')})")
        )
        lines.append(f"| {t['name']} | {_f(t['value'], 3)} | {t['target']} | {status} |")
    lines += ["", "## Fidelity against torch", ""]
    fid = report["fidelity"]
    others = [b for b in backends if b != "torch"]
    if kind == "keypoints":
        lines += [
            f"Top-{report['max_keypoints']} keypoints (runtime.postprocess) on {fid['torch']['images']} images, longer side "
            f"<= {report['resize']} px; cosine of both dense descriptor maps sampled at the shared torch keypoints.",
            "",
            "| backend | keypoints/image | overlap @1px | worst image | cosine mean | cosine p05 | cosine min | max abs logits | max abs desc |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| torch | {_f(fid['torch']['keypoints_mean'], 1)} | (reference) | | | | | | |",
        ]
        for b in others:
            f, c = fid[b], fid[b]["descriptor_cosine"]
            lines.append(
                f"| {b} | {_f(f['keypoints_mean'], 1)} | {_f(f['keypoint_overlap'], 4)} | {_f(f['keypoint_overlap_min_image'], 4)} | "
                f"{_f(c['mean'], 4)} | {_f(c['p05'], 4)} | {_f(c['min'], 4)} | {f['max_abs_logits']:.2e} | {f['max_abs_descriptors']:.2e} |"
            )
        acc = report["accuracy"]
        lines += ["", "## Matching accuracy (mutual nearest neighbours, homography ground truth)", ""]
        if acc.get("skipped"):
            lines.append(f"Skipped: {acc['skipped']}.")
        else:
            bk = ", ".join(f"{k} {v}" for k, v in acc.get("buckets", {}).items())
            lines += [
                f"{acc['pairs']} pairs from `{acc.get('data', '')}` (lighting of the second image: {bk}).",
                "",
                "| backend | MMA@1 | MMA@3 | MMA@5 | matches/pair | "
                + " | ".join(f"MMA@3 {k}" for k in acc.get("buckets", {}))
                + " |",
                "|---|---|---|---|---|" + "---|" * len(acc.get("buckets", {})),
            ]
            for b in backends:
                e = acc[b]
                per = " | ".join(_f(e["by_bucket"].get(k), 4) for k in acc.get("buckets", {}))
                lines.append(
                    f"| {b} | {_f(e['MMA@1'], 4)} | {_f(e['MMA@3'], 4)} | {_f(e['MMA@5'], 4)} | {_f(e['matches_mean'], 1)} | {per} |"
                )
    else:
        lines += [
            f"Global descriptors of {fid[others[0]]['images'] if others else 0} images at {report['input_size'][0]}x{report['input_size'][1]}.",
            "",
            "| backend | cosine mean | cosine p05 | cosine min | max abs |",
            "|---|---|---|---|---|",
        ]
        for b in others:
            c = fid[b]["descriptor_cosine"]
            lines.append(
                f"| {b} | {_f(c['mean'], 5)} | {_f(c['p05'], 5)} | {_f(c['min'], 5)} | {fid[b]['max_abs_descriptor']:.2e} |"
            )
        acc = report["accuracy"]
        lines += ["", "## Place recognition", ""]
        if acc.get("skipped"):
            lines.append(f"Skipped: {acc['skipped']}.")
        else:
            lines += [
                f"`{acc['data']}`: {acc['queries']} queries against {acc['database']} database images (cosine, top-k).",
                "",
                "| backend | R@1 | R@5 |",
                "|---|---|---|",
            ]
            for b in backends:
                lines.append(f"| {b} | {_f(acc[b]['R@1'], 4)} | {_f(acc[b]['R@5'], 4)} |")
    lat = report["latency_ms"]
    thread_keys = sorted(k for k in lat if k.startswith("threads_"))
    lines += [
        "",
        "## Latency and size",
        "",
        f"Median ms per {lat['size']} input (batch {lat.get('batch', 1)}) over {lat['runs']} interleaved runs after warm-up; "
        f"CPU ({lat.get('cpu_count')} cores, 1-min load average {lat.get('load_average_1min')} when timing started: "
        "other processes share them), ONNX Runtime with 1 inter-op thread.",
        "",
        "| backend | " + " | ".join(f"{k.split('_')[1]} thread(s) ms" for k in thread_keys) + " | file MB |",
        "|---|" + "---|" * len(thread_keys) + "---|",
    ]
    for b in backends:
        info = report["files"].get(b)
        mb = _f(info["bytes"] / 1e6, 3) if info else "-"
        lines.append(f"| {b} | " + " | ".join(_f(lat[k].get(b), 2) for k in thread_keys) + f" | {mb} |")
    return "\n".join(lines) + "\n"

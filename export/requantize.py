"""Quantize the shipped int8 models again: `python -m homeloc.export.requantize [--kinds ...]`.

The shipped ``<kind>.int8.onnx`` are made from the shipped ``<kind>.fp32.onnx`` by ``quantize_int8``.
When the quantizer changes (session 35: 7-bit weights, because full-range weights saturate
onnxruntime's uint8 x int8 kernels on x86 CPUs with AVX2 but no VNNI), the int8 models can be made
again without the training runs: for each kind (keypoints, places, frontend; in that order, because
the frontend's parity compares its keypoint outputs with the new ``keypoints.int8.onnx``)

- calibrate with the calibration its parity report records (sources, count, size, seed, night share;
  a full-range re-quantization reproduces the shipped keypoint int8 weights exactly),
- quantize ``<kind>.fp32.onnx`` with the kind's recipe (``quantize.RECIPES``); the new file keeps
  the old int8 file's ONNX metadata (model version, detection threshold, weight hashes),
- measure its parity report again against the shipped torch weights (``<kind>.pt``; the frontend:
  ``keypoints.pt`` + ``frontend_head.pt``), refusing weights other than those the fp32 model records,
- and only when every kind succeeded, replace ``<kind>.int8.onnx`` and ``<kind>.parity.{json,md}``
  and then their sha256 in MANIFEST.json. A run killed while replacing them leaves files that
  disagree with MANIFEST.json (the runtime refuses them, naming the file); running it again makes
  the same int8 files and finishes the job.

The fp32 models, torch weights and training provenance are not touched: the trained weights are the
same. The parity report's provenance gains ``requantized`` (the int8 file it replaces, the weight
range), and MANIFEST.json lists the replaced file's graph hash under the kind's ``"replaces"``
(written before any file is replaced): maps built with the replaced file keep loading
(``runtime.assets.replaced_graphs``). The evaluation reports of the model card measured the old
int8 files: run ``make card``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

from homeloc.runtime.hashing import file_sha256
from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "runtime" / "assets"
KINDS = ("keypoints", "places", "frontend")


class RequantizeError(ValueError):
    """A shipped file is missing or does not belong with the others (the message names it)."""


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise RequantizeError(f"{path}: no such file (a shipped model needs its parity report)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RequantizeError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None


def calibration_record(kind: str, report: dict, source: Path) -> dict:
    """The calibration a shipped parity report records, as ``calibration_images`` arguments:
    ``{"sources", "n", "size": (H, W), "seed", "night_share"}``. The keypoint and place reports
    keep it under ``provenance.calibration`` with a count of relit images ("night"); the frontend's
    at the top level with "night_share"."""
    cal = (
        report.get("calibration")
        if kind == "frontend"
        else (report.get("provenance") or {}).get("calibration")
    )
    need = ("sources", "images", "size", "seed")
    if not isinstance(cal, dict) or any(k not in cal for k in need):
        raise RequantizeError(f"{source}: records no int8 calibration ({', '.join(need)})")
    try:
        h, w = (int(v) for v in str(cal["size"]).split("x"))
        n = int(cal["images"])
        share = float(cal["night_share"]) if "night_share" in cal else int(cal["night"]) / max(n, 1)
    except (KeyError, ValueError) as e:
        raise RequantizeError(f"{source}: unreadable calibration record {cal!r} ({e})") from None
    return {
        "sources": list(cal["sources"]),
        "n": n,
        "size": (h, w),
        "seed": int(cal["seed"]),
        "night_share": share,
    }


def _shipped_hash(assets: Path, name: str) -> str:
    """The sha256 that ``assets/MANIFEST.json`` records for ``name``."""
    manifest = _read_json(assets / "MANIFEST.json")
    for entry in manifest.values():
        if name in entry.get("files", {}):
            return entry["files"][name]
    raise RequantizeError(f"{assets / 'MANIFEST.json'}: lists no {name}")


def replaced_graph(assets: Path, name: str) -> str | None:
    """The graph hash of ``assets/name`` when it is the file MANIFEST.json vouches for (the one a
    re-quantization replaces), else None: after a run killed while shipping, the file on disk is
    already that run's, and the replaced one was listed before it was replaced (:func:`ship`)."""
    from homeloc.runtime.assets import graph_sha256

    path = assets / name
    return graph_sha256(path) if file_sha256(path) == _shipped_hash(assets, name) else None


def _entries(manifest: dict, manifest_path: Path, names) -> dict[str, dict]:
    """{shipped name: the manifest entry (kind) listing it}; RequantizeError naming one it lacks."""
    owner = {name: entry for entry in manifest.values() for name in entry.get("files", {})}
    for name in names:
        if name not in owner:
            raise RequantizeError(f"{manifest_path}: lists no {name}")
    return {name: owner[name] for name in names}


def record_replaced(assets: Path, replaced: dict[str, str], new_graphs: dict[str, str]) -> None:
    """List in ``assets/MANIFEST.json``, under each file's kind, ``"replaces": {name: [graph hashes]}``
    the graph hashes ``replaced`` ({shipped name: graph hash}) that file replaces; a file never lists
    its own graph (``new_graphs``: {shipped name: its new graph hash})."""
    manifest_path = assets / "MANIFEST.json"
    manifest = _read_json(manifest_path)
    for name, entry in _entries(manifest, manifest_path, replaced).items():
        replaces = entry.get("replaces", {})
        listed = [
            g for g in dict.fromkeys([*replaces.get(name, []), replaced[name]]) if g != new_graphs.get(name)
        ]
        # a re-quantization that gave the same graph replaced nothing: no empty entries
        entry["replaces"] = {k: v for k, v in {**replaces, name: listed}.items() if v}
        if not entry["replaces"]:
            del entry["replaces"]
    atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))


def _torch_model(kind: str, assets: Path):
    """The shipped torch network of ``kind``, checked against the weights the fp32 model records."""
    from homeloc.export.onnx_export import read_metadata

    fp32 = assets / f"{kind}.fp32.onnx"
    recorded = read_metadata(fp32).get("homeloc.weights_sha256")
    if kind == "frontend":
        from homeloc.export.frontend import build

        net, info = build(assets / "keypoints.pt", assets / "frontend_head.pt")
        have, what = info["extra"]["homeloc.weights_sha256"], "keypoints.pt + frontend_head.pt"
    else:
        from homeloc.export.checkpoint import load_checkpoint

        loaded = load_checkpoint(assets / f"{kind}.pt", kind)
        net, have, what = loaded, loaded.weights_hash, f"{kind}.pt"
    if recorded != have:
        raise RequantizeError(f"{fp32}: records weights {str(recorded)[:12]}, but {what} hold {have[:12]}")
    return net


def requantize_one(kind: str, assets: Path, work: Path, reduce_range: bool = True) -> dict[str, Path]:
    """Quantize ``assets/<kind>.fp32.onnx`` again into ``work`` and measure its parity there.

    Returns ``{"<kind>.int8.onnx": path, "<kind>.parity.json": path, "<kind>.parity.md": path}``
    (files in ``work``). Reads ``work/keypoints.int8.onnx`` for the frontend's parity when present.
    Raises RequantizeError naming a missing or mismatched shipped file.
    """
    from homeloc.export.calibration import calibration_images
    from homeloc.export.onnx_export import read_metadata, set_metadata
    from homeloc.export.quantize import RECIPES, quantize_int8

    for name in (f"{kind}.fp32.onnx", f"{kind}.int8.onnx"):
        if not (assets / name).is_file():
            raise RequantizeError(f"{assets / name}: no such file")
    report_path = assets / f"{kind}.parity.json"
    report = _read_json(report_path)
    cal = calibration_record(kind, report, report_path)
    model = _torch_model(kind, assets)
    images = calibration_images(
        cal["sources"],
        cal["n"],
        cal["size"],
        gray=kind != "places",
        seed=cal["seed"],
        night_share=cal["night_share"],
    )
    if len(images) != cal["n"]:
        raise RequantizeError(f"{report_path}: recorded {cal['n']} calibration images, {len(images)} found")
    fp32, int8 = assets / f"{kind}.fp32.onnx", work / f"{kind}.int8.onnx"
    log.info(
        "%s: quantizing %s (%d calibration images, reduce_range=%s)", kind, fp32, len(images), reduce_range
    )
    quantize_int8(fp32, int8, [c.array for c in images], *RECIPES[kind], reduce_range=reduce_range)
    # the old int8 file's identity (model version, weight hashes) and detection threshold
    set_metadata(int8, read_metadata(assets / f"{kind}.int8.onnx"))
    stamp = {
        "by": "homeloc.export.requantize",
        "reduce_range": reduce_range,
        # the file MANIFEST.json vouches for: after an interrupted run the file on disk may already
        # be this run's (the files are replaced one by one, MANIFEST.json last)
        "replaces_int8_sha256": _shipped_hash(assets, f"{kind}.int8.onnx"),
        "int8_sha256": file_sha256(int8),
    }
    log.info("%s: measuring parity", kind)
    out = {f"{kind}.int8.onnx": int8}
    if kind == "frontend":
        new = _frontend_parity(model, fp32, int8, work, assets, cal["sources"], report)
        new["requantized"] = stamp
        from homeloc.export.frontend import parity_markdown

        out["frontend.parity.json"] = atomic_write(work / "frontend.parity.json", json.dumps(new, indent=1))
        out["frontend.parity.md"] = atomic_write(work / "frontend.parity.md", parity_markdown(new))
        return out
    new = _model_parity(kind, model, fp32, int8, report)
    new["provenance"] = {**report.get("provenance", {}), "requantized": stamp}
    from homeloc.export.parity import write_report

    sub = work / kind
    sub.mkdir(parents=True, exist_ok=True)
    j, m = write_report(sub, new)
    out[f"{kind}.parity.json"], out[f"{kind}.parity.md"] = j, m
    return out


def _model_parity(kind: str, loaded, fp32: Path, int8: Path, old: dict) -> dict:
    """The keypoint or place parity report (``pipeline.run_parity``) on the data the old report used."""
    from homeloc.export.pipeline import ExportConfig, run_parity

    acc = old.get("accuracy") or {}
    config = ExportConfig(checkpoint=Path(f"{kind}.pt"), kind=kind, out=int8.parent, int8=True,
                          parity_data=acc.get("data"), parity_pairs=acc.get("pairs") or 32,
                          max_keypoints=old.get("max_keypoints") or 1024)  # fmt: skip
    return run_parity(loaded, config, {"fp32": fp32, "int8": int8})


def _frontend_parity(
    net, fp32: Path, int8: Path, work: Path, assets: Path, sources: list[str], old: dict
) -> dict:
    """As ``python -m homeloc.export.frontend`` measures it: 16 other images (seed 1) at 480x640,
    the keypoint outputs against the keypoint int8 model that ships beside it."""
    from homeloc.export.calibration import calibration_images
    from homeloc.export.frontend import parity

    kp = (
        work / "keypoints.int8.onnx"
        if (work / "keypoints.int8.onnx").is_file()
        else assets / "keypoints.int8.onnx"
    )
    check = [
        c.array
        for c in calibration_images(sources, int(old.get("images", 16)), (480, 640), gray=True, seed=1)
    ]
    report = parity(net, fp32, int8, kp, check)
    report["calibration"] = old["calibration"]
    report["head_checkpoint"] = old.get("head_checkpoint")
    return report


def ship(files: dict[str, Path], assets: Path, replaced: dict[str, str] | None = None) -> dict[str, str]:
    """Copy ``files`` ({shipped name: path}) into ``assets`` and update their MANIFEST.json hashes.
    ``replaced`` ({shipped name: graph hash of the file it replaces}) is listed first
    (:func:`record_replaced`): a map built with the replaced file loads whatever happens next."""
    from homeloc.runtime.assets import graph_sha256

    if replaced:
        new_graphs = {name: graph_sha256(files[name]) for name in replaced if name in files}
        record_replaced(assets, replaced, new_graphs)
    manifest_path = assets / "MANIFEST.json"
    manifest = _read_json(manifest_path)
    entries = _entries(manifest, manifest_path, files)
    hashes = {}
    for name, src in files.items():
        atomic_write(assets / name, src.read_bytes())
        hashes[name] = entries[name]["files"][name] = file_sha256(assets / name)
    atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
    return hashes


def requantize(
    assets: Path = ASSETS, kinds: tuple[str, ...] = KINDS, reduce_range: bool = True, work: Path | None = None
) -> dict[str, str]:
    """Quantize every kind in ``kinds`` again and ship the results together (see the module
    docstring). Returns {shipped file name: new sha256}. Nothing in ``assets`` changes unless every
    kind succeeded."""
    order = [k for k in KINDS if k in kinds]
    with tempfile.TemporaryDirectory(prefix="homeloc-requant-") as tmp:
        work = Path(work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        # before anything is replaced: the graphs the maps built so far were built with
        replaced = {
            name: g for k in order if (g := replaced_graph(assets, name := f"{k}.int8.onnx")) is not None
        }
        files: dict[str, Path] = {}
        for kind in order:
            files |= requantize_one(kind, assets, work, reduce_range)
        return ship(files, assets, replaced)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m homeloc.export.requantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument(
        "--assets", type=Path, default=ASSETS, help="shipped models folder (default runtime/assets)"
    )
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="models to quantize again")
    p.add_argument(
        "--full-range",
        action="store_true",
        help="8-bit weights as before session 35 (saturates on x86 CPUs with AVX2 but no VNNI)",
    )
    p.add_argument(
        "--work", type=Path, help="keep the new files and reports here (default: a temporary folder)"
    )
    a = p.parse_args(argv)
    if not a.assets.is_dir():
        p.error(f"--assets {a.assets}: no such folder")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        hashes = requantize(a.assets, tuple(a.kinds), reduce_range=not a.full_range, work=a.work)
    except RequantizeError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    for name, h in hashes.items():
        print(f"{a.assets / name}: sha256 {h[:16]}")
    print("the model card's evaluation reports measured the previous int8 files: run `make card`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

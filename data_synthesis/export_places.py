"""Write a synthesized place dataset as the generic places folder `homeloc-evaluate places` reads
(the places counterpart of export_pairs): database/, queries/ and ground_truth.csv."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.photometric import PRESETS
from homeloc.data_synthesis.places import KIND, _iou
from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)
EXPORT_INFO = "export.json"  # the data and options an export was made from (and its counts)
GROUND_TRUTH = "ground_truth.csv"


def export_places_eval(
    data_dir: str | Path,
    out_dir: str | Path,
    query_presets: tuple[str, ...] = ("night_lamp", "night_ir", "dusk"),
    include_real: bool = True,
    same_place_iou: float = 0.3,
    overwrite: bool = False,
) -> Path:
    """Write the generic places folder the evaluator reads: database/ (view 0 of every place),
    queries/ (views 1.. lit by one of `query_presets`, plus real captures when include_real),
    ground_truth.csv (`query,positives`; positives = space-separated database file names: the
    query's own place and any place cropped from the same source image with crop IoU >=
    same_place_iou). Image bytes are copied from the shards. Returns the csv path; a finished
    export of the same dataset and options is kept unless overwrite."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    manifest = shards.verify(data_dir)
    if manifest["kind"] != KIND:
        raise shards.DatasetError(f"{data_dir}: holds a {manifest['kind']!r} dataset, expected {KIND!r}")
    for p in query_presets:
        if p not in PRESETS:
            raise ValueError(f"unknown query preset {p!r}; known: {sorted(PRESETS)}")
    info = {
        "data": str(data_dir.resolve()),
        "config_hash": manifest["config_hash"],
        "query_presets": list(query_presets),
        "include_real": include_real,
        "same_place_iou": same_place_iou,
    }
    gt_path = out_dir / GROUND_TRUTH
    if _keep_existing(out_dir, info, overwrite):
        return gt_path
    places, queries = _copy_views(data_dir, manifest, out_dir, query_presets, include_real)
    info.update(database=len(places), queries=len(queries))
    atomic_write(out_dir / EXPORT_INFO, json.dumps(info, indent=1, sort_keys=True))
    atomic_write(gt_path, _ground_truth(places, queries, same_place_iou))  # last: marks a finished export
    return gt_path


def _keep_existing(out_dir: Path, info: dict, overwrite: bool) -> bool:
    """True when out_dir holds a finished export of the same data and options (nothing to do).
    Otherwise clears what an earlier export left there, so no stale image becomes a query; refuses
    (DatasetError) to replace a finished export with other options unless overwrite."""
    gt_path, info_path = out_dir / GROUND_TRUTH, out_dir / EXPORT_INFO
    if gt_path.exists() and info_path.exists() and not overwrite:
        old = json.loads(info_path.read_text())
        if {k: old.get(k) for k in info} == info:
            log.info("%s: export exists, skipping (overwrite=True to redo)", out_dir)
            return True
        raise shards.DatasetError(
            f"{info_path}: an export with other data or options is here; pass --overwrite"
        )
    if overwrite or gt_path.exists() or info_path.exists():
        for sub in ("database", "queries"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        gt_path.unlink(missing_ok=True)
    return False


def _copy_views(
    data_dir: Path, manifest: dict, out_dir: Path, query_presets: tuple[str, ...], include_real: bool
) -> tuple[list[tuple[str, dict]], list[tuple[str, int]]]:
    """Copy view 0 of every place to database/ and the query views to queries/ (bytes as stored:
    the evaluation sees the training bytes). Returns [(database name, place json)] and
    [(query name, index into the first list)]."""
    places, queries = [], []
    for name in sorted(manifest["shards"]):
        for _, members in shards.iter_shard(data_dir / name):
            meta = json.loads(members["json"])
            ext = next(k for k in members if k.startswith("view0.")).split(".", 1)[1]
            db_name = f"place_{meta['place']:07d}.{ext}"
            atomic_write(out_dir / "database" / db_name, members[f"view0.{ext}"])
            places.append((db_name, meta))
            for v, rec in enumerate(meta["views"][1:], start=1):
                # a webcam capture kept as captured (or only brightened) is a real query
                real = meta["real"] and rec["preset"] in ("identity", "day")
                if rec["preset"] in query_presets or (real and include_real):
                    label = "real" if real else rec["preset"]
                    q_name = f"place_{meta['place']:07d}_v{v}_{label}.{ext}"
                    atomic_write(out_dir / "queries" / q_name, members[f"view{v}.{ext}"])
                    queries.append((q_name, len(places) - 1))
    return places, queries


def _ground_truth(
    places: list[tuple[str, dict]], queries: list[tuple[str, int]], same_place_iou: float
) -> str:
    """ground_truth.csv text: per query, its own place and every place cropped from the same
    source image with crop IoU >= same_place_iou (another group may have drawn that image)."""
    by_image: dict[str, list[int]] = {}
    for k, (_, meta) in enumerate(places):
        by_image.setdefault(meta["source_image"], []).append(k)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["query", "positives"])
    for q_name, k in queries:
        meta = places[k][1]
        pos = [
            places[j][0]
            for j in by_image[meta["source_image"]]
            if j == k or _iou(meta["crop"], places[j][1]["crop"]) >= same_place_iou
        ]
        w.writerow([q_name, " ".join(sorted(pos))])
    return buf.getvalue()

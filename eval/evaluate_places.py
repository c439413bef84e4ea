"""`homeloc-evaluate places`: loop 1 describes database and queries (cached), loop 2 retrieves
with cosine similarity (faiss inner product) and scores recall@k and the top-1 PR curve."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis.formats.places import PlacesDataset, load_places_dataset
from homeloc.eval.config import PlacesConfig, prepare_out, set_threads
from homeloc.eval.extract import CACHE_FORMAT, CORRUPT_CACHE_ERRORS
from homeloc.eval.features import PlaceDescriber
from homeloc.eval.methods import create_method, model_hash
from homeloc.runtime.hashing import file_sha256_cached
from homeloc.runtime.io import atomic_open, read_image
from homeloc.train import metrics as M

log = logging.getLogger(__name__)

BATCH = 64


class LazyImages(Sequence):
    """Images read on access (RGB uint8), so a large database never sits in memory."""

    def __init__(self, paths: list[Path], desc: str | None = None):
        self.paths = paths
        self.desc = desc

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyImages(self.paths[i], self.desc)
        return read_image(self.paths[i])

    def __iter__(self):
        for p in tqdm(self.paths, desc=self.desc, unit="img", disable=self.desc is None, leave=False):
            yield read_image(p)


def _files_hash(paths: list[Path]) -> str:
    h = hashlib.sha1()
    for p in paths:
        h.update(file_sha256_cached(p).encode())
    return h.hexdigest()


def cache_path(cache_root: Path, spec: str, method: PlaceDescriber, data: PlacesDataset, resize: int) -> Path:
    blob = json.dumps(
        {
            "spec": spec,
            "model": model_hash(method.model_file),
            "database": _files_hash(data.database),
            "queries": _files_hash(data.queries),
            "resize": resize,
            "format": CACHE_FORMAT,
        },
        sort_keys=True,
    )
    return (
        cache_root
        / "places"
        / f"{spec.replace('/', '_').replace(':', '_')[:40]}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}.npz"
    )


def describe_all(method: PlaceDescriber, images: LazyImages, name: str) -> np.ndarray:
    chunks = []
    for start in tqdm(range(0, len(images), BATCH), desc=name, unit="batch"):
        chunks.append(method.describe(images[start : start + BATCH]))
    return np.concatenate(chunks).astype(np.float32)


def describe_cached(
    method: PlaceDescriber, spec: str, data: PlacesDataset, cache_root: Path, resize: int, recompute: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(database, query) descriptors, from the cache when present (loop 1)."""
    path = cache_path(cache_root, spec, method, data, resize)
    if path.is_file() and not recompute:
        try:
            with np.load(path) as z:
                return z["database"], z["queries"]
        except CORRUPT_CACHE_ERRORS as e:
            log.warning("%s: cache entry corrupt, recomputing (%s)", path, e)
    method.fit(LazyImages(data.database, f"fit {spec}"))
    db = describe_all(method, LazyImages(data.database), f"{spec} database")
    q = describe_all(method, LazyImages(data.queries), f"{spec} queries")
    with atomic_open(path, "wb") as f:
        np.savez(f, database=db, queries=q)
    return db, q


def retrieve(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k database indices and cosine similarities per query (exact inner-product search)."""
    import faiss

    index = faiss.IndexFlatIP(db.shape[1])
    index.add(np.ascontiguousarray(db, np.float32))
    sims, idx = index.search(np.ascontiguousarray(queries, np.float32), min(k, len(db)))
    return idx, sims


def place_metrics(
    ranked: np.ndarray, sims: np.ndarray, positives: list[set[int]]
) -> tuple[dict, np.ndarray, np.ndarray]:
    """The issue's keys plus the top-1 PR curve (precision, recall)."""
    recalls = M.recall_at_k(ranked, positives, M.RECALL_KS)
    correct = np.array([int(r[0]) in p for r, p in zip(ranked, positives, strict=True)])
    has_pos = np.array([len(p) > 0 for p in positives])
    precision, recall = M.pr_curve_top1(sims[:, 0], correct, has_pos)
    # None (null in summary.json, "–" in the table) when no query has a positive: undefined, not 0
    defined = bool(has_pos.any())
    out = {f"R@{k}": v if defined else None for k, v in recalls.items()}
    out["AUC_PR"] = M.auc_pr(precision, recall) if defined else None
    out["R@100P"] = M.recall_at_full_precision(precision, recall) if defined else None
    out["queries"] = len(positives)
    out["buckets"] = {}
    return out, precision, recall


def run_places(config: PlacesConfig) -> Path:
    """Evaluate every method; writes DIR/summary.json, table.md, pr.png, queries.csv; returns DIR."""
    from homeloc.eval import plots, report

    set_threads(config.threads)
    data = load_places_dataset(config.data, config.nordland_split, config.nordland_tolerance)
    out = Path(config.out)
    log.info(
        "%s dataset %s: %d database, %d queries", data.kind, data.root, len(data.database), len(data.queries)
    )
    methods = {
        spec: create_method(
            spec, "places", max_keypoints=config.max_keypoints, resize=config.resize, threads=config.threads
        )
        for spec in config.methods
    }
    prepare_out(out, config, "places")  # after the methods: a bad model leaves no output folder
    cache_root = Path(config.cache_dir) if config.cache_dir else out / "cache"
    set_threads(config.threads)
    summary, curves, rows = {}, {}, []
    k = max(M.RECALL_KS)
    for spec, method in methods.items():
        db, q = describe_cached(method, spec, data, cache_root, config.resize, config.recompute)
        ranked, sims = retrieve(db, q, k)
        summary[spec], precision, recall = place_metrics(ranked, sims, data.positives)
        curves[spec] = (precision, recall)
        for qi, qp in enumerate(data.queries):
            top = int(ranked[qi, 0])
            rows.append(
                {
                    "method": spec,
                    "query": qp.name,
                    "top1": data.database[top].name,
                    "similarity": float(sims[qi, 0]),
                    "correct": top in data.positives[qi],
                    "positives": len(data.positives[qi]),
                }
            )
    report.write_json(out / "summary.json", summary)
    report.write_pairs_csv(out / "queries.csv", rows)
    info = ", ".join(f"{k}={v}" for k, v in data.info.items())
    title = f"Places on {data.kind} `{data.root}` ({len(data.queries)} queries, {len(data.database)} database images{'; ' + info if info else ''})"
    report.write_table(out / "table.md", report.places_table(summary, title))
    plots.plot_pr(out / "pr.png", curves)
    return out

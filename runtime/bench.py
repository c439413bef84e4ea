"""Runtime benchmark: ``python -m homeloc.runtime.bench [--keypoints-model P] [--places-model P] [--quick]``.

Prints one table: keypoint extraction at 640x480 (1 and 2 ORT threads), matching, one loop-closure
step (keypoints + global descriptor + retrieval + verification + add_keyframe at 640x480 with 1000
keyframes, 1 thread, also as a ratio to keypoint extraction timed in the same run), map query at
1k / 10k / 100k keyframes for each index type, bytes per keyframe and recall@1 of the compressed
maps relative to the exact (flat) map, on synthetic place sets and, when a place model is
available (shipped, given, or ``--places-model``), on real descriptors of the Nordland
summer/winter set (``../shared/data``). Timings are medians; faiss runs single-threaded (one
query at a time is the robot's case). Rows whose model is missing say so instead of a number.

Also the home of :func:`synthetic_places`, the synthetic revisit set the tests use.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.runtime.bench_frontend import frontend_rows, global_rows, loop_closure_rows, median_ms

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
NORDLAND = ROOT.parent / "shared" / "data" / "nordland_64x32_summer_winter"


# ------------------------------------------------------------------------------ synthetic places
@dataclass(frozen=True)
class PlaceSet:
    """Database keyframe descriptors with their place labels, and revisit queries with theirs."""

    database: np.ndarray  # N x D float32, unit norm, keyframes of a place are consecutive
    database_place: np.ndarray  # N int64
    queries: np.ndarray  # Q x D float32, unit norm
    query_place: np.ndarray  # Q int64


def synthetic_places(
    num_places: int = 1000,
    dim: int = 256,
    keyframes_per_place: int = 2,
    num_clusters: int | None = None,
    cluster_spread: float = 0.3,
    keyframe_noise: float = 0.25,
    revisit_noise: float = 0.8,
    spectrum_decay: float = 0.0,
    num_queries: int | None = None,
    seed: int = 0,
) -> PlaceSet:
    """Clustered random unit vectors with noisy revisits.

    Cluster centres (rooms) are random unit vectors; a place is its cluster centre plus a random
    vector of norm ``cluster_spread``; each of its ``keyframes_per_place`` database keyframes
    (consecutive, as a trajectory makes them) adds noise of norm ``keyframe_noise``; a revisit
    query adds noise of norm ``revisit_noise``; everything is re-normalised. Random directions
    are isotropic for ``spectrum_decay=0``; with ``spectrum_decay=a`` their variance along a
    random orthonormal basis decays as ``i**-a`` (CNN descriptors have such spectra).
    """
    rng = np.random.default_rng(seed)
    scale = (1.0 + np.arange(dim)) ** (-spectrum_decay / 2.0)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0] if spectrum_decay else None

    def directions(n: int) -> np.ndarray:
        g = rng.standard_normal((n, dim)) * scale
        g = g @ basis.T if basis is not None else g
        return (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    centres = directions(num_clusters or max(1, num_places // 20))
    places = unit(
        centres[rng.integers(0, len(centres), num_places)] + cluster_spread * directions(num_places)
    )
    db_place = np.repeat(np.arange(num_places), keyframes_per_place)
    database = unit(places[db_place] + keyframe_noise * directions(len(db_place)))
    q_place = rng.integers(0, num_places, num_queries or num_places)
    queries = unit(places[q_place] + revisit_noise * directions(len(q_place)))
    return PlaceSet(database, db_place.astype(np.int64), queries, q_place.astype(np.int64))


def recall_at_1(detector, places: PlaceSet, tolerance: int = 0, k: int = 1) -> float:
    """Share of queries with a keyframe among their ``k`` best whose place is within ``tolerance``
    of the query's place (kf_id = database row; tolerance > 0 for sequences such as Nordland,
    places = frame indices). k = 5 is what loop closure verifies (``RetrievalConfig.top_k``)."""
    _, ids = detector.search(places.queries, k=k)
    hit = np.abs(places.database_place[np.maximum(ids, 0)] - places.query_place[:, None]) <= tolerance
    return float(np.mean(((ids >= 0) & hit).any(axis=1)))


def build_map(places: PlaceSet, index: str, **kwargs):
    """A LoopClosureDetector over the set's database (kf_id = row), trained on it."""
    from homeloc.runtime.loop_closure import LoopClosureDetector

    det = LoopClosureDetector(index=index, train_size=None, store_features=False, min_inliers=0, **kwargs)
    if index != "flat" or kwargs.get("pca_dim") is not None:
        det.train(places.database)
    det.add_descriptors(np.arange(len(places.database)), places.database)
    return det


def compression_report(places: PlaceSet, configs: dict[str, dict], tolerance: int = 0) -> list[dict]:
    """Per map configuration: recall@1 (place ground truth), its ratio to the flat map's (and
    recall@5's), the share of queries whose top-1 keyframe is the flat map's top-1 (ANN recall@1),
    code bytes."""
    flat_map = build_map(places, "flat")
    flat, flat5 = recall_at_1(flat_map, places, tolerance), recall_at_1(flat_map, places, tolerance, k=5)
    exact = flat_map.search(places.queries, k=1)[1][:, 0]
    rows = [
        {
            "map": "flat",
            "recall": flat,
            "ratio": 1.0,
            "ratio5": 1.0,
            "agreement": 1.0,
            "code_bytes": 4 * places.database.shape[1],
        }
    ]
    for name, cfg in configs.items():
        det = build_map(places, **cfg)
        r, r5 = recall_at_1(det, places, tolerance), recall_at_1(det, places, tolerance, k=5)
        top = det.search(places.queries, k=1)[1][:, 0]
        rows.append({"map": name, "recall": r, "ratio": r / flat if flat else float("nan"),
                     "ratio5": r5 / flat5 if flat5 else float("nan"),
                     "agreement": float(np.mean(top == exact)), "code_bytes": det.stats().code_bytes})  # fmt: skip
    return rows


def _report_rows(title: str, report: list[dict]) -> list[tuple[str, str]]:
    return [(f"{title}: {r['map']} ({r['code_bytes']} B/kf)",
             f"recall@1 {r['recall']:.3f} = {r['ratio']:.3f} of flat (recall@5: {r['ratio5']:.3f}); ANN recall@1 (flat's top-1) {r['agreement']:.3f}")
            for r in report]  # fmt: skip


# ------------------------------------------------------------------------------------- timing
def _find_model(kind: str, given: str | None) -> Path | None:
    from homeloc.runtime.assets import shipped_model

    if given:
        return Path(given)
    for precision in ("int8", "fp32"):
        try:
            return shipped_model(kind, precision)
        except FileNotFoundError:
            continue
    return None


def query_rows(sizes: list[int], dim: int, repeats: int) -> list[tuple[str, str]]:
    """Query time per map size and index type on synthetic descriptors (trained on 10k)."""
    from homeloc.runtime.loop_closure import LoopClosureDetector

    rng = np.random.default_rng(1)
    train = synthetic_places(num_places=5000, dim=dim, keyframes_per_place=2, seed=3).database
    rows = []
    for index in ("flat", "pq", "ivfpq", "sq4"):
        det = LoopClosureDetector(index=index, train_size=None, store_features=False, min_inliers=0)
        if index != "flat":
            det.train(train)
        n_added = 0
        for n in sizes:
            while n_added < n:
                chunk = min(10_000, n - n_added)
                det.add_descriptors(np.arange(n_added, n_added + chunk), synthetic_places(
                    num_places=chunk, dim=dim, keyframes_per_place=1, seed=10 + n_added).database)  # fmt: skip
                n_added += chunk
            q = rng.standard_normal(dim).astype(np.float32)
            ms = median_ms(lambda q=q, det=det: det.query(q, k=5), repeats)
            rows.append(
                (f"query {n // 1000}k keyframes, {index} ({det.stats().code_bytes} B/kf)", f"{ms:.3f} ms")
            )
    return rows


def nordland_pairs(limit: int) -> tuple[list[np.ndarray], list[np.ndarray]] | str:
    """(summer images, winter images) of the same places in frame order, or why not: at most
    ``limit`` places of the last third of the route, which no shipped model trained on (the place
    and global-head training read the first two thirds). On all places the trained two thirds
    flattered the codes: 0.955 of flat for ivfpq64 there, 0.854 on the last third."""
    from homeloc.runtime.io import list_images, read_image

    if not (NORDLAND / "summer").is_dir() or not (NORDLAND / "winter").is_dir():
        return f"n/a ({NORDLAND} not present)"
    summer = {p.name: p for p in list_images(NORDLAND / "summer")}
    winter = {p.name: p for p in list_images(NORDLAND / "winter")}
    names = sorted(set(summer) & set(winter))
    names = names[2 * len(names) // 3 :][:limit]
    if len(names) < 300:
        return f"n/a (found {len(names)} summer/winter pairs under {NORDLAND})"
    return [read_image(summer[n]) for n in names], [read_image(winter[n]) for n in names]


def thumbnail_descriptors(
    images: list[np.ndarray], size: tuple[int, int] = (32, 64), patch: int = 8
) -> np.ndarray:
    """SeqSLAM-style real image descriptors: gray thumbnail, each patch x patch block normalised
    to zero mean and unit variance, flattened, L2-normalised (N x H*W float32)."""
    import cv2

    out = []
    for img in images:
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        t = cv2.resize(g, (size[1], size[0]), interpolation=cv2.INTER_AREA).astype(np.float32)
        blocks = t.reshape(size[0] // patch, patch, size[1] // patch, patch)
        blocks = (blocks - blocks.mean(axis=(1, 3), keepdims=True)) / (
            blocks.std(axis=(1, 3), keepdims=True) + 1e-3
        )
        out.append(blocks.ravel())
    x = np.stack(out)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def real_descriptor_rows(model: Path | None, configs: dict[str, dict], limit: int) -> list[tuple[str, str]]:
    """Nordland summer (map) / winter (queries), +-2 frames counted as the same place: recall@1
    per map type with the place model's descriptors and with SeqSLAM thumbnails (2048-d real
    image descriptors that do not depend on how far place training has got)."""
    pairs = nordland_pairs(limit)
    if isinstance(pairs, str):
        return [("real descriptors (Nordland)", pairs)]
    summer, winter = pairs
    n = len(summer)
    rows = []
    db, qd = thumbnail_descriptors(summer), thumbnail_descriptors(winter)
    ps = PlaceSet(db, np.arange(n), qd, np.arange(n))
    report = compression_report(ps, {k: v for k, v in THUMBNAIL_CONFIGS.items() if _fits(v, db.shape[1])}, 2)
    rows += _report_rows(f"Nordland summer->winter {n} places, thumbnails D={db.shape[1]}", report)
    if model is None:
        return rows + [("Nordland with the place model", "n/a (no place model: --places-model)")]
    from homeloc.runtime.places import GlobalDescriptor

    g = GlobalDescriptor(model, threads=2)
    db, qd = g.describe(summer), g.describe(winter)
    ps = PlaceSet(db, np.arange(n), qd, np.arange(n))
    report = compression_report(ps, {k: v for k, v in configs.items() if _fits(v, db.shape[1])}, tolerance=2)
    return rows + _report_rows(f"Nordland summer->winter {n} places, D={db.shape[1]} [{model.name}]", report)


def frontend_descriptor_rows(
    model: Path | None, configs: dict[str, dict], limit: int
) -> list[tuple[str, str]]:
    """``real_descriptor_rows`` with the one-pass frontend's global output (images upscaled to 256 px,
    as ``homeloc-evaluate places`` feeds it)."""
    pairs = nordland_pairs(limit)
    if model is None or isinstance(pairs, str):
        return [("Nordland with the frontend global", "n/a (no frontend model or no Nordland data)")]
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.postprocess import upscale_longer

    fe = Frontend(model, threads=2, reliability=False, global_descriptor=True)
    db, qd = (
        np.stack([fe.extract(upscale_longer(im, 256)).global_descriptor for im in side]) for side in pairs
    )
    n = len(db)
    ps = PlaceSet(db, np.arange(n), qd, np.arange(n))
    report = compression_report(ps, {k: v for k, v in configs.items() if _fits(v, db.shape[1])}, tolerance=2)
    return _report_rows(f"Nordland summer->winter {n} places, D={db.shape[1]} [{model.name}]", report)


def _fits(cfg: dict, dim: int) -> bool:
    return cfg.get("pca_dim") is None or cfg["pca_dim"] <= dim


SYNTHETIC_SETS = {
    "standard": {},
    "easier (revisit noise 0.6)": {"revisit_noise": 0.6},
    "decaying spectrum": {"spectrum_decay": 1.0, "cluster_spread": 0.6, "revisit_noise": 0.9},
}
MAP_CONFIGS = {
    "pq64": {"index": "pq", "pq_bytes": 64},
    "ivfpq64": {"index": "ivfpq", "pq_bytes": 64},
    "ivfpq32": {"index": "ivfpq", "pq_bytes": 32},
    "pca128+ivfpq32": {"index": "ivfpq", "pca_dim": 128, "pq_bytes": 32},
    "sq4": {"index": "sq4"},
    "sq6": {"index": "sq6"},
    "sq8": {"index": "sq8"},
}
# The frontend's whitened global spreads its information over most of its dimensions: these exact
# (flat) maps of its top principal components show how much any code of a few hundred bits can keep.
FRONTEND_CONFIGS = MAP_CONFIGS | {
    "pca512 (flat)": {"index": "flat", "pca_dim": 512},
    "pca256 (flat)": {"index": "flat", "pca_dim": 256},
}
THUMBNAIL_CONFIGS = {
    "ivfpq64": {"index": "ivfpq", "pq_bytes": 64},
    "pca256+ivfpq64": {"index": "ivfpq", "pca_dim": 256, "pq_bytes": 64},
    "pcaw256 (flat, whitened)": {"index": "flat", "pca_dim": 256, "pca_whiten": True},
    "pcaw256+ivfpq64": {"index": "ivfpq", "pca_dim": 256, "pca_whiten": True, "pq_bytes": 64},
    "pcaw128+ivfpq64": {"index": "ivfpq", "pca_dim": 128, "pca_whiten": True, "pq_bytes": 64},
}


def synthetic_rows(num_places: int) -> list[tuple[str, str]]:
    rows = []
    for name, overrides in SYNTHETIC_SETS.items():
        ps = synthetic_places(num_places=num_places, **overrides)
        rows += _report_rows(f"synthetic {name}, {len(ps.database)} kf", compression_report(ps, MAP_CONFIGS))
    return rows


def print_table(rows: list[tuple[str, str]], out=None) -> None:
    out = out or sys.stdout
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |", file=out)
    print(f"|{'-' * (width + 2)}|-------|", file=out)
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m homeloc.runtime.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--keypoints-model", help="keypoint ONNX (default: the shipped one)")
    parser.add_argument("--places-model", help="place ONNX (default: the shipped one)")
    parser.add_argument("--frontend-model", help="one-pass frontend ONNX (default: the shipped one)")
    parser.add_argument(
        "--quick", action="store_true", help="1k/10k keyframes only, fewer repeats (CI smoke)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats (default 20, quick 5)")
    skippable = ["frontend", "global", "loops", "query", "synthetic", "real"]
    parser.add_argument("--skip", nargs="*", default=[], choices=skippable)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(1)
    # numpy's OpenBLAS and the OpenMP pools, loaded by now: an environment variable set here came
    # too late (session 48: matching's product took 10-30 ms with 2 threads on busy cores, 1.3 with one)
    threadpool_limits(1)
    repeats = args.repeats or (5 if args.quick else 20)
    rows: list[tuple[str, str]] = []
    if "frontend" not in args.skip:
        rows += frontend_rows(_find_model("keypoints", args.keypoints_model), repeats)
    if "global" not in args.skip:
        rows += global_rows(_find_model("keypoints", args.keypoints_model), _find_model("frontend", args.frontend_model),
                            _find_model("places", args.places_model), repeats)  # fmt: skip
    if "loops" not in args.skip:
        rows += loop_closure_rows(_find_model("keypoints", args.keypoints_model),
                                  _find_model("places", args.places_model), repeats)  # fmt: skip
    if "query" not in args.skip:
        rows += query_rows([1000, 10_000] if args.quick else [1000, 10_000, 100_000], 256, repeats * 10)
    if "synthetic" not in args.skip:
        rows += synthetic_rows(500 if args.quick else 1000)
    if "real" not in args.skip:
        rows += real_descriptor_rows(
            _find_model("places", args.places_model), MAP_CONFIGS, 1000 if args.quick else 3576
        )
        rows += frontend_descriptor_rows(
            _find_model("frontend", args.frontend_model), FRONTEND_CONFIGS, 1000 if args.quick else 3576
        )
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Map compression of the frontend's global descriptor on the home place sets (`make bench`).

`python -m homeloc.eval.bench [--frontend-model M] [--train DIR ...] [--sets DIR ...]`

The runtime bench (`python -m homeloc.runtime.bench`) measures the map codes on Nordland, with the
codebooks trained on the map itself (what `IndexConfig.train_size` does). A home map is too small
for that (tens of keyframes; 8-bit product codes need >= 256 training vectors), so here every codec
is trained once on training views (the rendered training homes and the first two thirds of
Nordland, never the evaluated homes), as a codebook shipped with the model would be, and measured
on the held-apart home place sets: recall@1 of each code as a share of the flat map's (issue 15:
<= 64 bytes per keyframe with >= 99 % of flat's recall). Sets or training views that are not on
this machine are reported as n/a.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.places import PlacesDataset, load_nordland, load_places_folder
from homeloc.runtime.bench import NORDLAND
from homeloc.runtime.io import read_image
from homeloc.runtime.loop_closure import LoopClosureDetector
from homeloc.runtime.loop_closure.index import PQ_MIN_TRAIN as MIN_TRAIN

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TRAIN_DIRS = (DATA / "render_train", DATA / "render_train_b")
SETS = (
    DATA / "render_places_night_places",
    DATA / "render_places_night_b_places",
    DATA / "render_places_night_640_places",
    DATA / "places_val_indoor_eval",
)
CODECS = {  # name -> LoopClosureDetector index keywords
    "pq64": {"index": "pq", "pq_bytes": 64},
    "ivfpq64": {"index": "ivfpq", "pq_bytes": 64},
    "sq4": {"index": "sq4"},
    "sq6": {"index": "sq6"},
    "sq8": {"index": "sq8"},
}


@dataclass(frozen=True)
class DescribedSet:
    """A place set as global descriptors: positives[q] = database rows showing query q's place."""

    name: str
    database: np.ndarray  # N x D float32, unit norm
    queries: np.ndarray  # Q x D float32, unit norm
    positives: list[set[int]]


def training_images(dirs: list[Path], nordland: Path | None, every: int = 2) -> list[Path]:
    """Frames of rendered training homes (``DIR/home_*/rgb/*``) and every ``every``-th summer frame
    (and every ``2 * every``-th winter frame) of Nordland's training split (``first2of3``), which no
    evaluated set holds."""
    paths = [p for d in dirs if d.is_dir() for p in sorted(d.glob("home_*/rgb/*")) if p.is_file()]
    if nordland is not None and (nordland / "summer").is_dir() and (nordland / "winter").is_dir():
        ds = load_nordland(nordland, "first2of3")
        paths += ds.database[::every] + ds.queries[:: 2 * every]
    return paths


def recall_at_1(det: LoopClosureDetector, s: DescribedSet) -> float:
    """Share of queries whose best keyframe (kf_id = database row) is one of their positives."""
    _, ids = det.search(s.queries, k=1)
    return float(np.mean([int(i) in pos for i, pos in zip(ids[:, 0], s.positives, strict=True)]))


def codec_map(train: np.ndarray | None, database: np.ndarray, index: str, **kw) -> LoopClosureDetector:
    """A descriptor-only map of ``database`` (kf_id = row) whose codec was trained on ``train``."""
    det = LoopClosureDetector(index=index, train_size=None, store_features=False, min_inliers=0, **kw)
    if index != "flat":
        det.train(train)
    det.add_descriptors(np.arange(len(database)), database)
    return det


def compression_rows(train: np.ndarray, sets: list[DescribedSet], codecs: dict[str, dict]) -> list[dict]:
    """Per set and codec: recall@1, its share of the flat map's, code bytes per keyframe."""
    rows = []
    for s in sets:
        flat = recall_at_1(codec_map(None, s.database, "flat"), s)
        rows.append({"set": s.name, "map": "flat", "recall": flat, "ratio": 1.0,
                     "code_bytes": 4 * s.database.shape[1]})  # fmt: skip
        for name, cfg in codecs.items():
            det = codec_map(train, s.database, **cfg)
            r = recall_at_1(det, s)
            rows.append({"set": s.name, "map": name, "recall": r,
                         "ratio": r / flat if flat else float("nan"), "code_bytes": det.stats().code_bytes})  # fmt: skip
    return rows


def describe_set(method, ds: PlacesDataset) -> DescribedSet:
    db = method.describe([read_image(p) for p in ds.database])
    q = method.describe([read_image(p) for p in ds.queries])
    return DescribedSet(ds.root.name, db, q, ds.positives)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m homeloc.eval.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--frontend-model", type=Path, help="frontend ONNX (default: the shipped int8 one)")
    p.add_argument("--train", type=Path, nargs="+",
                   help="rendered training homes the codecs are trained on, plus Nordland's first two thirds "
                        "(default: data/render_train data/render_train_b where present)")  # fmt: skip
    p.add_argument("--sets", type=Path, nargs="+",
                   help="place folders measured (default: the rendered night and indoor sets under data/ where present)")  # fmt: skip
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    # Paths named on the command line must exist (a typo is an error, not an n/a row); the defaults
    # are whatever this machine has rendered.
    for d in a.sets or []:
        if not (d / "ground_truth.csv").is_file():
            p.error(f"--sets {d}: not a places folder (database/ queries/ ground_truth.csv)")
    for d in a.train or []:
        if not d.is_dir():
            p.error(f"--train {d}: no such folder")
    sets = a.sets or [d for d in SETS if (d / "ground_truth.csv").is_file()]
    train_paths = training_images(a.train or list(TRAIN_DIRS), NORDLAND if NORDLAND.is_dir() else None)
    print("| measure | value |\n|---|---|")
    if not sets or len(train_paths) < MIN_TRAIN:
        print(f"| home-set map compression | n/a ({len(sets)} place sets, {len(train_paths)} training "
              f"views; needs data/ from `homeloc-synthesize render` and >= {MIN_TRAIN} views) |")  # fmt: skip
        return 0
    from homeloc.data_synthesis.formats.errors import DataError
    from homeloc.eval.place_methods import OursGlobal

    try:
        datasets = [load_places_folder(d) for d in sets]  # malformed sets fail before any extraction
        method = OursGlobal(model=a.frontend_model, threads=a.threads)
        train = method.describe([read_image(p) for p in train_paths])
        described = [describe_set(method, ds) for ds in datasets]
    except (DataError, OSError, ValueError) as e:
        print(f"homeloc.eval.bench: error: {e}", file=sys.stderr)
        return 2
    print(
        f"| codecs trained on | {len(train)} training views, D={train.shape[1]} [{method.model_file.name}] |"
    )
    for r in compression_rows(train, described, CODECS):
        print(f"| {r['set']}: {r['map']} ({r['code_bytes']} B/kf) | recall@1 {r['recall']:.3f} = "
              f"{r['ratio']:.3f} of flat |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

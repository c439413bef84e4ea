"""Place-recognition datasets: a generic places folder or Nordland (summer database, winter queries)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from homeloc.data_synthesis.formats.errors import DataError, read_text
from homeloc.data_synthesis.formats.matching import MATCHING_KINDS, PLACES_KINDS, detect_kind, split_spec
from homeloc.runtime.io import IMAGE_EXTENSIONS

NORDLAND_SPLITS = ("all", "first2of3", "last3rd")
NORDLAND_TOLERANCE = 2  # +-2 neighbouring places (files) count as the same place


@dataclass
class PlacesDataset:
    """database/queries image paths; positives[q] = database indices that show query q's place."""

    kind: str
    root: Path
    database: list[Path]
    queries: list[Path]
    positives: list[set[int]]
    info: dict = field(default_factory=dict)


def load_places_dataset(
    spec: str, nordland_split: str = "last3rd", nordland_tolerance: int = NORDLAND_TOLERANCE
) -> PlacesDataset:
    """Load a places SPEC: a path (kind auto-detected) or places:PATH / nordland:PATH."""
    kind, path = split_spec(spec, MATCHING_KINDS + PLACES_KINDS)
    kind = kind or detect_kind(path)
    if kind in MATCHING_KINDS:
        raise DataError(path, f"this is a {kind} dataset; evaluate it with `homeloc-evaluate matching`")
    if not path.is_dir():
        raise DataError(path, "no such folder")
    if kind == "nordland":
        return load_nordland(path, nordland_split, nordland_tolerance)
    return load_places_folder(path)


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(folder, "empty: no image files")
    return files


def load_places_folder(root: Path) -> PlacesDataset:
    """database/, queries/ and ground_truth.csv (header `query,positives`; positives are
    space-separated database file names relative to database/, possibly none). The queries
    evaluated are the CSV's rows, in order."""
    database = _images(root / "database")
    db_index = {p.relative_to(root / "database").as_posix(): i for i, p in enumerate(database)}
    gt = root / "ground_truth.csv"
    if not gt.is_file():
        raise DataError(gt, "file not found")
    try:
        rows = list(csv.reader(io.StringIO(read_text(gt))))
    except csv.Error as e:
        raise DataError(gt, f"not a readable CSV file ({e})") from None
    if not rows or [c.strip() for c in rows[0]] != ["query", "positives"]:
        raise DataError(gt, "the header must be exactly `query,positives`", 1)
    queries, positives, first_line = [], [], {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise DataError(gt, f"expected 2 columns (query,positives), got {len(row)}", n)
        q = root / "queries" / row[0].strip()
        if not q.is_file():
            raise DataError(gt, f"query image {row[0].strip()!r} not found ({q})", n)
        if q in first_line:  # it would be counted twice in every recall
            raise DataError(
                gt, f"query {row[0].strip()!r} is listed twice (first on line {first_line[q]})", n
            )
        first_line[q] = n
        pos = set()
        for name in row[1].split():
            if name not in db_index:
                raise DataError(gt, f"positive {name!r} is not an image in {root / 'database'}", n)
            pos.add(db_index[name])
        queries.append(q)
        positives.append(pos)
    if not queries:
        raise DataError(gt, "no queries listed")
    return PlacesDataset("places", root, database, queries, positives)


def _frame(path: Path) -> int:
    m = re.search(r"(\d+)$", path.stem)
    if not m:
        raise DataError(path, "Nordland file names must end with a frame number (images-NNNNN.png)")
    return int(m.group(1))


def load_nordland(root: Path, split: str = "last3rd", tolerance: int = NORDLAND_TOLERANCE) -> PlacesDataset:
    """summer/ = database, winter/ = queries; same file name = same place. Places are ordered by
    frame number; `split` keeps all, the first two thirds (training) or the last third (held out);
    positives of a query are the database places within +-tolerance positions of its own."""
    if split not in NORDLAND_SPLITS:
        raise DataError(root, f"unknown Nordland split {split!r}; expected one of {NORDLAND_SPLITS}")
    if tolerance < 0:
        raise DataError(root, f"tolerance must be >= 0, got {tolerance}")
    summer = {p.name: p for p in _images(root / "summer")}
    winter = {p.name: p for p in _images(root / "winter")}
    names = sorted(set(summer) & set(winter), key=lambda n: _frame(summer[n]))
    if not names:
        raise DataError(root, "summer/ and winter/ share no file names")
    n = len(names)
    if split == "first2of3":
        names = names[: 2 * n // 3]
    elif split == "last3rd":
        names = names[2 * n // 3 :]
    positives = [
        set(range(max(0, i - tolerance), min(len(names), i + tolerance + 1))) for i in range(len(names))
    ]
    info = {
        "split": split,
        "tolerance": tolerance,
        "places_total": n,
        "database": "summer",
        "queries": "winter",
    }
    return PlacesDataset(
        "nordland", root, [summer[k] for k in names], [winter[k] for k in names], positives, info
    )

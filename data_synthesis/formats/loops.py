"""Loop-closure sequences: ``map/``, ``queries/``, optional ``distractors/``, ``ground_truth.csv``
and optional ``K.txt`` (docs/evaluate.md, "Loop-closure sequence folder").

The frames are processed in this order: every ``map/`` frame, then every ``queries/`` frame, then
every ``distractors/`` frame, each folder in natural name order (``2.png`` before ``10.png``).
``ground_truth.csv`` has the header ``query,positives`` and one row per query: ``positives`` is a
space-separated list of ``map/`` file names showing the query's place (empty: the query shows no
mapped place, so any loop it reports is false). Distractors show places that are not in the map.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.runtime.io import IMAGE_EXTENSIONS

PHASES = ("map", "queries", "distractors")


@dataclass(frozen=True)
class LoopFrame:
    """One frame: its phase ("map", "queries" or "distractors"), file, name (relative to its
    phase folder) and, for queries, the indices (into ``LoopSequence.frames``) of the map frames
    showing its place."""

    phase: str
    path: Path
    name: str
    positives: frozenset[int] = frozenset()


@dataclass(frozen=True)
class LoopSequence:
    root: Path
    frames: tuple[LoopFrame, ...]
    K: np.ndarray | None

    @property
    def name(self) -> str:
        return self.root.name

    def count(self, phase: str) -> int:
        return sum(f.phase == phase for f in self.frames)


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _images(folder: Path, required: bool) -> list[Path]:
    if not folder.is_dir():
        if required:
            raise DataError(folder, "folder not found (a loop sequence needs map/ and queries/)")
        return []
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if required and not files:
        raise DataError(folder, "empty: no image files")
    return sorted(files, key=lambda p: _natural(p.relative_to(folder).as_posix()))


def read_K(path: Path) -> np.ndarray:
    """3 x 3 intrinsics from a text file (9 numbers, or 4: fx fy cx cy)."""
    try:
        v = np.array(path.read_text().replace(",", " ").split(), np.float64)
    except ValueError:
        raise DataError(path, "K.txt must hold 9 numbers (3 x 3) or 4 (fx fy cx cy)") from None
    if v.size == 4:
        v = np.array([v[0], 0, v[2], 0, v[1], v[3], 0, 0, 1])
    if v.size != 9 or not np.isfinite(v).all() or v[0] <= 0 or v[4] <= 0:
        raise DataError(path, "K.txt must be a finite 3 x 3 intrinsics matrix with positive focal lengths")
    return v.reshape(3, 3)


def load_loop_sequence(root: str | Path) -> LoopSequence:
    """Read a loop-closure sequence folder; DataError naming the file (and line) when malformed."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "no such folder")
    parts = {phase: _images(root / phase, phase != "distractors") for phase in PHASES}
    map_index = {p.relative_to(root / "map").as_posix(): i for i, p in enumerate(parts["map"])}
    positives = _ground_truth(root / "ground_truth.csv", root / "queries", parts["queries"], map_index)
    frames = [LoopFrame("map", p, p.relative_to(root / "map").as_posix()) for p in parts["map"]]
    for p in parts["queries"]:
        name = p.relative_to(root / "queries").as_posix()
        frames.append(LoopFrame("queries", p, name, frozenset(positives[name])))
    frames += [
        LoopFrame("distractors", p, p.relative_to(root / "distractors").as_posix())
        for p in parts["distractors"]
    ]
    K = read_K(root / "K.txt") if (root / "K.txt").is_file() else None
    return LoopSequence(root, tuple(frames), K)


def _ground_truth(
    path: Path, qdir: Path, queries: list[Path], map_index: dict[str, int]
) -> dict[str, set[int]]:
    if not path.is_file():
        raise DataError(path, "ground_truth.csv not found")
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or [c.strip() for c in rows[0]] != ["query", "positives"]:
        raise DataError(path, "the header must be `query,positives`", 1)
    known = {p.relative_to(qdir).as_posix() for p in queries}
    out: dict[str, set[int]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise DataError(path, f"expected 2 fields (query,positives), got {len(row)}", line)
        q = row[0].strip()
        if q not in known:
            raise DataError(path, f"query {q!r} is not in queries/", line)
        if q in out:
            raise DataError(path, f"query {q!r} is listed twice", line)
        missing = [m for m in row[1].split() if m not in map_index]
        if missing:
            raise DataError(path, f"positive {missing[0]!r} is not in map/", line)
        out[q] = {map_index[m] for m in row[1].split()}
    absent = sorted(known - set(out))
    if absent:
        raise DataError(path, f"{len(absent)} queries have no row, e.g. {absent[0]!r}")
    return out

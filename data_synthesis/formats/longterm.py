"""Months-long sequences of a rendered home, frames in the order a robot lives them.

The layout is the renderer's (data_synthesis.render.layout, docs/synthesis.md): ``DIR/home_XXXXX/
cameras.json`` with K, ``rooms`` ([x0, y0, x1, y1] rectangles, metres) and ``frames`` (name,
pose_c2w, lighting, day, sequence, ...), images in ``rgb/<name>.png``. ``read_longterm(DIR)``
accepts a rendered folder (every ``home_*`` with a cameras.json) or one home folder; frames are
sorted by day, keeping the file's order within a day (the patrol order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.errors import DataError, read_text
from homeloc.data_synthesis.render.layout import Frame, read_home
from homeloc.data_synthesis.shards import DatasetError


@dataclass(frozen=True)
class LongTermHome:
    """One home's sequence: frames in day order, K, room rectangles (R x 4) and the rest of
    cameras.json (``info``: e.g. the schedule of large changes when the renderer writes one)."""

    root: Path
    frames: tuple[Frame, ...]
    K: np.ndarray
    rooms: np.ndarray
    info: dict = field(default_factory=dict)
    extras: tuple[dict, ...] = ()  # per frame, the cameras.json fields Frame does not hold

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def days(self) -> list[int]:
        return sorted({f.day for f in self.frames})


def _read_home(hdir: Path) -> LongTermHome:
    cams_path = hdir / "cameras.json"
    try:
        cams = json.loads(read_text(cams_path))
        frames = read_home(hdir)
        rooms = np.asarray(cams.get("rooms", []), np.float64).reshape(-1, 4)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(cams_path, f"not a rendered home's cameras.json ({e})") from None
    except DatasetError as e:
        raise DataError(cams_path, str(e)) from None
    if not frames:
        raise DataError(cams_path, "holds no frames")
    base = {"name", "pose_c2w", "lighting", "day", "sequence"}
    extras = [{k: v for k, v in f.items() if k not in base} for f in cams["frames"]]
    order = sorted(range(len(frames)), key=lambda i: frames[i].day)  # stable: patrol order within a day
    for i in order:
        if not (hdir / "rgb" / f"{frames[i].name}.png").is_file():
            raise DataError(hdir / "rgb" / f"{frames[i].name}.png", "image missing (home not finished?)")
    info = {k: v for k, v in cams.items() if k not in ("frames", "K", "rooms")}
    return LongTermHome(hdir, tuple(frames[i] for i in order), frames[0].K, rooms, info,
                        tuple(extras[i] for i in order))  # fmt: skip


def read_longterm(path: str | Path) -> list[LongTermHome]:
    """The homes of a rendered folder (or the one home folder given), sorted by name."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(root, "folder not found (expected a rendered folder or one home_XXXXX folder)")
    if (root / "cameras.json").is_file():
        return [_read_home(root)]
    homes = sorted(p.parent for p in root.glob("home_*/cameras.json"))
    if not homes:
        raise DataError(root, "no home_*/cameras.json: not a rendered folder (homeloc-synthesize render)")
    return [_read_home(h) for h in homes]

"""Reading a rendered folder (the layout `homeloc-synthesize render` writes; see docs/synthesis.md).

DIR/manifest.json; DIR/<home>/cameras.json = {"K": 3x3, "width": W, "height": H, "frames": [{"name",
"pose_c2w": 4x4 (OpenCV camera axes, metres), "lighting", "day", "sequence"}], ...};
DIR/<home>/rgb/<name>.png (8-bit sRGB), depth/<name>.png (uint16 mm, 0 = no surface),
changed/<name>.png (uint8, 255 = differs from day 0).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.shards import DatasetError
from homeloc.runtime.hashing import file_sha256

MANIFEST = "manifest.json"


def home_dir_name(index: int) -> str:
    return f"home_{index:05d}"


def home_digest(hdir: Path) -> str:
    """sha256 over (relative path, file sha256) of every file of a home, sorted."""
    h = hashlib.sha256()
    for p in sorted(q for q in Path(hdir).rglob("*") if q.is_file() and not q.name.startswith(".")):
        h.update(f"{p.relative_to(hdir).as_posix()} {file_sha256(p)}\n".encode())
    return h.hexdigest()


@dataclass
class Frame:
    """One rendered frame of a home: its entry in cameras.json plus the home's K and folder."""

    home: str
    name: str
    K: np.ndarray
    pose: np.ndarray
    lighting: str
    day: int
    sequence: str
    root: Path

    def rgb(self) -> np.ndarray:
        return _read(self.root / "rgb" / f"{self.name}.png", cv2.IMREAD_COLOR)[..., ::-1].copy()

    def depth(self) -> np.ndarray:
        """HxW float32 metres (0 = no surface)."""
        return (
            _read(self.root / "depth" / f"{self.name}.png", cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
        )

    def changed(self) -> np.ndarray:
        return _read(self.root / "changed" / f"{self.name}.png", cv2.IMREAD_UNCHANGED) > 127


def _read(path: Path, flags) -> np.ndarray:
    img = cv2.imread(str(path), flags)
    if img is None:
        raise DatasetError(f"{path}: missing or unreadable")
    return img


def read_home(hdir: str | Path) -> list[Frame]:
    hdir = Path(hdir)
    p = hdir / "cameras.json"
    if not p.exists():
        raise DatasetError(f"{p}: missing (home not finished)")
    cams = json.loads(p.read_text())
    K = np.array(cams["K"], float)
    return [
        Frame(
            hdir.name,
            f["name"],
            K,
            np.array(f["pose_c2w"], float),
            f["lighting"],
            int(f["day"]),
            f["sequence"],
            hdir,
        )
        for f in cams["frames"]
    ]


def read_render(root: str | Path) -> dict[str, list[Frame]]:
    """home name -> frames, for every home listed in the manifest (sorted)."""
    root = Path(root)
    mp = root / MANIFEST
    if not mp.exists():
        raise DatasetError(f"{root}: no {MANIFEST} (not a rendered folder)")
    manifest = json.loads(mp.read_text())
    if manifest.get("kind") != "render":
        raise DatasetError(f"{mp}: holds a {manifest.get('kind')!r} dataset, expected 'render'")
    return {name: read_home(root / name) for name in sorted(manifest["homes"])}


def verify_render(root: str | Path) -> dict:
    """Check every home listed in the manifest against its sha256; raises DatasetError naming the first bad
    home (missing, modified or truncated files). Returns the manifest."""
    root = Path(root)
    mp = root / MANIFEST
    if not mp.exists():
        raise DatasetError(f"{root}: no {MANIFEST} (not a rendered folder)")
    manifest = json.loads(mp.read_text())
    for name, entry in sorted(manifest.get("homes", {}).items()):
        if not (root / name / "cameras.json").exists() or home_digest(root / name) != entry["sha256"]:
            raise DatasetError(
                f"{root / name}: files do not match the manifest (rerun the render to redo it)"
            )
    return manifest

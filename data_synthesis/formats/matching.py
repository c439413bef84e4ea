"""Matching datasets: a SPEC (path, or kind:path) -> image pairs with ground truth.

Kinds: `pairs` (a pairs.txt file), `hpatches` (i_*/v_* folders), `wxbs` (category/scene/corrs.txt),
`webcam` (scene folders of YYYYMMDD_HHMMSS images). See docs/evaluate.md for the formats.
"""

from __future__ import annotations

import hashlib
import logging
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.formats.errors import DataError, read_text
from homeloc.runtime.hashing import file_sha256_cached
from homeloc.runtime.io import IMAGE_EXTENSIONS, read_image

log = logging.getLogger(__name__)

MATCHING_KINDS = ("pairs", "hpatches", "wxbs", "webcam")
PLACES_KINDS = ("places", "nordland")
WXBS_LIGHTING = ("WGALBS", "WGLBS", "WLABS")
TIMESTAMP = re.compile(r"^(\d{8})_(\d{2})(\d{2})(\d{2})")


# ------------------------------------------------------------------------------------ data types
@dataclass(frozen=True, eq=False)
class ImageRef:
    """An image file, optionally warped by a homography `warp` (3x3, dst size = source size)."""

    path: Path
    warp: np.ndarray | None = None

    def load(self) -> np.ndarray:
        """uint8 HxWx3 RGB (warped with bilinear interpolation, black outside)."""
        img = read_image(self.path)
        if self.warp is None:
            return img
        h, w = img.shape[:2]
        return cv2.warpPerspective(img, self.warp, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))

    def key(self) -> str:
        """Content hash of the file plus the warp: the cache identity of this image."""
        h = hashlib.sha1(file_sha256_cached(self.path).encode())
        if self.warp is not None:
            h.update(np.round(np.asarray(self.warp, np.float64), 10).tobytes())
        return h.hexdigest()[:20]


@dataclass(frozen=True, eq=False)
class MatchPair:
    """Two images and their ground truth: H maps image0 pixels to image1 pixels (OpenCV x right,
    y down); corrs are hand-labelled (K, 4) rows x0 y0 x1 y1 (WxBS). One of them is set."""

    name: str
    image0: ImageRef
    image1: ImageRef
    bucket: str
    H: np.ndarray | None = None
    corrs: np.ndarray | None = None


@dataclass
class MatchingDataset:
    kind: str
    root: Path
    pairs: list[MatchPair]
    skipped: list[str] = field(default_factory=list)

    def images(self) -> list[ImageRef]:
        """Unique images of all pairs (by path and warp), in first-use order."""
        seen: dict[tuple, ImageRef] = {}
        for p in self.pairs:
            for ref in (p.image0, p.image1):
                k = (ref.path, None if ref.warp is None else ref.warp.tobytes())
                seen.setdefault(k, ref)
        return list(seen.values())


@dataclass(frozen=True)
class WebcamOptions:
    """homography: warp image1 by a seeded random homography (GT = that H, else identity);
    buckets: 'brightness' (default) or 'hour' (capture time from the file name)."""

    homography: bool = False
    seed: int = 0
    buckets: str = "brightness"


# ------------------------------------------------------------------------------------ spec / kind
def split_spec(spec: str, kinds: tuple[str, ...]) -> tuple[str | None, Path]:
    """'kind:path' -> (kind, path) when kind is known, else (None, path)."""
    head, sep, tail = str(spec).partition(":")
    if sep and head in kinds:
        return head, Path(tail)
    return None, Path(spec)


def find_image(folder: Path, stem: str) -> Path | None:
    """The file `stem.<any image extension>` in folder (first by extension order), or None."""
    for ext in IMAGE_EXTENSIONS:
        for cand in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def detect_kind(path: Path) -> str:
    """Guess the dataset kind from its layout (DataError naming the path when unknown)."""
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.is_file():
        return "pairs"
    subdirs = [d for d in path.iterdir() if d.is_dir()]
    names = {d.name for d in subdirs}
    if (path / "pairs.txt").is_file():
        return "pairs"
    if {"summer", "winter"} <= names:
        return "nordland"
    if {"database", "queries"} <= names and (path / "ground_truth.csv").is_file():
        return "places"
    if any(n.startswith(("i_", "v_")) for n in names):
        return "hpatches"
    if any((s / "corrs.txt").is_file() for d in subdirs for s in d.iterdir() if s.is_dir()):
        return "wxbs"
    for d in subdirs:
        if any(TIMESTAMP.match(f.stem) and f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir()):
            return "webcam"
    raise DataError(
        path,
        "unknown dataset layout (expected a pairs.txt file, HPatches i_*/v_* folders, WxBS "
        "category/scene/corrs.txt, webcam scene folders, Nordland summer/+winter/, or a places "
        "folder with database/ queries/ ground_truth.csv); or prefix the path with KIND:",
    )


def load_matching_dataset(
    spec: str, webcam: WebcamOptions | None = None, wxbs_categories: list[str] | None = None
) -> MatchingDataset:
    """Load any matching SPEC: a path (kind auto-detected) or KIND:PATH."""
    kind, path = split_spec(spec, MATCHING_KINDS + PLACES_KINDS)
    kind = kind or detect_kind(path)
    if kind in PLACES_KINDS:
        raise DataError(path, f"this is a {kind} dataset; evaluate it with `homeloc-evaluate places`")
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if kind == "pairs":
        return load_pairs_file(path / "pairs.txt" if path.is_dir() else path)
    if kind == "hpatches":
        return load_hpatches(path)
    if kind == "wxbs":
        return load_wxbs(path, wxbs_categories)
    return load_webcam(path, webcam or WebcamOptions())


# ---------------------------------------------------------------------------------------- parsing
def check_homography(H: np.ndarray, path: Path, line: int | None) -> np.ndarray:
    """A finite, invertible 3x3 homography or a DataError naming the file and line."""
    if H.shape != (3, 3) or not np.all(np.isfinite(H)):
        raise DataError(path, "homography must be 9 finite numbers", line)
    scale = np.abs(H).max()
    if scale == 0 or abs(np.linalg.det(H / scale)) < 1e-12 or np.linalg.cond(H / scale) > 1e12:
        raise DataError(path, "homography is not invertible (singular matrix)", line)
    return H


def load_pairs_file(path: Path) -> MatchingDataset:
    """`image0 image1 h11 ... h33 [bucket]` per line; `#` comments and blank lines skipped;
    image paths relative to the file's folder."""
    if not path.is_file():
        raise DataError(path, "pairs file not found")
    pairs: list[MatchPair] = []
    for n, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tok = line.split()
        if len(tok) not in (11, 12):
            raise DataError(
                path, f"expected 'image0 image1 h11 ... h33 [bucket]' (11 or 12 fields), got {len(tok)}", n
            )
        try:
            H = np.array([float(t) for t in tok[2:11]], np.float64).reshape(3, 3)
        except ValueError as e:
            raise DataError(path, f"homography value is not a number ({e})", n) from None
        check_homography(H, path, n)
        refs = []
        for name in tok[:2]:
            p = path.parent / name
            if not p.is_file():
                raise DataError(path, f"image {name!r} not found ({p})", n)
            refs.append(ImageRef(p))
        bucket = tok[11] if len(tok) == 12 else "all"
        pairs.append(MatchPair(f"{tok[0]}|{tok[1]}", refs[0], refs[1], bucket, H=H))
    if not pairs:
        raise DataError(path, "no pairs (only comments or blank lines)")
    return MatchingDataset("pairs", path, pairs)


def read_matrix(path: Path, cols: int | None = None) -> np.ndarray:
    """Whitespace/comma-separated numbers, one row a line (DataError with the line on bad rows)."""
    if not path.is_file():
        raise DataError(path, "file not found")
    rows = []
    for n, raw in enumerate(read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            row = [float(t) for t in line.replace(",", " ").split()]
        except ValueError as e:
            raise DataError(path, f"not a number ({e})", n) from None
        if cols is not None and len(row) != cols:
            raise DataError(path, f"expected {cols} numbers, got {len(row)}", n)
        rows.append(row)
    if not rows:
        raise DataError(path, "file is empty")
    if len({len(r) for r in rows}) != 1:
        raise DataError(path, "rows have different lengths")
    return np.array(rows, np.float64)


# ---------------------------------------------------------------------------------------- HPatches
def load_hpatches(root: Path) -> MatchingDataset:
    """Sequences i_* (bucket 'illumination') and v_* (bucket 'viewpoint'): pairs (1, k) for every
    H_1_k whose image k exists."""
    pairs: list[MatchPair] = []
    skipped: list[str] = []
    for seq in sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith(("i_", "v_"))):
        bucket = "illumination" if seq.name.startswith("i_") else "viewpoint"
        im1 = find_image(seq, "1")
        if im1 is None:
            skipped.append(f"{seq.name}: no image 1")
            continue
        for hfile in sorted(seq.glob("H_1_*")):
            k = hfile.name.split("_")[-1]
            imk = find_image(seq, k)
            if imk is None:
                skipped.append(f"{seq.name}: H_1_{k} without image {k}")
                continue
            H = check_homography(read_matrix(hfile, 3), hfile, None)
            pairs.append(MatchPair(f"{seq.name}/1-{k}", ImageRef(im1), ImageRef(imk), bucket, H=H))
    if not pairs:
        raise DataError(root, "no HPatches pairs found (i_*/v_* folders with 1.* k.* and H_1_k)")
    for s in skipped:
        log.warning("hpatches: skipped %s", s)
    return MatchingDataset("hpatches", root, pairs, skipped)


# ------------------------------------------------------------------------------------------- WxBS
def load_wxbs(root: Path, categories: list[str] | None = None) -> MatchingDataset:
    """category/scene/{01,02}.*, corrs.txt (x0 y0 x1 y1); bucket = category. Scenes missing an
    image are skipped with a warning (v1.1 lacks WLABS/ministry/01)."""
    pairs: list[MatchPair] = []
    skipped: list[str] = []
    cats = sorted(d for d in root.iterdir() if d.is_dir())
    if categories:
        unknown = set(categories) - {c.name for c in cats}
        if unknown:
            raise DataError(root, f"no WxBS categories {sorted(unknown)}; present: {[c.name for c in cats]}")
        cats = [c for c in cats if c.name in categories]
    for cat in cats:
        for scene in sorted(d for d in cat.iterdir() if d.is_dir() and (d / "corrs.txt").is_file()):
            im0, im1 = find_image(scene, "01"), find_image(scene, "02")
            if im0 is None or im1 is None:
                skipped.append(f"{cat.name}/{scene.name}: missing {'01' if im0 is None else '02'}.*")
                continue
            corrs = read_matrix(scene / "corrs.txt", 4)
            pairs.append(
                MatchPair(f"{cat.name}/{scene.name}", ImageRef(im0), ImageRef(im1), cat.name, corrs=corrs)
            )
    if not pairs:
        raise DataError(root, "no WxBS pairs found (category/scene/ with 01.*, 02.*, corrs.txt)")
    for s in skipped:
        log.warning("wxbs: skipped %s", s)
    return MatchingDataset("wxbs", root, pairs, skipped)


# ----------------------------------------------------------------------------------------- webcam
# Relative brightness r = mean luma / median of the scene's mean lumas.
NIGHT_BELOW = 0.60
DUSK_BELOW = 0.85
# Capture-hour buckets (bucket mode 'hour'): night [21:00, 05:00), dusk [05:00, 08:00) and
# [17:00, 21:00), day [08:00, 17:00).


def capture_hour(path: Path) -> float | None:
    """Hour of day (fractional) from a YYYYMMDD_HHMMSS file name, or None."""
    m = TIMESTAMP.match(path.stem)
    if not m:
        return None
    hh, mm, ss = int(m.group(2)), int(m.group(3)), int(m.group(4))
    return hh + mm / 60 + ss / 3600 if hh < 24 and mm < 60 else None


def bucket_from_hour(hour: float) -> str:
    if hour < 5 or hour >= 21:
        return "night"
    if hour < 8 or hour >= 17:
        return "dusk"
    return "day"


def bucket_from_brightness(ratio: float) -> str:
    if ratio < NIGHT_BELOW:
        return "night"
    if ratio < DUSK_BELOW:
        return "dusk"
    return "day"


def mean_luma(path: Path) -> tuple[float, tuple[int, int]]:
    """Mean gray level (on a 64 px wide thumbnail) and the image's (height, width)."""
    g = read_image(path, gray=True)
    small = cv2.resize(g, (64, max(1, round(64 * g.shape[0] / g.shape[1]))), interpolation=cv2.INTER_AREA)
    return float(small.mean()), g.shape[:2]


def webcam_buckets(images: list[Path], mode: str) -> dict[Path, str]:
    """day/dusk/night per image of one scene (see the thresholds above). All images of a scene
    must have the same size (a fixed camera), else DataError naming the odd file."""
    if mode not in ("brightness", "hour"):
        raise ValueError(f"webcam bucket mode must be 'brightness' or 'hour', got {mode!r}")
    lumas = {}
    shape0 = None
    for p in images:
        lumas[p], shape = mean_luma(p)
        shape0 = shape0 or shape
        if shape != shape0:
            raise DataError(p, f"size {shape[1]}x{shape[0]} differs from the scene's {shape0[1]}x{shape0[0]}")
    ref = float(np.median(list(lumas.values()))) or 1.0
    out = {}
    for p in images:
        hour = capture_hour(p)
        out[p] = (
            bucket_from_hour(hour)
            if mode == "hour" and hour is not None
            else bucket_from_brightness(lumas[p] / ref)
        )
    return out


def choose_reference(images: list[Path], buckets: dict[Path, str]) -> Path:
    """The 'day' image captured closest to 12:00 (file-name order breaks ties; images without a
    timestamp count as 12h away); the first image when no image is 'day'."""
    day = [p for p in images if buckets[p] == "day"] or images

    def distance(p: Path) -> float:
        h = capture_hour(p)
        return abs(h - 12.0) if h is not None else 12.0

    return min(day, key=lambda p: (distance(p), p.name))


def random_homography(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A moderate random homography: rotation +-10 deg and scale 0.85-1.15 about the centre, then
    each corner moved by up to 8% of the image size (translation included)."""
    c = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float64)
    centre = c.mean(axis=0)
    a = np.deg2rad(rng.uniform(-10, 10))
    s = rng.uniform(0.85, 1.15)
    R = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (c - centre) @ R.T + centre
    moved += rng.uniform(-0.08, 0.08, size=(4, 2)) * np.array([width, height])
    return cv2.getPerspectiveTransform(c.astype(np.float32), moved.astype(np.float32)).astype(np.float64)


def load_webcam(root: Path, options: WebcamOptions) -> MatchingDataset:
    """Per scene folder: pairs (reference day image, every other image), bucket = lighting of the
    other image; GT identity, or a seeded random homography applied to the other image."""
    pairs: list[MatchPair] = []
    scenes = sorted(d for d in root.iterdir() if d.is_dir())
    for scene in scenes:
        images = sorted(p for p in scene.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if len(images) < 2:
            continue
        buckets = webcam_buckets(images, options.buckets)
        ref = choose_reference(images, buckets)
        for other in images:
            if other == ref:
                continue
            name = f"{scene.name}/{ref.stem}-{other.stem}"
            if options.homography:
                img_shape = read_image(other, gray=True).shape
                rng = np.random.default_rng([options.seed, zlib.crc32(name.encode())])
                H = random_homography(img_shape[1], img_shape[0], rng)
                pairs.append(MatchPair(name, ImageRef(ref), ImageRef(other, warp=H), buckets[other], H=H))
            else:
                pairs.append(MatchPair(name, ImageRef(ref), ImageRef(other), buckets[other], H=np.eye(3)))
    if not pairs:
        raise DataError(root, "no webcam scenes found (sub-folders with at least 2 images)")
    return MatchingDataset("webcam", root, pairs)

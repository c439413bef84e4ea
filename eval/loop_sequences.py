"""Dev sequences for `homeloc-evaluate loops`, built from ../shared/data and scikit-image photos.

    python -m homeloc.eval.loop_sequences --shared ../shared/data --out data/loops [--names ...] [--overwrite]

Each sequence is a folder in the loop-sequence format (docs/evaluate.md): ``map/`` (frames that
build the map, in name order), ``queries/`` (frames that revisit, in order), ``distractors/``
(frames of places that are not in the map: any loop there is false), ``ground_truth.csv``
(``query,positives``: the map frames that show the query's place) and, when every frame comes
from one calibrated camera, ``K.txt``. Revisits are relit copies (the synthesis presets dusk,
night_lamp, night_ir: ``homeloc.data_synthesis.photometric``), seeded, so a rebuild gives the same
frames. Nothing from ../shared/data is copied into the repository: the default output is
``data/loops`` (git-ignored).

| name | map | queries | distractors | positives |
|---|---|---|---|---|
| `skimage_pan` | 12 crops panning over 3 scikit-image photos (astronaut, brick wall, cameraman: the demo) | the same crops relit | crops of the other photos, relit | crops of the same photo |
| `desk_night` | TUM fr2_desk, even frames, day | the odd frames (another viewpoint) relit | TUM fr3 office, ScanNet rooms | map frames within 0.5 m and 30 degrees (mocap poses) |
| `home_night` | fr2_desk + ICL-NUIM living room, day | relit and slightly re-viewed (random homography) copies | ScanNet, fr3 office, webcams, Nordland | ICL: within 8 frames (the pan's views overlap); TUM: within 0.5 m / 30 degrees |
| `dark_frames` | fr2_desk even frames + black, gray, white and dark-noise frames | odd frames at night, a run of black / uniform / dark-noise / near-black frames, blurred revisits | dark relit ScanNet / fr3 frames, black and noise frames | TUM frames for TUM queries; none for the flat / dark ones |
| `aliasing` | as `home_night` | every other `home_night` query | ScanNet / fr3 rooms holding a pasted object (patch) of a map frame, at night | as `home_night` |
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.io import atomic_write, list_images, read_image, write_image

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FR2_K = (520.9, 521.0, 325.1, 249.7)  # TUM fr2 intrinsics (fx, fy, cx, cy)
NIGHT = ("night_lamp", "night_ir", "dusk")


@dataclass
class Sequence:
    """Frames of a sequence being built: (name, RGB uint8) per part, positives per query name."""

    map: list[tuple[str, np.ndarray]] = field(default_factory=list)
    queries: list[tuple[str, np.ndarray]] = field(default_factory=list)
    distractors: list[tuple[str, np.ndarray]] = field(default_factory=list)
    positives: dict[str, list[str]] = field(default_factory=dict)
    K: tuple[float, float, float, float] | None = None


# ---------------------------------------------------------------------------------- frame helpers
def natural(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def frames_of(folder: Path, step: int = 1, start: int = 0, limit: int | None = None) -> list[Path]:
    return sorted(list_images(folder, recursive=False), key=natural)[start::step][:limit]


def fit(image: np.ndarray, longer: int = 640) -> np.ndarray:
    h, w = image.shape[:2]
    s = longer / max(h, w)
    if s >= 1 and min(h, w) >= 240:
        return image
    if s >= 1:  # tiny (Nordland 64x32): upscale so the frame has a usable size
        s = 320 / max(h, w)
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, (round(w * s), round(h * s)), interpolation=interp)


def relight(image: np.ndarray, preset: str, rng: np.random.Generator) -> np.ndarray:
    from homeloc.data_synthesis.photometric import apply_preset

    out, _ = apply_preset(preset, image, rng)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def review(
    image: np.ndarray, rng: np.random.Generator, rotate: float = 4.0, jitter: float = 0.04
) -> np.ndarray:
    """The image seen again from a slightly different viewpoint: a random homography (rotation,
    scale 0.92-1.08, corners moved by up to ``jitter`` of the size), edges replicated."""
    h, w = image.shape[:2]
    c = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    A = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-rotate, rotate), rng.uniform(0.92, 1.08))
    moved = cv2.transform(c[None], A)[0] + rng.uniform(-jitter, jitter, (4, 2)) * [w, h]
    H = cv2.getPerspectiveTransform(c, moved.astype(np.float32))
    return cv2.warpPerspective(image, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def tum_poses(folder: Path) -> dict[str, np.ndarray]:
    """fr2_desk image stem -> 4 x 4 camera-to-world pose (groundtruth_for_images.txt)."""
    poses = {}
    for line in (folder / "groundtruth_for_images.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        v = line.split()
        t, q = np.array(v[2:5], float), np.array(v[5:9], float)
        x, y, z, w = q / np.linalg.norm(q)
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])  # fmt: skip
        T = np.eye(4)
        T[:3, :3], T[:3, 3] = R, t
        poses[Path(v[0]).stem] = T
    return poses


def same_view(a: np.ndarray, b: np.ndarray, max_m: float = 0.5, max_deg: float = 30.0) -> bool:
    """Two camera poses see the same place: within ``max_m`` metres and ``max_deg`` degrees."""
    d = np.linalg.norm(a[:3, 3] - b[:3, 3])
    cos = (np.trace(a[:3, :3].T @ b[:3, :3]) - 1) / 2
    return bool(d <= max_m and np.degrees(np.arccos(np.clip(cos, -1, 1))) <= max_deg)


def black_frames(rng: np.random.Generator, size=(480, 640)) -> dict[str, np.ndarray]:
    """Flat and dark frames a robot sees at night (lens cap, lights off, saturated)."""
    h, w = size
    noise = np.clip(rng.normal(6, 2, (h, w)), 0, 255).astype(np.uint8)
    return {
        "black": np.zeros((h, w, 3), np.uint8),
        "gray": np.full((h, w, 3), 128, np.uint8),
        "white": np.full((h, w, 3), 255, np.uint8),
        "dark_noise": np.repeat(noise[..., None], 3, axis=2),
    }


# -------------------------------------------------------------------------------------- sequences
def skimage_pan(shared: Path | None, seed: int = 0) -> Sequence:
    """The demo's sequence: crops panning over scikit-image photos (no ../shared needed)."""
    from homeloc.data_synthesis.sources import skimage_photos

    rng = np.random.default_rng(seed)
    seq = Sequence()
    photos = skimage_photos()
    by_photo: dict[str, list[str]] = {}
    for p, (photo, img) in enumerate(photos[:3]):
        for i, crop in enumerate(pan_crops(img)):
            name = f"{p * 4 + i:03d}_{photo}.png"
            seq.map.append((name, crop))
            by_photo.setdefault(photo, []).append(name)
    for k, (name, img) in enumerate(seq.map):
        preset = ("dusk", "night_lamp")[k % 2]
        q = f"{k:03d}_{name[4:-4]}_{preset}.png"
        seq.queries.append((q, relight(img, preset, rng)))
        seq.positives[q] = by_photo[name[4:-4]]
    for p, (photo, img) in enumerate(photos[3:8]):
        crop = pan_crops(img)[1]
        seq.distractors.append((f"{p:03d}_{photo}_night.png", relight(crop, "night_lamp", rng)))
    return seq


def pan_crops(img: np.ndarray, n: int = 4, frac: float = 0.7) -> list[np.ndarray]:
    """``n`` crops of ``frac`` of the image sliding from its top-left to its bottom-right corner
    (the short pan of ``make demo``)."""
    h, w = img.shape[:2]
    ch, cw = int(h * frac), int(w * frac)
    out = []
    for t in np.linspace(0, 1, n):
        y, x = int(t * (h - ch)), int(t * (w - cw))
        out.append(np.ascontiguousarray(img[y : y + ch, x : x + cw]))
    return out


def _tum_desk(
    shared: Path, seq: Sequence, rng: np.random.Generator, prefix: str = ""
) -> dict[str, np.ndarray]:
    """fr2_desk: even frames into the map (day), odd frames relit as queries with pose positives."""
    folder = shared / "tum_rgbd_snippets" / "alike_tum"
    poses = tum_poses(folder)
    files = frames_of(folder)
    map_names = {}
    for p in files[0::2]:
        name = f"{prefix}{len(seq.map):03d}_tum_{p.stem}.jpg"
        seq.map.append((name, read_image(p)))
        map_names[name] = poses[p.stem]
    for k, p in enumerate(files[1::2]):
        name = f"{prefix}{len(seq.queries):03d}_tum_{p.stem}_{NIGHT[k % 3]}.jpg"
        seq.queries.append((name, relight(read_image(p), NIGHT[k % 3], rng)))
        seq.positives[name] = [m for m, T in map_names.items() if same_view(T, poses[p.stem])]
    return map_names


def _distractor_frames(shared: Path, which: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    out = []
    if "fr3" in which:
        out += [
            (f"fr3_{p.stem}", read_image(p))
            for p in frames_of(shared / "tum_rgbd_snippets" / "superglue_freiburg_sequence", 2)
        ]
    if "scannet" in which:
        out += [
            (f"scannet_{p.stem}", read_image(p))
            for p in frames_of(shared / "scannet_sample_pairs" / "images", 2)
        ]
    if "webcam" in which:
        for scene in sorted(d for d in (shared / "webcam").iterdir() if d.is_dir()):
            out += [(f"webcam_{scene.name}_{p.stem}", read_image(p)) for p in frames_of(scene, 15, 3)[:2]]
    if "nordland" in which:
        folder = shared / "nordland_64x32_summer_winter" / "winter"
        out += [(f"nordland_{p.stem}", read_image(p)) for p in frames_of(folder, 350, 100)]
    return [(n, fit(img)) for n, img in out]


def desk_night(shared: Path, seed: int = 0) -> Sequence:
    rng = np.random.default_rng(seed)
    seq = Sequence(K=FR2_K)
    _tum_desk(shared, seq, rng)
    for k, (name, img) in enumerate(_distractor_frames(shared, ("fr3", "scannet"))):
        seq.distractors.append((f"{k:03d}_{name}.jpg", img))
    return seq


def home_night(shared: Path, seed: int = 0) -> Sequence:
    rng = np.random.default_rng(seed)
    seq = Sequence()
    tum = shared / "tum_rgbd_snippets" / "alike_tum"
    poses = tum_poses(tum)
    # (slambook's desk frames are fr2_desk too, so they would be revisits of the TUM part)
    parts = [("tum", frames_of(tum)), ("icl", frames_of(shared / "icl_nuim_snippet"))]
    for part, files in parts:
        names = []
        for p in files:
            names.append(f"{len(seq.map):03d}_{part}_{p.stem}.jpg")
            seq.map.append((names[-1], fit(read_image(p))))
        for i, p in enumerate(files):
            preset = NIGHT[len(seq.queries) % 3]
            q = f"{len(seq.queries):03d}_{part}_{p.stem}_{preset}.jpg"
            seq.queries.append((q, review(relight(fit(read_image(p)), preset, rng), rng)))
            seq.positives[q] = [names[j] for j in range(len(files)) if _same_place(part, files, i, j, poses)]
    for k, (name, img) in enumerate(_distractor_frames(shared, ("scannet", "fr3", "webcam", "nordland"))):
        seq.distractors.append((f"{k:03d}_{name}.jpg", img))
    return seq


def _same_place(part: str, files: list[Path], i: int, j: int, poses: dict[str, np.ndarray]) -> bool:
    if part == "tum":
        return same_view(poses[files[i].stem], poses[files[j].stem])
    # ICL: a slow pan from the TV to the window, frames 4 apart; within 8 neighbours (32 frames)
    # the views share most of the scene (checked by eye on a contact sheet)
    return abs(i - j) <= 8


def dark_frames(shared: Path, seed: int = 0) -> Sequence:
    """Night revisits of the desk with the lights going off in the middle (a run of black, flat,
    noisy and near-black frames) and blurred revisits at the end; flat frames in the map too."""
    rng = np.random.default_rng(seed)
    seq = Sequence(K=FR2_K)
    _tum_desk(shared, seq, rng)
    for kind, img in black_frames(rng).items():
        seq.map.append((f"{len(seq.map):03d}_{kind}.png", img))
    night, seq.queries = list(seq.queries), []
    icl = read_image(frames_of(shared / "icl_nuim_snippet")[5])
    lights_off = {**black_frames(rng), "near_black": (icl * 0.04).astype(np.uint8)}
    positives, seq.positives = seq.positives, {}

    def add(name: str, img: np.ndarray, pos: list[str]) -> None:
        seq.queries.append((f"{len(seq.queries):03d}_{name}", img))
        seq.positives[seq.queries[-1][0]] = pos

    for name, img in night[:5]:
        add(name[4:], img, positives[name])
    for kind, img in lights_off.items():  # a loop on any of these is false
        add(f"{kind}.png", img, [])
    for name, img in night[5:]:
        add(name[4:], img, positives[name])
    for name, img in night[::2]:  # blurred revisits: a loop there is right, but not expected
        add(f"blurred_{name[4:]}", cv2.GaussianBlur(img, (0, 0), 6), positives[name])
    for k, (name, img) in enumerate(_distractor_frames(shared, ("fr3", "scannet"))[::2]):
        seq.distractors.append((f"{k:03d}_{name}_dark.jpg", relight(img, "night_lamp", rng)))
    for kind, img in black_frames(np.random.default_rng(seed + 1)).items():
        seq.distractors.append((f"{len(seq.distractors):03d}_{kind}.png", img))
    return seq


def aliasing(shared: Path, seed: int = 0) -> Sequence:
    """Perceptual aliasing: other rooms that contain an object of the map (a patch of a map frame,
    4-16% of the image, pasted into ScanNet / fr3 frames: the same picture or sofa in two rooms),
    at night, after night revisits of the map. A loop on those frames is false."""
    rng = np.random.default_rng(seed)
    seq = home_night(shared, seed)
    seq.queries = seq.queries[::2]
    seq.positives = {q: seq.positives[q] for q, _ in seq.queries}
    hosts = _distractor_frames(shared, ("scannet", "fr3"))
    seq.distractors = []
    for k, (name, host) in enumerate(hosts):
        src = seq.map[int(rng.integers(len(seq.map)))][1]
        img = paste_patch(fit(host), src, rng)
        seq.distractors.append((f"{k:03d}_{name}_with_map_object.jpg", relight(img, NIGHT[k % 3], rng)))
    return seq


def paste_patch(host: np.ndarray, source: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``host`` with a rectangle of ``source`` (20-40% of each side) pasted at a random place."""
    h, w = host.shape[:2]
    sh, sw = source.shape[:2]
    fy, fx = rng.uniform(0.2, 0.4, 2)
    ph, pw = int(min(h, sh) * fy), int(min(w, sw) * fx)
    y0, x0 = int(rng.integers(0, sh - ph)), int(rng.integers(0, sw - pw))
    y1, x1 = int(rng.integers(0, h - ph)), int(rng.integers(0, w - pw))
    out = host.copy()
    out[y1 : y1 + ph, x1 : x1 + pw] = source[y0 : y0 + ph, x0 : x0 + pw]
    return out


BUILDERS: dict[str, Callable[[Path, int], Sequence]] = {
    "skimage_pan": skimage_pan,
    "desk_night": desk_night,
    "home_night": home_night,
    "dark_frames": dark_frames,
    "aliasing": aliasing,
}
NEEDS_SHARED = {"desk_night", "home_night", "dark_frames", "aliasing"}


# ------------------------------------------------------------------------------------------ write
def write_sequence(seq: Sequence, out: Path) -> Path:
    """Write a sequence in the loop-sequence format (a staging folder renamed into place)."""
    stage = out.with_name(out.name + ".partial")
    shutil.rmtree(stage, ignore_errors=True)
    for part in ("map", "queries", "distractors"):
        for name, img in getattr(seq, part):
            write_image(stage / part / name, img)
    rows = ["query,positives"] + [f"{q},{' '.join(seq.positives.get(q, []))}" for q, _ in seq.queries]
    atomic_write(stage / "ground_truth.csv", "\n".join(rows) + "\n")
    if seq.K is not None:
        fx, fy, cx, cy = seq.K
        atomic_write(stage / "K.txt", f"{fx} 0 {cx}\n0 {fy} {cy}\n0 0 1\n")
    shutil.rmtree(out, ignore_errors=True)
    stage.rename(out)
    return out


def build(name: str, out_root: str | Path = "data/loops", shared: str | Path = SHARED,
          seed: int = 0, overwrite: bool = False) -> Path:  # fmt: skip
    """Build sequence ``name`` into ``out_root/name`` (skipped when it exists, unless overwrite)."""
    if name not in BUILDERS:
        raise KeyError(f"unknown sequence {name!r}; known: {sorted(BUILDERS)}")
    out = Path(out_root) / name
    if (out / "ground_truth.csv").is_file() and not overwrite:
        log.info("%s exists; skipped (overwrite=True rebuilds it)", out)
        return out
    shared = Path(shared)
    if name in NEEDS_SHARED and not shared.is_dir():
        raise FileNotFoundError(
            f"{shared}: the {name} sequence is built from ../shared/data, which is absent"
        )
    return write_sequence(BUILDERS[name](shared, seed), out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m homeloc.eval.loop_sequences", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--shared", default=str(SHARED), help="the research data folder (default ../shared/data)")
    p.add_argument("--out", default="data/loops", help="output root (default data/loops, git-ignored)")
    p.add_argument(
        "--names", nargs="+", default=list(BUILDERS), choices=list(BUILDERS), help="sequences to build"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="rebuild sequences that exist")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for name in a.names:
        try:
            print(build(name, a.out, a.shared, a.seed, a.overwrite))
        except FileNotFoundError as e:
            print(f"skipped {name}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

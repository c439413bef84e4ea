"""Products made from a rendered folder (`homeloc-synthesize render-export --product ...`):

- pairs3d: keypoint-training pairs, sharded like `pairs` (kind "pairs3d"): per pair img0/img1.png,
  depth0/depth1.png (uint16 mm), masks.png (bit flags 1 valid1, 2 change1, 4 valid0: the pair
  format's), json (K0, K1, pose0, pose1, T_0to1, lighting/day/names). Dense correspondences
  come from depth + poses with the occlusion test (runtime.geometry.depth_correspondences);
  datasets.Pairs3DShardDataset recomputes them on load.
- pose: images/ + pairs.txt, one line `image0 image1 K0(9) K1(9) R(9) t(3)`, x1 = R x0 + t
  (data_synthesis.formats.pose, `homeloc-evaluate pose`).
- loops: one loop-closure sequence folder per home (data_synthesis.formats.loops): map/ = the
  day-0 noon sequence, queries/ = every other sequence (other days and lightings), distractors/ =
  frames of the next home, ground_truth.csv (positives: map frames co-visible with the query), K.txt.
- places: database/ (map frames of every home), queries/ (the rest), ground_truth.csv: positives
  by co-visibility; other homes built from the same furniture and textures are the hard negatives.

Co-visibility of two frames = share of frame A's pixels with a depth-consistent correspondence in B.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.formats.pose import pose_line
from homeloc.data_synthesis.pairs import pack_masks
from homeloc.data_synthesis.render.layout import Frame, read_render
from homeloc.runtime.geometry import depth_correspondences, reproject_depth
from homeloc.runtime.io import atomic_write, encode_image

DONE = "export.json"


def covisibility(a: Frame, b: Frame, step: int = 4) -> float:
    """Share of a's pixels (every `step`-th, for speed) seen, unoccluded, by b."""
    da, db = a.depth()[::step, ::step], b.depth()
    K = a.K.copy()
    K[:2] /= step
    K[:2, 2] = a.K[:2, 2] / step
    _, valid = depth_correspondences(da, db, K, a.pose, b.K, b.pose)
    return float(valid.mean())


def relative_pose(a: Frame, b: Frame) -> np.ndarray:
    """4x4 T with x_b = T x_a (camera coordinates, metres)."""
    return np.linalg.inv(b.pose) @ a.pose


def _begin(out: Path, options: dict, overwrite: bool) -> bool:
    """True if the export with these options is already complete (skip); clears a stale one."""
    done = out / DONE
    if done.exists():
        if json.loads(done.read_text()) == options:
            return True
        if not overwrite:
            raise shards.DatasetError(f"{done}: made with other options; pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return False


@dataclass
class Pairs3DMaker:
    """Picklable sample factory: pair i is drawn from rng([seed, i]) among co-visible frame pairs."""

    data: str
    seed: int
    min_overlap: float

    def __call__(self, indices):
        homes = read_render(self.data)
        names = sorted(homes)
        for i in indices:
            rng = np.random.default_rng([self.seed, i])
            for _ in range(50):
                frames = homes[names[int(rng.integers(len(names)))]]
                a, b = (frames[int(j)] for j in rng.choice(len(frames), 2, replace=False))
                if covisibility(a, b) >= self.min_overlap:
                    break
            yield {"__key__": f"{i:09d}", **encode_pair3d(a, b)}


def encode_pair3d(a: Frame, b: Frame) -> dict[str, bytes]:
    d0, d1 = a.depth(), b.depth()
    _, valid0 = depth_correspondences(d0, d1, a.K, a.pose, b.K, b.pose)
    _, valid1 = depth_correspondences(d1, d0, b.K, b.pose, a.K, a.pose)
    xy10, _ = reproject_depth(d1, b.K, b.pose, a.K, a.pose)
    h, w = d0.shape
    with np.errstate(invalid="ignore"):
        inside1 = (
            (xy10[..., 0] > -0.5)
            & (xy10[..., 0] < w - 0.5)
            & (xy10[..., 1] > -0.5)
            & (xy10[..., 1] < h - 0.5)
        )
    # changed objects (another day) are in view but not matchable: flagged, like the pair format's change1
    change1 = inside1 & b.changed() & (a.day != b.day)
    valid1 = valid1 | change1
    meta = {
        "K0": a.K.tolist(),
        "K1": b.K.tolist(),
        "pose0": a.pose.tolist(),
        "pose1": b.pose.tolist(),
        "T_0to1": relative_pose(a, b).tolist(),
        "home": a.home,
        "names": [a.name, b.name],
        "lighting": [a.lighting, b.lighting],
        "day": [a.day, b.day],
    }
    mm = [np.round(d * 1000).astype(np.uint16) for d in (d0, d1)]
    return {
        "img0.png": encode_image(a.rgb(), ".png"),
        "img1.png": encode_image(b.rgb(), ".png"),
        "depth0.png": encode_image(mm[0], ".png"),
        "depth1.png": encode_image(mm[1], ".png"),
        "masks.png": encode_image(pack_masks(valid1, change1, valid0), ".png"),
        "json": json.dumps(meta, sort_keys=True).encode(),
    }


def export_pairs3d(
    data,
    out,
    num: int = 1000,
    seed: int = 0,
    min_overlap: float = 0.3,
    overwrite: bool = False,
    shard_size: int = 200,
) -> Path:
    """Sharded, resumable 3-D pair dataset (kind "pairs3d"); returns its manifest."""
    read_render(data)  # fail early on a bad folder
    resolved = {"data": str(Path(data).resolve()), "seed": seed, "min_overlap": min_overlap}
    maker = Pairs3DMaker(str(data), seed, min_overlap)
    return shards.build(Path(out), "pairs3d", resolved, num, shard_size, maker, 1, overwrite)


def _copy(frame: Frame, dst: Path) -> str:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(frame.root / "rgb" / f"{frame.name}.png", dst)
    return dst.name


def export_pose_pairs(
    data, out, num: int = 1000, seed: int = 0, min_overlap: float = 0.3, overwrite: bool = False
) -> Path:
    """images/ + pairs.txt (32 fields a line); pairs of co-visible frames under different lightings."""
    out = Path(out)
    options = {
        "product": "pose",
        "data": str(Path(data).resolve()),
        "num": num,
        "seed": seed,
        "min_overlap": min_overlap,
    }
    if _begin(out, options, overwrite):
        return out / "pairs.txt"
    homes = read_render(data)
    names, lines, rng = sorted(homes), [], np.random.default_rng(seed)
    for _ in range(num * 20):
        if len(lines) >= num:
            break
        frames = homes[names[int(rng.integers(len(names)))]]
        a, b = (frames[int(j)] for j in rng.choice(len(frames), 2, replace=False))
        T = relative_pose(a, b)
        if np.linalg.norm(T[:3, 3]) < 0.05 or covisibility(a, b) < min_overlap:
            continue
        n0 = _copy(a, out / "images" / f"{a.home}_{a.name}.png")
        n1 = _copy(b, out / "images" / f"{b.home}_{b.name}.png")
        lines.append(pose_line(n0, n1, a.K, b.K, T[:3, :3], T[:3, 3]))
    atomic_write(
        out / "pairs.txt",
        "# image0 image1 K0(9) K1(9) R(9) t(3), x1 = R x0 + t (metres)\n" + "\n".join(lines) + "\n",
    )
    atomic_write(out / DONE, json.dumps(options))
    return out / "pairs.txt"


def _gt_csv(rows: list[tuple[str, list[str]]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["query", "positives"])
    for q, pos in rows:
        w.writerow([q, " ".join(pos)])
    return buf.getvalue()


def export_loops(
    data, out, num: int = 0, seed: int = 0, min_overlap: float = 0.3, overwrite: bool = False
) -> Path:
    """One sequence folder per home under out; returns out."""
    out = Path(out)
    options = {"product": "loops", "data": str(Path(data).resolve()), "min_overlap": min_overlap}
    if _begin(out, options, overwrite):
        return out
    homes = read_render(data)
    names = sorted(homes)
    for h, name in enumerate(names):
        frames, seq = homes[name], out / name
        map_seq = frames[0].sequence
        maps = [f for f in frames if f.sequence == map_seq]
        for k, f in enumerate(maps):
            _copy(f, seq / "map" / f"{k:04d}_{f.name}.png")
        rows = []
        for k, f in enumerate([f for f in frames if f.sequence != map_seq]):
            q = _copy(f, seq / "queries" / f"{k:04d}_{f.name}.png")
            rows.append(
                (
                    q,
                    [
                        f"{j:04d}_{m.name}.png"
                        for j, m in enumerate(maps)
                        if covisibility(f, m) >= min_overlap
                    ],
                )
            )
        if len(names) > 1:
            for k, f in enumerate(homes[names[(h + 1) % len(names)]][: len(maps)]):
                _copy(f, seq / "distractors" / f"{k:04d}_{f.home}_{f.name}.png")
        atomic_write(
            seq / "K.txt", "\n".join(" ".join(f"{v:.9g}" for v in row) for row in frames[0].K) + "\n"
        )
        atomic_write(seq / "ground_truth.csv", _gt_csv(rows))
    atomic_write(out / DONE, json.dumps(options))
    return out


def export_places(
    data, out, num: int = 0, seed: int = 0, min_overlap: float = 0.3, overwrite: bool = False
) -> Path:
    """database/ + queries/ + ground_truth.csv (the generic places folder); returns the csv."""
    out = Path(out)
    options = {"product": "places", "data": str(Path(data).resolve()), "min_overlap": min_overlap}
    if _begin(out, options, overwrite):
        return out / "ground_truth.csv"
    homes = read_render(data)
    rows = []
    for name in sorted(homes):
        frames = homes[name]
        maps = [f for f in frames if f.sequence == frames[0].sequence]
        for f in maps:
            _copy(f, out / "database" / f"{name}_{f.name}.png")
        for f in frames:
            if f.sequence == frames[0].sequence:
                continue
            q = _copy(f, out / "queries" / f"{name}_{f.name}.png")
            rows.append((q, [f"{name}_{m.name}.png" for m in maps if covisibility(f, m) >= min_overlap]))
    atomic_write(out / "ground_truth.csv", _gt_csv(rows))
    atomic_write(out / DONE, json.dumps(options))
    return out / "ground_truth.csv"

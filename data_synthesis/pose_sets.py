"""Relative-pose dev sets from the posed real sequences in ../shared/data, in the pair-list format
`homeloc-evaluate pose` reads (homeloc.data_synthesis.formats.pose):

- ``slambook``: slambook ch5 joinMap, 5 frames of a real living/dining room, all 10 pairs;
- ``tum_fr2_desk``: TUM RGB-D fr2_desk (20 frames at 10 Hz, mocap ground truth), pairs 5, 10 and 15
  frames apart (0.5-1.5 s of hand-held motion);
- ``scannet``: the 15 SuperGlue ScanNet sample pairs are read as they are (their own list).

    python -m homeloc.data_synthesis.pose_sets --shared ../shared/data --out data/pose

writes ``OUT/<set>/pairs.txt`` with image paths relative to it (the images stay in ../shared).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.pose import quaternion_pose, write_pose_pairs

SLAMBOOK_K = np.array([[518.0, 0, 325.5], [0, 519.0, 253.5], [0, 0, 1]])  # slambook's own code
TUM_FR2_K = np.array([[520.9, 0, 325.1], [0, 521.0, 249.7], [0, 0, 1]])  # TUM's published fr2 values
TUM_GAPS = (5, 10, 15)


def _rel(paths: list[Path], folder: Path) -> list[str]:
    return [os.path.relpath(p.resolve(), folder.resolve()) for p in paths]


def build_slambook(shared: Path, out: Path) -> Path:
    """All pairs of the 5 posed slambook frames (pose.txt: tx ty tz qx qy qz qw, camera to world)."""
    root = shared / "slambook_rgbd_5frames_pose"
    rows = [line.split() for line in (root / "pose.txt").read_text().splitlines() if line.strip()]
    poses = [quaternion_pose(*map(float, r)) for r in rows]
    images = [root / "color" / f"{i}.png" for i in range(1, len(poses) + 1)]
    pairs = [(i, j) for i in range(len(poses)) for j in range(i + 1, len(poses))]
    out.mkdir(parents=True, exist_ok=True)
    return write_pose_pairs(out / "pairs.txt", _rel(images, out), poses, SLAMBOOK_K, pairs)


def build_tum_fr2_desk(shared: Path, out: Path, gaps: tuple[int, ...] = TUM_GAPS) -> Path:
    """fr2_desk frames `gap` apart; the ground-truth rows name .png files whose stems match the
    shared .jpg re-encodes."""
    root = shared / "tum_rgbd_snippets" / "alike_tum"
    by_stem = {p.stem: p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".png")}
    images, poses = [], []
    for line in (root / "groundtruth_for_images.txt").read_text().splitlines():
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        images.append(by_stem[Path(f[0]).stem])
        poses.append(quaternion_pose(*map(float, f[2:9])))
    pairs = [(i, i + g) for g in gaps for i in range(len(images) - g)]
    out.mkdir(parents=True, exist_ok=True)
    return write_pose_pairs(out / "pairs.txt", _rel(images, out), poses, TUM_FR2_K, pairs)


BUILDERS = {"slambook": build_slambook, "tum_fr2_desk": build_tum_fr2_desk}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m homeloc.data_synthesis.pose_sets", description=__doc__.split("\n\n")[0]
    )
    p.add_argument(
        "--shared", type=Path, default=Path("../shared/data"), help="the shared research data folder"
    )
    p.add_argument(
        "--out", type=Path, default=Path("data/pose"), help="output folder (one subfolder per set)"
    )
    p.add_argument("--sets", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    args = p.parse_args(argv)
    for name in args.sets:
        path = BUILDERS[name](args.shared, args.out / name)
        print(
            f"{name}: {path} ({sum(1 for line in path.read_text().splitlines() if not line.startswith('#'))} pairs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

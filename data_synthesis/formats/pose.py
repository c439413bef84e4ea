"""Relative-pose pair lists (ScanNet / SuperGlue style): two images, their intrinsics and the
ground-truth motion between them.

One pair a line, whitespace-separated; blank lines and ``#`` comments are skipped. Two layouts:

- 32 fields (homeloc's): ``image0 image1 K0(9) K1(9) R(9) t(3)``, row-major, ``x1 = R x0 + t``;
- 38 fields (SuperGlue's ``scannet_sample_pairs_with_gt.txt``): ``image0 image1 rot0 rot1 K0(9)
  K1(9) T_0to1(16)``; the EXIF rotations must be 0 (rotated images are refused, not guessed).

Image names are relative to the list's folder, or to its ``images/`` subfolder. The translation's
scale is irrelevant (only its direction is evaluated); a zero translation is refused since its
direction is undefined.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.data_synthesis.formats.matching import ImageRef

LIST_NAMES = ("pairs.txt", "pose_pairs.txt")


@dataclass(frozen=True, eq=False)
class PosePair:
    """image0/image1 with K0, K1 (3x3 float64) and the motion x1 = R x0 + t (R 3x3, t (3,))."""

    name: str
    image0: ImageRef
    image1: ImageRef
    K0: np.ndarray
    K1: np.ndarray
    R: np.ndarray
    t: np.ndarray


@dataclass
class PoseDataset:
    root: Path
    pairs: list[PosePair]

    def images(self) -> list[ImageRef]:
        """Every distinct image once (by path), in first-use order."""
        seen: dict[Path, ImageRef] = {}
        for p in self.pairs:
            for ref in (p.image0, p.image1):
                seen.setdefault(ref.path, ref)
        return list(seen.values())


def _matrix(values: list[float], path: Path, line: int, what: str) -> np.ndarray:
    m = np.asarray(values, np.float64).reshape(3, 3)
    if not np.isfinite(m).all():
        raise DataError(path, f"{what} has non-finite values", line)
    return m


def _intrinsics(values: list[float], path: Path, line: int, what: str) -> np.ndarray:
    K = _matrix(values, path, line, what)
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
        raise DataError(path, f"{what} is not an intrinsics matrix (fx, fy > 0, last row 0 0 1)", line)
    return K


def _rotation(R: np.ndarray, path: Path, line: int) -> np.ndarray:
    if not np.allclose(R @ R.T, np.eye(3), atol=1e-3) or np.linalg.det(R) <= 0:
        raise DataError(path, "R is not a rotation matrix", line)
    return R


def _image(root: Path, name: str, path: Path, line: int) -> ImageRef:
    for folder in (root, root / "images"):
        if (folder / name).is_file():
            return ImageRef(folder / name)
    raise DataError(path, f"image {name!r} not found in {root} or {root / 'images'}", line)


def parse_pose_line(fields: list[str], root: Path, path: Path, line: int) -> PosePair:
    """One line of a pair list -> PosePair (DataError naming file:line on any problem)."""
    if len(fields) not in (32, 38):
        raise DataError(
            path, f"expected 32 fields (image0 image1 K0 K1 R t) or 38 (SuperGlue), got {len(fields)}", line
        )
    try:
        nums = [float(v) for v in fields[2:]]
    except ValueError:
        raise DataError(path, "not a number among the matrices", line) from None
    if len(fields) == 38:
        if nums[0] != 0 or nums[1] != 0:
            raise DataError(path, "EXIF-rotated images are not supported (rot0/rot1 must be 0)", line)
        K0, K1 = nums[2:11], nums[11:20]
        T = np.asarray(nums[20:36], np.float64).reshape(4, 4)
        R, t = T[:3, :3], T[:3, 3]
    else:
        K0, K1 = nums[0:9], nums[9:18]
        R, t = np.asarray(nums[18:27], np.float64).reshape(3, 3), np.asarray(nums[27:30], np.float64)
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        raise DataError(path, "R or t has non-finite values", line)
    if np.linalg.norm(t) < 1e-9:
        raise DataError(path, "t is zero: the translation direction is undefined", line)
    return PosePair(
        name=f"{fields[0]} {fields[1]}",
        image0=_image(root, fields[0], path, line),
        image1=_image(root, fields[1], path, line),
        K0=_intrinsics(K0, path, line, "K0"),
        K1=_intrinsics(K1, path, line, "K1"),
        R=_rotation(R, path, line),
        t=t,
    )


def _list_file(path: Path) -> Path:
    """The pair list itself, or the one list inside a folder (pairs.txt, pose_pairs.txt, or the only .txt)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(path, "no such file or folder")
    for name in LIST_NAMES:
        if (path / name).is_file():
            return path / name
    txts = sorted(path.glob("*.txt"))
    if len(txts) != 1:
        raise DataError(
            path, f"expected one pair list ({' or '.join(LIST_NAMES)} or a single .txt), found {len(txts)}"
        )
    return txts[0]


def load_pose_pairs(spec: str | Path) -> PoseDataset:
    """Read a pose pair list (a file, or a folder holding one; ``pose:`` prefix allowed)."""
    text = str(spec)
    path = _list_file(Path(text[5:] if text.startswith("pose:") else text))
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError:
        raise DataError(path, "not a text file") from None
    pairs = []
    for i, raw in enumerate(lines, start=1):
        fields = raw.split("#", 1)[0].split()
        if fields:
            pairs.append(parse_pose_line(fields, path.parent, path, i))
    if not pairs:
        raise DataError(path, "no pairs")
    return PoseDataset(path.parent, pairs)


def pose_line(image0: str, image1: str, K0: np.ndarray, K1: np.ndarray, R: np.ndarray, t: np.ndarray) -> str:
    """One 32-field line of homeloc's layout (the inverse of parse_pose_line), 9 significant digits."""
    nums = [*np.ravel(K0), *np.ravel(K1), *np.ravel(R), *np.ravel(t)]
    return " ".join([image0, image1, *(f"{float(v):.9g}" for v in nums)])


def relative_motion(T0_c2w: np.ndarray, T1_c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R, t) with x1 = R x0 + t from two camera-to-world 4x4 poses (OpenCV camera axes)."""
    T = np.linalg.inv(np.asarray(T1_c2w, np.float64)) @ np.asarray(T0_c2w, np.float64)
    return T[:3, :3], T[:3, 3]


def write_pose_pairs(
    path: str | Path,
    names: list[str],
    poses_c2w: list[np.ndarray],
    K: np.ndarray | list[np.ndarray],
    pairs: list[tuple[int, int]],
) -> Path:
    """Write a 32-field pair list (atomic) for the given index pairs of a posed image sequence.

    names: image paths relative to the list's folder; poses_c2w: 4x4 camera-to-world per image;
    K: one 3x3 intrinsics for all images, or one per image.
    """
    from homeloc.runtime.io import atomic_write

    Ks = K if isinstance(K, list) else [K] * len(names)
    lines = ["# image0 image1 K0(9) K1(9) R(9) t(3); x1 = R x0 + t (homeloc pose pair list)"]
    for i, j in pairs:
        R, t = relative_motion(poses_c2w[i], poses_c2w[j])
        lines.append(pose_line(names[i], names[j], Ks[i], Ks[j], R, t))
    return atomic_write(Path(path), "\n".join(lines) + "\n")


def quaternion_pose(
    tx: float, ty: float, tz: float, qx: float, qy: float, qz: float, qw: float
) -> np.ndarray:
    """4x4 pose from a translation and a unit quaternion (x, y, z, w), the TUM/slambook convention."""
    q = np.array([qx, qy, qz, qw], np.float64)
    x, y, z, w = q / np.linalg.norm(q)
    R = np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, (tx, ty, tz)
    return T

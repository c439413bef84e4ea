"""`homeloc-evaluate pose` end to end on a synthetic 3-D scene with known motion."""

import json

import cv2
import numpy as np
import pytest

from homeloc.data_synthesis.formats.pose import write_pose_pairs
from homeloc.eval.cli import main
from homeloc.runtime.io import write_image

K = np.array([[400.0, 0, 160], [0, 400.0, 120], [0, 0, 1]])


def _texture(rng, n=1024):
    """Multi-scale random texture (blobs and corners at every scale), float32 in [0, 1]."""
    t = np.zeros((n, n), np.float32)
    for cells in (8, 16, 32, 64, 128):
        t += cv2.resize(rng.random((cells, cells)).astype(np.float32), (n, n), interpolation=cv2.INTER_CUBIC)
    return (t - t.min()) / (t.max() - t.min())


# Three textured planes of a room corner, in world coordinates (n . X = d): back wall z = 4,
# left wall x = -1.2, floor y = 1. Texture coordinates: the two in-plane world axes, 1 cm per
# texel, offset so that the visible part never wraps (no seams).
PLANES = [
    (np.array([0, 0, 1.0]), 4.0, (0, 1)),
    (np.array([1.0, 0, 0]), -1.2, (2, 1)),
    (np.array([0, 1.0, 0]), 1.0, (0, 2)),
]


def _scene_views(rng, poses, size=(240, 320)):
    """Ray-cast the room corner from each camera-to-world pose: exact perspective, parallax and
    occlusion, so the only pose error left is the estimator's. Returns uint8 gray images."""
    textures = [_texture(rng) for _ in PLANES]
    v, u = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    rays_c = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(K).T
    views = []
    for T in poses:
        rays = rays_c @ T[:3, :3].T
        origin = T[:3, 3]
        best, img = np.full(size, np.inf), np.zeros(size, np.float32)
        for (n, d, axes), tex in zip(PLANES, textures, strict=True):
            denom = rays @ n
            with np.errstate(divide="ignore", invalid="ignore"):
                s = (d - origin @ n) / denom
                hit = origin + s[..., None] * rays
            tx = np.nan_to_num((hit[..., axes[0]] + 5.12) / 0.01, nan=-1.0, posinf=-1.0, neginf=-1.0)
            ty = np.nan_to_num((hit[..., axes[1]] + 5.12) / 0.01, nan=-1.0, posinf=-1.0, neginf=-1.0)
            val = cv2.remap(tex, tx.astype(np.float32), ty.astype(np.float32), cv2.INTER_LINEAR)
            near = (s > 0) & (s < best) & np.isfinite(s)
            best[near], img[near] = s[near], val[near]
        views.append((img * 255).astype(np.uint8))
    return views


@pytest.fixture
def pose_set(tmp_path):
    rng = np.random.default_rng(0)
    poses = [np.eye(4)]
    for deg, tx in ((6, 0.6), (-5, -0.5)):
        a = np.deg2rad(deg)
        T = np.eye(4)
        T[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
        T[:3, 3] = [tx, 0.05, 0.1]
        poses.append(T)
    names = []
    for i, img in enumerate(_scene_views(rng, poses)):
        write_image(tmp_path / "data" / f"{i}.png", img)
        names.append(f"{i}.png")
    write_pose_pairs(tmp_path / "data" / "pairs.txt", names, poses, K, [(0, 1), (0, 2), (1, 2)])
    return tmp_path / "data"


def test_pose_cli_recovers_the_motion(pose_set, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["pose", "--data", str(pose_set), "--methods", "sift", "orb", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sift"]["pairs"] == 3 and summary["sift"]["pose_found"] == 1.0
    assert (
        summary["sift"]["median_error_deg"] < 3.0 and summary["sift"]["AUC@20"] > 0.7
    )  # measured 1.4 deg, 0.86
    assert set(summary) == {"sift", "orb"}
    assert (out / "pose_auc.png").stat().st_size > 0
    assert len((out / "pairs.csv").read_text().splitlines()) == 1 + 2 * 3
    assert "| sift |" in (out / "table.md").read_text() and "| sift |" in capsys.readouterr().out


def test_pose_cli_bad_list_is_one_line(tmp_path, capsys):
    (tmp_path / "pairs.txt").write_text("a.png b.png 1 2\n")
    assert (
        main(
            ["pose", "--data", str(tmp_path / "pairs.txt"), "--methods", "sift", "--out", str(tmp_path / "o")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "pairs.txt:1: expected 32 fields" in err and "Traceback" not in err

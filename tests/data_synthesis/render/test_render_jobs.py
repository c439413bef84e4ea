"""Layout/JSON schema, byte determinism and resume of `render_homes` at 24x32."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from homeloc.data_synthesis.render.jobs import plan_sequences, render_homes
from homeloc.data_synthesis.render.layout import home_digest, read_render, verify_render
from homeloc.data_synthesis.shards import DatasetError
from tests.conftest import ROOT
from tests.data_synthesis.render.conftest import tiny_config


def test_layout_and_cameras_schema(tiny_render):
    manifest = json.loads((tiny_render / "manifest.json").read_text())
    assert manifest["kind"] == "render" and manifest["complete"] and list(manifest["homes"]) == ["home_00000"]
    cams = json.loads((tiny_render / "home_00000" / "cameras.json").read_text())
    assert np.array(cams["K"]).shape == (3, 3) and (cams["width"], cams["height"]) == (32, 24)
    assert len(cams["frames"]) == 4
    for f in cams["frames"]:
        assert set(f) >= {"name", "pose_c2w", "lighting", "day", "sequence"}
        pose = np.array(f["pose_c2w"])
        assert pose.shape == (4, 4) and np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-5)
        assert 0.25 < pose[2, 3] < 1.25  # robot height
        rgb = cv2.imread(str(tiny_render / "home_00000" / "rgb" / f"{f['name']}.png"), cv2.IMREAD_UNCHANGED)
        depth = cv2.imread(
            str(tiny_render / "home_00000" / "depth" / f"{f['name']}.png"), cv2.IMREAD_UNCHANGED
        )
        changed = cv2.imread(
            str(tiny_render / "home_00000" / "changed" / f"{f['name']}.png"), cv2.IMREAD_UNCHANGED
        )
        assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
        assert depth.shape == (24, 32) and depth.dtype == np.uint16 and (depth > 0).mean() > 0.95
        assert changed.shape == (24, 32) and changed.dtype == np.uint8 and set(np.unique(changed)) <= {0, 255}
    assert cams["frames"][0]["day"] == 0 and cams["frames"][0]["lighting"] == "sun_noon"
    frames = read_render(tiny_render)["home_00000"]
    assert frames[0].depth().dtype == np.float32 and frames[0].rgb().shape == (24, 32, 3)


def test_same_seed_same_bytes_and_resume(tiny_render, tmp_path):
    out = tmp_path / "again"
    render_homes(out, 1, 4, seed=3, cfg=tiny_config())
    ref = home_digest(tiny_render / "home_00000")
    assert home_digest(out / "home_00000") == ref
    # an interrupted run: a frame, cameras.json and the manifest entry lost -> the rerun restores the same bytes
    hdir = out / "home_00000"
    victim = sorted((hdir / "rgb").iterdir())[-1]
    victim.unlink()
    (hdir / "cameras.json").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["homes"].clear()
    (out / "manifest.json").write_text(json.dumps(manifest))
    render_homes(out, 1, 4, seed=3, cfg=tiny_config())
    assert home_digest(hdir) == ref
    verify_render(out)
    (hdir / "depth" / f"{victim.stem}.png").write_bytes(b"truncated")
    with pytest.raises(DatasetError, match="do not match"):
        verify_render(out)


def test_other_config_refused(tiny_render):
    with pytest.raises(DatasetError, match="another configuration"):
        render_homes(tiny_render, 1, 4, seed=4, cfg=tiny_config())


def test_sequences_revisit_days_and_lightings():
    seqs = plan_sequences(tiny_config(frames_per_sequence=3), 0, 0, 30)
    assert (seqs[0].day, seqs[0].lighting) == (0, "sun_noon")
    assert sum(s.frames for s in seqs) == 30 and len({s.lighting for s in seqs}) > 3
    with pytest.raises(ValueError, match="unknown lighting"):
        render_homes("/nonexistent/never", 1, 1, cfg=tiny_config(lightings={"disco": 1.0}))
    with pytest.raises(ValueError, match="out of range"):
        render_homes("/nonexistent/never", 2, 1, cfg=tiny_config(), only_homes=[2])


@pytest.mark.slow
def test_kill_9_then_rerun_gives_identical_bytes(tiny_render, tmp_path):
    """A real `kill -9` of the CLI mid-run, then a rerun: same bytes as an uninterrupted run."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "synth:\n  size: [24, 32]\n  spp: 2\n  denoise: none\n  rooms: [1, 2]\n  frames_per_sequence: 2\n"
        "  assets: ''\n  photos: []\n  camera:\n    motion_blur: 0.0\n"
    )
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "homeloc.data_synthesis.cli",
        "render",
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--homes",
        "1",
        "--frames-per-home",
        "4",
        "--seed",
        "3",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not any((out / "home_00000" / "rgb").glob("*.png")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "home_00000" / "cameras.json").exists(), "too late: the run finished before the kill"
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    assert home_digest(out / "home_00000") == home_digest(tiny_render / "home_00000")

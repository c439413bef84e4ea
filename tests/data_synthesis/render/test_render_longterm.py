"""Months-long sequences: the pure schedule of large changes, the daily lightings, a home's state on
a day, a tiny patrol render (frames carry days and rounds; resume gives the same bytes), CLI errors,
the patrol's path and dock (written by the renderer, or added to an older folder by render-path)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from homeloc.data_synthesis.cli import main
from homeloc.data_synthesis.render.assets import AssetLibrary
from homeloc.data_synthesis.render.config import LongTermConfig, Patrol
from homeloc.data_synthesis.render.furnish import PATH_CLEARANCE
from homeloc.data_synthesis.render.home import make_home
from homeloc.data_synthesis.render.jobs import Sequence, render_homes, sequence_entries
from homeloc.data_synthesis.render.layout import home_digest, verify_render
from homeloc.data_synthesis.render.longterm import home_on_day, in_patrol_view, patrol_views, tree_rooms
from homeloc.data_synthesis.render.patrol_path import (
    add_patrol_path,
    add_positions,
    dock_pose,
    driven,
    path_position,
    path_turning,
)
from homeloc.data_synthesis.render.preview import days_grid
from homeloc.data_synthesis.render.schedule import (
    KINDS,
    LargeChange,
    active_changes,
    change_events,
    day_lightings,
    large_changes,
    last_change_day,
)
from homeloc.data_synthesis.shards import DatasetError
from tests.conftest import ROOT
from tests.data_synthesis.render.conftest import tiny_config

# 4 days, changes from day 1 on, one day apart: one of each kind inside a tiny render
SHORT = LongTermConfig(first_change_day=1, after_last_change=0, min_gap=1, decorations_up=(1, 2))


def _schedule(seed: int, days: int = 60, rooms: int = 3, cfg: LongTermConfig | None = None):
    return large_changes(cfg or LongTermConfig(), days, rooms, np.random.default_rng(seed))


def test_schedule_is_deterministic_in_seed_and_spaced():
    cfg = LongTermConfig()
    assert _schedule(0) == _schedule(0)
    assert any(_schedule(s) != _schedule(0) for s in range(1, 4))
    for seed in range(25):
        s = _schedule(seed)
        assert {c.kind for c in s} == set(KINDS) and len(s) == 4  # 50-day span: 2 rearranges, 1 each else
        starts = [c.start for c in s]
        assert starts == sorted(starts) and [c.id for c in s] == list(range(len(s)))
        assert cfg.first_change_day <= starts[0] and starts[-1] < 60 - cfg.after_last_change
        assert min(np.diff(starts)) >= cfg.min_gap
        decos = [c for c in s if c.kind == "decorations"]
        for d, nxt in zip(decos, decos[1:] + [None], strict=True):
            assert d.end > d.start and d.end - d.start <= cfg.decorations_up[1]
            assert nxt is None or d.end <= nxt.start  # periods never overlap
        for c in s:
            assert (c.end is None) == (c.kind != "decorations")
            if c.kind == "rearrange":  # never around a standing tree
                assert not any(d.room == c.room and d.active(c.start) for d in decos)
    assert _schedule(0, days=10) == []  # days 7..6: no room for a change with 3 days after it
    cfg = LongTermConfig()
    only2 = large_changes(cfg, 60, 3, np.random.default_rng(0), tree_rooms=[2])
    assert {c.room for c in only2 if c.kind == "decorations"} == {2}
    assert "decorations" not in {c.kind for c in large_changes(cfg, 60, 3, np.random.default_rng(0), [])}


def test_active_changes_events_and_days_since():
    s = [
        LargeChange(0, "rearrange", 1, 8),
        LargeChange(1, "decorations", 0, 10, 20),
        LargeChange(2, "repaint", 2, 14),
    ]
    assert active_changes(s, 7) == [] and last_change_day(s, 7) is None
    assert [c.id for c in active_changes(s, 15)] == [0, 1, 2]
    assert [c.id for c in active_changes(s, 20)] == [0, 2]
    assert change_events(s, 10) == ["decorations:room0"] and change_events(s, 11) == []
    assert change_events(s, 20) == ["decorations_down:room0"] and last_change_day(s, 23) == 20


def test_day_lightings_follow_the_rounds():
    cfg = LongTermConfig()
    day0 = day_lightings(cfg, 0, np.random.default_rng(0), "sun_noon")
    assert day0[0] == "sun_noon" and day0[1] in cfg.rounds[1]
    days = [day_lightings(cfg, d, np.random.default_rng(d), "sun_noon") for d in range(1, 40)]
    assert all(a in cfg.rounds[0] and b in cfg.rounds[1] for a, b in days)
    assert {b for _, b in days} >= {
        "lamps",
        "night_lamp",
        "dusk",
        "ceiling",
    }  # lamp-only nights, dim evenings
    assert day_lightings(cfg, 5, np.random.default_rng(5), "sun_noon") == days[4]


def _clear_of_path(home, it) -> bool:
    d = np.abs(home.path - np.asarray(it.centre)) - np.asarray(it.half)
    return np.min(np.linalg.norm(np.maximum(d, 0), axis=1)) >= PATH_CLEARANCE - 1e-6


def test_large_changes_persist_and_leave_the_home_alone():
    home = make_home(tiny_config(rooms=(3, 3)), AssetLibrary("", [], "train"), 0, 1)
    s = [
        LargeChange(0, "rearrange", 0, 2),
        LargeChange(1, "repaint", 1, 3),
        LargeChange(2, "decorations", 2, 4, 6),
    ]

    def rng(i):
        return np.random.default_rng([9, i])

    before, wall = [it.centre for it in home.items], home.materials["wall1"]
    day1, notes1 = home_on_day(home, s, 1, rng)
    assert notes1 == [] and [it.centre for it in day1.items] == before
    day4, notes4 = home_on_day(home, s, 4, rng)
    day5, _ = home_on_day(home, s, 5, rng)
    assert notes4[-1] == "decorations:room2: tree placed" and "rearrange:room0" in notes4[0]
    assert [(it.centre, it.yaw) for it in day4.items] == [(it.centre, it.yaw) for it in day5.items]
    moved = [it for it, c in zip(day4.items, before, strict=False) if it.centre != c]
    assert moved and all(it.room == 0 and _clear_of_path(home, it) for it in moved)
    assert day4.materials["wall1"].colour != wall.colour and day4.materials["wall1"].texture == ""
    tree = [it for it in day4.items if it.kind == "decoration"]
    assert len(tree) == 1 and tree[0].room == 2 and _clear_of_path(home, tree[0])
    assert not any(it.kind == "decoration" for it in home_on_day(home, s, 6, rng)[0].items)
    assert [it.centre for it in home.items] == before and home.materials["wall1"] == wall  # untouched
    views = patrol_views(home.path, 6)  # with the patrol's views, the tree stands where it is filmed
    rooms = tree_rooms(home, views, rng(7))
    assert rooms and set(rooms) <= {0, 1, 2}
    s = [LargeChange(0, "decorations", rooms[-1], 1, 3)]
    tree = [it for it in home_on_day(home, s, 2, rng, views)[0].items if it.kind == "decoration"]
    assert len(tree) == 1 and tree[0].room == rooms[-1] and in_patrol_view(views, *tree[0].centre)


def test_a_repaint_note_names_plain_colours():
    import dataclasses

    from homeloc.data_synthesis.render.furniture import Material

    home = make_home(tiny_config(rooms=(3, 3)), AssetLibrary("", [], "train"), 0, 1)
    # a wall already painted plain, its colour numpy scalars as a generated home's are
    walls = dict(home.materials, wall1=Material("wall1", tuple(np.float64(v) for v in (0.2, 0.4, 0.6)), ""))
    home = dataclasses.replace(home, materials=walls)
    _, notes = home_on_day(home, [LargeChange(0, "repaint", 1, 1)], 1, lambda i: np.random.default_rng(i))
    assert notes[0].startswith("repaint:room1: walls (0.2, 0.4, 0.6) -> (") and "np." not in notes[0]


def test_every_round_of_the_patrol_reaches_every_room():
    cfg = tiny_config(rooms=(4, 4))
    home = make_home(cfg, AssetLibrary("", [], "train"), 0, 2)
    for s in range(3):  # 8 frames per round over 4 rooms, each round with its own offsets
        rows = sequence_entries(home, Sequence("x", s, s, "sun_noon", 8), cfg, np.random.default_rng(s))
        xy = [np.array(r["pose_c2w"])[:2, 3] for r in rows]
        rooms = {
            i
            for p in xy
            for i, (x0, y0, x1, y1) in enumerate(home.rooms)
            if x0 <= p[0] <= x1 and y0 <= p[1] <= y1
        }
        assert rooms == {0, 1, 2, 3}


def test_rounds_wander_beside_the_route_with_lateral_m_and_cross_doorways_in_the_middle():
    cfg = tiny_config(rooms=(4, 4))
    home = make_home(cfg, AssetLibrary("", [], "train"), 0, 2)
    doors = np.array([d[:2] for d in home.doors])

    def round_xy(s, lateral):
        rows = sequence_entries(
            home, Sequence("x", s, s, "sun_noon", 32), cfg, np.random.default_rng(s), lateral
        )
        return np.array([np.array(r["pose_c2w"])[:2, 3] for r in rows]), rows

    # no wander: the poses of the renderer before lateral_m existed (the same draws)
    plain = sequence_entries(home, Sequence("x", 0, 0, "sun_noon", 32), cfg, np.random.default_rng(0))
    assert round_xy(0, 0.0)[1] == plain
    offs = []
    for s in range(6):
        xy, _ = round_xy(s, 0.25)
        off = np.array([path_position(home.path, p)[1] for p in xy])
        near_door = np.min(np.linalg.norm(xy[:, None] - doors[None], axis=2), axis=1)
        assert off.max() <= 0.25 + 1e-9
        assert np.all(off <= 0.25 * np.minimum(1.0, (near_door + 0.3) / 0.8) + 1e-3)  # tapered at doorways
        offs.append(off)
    offs = np.array(offs)
    assert np.median(offs) > 0.03 and offs.max() > 0.15  # the rounds do leave the line
    assert np.std(offs.mean(axis=1)) > 0.01  # each round its own wander
    with pytest.raises(ValueError, match="--longterm.lateral_m"):
        LongTermConfig(lateral_m=0.5)
    with pytest.raises(ValueError, match="--longterm.lateral_m"):
        LongTermConfig(lateral_m=-0.1)
    assert "lateral_m" not in LongTermConfig().to_dict()  # earlier renders keep their hash
    assert LongTermConfig(lateral_m=0.2).to_dict()["lateral_m"] == 0.2


@pytest.fixture(scope="module")
def patrol_render(tmp_path_factory):
    out = tmp_path_factory.mktemp("longterm") / "r"
    render_homes(out, 1, 8, seed=3, cfg=tiny_config(spp=1), patrol=Patrol(4, 2, SHORT))
    return out


def test_patrol_frames_carry_days_rounds_and_schedule(patrol_render):
    cams = json.loads((patrol_render / "home_00000" / "cameras.json").read_text())
    frames = cams["frames"]
    assert [f["day"] for f in frames] == [0, 0, 1, 1, 2, 2, 3, 3] and [f["round"] for f in frames] == [
        0,
        1,
    ] * 4
    assert len({f["name"] for f in frames}) == 8
    assert cams["patrol"]["frames_per_round"] == 1 and [d["day"] for d in cams["days"]] == [0, 1, 2, 3]
    assert {c["kind"] for c in cams["schedule"]} == set(KINDS)
    schedule = [LargeChange(**c) for c in cams["schedule"]]
    for f in frames:
        assert f["lighting"] == cams["days"][f["day"]]["lightings"][f["round"]]
    for d in cams["days"]:
        assert d["large_changes"] == [c.label() for c in active_changes(schedule, d["day"])]
        assert d["new_large_changes"] == change_events(schedule, d["day"])
    assert (
        cams["days"][0]["lightings"][0] == "sun_noon" and cams["days"][0]["days_since_large_change"] is None
    )
    first = np.array(frames[0]["pose_c2w"])[:3, 3]  # the same route every day: the place recurs
    assert all(np.linalg.norm(np.array(f["pose_c2w"])[:3, 3] - first) < 0.4 for f in frames)


def test_patrol_resume_gives_identical_bytes_and_other_patrols_are_refused(patrol_render, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(patrol_render, out)
    hdir = out / "home_00000"
    victim = sorted((hdir / "rgb").iterdir())[-3]  # a frame of a day with large changes
    victim.unlink()
    (hdir / "cameras.json").unlink()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["homes"].clear()
    (out / "manifest.json").write_text(json.dumps(manifest))
    render_homes(out, 1, 8, seed=3, cfg=tiny_config(spp=1), patrol=Patrol(4, 2, SHORT))
    assert home_digest(hdir) == home_digest(patrol_render / "home_00000")
    verify_render(out)
    with pytest.raises(DatasetError, match="another configuration"):
        render_homes(out, 1, 8, seed=3, cfg=tiny_config(spp=1), patrol=Patrol(2, 4, SHORT))


def test_days_grid_preview(patrol_render, tmp_path):
    png = days_grid(patrol_render, tmp_path / "days.png", place=0)
    img = cv2.imread(str(png))
    assert img.shape == (12, 14 * 16, 3)  # one week row of (day, round) half-size tiles
    assert img[:, : 8 * 16].std() > 0 and not img[:, 8 * 16 :].any()  # 8 frames, then padding
    with pytest.raises(ValueError, match="--place"):
        days_grid(patrol_render, tmp_path / "x.png", place=1)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--days", "3"], "--days and --frames-per-day go together"),
        (["--days", "3", "--frames-per-day", "3"], "multiple of the 2 patrol rounds"),
        (["--days", "3", "--frames-per-day", "2", "--frames-per-home", "6"], "--frames-per-home does not"),
        (["--days", "0", "--frames-per-day", "2"], "--days"),
        (["--days", "2", "--frames-per-day", "2", "--longterm.rounds", "[{disco: 1.0}]"], "unknown lighting"),
    ],
)
def test_cli_refuses_bad_patrols_in_one_line(extra, message, tmp_path, capsys):
    out = tmp_path / "never"
    try:
        code = main(["render", "--out", str(out), "--homes", "1", *extra])
    except SystemExit as e:  # parse-time errors exit from the parser
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.slow
def test_kill_9_of_a_patrol_render_then_rerun_gives_identical_bytes(patrol_render, tmp_path):
    """A real `kill -9` of the CLI mid-sequence, then a rerun: the bytes of an uninterrupted run."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(
        "synth:\n  size: [24, 32]\n  spp: 1\n  denoise: none\n  rooms: [1, 2]\n  frames_per_sequence: 2\n"
        "  assets: ''\n  photos: []\n  camera:\n    motion_blur: 0.0\n"
        "longterm:\n  first_change_day: 1\n  after_last_change: 0\n  min_gap: 1\n  decorations_up: [1, 2]\n"
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
    ]
    cmd += ["--homes", "1", "--days", "4", "--frames-per-day", "2", "--seed", "3"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "home_00000" / "rgb").glob("*.png"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "home_00000" / "cameras.json").exists(), "too late: the run finished before the kill"
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    assert home_digest(out / "home_00000") == home_digest(patrol_render / "home_00000")


def test_path_geometry_positions_turning_and_driving():
    path = np.array(
        [[x, 0.0] for x in np.arange(0, 2.0, 0.05)] + [[2.0, y] for y in np.arange(0, 2.01, 0.05)]
    )
    s, off = path_position(path, (1.0, 0.02))
    assert s == pytest.approx(1.0) and off == pytest.approx(0.02)
    assert path_position(path, (2.0, 1.0))[0] == pytest.approx(3.0, abs=1e-6)
    assert path_turning(path, 0.2, 1.0) == pytest.approx(0.0, abs=1e-9)  # straight
    assert np.degrees(path_turning(path, 0.5, 3.5)) == pytest.approx(90.0, abs=1e-6)  # the corner
    assert path_turning(path, 3.5, 0.5) == path_turning(path, 0.5, 3.5)
    # looking 20 deg off the path at the start and 10 deg at the end of a straight stretch
    metres, turned = driven(path, (0.2, np.radians(20)), (1.2, np.radians(-10)))
    assert metres == pytest.approx(1.0) and np.degrees(turned) == pytest.approx(30.0)
    dock = dock_pose(path, 0.5)
    assert np.allclose(dock[:3, 3], [0, 0, 0.5]) and np.allclose(dock[:3, 2], [1, 0, 0])  # facing along it


def test_patrol_frames_lie_on_the_path_written_beside_them(patrol_render):
    cams = json.loads((patrol_render / "home_00000" / "cameras.json").read_text())
    path = np.array(cams["patrol_path"]["points"])
    for f in cams["frames"]:
        s, off = path_position(path, np.array(f["pose_c2w"])[:2, 3])
        assert off < 1e-3 and s == pytest.approx(f["path_m"], abs=1e-3)
    assert np.allclose(np.array(cams["patrol_path"]["dock_c2w"])[:2, 3], path[0], atol=1e-4)


def test_a_wandering_patrol_writes_frames_beside_the_path_and_refuses_frames_further_off(tmp_path):
    out = tmp_path / "wander"
    lt = LongTermConfig(**{**SHORT.to_dict(), "lateral_m": 0.2})
    render_homes(out, 1, 4, seed=3, cfg=tiny_config(spp=1), patrol=Patrol(2, 2, lt))
    cams = json.loads((out / "home_00000" / "cameras.json").read_text())
    path = np.array(cams["patrol_path"]["points"])
    for f in cams["frames"]:
        s, off = path_position(path, np.array(f["pose_c2w"])[:2, 3])
        assert off <= 0.2 + 1e-3 and s == pytest.approx(f["path_m"], abs=1e-3)
    assert cams["patrol"]["longterm"]["lateral_m"] == 0.2
    pose = np.array(cams["frames"][0]["pose_c2w"])
    pose[:2, 3] += 0.5 * np.array([-pose[1, 2], pose[0, 2]]) / np.hypot(pose[0, 2], pose[1, 2])  # 0.5 m left
    far = {**cams["frames"][0], "pose_c2w": pose.tolist()}
    assert path_position(path, pose[:2, 3])[1] > 0.25
    with pytest.raises(DatasetError, match="off the home's path"):
        add_positions([far], path, "x", 0.2)


def _rewrite(out, edit):
    """Edit a copied patrol render's cameras.json as an older renderer (or another one) would have
    written it, the manifest's digest updated to match."""
    cams_path = out / "home_00000" / "cameras.json"
    cams = json.loads(cams_path.read_text())
    edit(cams)
    cams_path.write_text(json.dumps(cams, indent=1))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["homes"]["home_00000"]["sha256"] = home_digest(out / "home_00000")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def _without_path(cams):
    del cams["patrol_path"]
    for f in cams["frames"]:
        del f["path_m"]


def _moved_frame(cams):
    cams["frames"][3]["pose_c2w"][0][3] += 0.3
    cams["frames"][3]["pose_c2w"][1][3] += 0.3


def test_render_path_adds_what_the_renderer_writes_and_leaves_images_alone(patrol_render, tmp_path, capsys):
    out = tmp_path / "old"
    shutil.copytree(patrol_render, out)
    _rewrite(out, _without_path)
    images = {p.name: p.read_bytes() for p in (out / "home_00000" / "rgb").iterdir()}
    assert main(["render-path", "--data", str(out)]) == 0
    assert home_digest(out / "home_00000") == home_digest(patrol_render / "home_00000")  # byte for byte
    assert images == {p.name: p.read_bytes() for p in (out / "home_00000" / "rgb").iterdir()}
    verify_render(out)
    assert add_patrol_path(out) == []  # done already: nothing rewritten
    # a frame off the rebuilt path (another renderer) is refused in one line, nothing written
    _rewrite(out, lambda cams: (_without_path(cams), _moved_frame(cams)))
    capsys.readouterr()
    assert main(["render-path", "--data", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "s003_day001_dusk_f000 lies" in err and "off the home's path" in err and len(err.splitlines()) == 1
    ), err
    assert "patrol_path" not in json.loads((out / "home_00000" / "cameras.json").read_text())

"""`homeloc-evaluate longterm`: judging (pure), a replay of a tiny rendered-layout home with the
shipped models (every output, the budget, resuming after a kill), change detection, the CLI."""

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest

from homeloc.data_synthesis.formats.longterm import read_longterm
from homeloc.eval import cli, evaluate_longterm
from homeloc.eval.errors import EvalError
from homeloc.eval.evaluate_longterm import (
    LongTermEvalConfig,
    PlaceJudge,
    change_detection,
    change_line,
    day_rows,
    run_longterm,
    within,
)
from homeloc.runtime.longterm import OdometryConfig
from tests.data_synthesis.test_formats_longterm import make_home
from tests.runtime.test_longterm import pose_at


def test_correct_place_needs_the_distance_the_direction_and_the_room_or_an_overlap(tmp_path):
    q = pose_at(3.7, 1, 0)
    kfs = np.stack([pose_at(3.2, 1, 20), pose_at(4.3, 1, 0), pose_at(2.5, 1, 0), pose_at(3.7, 1, 60)])
    assert within(q, kfs, 1.0, 45.0).tolist() == [True, True, False, False]
    (home,) = read_longterm(make_home(tmp_path, days=2))
    frames = list(home.frames)
    # both sides of the doorway x = 4, looking along it at the same wall (y = 4, 3 m ahead)
    door = [replace(frames[0], pose=pose_at(3.9, 1, 90)), replace(frames[1], pose=pose_at(4.2, 1, 90)),
            replace(frames[2], pose=pose_at(4.2, 1, 270))]  # fmt: skip
    judge = PlaceJudge(replace(home, frames=tuple(door + frames[3:])), 1.0, 45.0)
    assert judge.room[:3].tolist() == [0, 1, 1]
    assert judge.same(0, np.array([1, 2])).tolist() == [True, False]  # across the doorway, the same view
    assert judge.overlap(0, 1) > 0.9 and judge.verdict(0, 1) == "correct" and judge.verdict(0, None) is None
    assert judge.verdict(3, 5) == "false"  # spot 0 and spot 2 of day 1: 5 m apart


def test_day_rows_count_success_false_and_take_the_largest_map():
    rec = lambda d, v: {"day": d, "lighting": "x", "m": {"verdict": v, "covered": True, "ms": 2.0}}  # noqa: E731
    frames = [rec(0, None), rec(1, "correct"), rec(1, "false"), rec(1, "correct"), rec(1, None)]
    infos = [
        {"day": d, "method": "m", "map_bytes": b, "keyframes": 1} for d, b in ((0, 10), (1, 30), (1, 20))
    ]
    rows = day_rows(frames, infos, "m")
    assert rows[1] | {"lightings": None} == rows[1] | {"day": 1, "success": 0.5, "false": 0.25, "map_bytes": 30,
                                                       "ms": 2.0, "false_count": 1, "frames": 4, "keyframes": 2,
                                                       "lightings": None}  # fmt: skip


def test_change_detection_against_the_schedule():
    schedule = {"h": [{"kind": "rearrange", "room": 1, "start": 5, "end": None},
                      {"kind": "decorations", "room": 0, "start": 8, "end": 12}]}  # fmt: skip
    infos = [
        {"home": "h", "day": d, "method": "longterm", "major_changes": c}
        for d, c in ((5, []), (7, [1]), (9, [2]))
    ]
    infos.append({"home": "h", "day": 9, "method": "static", "keyframes": 3})
    r = change_detection(schedule, infos, within_days=3)
    # the decorations come down on day 12, after the last replayed day (9): no event of this replay
    assert (r["events"], r["detected"], r["declared"], r["unexplained"]) == (2, 1, 2, 1)
    assert [row["detected"] for row in r["rows"]] == [True, False]
    assert r["by_kind"] == {"rearrange": [1, 1], "decorations": [0, 1]} and "chance" not in r
    # chance: 2 declarations on 3 days x 2 rooms; the rearrangement's window (days 5-8, room 1) holds
    # 2 of the 6 cells (days 5 and 7), the decorations' (days 8-11, room 0) 1 (day 9)
    r = change_detection(schedule, infos, within_days=3, rooms={"h": 2})
    want = (1 - (1 - 2 / 6) ** 2) + (1 - (1 - 1 / 6) ** 2)
    assert r["chance"] == pytest.approx(want, abs=1e-3)
    # another map's declarations count only for it
    odo = [{"home": "h", "day": d, "method": "odometry", "major_changes": []} for d in (5, 7, 9)]
    r = change_detection(schedule, infos + odo, within_days=3, rooms={"h": 2}, method="odometry")
    assert (r["events"], r["detected"], r["declared"], r["chance"]) == (2, 0, 0, 0.0)
    # by signal: days recorded before the signals existed count as the failures' declarations
    assert change_detection(schedule, infos)["by_signal"] == {"failures": {"declared": 2, "unexplained": 1,
                                                                           "detected": 1}}  # fmt: skip
    infos[1] |= {"major_change_signals": ["colour"]}
    infos[2] |= {"major_change_signals": ["failures"]}
    r = change_detection(schedule, infos, within_days=3, rooms={"h": 2})
    assert r["by_signal"] == {"colour": {"declared": 1, "unexplained": 0, "detected": 1},
                              "failures": {"declared": 1, "unexplained": 1, "detected": 0}}  # fmt: skip
    line = change_line(r, "longterm")
    assert line.endswith("By signal: colour: 1 declared, 0 unexplained, 1 detected; "
                         "failures: 1 declared, 1 unexplained, 0 detected.")  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted replay (shipped models)."""
    data = make_home(tmp_path_factory.mktemp("lt"))
    out = run_longterm(LongTermEvalConfig(data=str(data), out=data / "out", budget_bytes=60_000))
    return data, json.loads((out / "summary.json").read_text())


def _no_times(x):
    if isinstance(x, dict):
        return {k: _no_times(v) for k, v in x.items() if not k.startswith("ms")}
    if isinstance(x, list):
        return [_no_times(v) for v in x]
    return x


def test_replay_writes_every_output_and_keeps_the_budget(reference):
    data, s = reference
    assert [r["day"] for r in s["days"]] == [0, 1, 2] and set(s["baselines"]) == {"static", "append"}
    assert s["tolerance"] == {"centre_m": 1.0, "view_deg": 45.0, "same_room_or_overlap": 0.3}
    for rows in (s["days"], *s["baselines"].values()):
        assert all(0 <= r["success"] + r["false"] <= 1 and r["ms"] > 0 for r in rows)
    assert s["days"][1]["success"] > 0  # the textured spots are found again the next day
    assert s["days"][1]["success_by_lighting"] == {"noon": s["days"][1]["success"]}
    assert all(r["map_bytes"] <= 60_000 for r in s["days"] + s["baselines"]["append"])
    assert s["baselines"]["static"][2]["keyframes"] == 3  # day 0 only
    for name in ("summary.json", "table.md", "longterm.png", "changes.png", "frames.csv", "config.yaml"):
        assert (data / "out" / name).is_file(), name
    assert "static success" in (data / "out" / "table.md").read_text()
    # the noise floor: every frame after the mapping day with negatives has one; seen <= correct
    nf = s["noise_floor"]
    assert nf["negatives"] == 4 and nf["frames"] <= sum(r["frames"] for r in s["days"][1:])
    for m in ("longterm", "static", "append"):
        assert 0 <= nf["seen"][m] <= nf["correct"][m]
    assert nf["dark"]["frames"] == 0  # the tiny home's frames are lit
    header = (data / "out" / "frames.csv").read_text().splitlines()[0].split(",")
    assert {"floor", "causes", "longterm_confidence", "longterm_seen", "static_seen"} <= set(header)
    # the #17 target check agrees with the day rows (one home: a home-day is a day)
    for m, rows in (("longterm", s["days"]), *s["baselines"].items()):
        t = s["targets"][m]
        assert t["home_days"] == 2 and t["frames"] == sum(r["frames"] for r in rows[1:])
        assert t["correct"] == round(sum(r["success"] * r["frames"] for r in rows[1:]))
        assert t["home_days_met"] == sum(r["success"] >= 0.95 and r["false_count"] == 0 for r in rows[1:])
        assert (
            t["bytes_after_week"] is None and t["within_budget"] is None
        )  # 3 days: no day after the first week
    assert "Targets (issue #17" in (data / "out" / "table.md").read_text()
    # time per frame after the mapping day, every map against the append baseline of the same run
    t = s["ms_per_frame"]
    assert set(t) == {"longterm", "static", "append"} and t["append"]["vs_append"] == pytest.approx(1.0)
    for m in t.values():
        assert 0 < m["median"] <= m["p90"] and m["frames"] == sum(r["frames"] for r in s["days"][1:])
    assert "Time per frame after the mapping day" in (data / "out" / "table.md").read_text()


def test_timing_summary_is_a_ratio_to_the_append_map():
    from homeloc.eval.longterm_timing import timing_line, timing_summary

    frames = [
        {"day": d, "a": {"ms": ms}, "append": {"ms": 10.0}} for d, ms in ((0, 1000.0), (1, 20.0), (1, 30.0))
    ]
    t = timing_summary(frames, ["a", "append"])
    assert t["a"]["median"] == 25.0 and t["a"]["frames"] == 2  # the mapping day is left out
    assert t["a"]["vs_append"] == 2.5 and t["append"]["vs_append"] == 1.0
    assert timing_summary(frames, ["a"])["a"]["vs_append"] is None  # no peer in the run
    assert "a 25.0 / 29.0, 2.50x append" in timing_line(t)


def _kill_on_day_2(monkeypatch, run):
    """Run RUN with the evaluator's frame step raising KeyboardInterrupt (a kill) at the first
    frame of day 2; return the real frame step, for the caller to restore and resume with."""
    frame = evaluate_longterm._frame

    def killed_on_day_2(home, i, *args):
        if home.frames[i].day == 2:
            raise KeyboardInterrupt
        return frame(home, i, *args)

    monkeypatch.setattr(evaluate_longterm, "_frame", killed_on_day_2)
    with pytest.raises(KeyboardInterrupt):
        run()
    return frame


def test_a_killed_replay_resumes_to_the_same_results(reference, tmp_path, monkeypatch):
    data, want = reference
    config = LongTermEvalConfig(data=str(data), out=tmp_path / "out", budget_bytes=60_000)
    frame = _kill_on_day_2(monkeypatch, lambda: run_longterm(config))
    assert json.loads((tmp_path / "out" / "state" / "home_00000" / "progress.json").read_text())["day"] == 1
    monkeypatch.setattr(evaluate_longterm, "_frame", frame)
    got = json.loads((run_longterm(config) / "summary.json").read_text())
    assert _no_times(got) == _no_times(want)


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["longterm", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "missing: folder not found" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as e:
        cli.main(["longterm", "--data", str(tmp_path), "--budget-bytes", "0"])
    assert e.value.code == 2 and "--budget-bytes: must be > 0, got 0" in capsys.readouterr().err
    # options of the odometry map without it would change nothing: refused before any work
    data = make_home(tmp_path / "h")
    out = tmp_path / "n"
    argv = [
        "longterm",
        "--data",
        str(data),
        "--out",
        str(out),
        "--odometry-slip",
        "0.1",
        "--prior-cross-check",
        "false",
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1
        and "only the odometry map uses --prior-cross-check, --odometry-slip: add --odometry" in err[0]
    )
    assert not out.exists()
    bad = ["longterm", "--data", str(data), "--out", str(out), "--odometry", "--prior-max-sigma-deg", "200"]
    assert cli.main(bad) == 1  # the runtime's range, named by the option, before DIR is written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prior-max-sigma-deg: max_sigma_deg must be in (0, 180], got 200.0" in err[0]
    assert not out.exists()


def test_one_pass_descriptors_and_agreement_reach_every_map(tmp_path, capsys):
    from homeloc.runtime.frontend import Frontend
    from homeloc.runtime.longterm import LongTermMap

    data = make_home(tmp_path)
    config = LongTermEvalConfig(data=str(data), out=tmp_path / "o", budget_bytes=60_000, max_days=2,
                                places_model="frontend", agree_confidence=0.2, agree_deg=20.0,
                                max_stored_features=768, refresh_below=1.0, change_failures=0.5)  # fmt: skip
    s = json.loads((run_longterm(config) / "summary.json").read_text())
    assert s["days"][1]["success"] > 0 and s["baselines"]["append"][1]["success"] > 0
    state = tmp_path / "o" / "state" / "home_00000"
    saved = json.loads((state / "progress.json").read_text())["maps"]["longterm"]
    fe = Frontend(None, global_descriptor=True)
    m = LongTermMap.load(state / saved, "frontend", fe)
    dim = int(fe.metadata["homeloc.global_dim"])  # the shipped frontend's global size
    assert (m.search_config.agree_confidence, m.search_config.agree_deg, m.dim) == (0.2, 20.0, dim)
    assert (m.verify_config.max_stored_features, m.place_config.refresh_below) == (768, 1.0)
    assert m.change_config.major_share == 0.5  # --change-failures: the failure signal, off by default
    assert (
        cli.main(["longterm", "--data", str(data), "--out", str(tmp_path / "b"), "--agree-count", "1"]) == 1
    )
    assert "--agree-count must be >= 2" in capsys.readouterr().err
    b = ["longterm", "--data", str(data), "--out", str(tmp_path / "b"), "--prior-agree-min-inliers", "5"]
    assert cli.main(b) == 1
    assert "--prior-agree-min-inliers must be 0 (off) or >= 8" in capsys.readouterr().err


def test_simulated_odometry_is_noisy_reproducible_and_unknown_between_rounds(tmp_path):
    from homeloc.eval.longterm_methods import simulated_motion
    from homeloc.runtime.longterm import OdometryConfig
    from homeloc.runtime.longterm.odometry import planar, relative_motion

    (home,) = read_longterm(make_home(tmp_path, days=2))
    cfg = OdometryConfig()
    assert simulated_motion(home, 0, cfg, 1.0, 0) is None
    true = relative_motion(planar(home.frames[0].pose), planar(home.frames[1].pose))
    m = simulated_motion(home, 1, cfg, 1.0, 0)
    assert m == simulated_motion(home, 1, cfg, 1.0, 0) != simulated_motion(home, 1, cfg, 1.0, 1)
    assert m != true and np.allclose(m, true, atol=0.5)
    assert simulated_motion(home, 1, cfg, 0.0, 0) == true  # noise scale 0: the rendered motion
    assert simulated_motion(home, 3, cfg, 1.0, 0, gap_factor=2.0) is None  # a new day: no odometry
    rounds = replace(home, frames=tuple(replace(f, sequence=f"r{i // 2}") for i, f in enumerate(home.frames)))
    assert simulated_motion(rounds, 2, cfg, 1.0, 0) is None  # a new round
    gap = simulated_motion(rounds, 2, cfg, 0.0, 0, gap_factor=2.0)  # ... unless the rounds connect
    d = np.hypot(*gap[:2])
    assert len(gap) == 5 and gap[3] == pytest.approx(2 * d) and gap[4] >= np.pi


def test_the_odometry_map_runs_beside_the_others_and_resumes_the_same(tmp_path, monkeypatch):
    from homeloc.runtime.longterm import LongTermMap

    data = make_home(tmp_path)
    kw = dict(data=str(data), budget_bytes=60_000, odometry=True, prior_confidence=0.3, refresh_below=1.0,
              odometry_dock=True)  # fmt: skip
    want = json.loads(
        (run_longterm(LongTermEvalConfig(out=tmp_path / "a", **kw)) / "summary.json").read_text()
    )
    assert [r["day"] for r in want["odometry"]] == [0, 1, 2] and set(want["baselines"]) == {
        "static",
        "append",
    }
    assert "odometry success" in (tmp_path / "a" / "table.md").read_text()
    assert "odometry_via" in (tmp_path / "a" / "frames.csv").read_text().splitlines()[0]
    state = tmp_path / "a" / "state" / "home_00000"
    saved = json.loads((state / "progress.json").read_text())["maps"]["odometry"]
    assert LongTermMap.load(state / saved).odometry_config.min_confidence == 0.3
    frame = _kill_on_day_2(monkeypatch, lambda: run_longterm(LongTermEvalConfig(out=tmp_path / "b", **kw)))
    monkeypatch.setattr(evaluate_longterm, "_frame", frame)
    got = json.loads(
        (run_longterm(LongTermEvalConfig(out=tmp_path / "b", **kw)) / "summary.json").read_text()
    )
    assert _no_times(got) == _no_times(want)


def test_metric_localization_gives_the_odometry_map_the_renders_depth_alone(tmp_path):
    from homeloc.eval.longterm_methods import keypoint_depth
    from homeloc.runtime.features import Features
    from homeloc.runtime.longterm import LongTermMap

    data = make_home(tmp_path)  # depth 3 m everywhere
    kw = dict(data=str(data), budget_bytes=60_000, odometry=True, refresh_below=1.0, max_days=2,
              prior_metric_min_inliers=20, odometry_depth_noise=0.05)  # fmt: skip
    run_longterm(LongTermEvalConfig(out=tmp_path / "a", **kw))
    state = tmp_path / "a" / "state" / "home_00000"
    maps = json.loads((state / "progress.json").read_text())["maps"]
    odo = LongTermMap.load(state / maps["odometry"])
    z = np.concatenate([s.depth for s in odo._t.features.values()]).astype(np.float64)
    assert odo.odometry_config.metric_min_inliers == 20 and len(z) > 0
    assert abs(z.mean() - 3.0) < 0.05 and 0.1 < z.std() < 0.2  # 3 m, 5 % noise
    alone = LongTermMap.load(state / maps["longterm"])  # no metric localization: no bytes spent on depth
    assert all(s.depth is None for s in alone._t.features.values())
    home = read_longterm(data)[0]
    f = Features(
        np.array([[10.0, 20.0], [159.4, 119.6]], np.float32),
        np.ones(2, np.float32),
        np.eye(2, 16, dtype=np.float32),
    )
    assert np.allclose(keypoint_depth(home.frames[0], f, 0.0, 0, 0), 3.0)
    a, b = (keypoint_depth(home.frames[0], f, 0.1, s, 0) for s in (0, 1))
    assert np.array_equal(a, keypoint_depth(home.frames[0], f, 0.1, 0, 0)) and not np.array_equal(a, b)
    gone = home.frames[1].root / "depth" / f"{home.frames[1].name}.png"
    gone.unlink()
    with pytest.raises(EvalError, match=f"^{gone}: no uint16 depth map"):
        keypoint_depth(home.frames[1], f, 0.0, 0, 1)


def test_the_separate_place_model_is_still_available(tmp_path):
    from homeloc.runtime.longterm import LongTermMap
    from homeloc.runtime.places import GlobalDescriptor

    data = make_home(tmp_path)
    config = LongTermEvalConfig(data=str(data), out=tmp_path / "o", budget_bytes=60_000, max_days=2,
                                places_model="places")  # fmt: skip
    s = json.loads((run_longterm(config) / "summary.json").read_text())
    assert [r["day"] for r in s["days"]] == [0, 1] and "odometry" not in s
    state = tmp_path / "o" / "state" / "home_00000"
    saved = json.loads((state / "progress.json").read_text())["maps"]["longterm"]
    places = GlobalDescriptor(None)
    assert (
        LongTermMap.load(state / saved, places).dim
        == places.describe(np.zeros((60, 80, 3), np.uint8)).shape[1]
    )


def test_a_round_after_the_dock_gets_the_motion_from_it(tmp_path):
    from homeloc.eval.longterm_methods import UNDOCK_M, simulated_motion, starts_docked
    from homeloc.runtime.longterm import OdometryConfig
    from homeloc.runtime.longterm.odometry import planar, relative_motion

    (home,) = read_longterm(make_home(tmp_path, days=2))
    rounds = replace(home, frames=tuple(replace(f, sequence=f"r{i // 2}") for i, f in enumerate(home.frames)))
    cfg, dock = OdometryConfig(), pose_at(0.5, 0.5, 20)
    # frames 0-2 are day 0 (rounds r0, r0, r1), frame 3 starts day 1
    assert [starts_docked(rounds, i, None) for i in range(4)] == [True, False, True, True]
    # the gap joins rounds
    assert [starts_docked(rounds, i, 2.0) for i in range(4)] == [True, False, False, True]
    m = simulated_motion(rounds, 2, cfg, 0.0, 0, dock=dock)  # noise scale 0: the true drive from the dock
    true = relative_motion(planar(dock), planar(rounds.frames[2].pose))
    assert np.allclose(m[:3], true) and m[3] == pytest.approx(np.hypot(*true[:2]) + UNDOCK_M)
    assert m[4] == pytest.approx(abs(true[2]) + np.pi)
    assert simulated_motion(rounds, 1, cfg, 0.0, 0, dock=dock) == simulated_motion(rounds, 1, cfg, 0.0, 0)
    assert simulated_motion(rounds, 2, cfg, 1.0, 0, dock=dock) != m  # noisy


def test_with_the_renderers_patrol_path_the_noise_follows_the_path_driven(tmp_path):
    from homeloc.eval.longterm_methods import dock_pose, patrol_path, simulated_motion
    from homeloc.runtime.longterm import OdometryConfig
    from homeloc.runtime.longterm.odometry import planar, relative_motion

    (home,) = read_longterm(make_home(tmp_path, days=2))
    assert patrol_path(home) is None and np.array_equal(dock_pose(home), home.frames[0].pose)
    # a straight path along +x from the dock at the origin; frames 1.0, 2.5, 4.0 m along it each day
    points = [[x, 0.0] for x in np.arange(0, 6.0, 0.05)]
    info = {"patrol_path": {"points": points, "dock_c2w": pose_at(0, 0, 0).tolist()}}
    on_path = replace(home, info=info, extras=tuple({"path_m": 1.0 + 1.5 * (i % 3)} for i in range(6)))
    cfg, dock = OdometryConfig(), dock_pose(on_path)
    assert np.allclose(dock, pose_at(0, 0, 0)) and np.array_equal(
        dock_pose(on_path, False), home.frames[0].pose
    )
    yaw = [abs(planar(f.pose)[2]) for f in on_path.frames]  # the look-around: the path heads along +x
    m = simulated_motion(on_path, 3, cfg, 0.0, 0, dock=dock)  # day 1's first frame: from the dock
    assert np.allclose(m[:3], relative_motion(planar(dock), planar(on_path.frames[3].pose)))
    assert m[3] == pytest.approx(1.0) and m[4] == pytest.approx(yaw[3])
    m = simulated_motion(on_path, 4, cfg, 0.0, 0, dock=dock)  # within the round: frame to frame
    assert m[3] == pytest.approx(1.5) and m[4] == pytest.approx(yaw[3] + yaw[4])
    assert simulated_motion(on_path, 3, cfg, 0.0, 0, dock=dock, use_path=False)[3] > 1.5  # assumed undocking


def test_the_agreement_inlier_floor_option_reaches_the_prior():
    from homeloc.eval.evaluate_longterm import _odometry

    def floor(v):
        return _odometry(
            LongTermEvalConfig(data="x", odometry=True, prior_agree_min_inliers=v)
        ).agree_min_inliers

    assert (floor(None), floor(0), floor(15)) == (OdometryConfig().agree_min_inliers, None, 15)


def test_the_last_resort_and_conflict_options_reach_the_prior():
    from homeloc.eval.evaluate_longterm import _odometry

    def odo(**kw):
        return _odometry(LongTermEvalConfig(data="x", odometry=True, **kw))

    assert odo().single_confidence == OdometryConfig().single_confidence == 0.05
    assert odo(prior_single_confidence=1.0).single_confidence == 1.0  # off: no verification scores 1
    assert odo().single_doubt_m == OdometryConfig().single_doubt_m
    assert odo(prior_single_doubt_m=2.0).single_doubt_m == 2.0
    assert odo(prior_still_share=0.6).still_share == 0.6 and odo(prior_still_share=0.0).still_share is None
    assert odo(prior_sure_inliers=40).sure_inliers == 40 and odo(prior_sure_inliers=0).sure_inliers is None
    assert odo().max_sigma_deg == OdometryConfig().max_sigma_deg == 20.0  # 30 before session 42
    assert odo(prior_max_sigma_deg=30.0).max_sigma_deg == 30.0
    assert odo(prior_max_sigma_m=1.25).max_sigma_m == 1.25
    # session 50: the prior keeps its position past max_sigma_deg (0.1; inf: off, dropped as before)
    assert odo().lost_heading_confidence == OdometryConfig().lost_heading_confidence == 0.1
    assert odo(prior_lost_heading_confidence=0.6).lost_heading_confidence == 0.6
    assert odo().metric_reset_heading_sigmas is None  # session 50: off by default
    assert odo(prior_metric_reset_heading_sigmas=3.0).metric_reset_heading_sigmas == 3.0
    assert odo(prior_metric_reset_heading_sigmas=math.inf).metric_reset_heading_sigmas is None  # inf: off
    assert odo(prior_lost_heading_confidence=math.inf).lost_heading_confidence is None  # inf: off
    with pytest.raises(EvalError, match=r"^--prior-lost-heading-confidence: lost_heading_confidence must be"):
        odo(prior_lost_heading_confidence=2.0)
    assert odo().metric_min_inliers == OdometryConfig().metric_min_inliers == 30  # session 47
    assert odo(prior_metric_min_inliers=0).metric_min_inliers is None  # 0: off
    assert odo(prior_metric_min_inliers=40).metric_min_inliers == 40
    with pytest.raises(EvalError, match=r"^--prior-metric-min-inliers: metric_min_inliers must be >= 4"):
        odo(prior_metric_min_inliers=3)
    assert odo().adapt_max_scale is None and odo(prior_adapt_max_scale=0.0).adapt_max_scale is None
    assert odo(prior_adapt_max_scale=3.0).adapt_max_scale == 3.0
    with pytest.raises(EvalError, match=r"^--prior-adapt-max-scale: adapt_max_scale must be >= 1 or None"):
        odo(prior_adapt_max_scale=0.5)
    with pytest.raises(EvalError, match=r"^--prior-max-sigma-deg: max_sigma_deg must be in \(0, 180\]"):
        odo(prior_max_sigma_deg=200.0)
    with pytest.raises(EvalError, match=r"^--prior-cross-check-radii: cross_check_radii must "):
        odo(prior_cross_check=True, prior_cross_check_radii=-1.0)  # a field named like the start of another
    assert odo().conflict_by_position is True
    assert odo(prior_conflict_by_position=False).conflict_by_position is False
    assert odo().conflict_radii == 2.0 and odo(prior_conflict_radii=1.0).conflict_radii == 1.0
    assert odo().view_sigma_deg == 20.0 and odo(prior_view_sigma_deg=0).view_sigma_deg == 0
    assert odo().nearest_weak is True and odo(prior_nearest_weak=False).nearest_weak is False
    assert odo().fuse_strict is True and odo(prior_fuse_strict=False).fuse_strict is False
    assert odo(prior_view_sigma_m=0.3).view_sigma_m == 0.3
    assert odo(prior_cross_check_radii=1.5).cross_check_radii == 1.5
    assert odo().cross_check_doubt is False and odo(prior_cross_check_doubt=True).cross_check_doubt is True
    assert odo().cross_check_colocated == 0.33
    assert odo(prior_cross_check_colocated=0.4).cross_check_colocated == 0.4
    assert odo(prior_cross_check_colocated=0).cross_check_colocated is None  # 0: off
    assert odo().weak_gate_sigmas is None
    assert odo(prior_weak_gate_sigmas=0).weak_gate_sigmas == 0  # 0: the place radius alone
    assert odo(prior_weak_gate_sigmas=0.5).weak_gate_sigmas == 0.5
    assert odo(prior_weak_gate_sigmas=float("inf")).weak_gate_sigmas is None  # inf: off
    assert odo().still_at_dock is True and odo(prior_still_at_dock=False).still_at_dock is False
    assert odo().ambiguous_keeps is True and odo(prior_ambiguous_keeps=False).ambiguous_keeps is False
    assert odo().strict_gate_sigmas == 8.0 and odo(prior_strict_gate_sigmas=6).strict_gate_sigmas == 6
    assert odo(prior_strict_gate_sigmas=float("inf")).strict_gate_sigmas is None  # inf: off
    assert odo().cross_check_strongest is True
    assert odo(prior_cross_check_strongest=False).cross_check_strongest is False
    assert odo().recentre is True and odo(prior_recentre=False).recentre is False
    assert odo().recentre_shrinks is True and odo(prior_recentre_shrinks=False).recentre_shrinks is False
    assert odo().rotation_px == 4.0 and odo(prior_rotation_px=0).rotation_px is None  # 0: E's R
    assert odo(prior_rotation_px=2.5).rotation_px == 2.5
    assert odo().recentre_heading is True and odo(prior_recentre_heading=False).recentre_heading is False
    assert odo().nearest_heading is True and odo(prior_nearest_heading=False).nearest_heading is False
    assert odo().nearest_place is False and odo(prior_nearest_place=True).nearest_place is True


def test_the_rotation_verification_option_reaches_every_map():
    from homeloc.eval.evaluate_longterm import _floor_verify, _verify

    on, off = LongTermEvalConfig(data="x"), LongTermEvalConfig(data="x", verify_rotation=False, odometry=True)
    assert _verify(on).rotation is True and _verify(off).rotation is False
    assert _floor_verify(off).rotation is False  # the noise floor is measured like the maps verify
    args = cli._longterm_parser().parse_args(["--data", "x", "--verify-rotation", "false"])
    assert args.verify_rotation is False


def test_kidnaps_are_drawn_per_frame_and_report_no_motion():
    from homeloc.eval.longterm_methods import kidnapped

    m = (1.0, 0.5, 0.2, 1.2, 0.3)
    assert kidnapped(m, 5, 0, 0.0) == m and kidnapped(None, 5, 0, 1.0) is None
    assert kidnapped(m, 5, 0, 1.0) == (0.0, 0.0, 0.0, 0.0, 0.0)
    draws = [kidnapped(m, i, 3, 0.1) != m for i in range(4000)]
    assert 0.08 < np.mean(draws) < 0.12
    assert draws == [kidnapped(m, i, 3, 0.1) != m for i in range(4000)]  # a resumed run draws the same
    assert draws != [kidnapped(m, i, 4, 0.1) != m for i in range(4000)]  # another seed, other frames


def test_slips_are_drawn_per_frame_and_scale_the_reported_step():
    from homeloc.eval.longterm_methods import SLIP_RANGE, is_kidnapped, is_slipped, slipped

    m = (1.0, 0.5, 0.2, 1.2, 0.3)
    assert slipped(m, 5, 0, 0.0) == m and slipped(None, 5, 0, 1.0) is None
    lo, hi = SLIP_RANGE
    for i in range(200):
        s = slipped(m, i, 1, 1.0)
        ft, fr = s[0] / m[0], s[2] / m[2]
        # translation and path driven by one factor, turn and turning by another, within the range
        assert s[1] / m[1] == pytest.approx(ft) and s[3] / m[3] == pytest.approx(ft)
        assert s[4] / m[4] == pytest.approx(fr) and lo <= ft <= hi and lo <= fr <= hi
    assert len(slipped(m[:3], 5, 0, 1.0)) == 3  # a motion without the path driven stays one
    draws = [is_slipped(i, 3, 0.1) for i in range(4000)]
    assert 0.08 < np.mean(draws) < 0.12
    assert draws == [slipped(m, i, 3, 0.1) != m for i in range(4000)]  # a resumed run draws the same
    assert draws != [is_slipped(i, 4, 0.1) for i in range(4000)]  # another seed, other frames
    assert draws != [is_kidnapped(i, 3, 0.1) for i in range(4000)]  # not the kidnap draws


def test_the_cross_check_and_kidnap_options_reach_the_odometry_map():
    from homeloc.eval.evaluate_longterm import _odometry

    def odo(**kw):
        return _odometry(LongTermEvalConfig(data="x", odometry=True, **kw))

    assert odo().cross_check == OdometryConfig().cross_check
    assert (
        odo(prior_cross_check=False).cross_check is False and odo(prior_cross_check=True).cross_check is True
    )
    assert (
        odo().still_m == OdometryConfig().still_m is not None and odo(prior_still_check=False).still_m is None
    )
    args = cli._longterm_parser().parse_args(
        [
            "--data",
            "x",
            "--prior-cross-check",
            "false",
            "--odometry-kidnap",
            "0.1",
            "--prior-still-check",
            "false",
        ]
    )
    assert args.prior_cross_check is False and args.odometry_kidnap == pytest.approx(0.1)
    assert args.odometry_slip == 0.0
    assert cli._longterm_parser().parse_args(["--data", "x", "--odometry-slip", "0.2"]).odometry_slip == 0.2
    assert args.prior_still_check is False
    with pytest.raises(SystemExit):
        cli._longterm_parser().parse_args(["--data", "x", "--odometry-kidnap", "1.5"])
    heading = cli._longterm_parser().parse_args(["--data", "x", "--prior-strict-heading-sigmas", "3"])
    assert odo(prior_strict_heading_sigmas=heading.prior_strict_heading_sigmas).strict_heading_sigmas == 3.0
    assert odo(prior_strict_heading_sigmas=math.inf).strict_heading_sigmas is None  # inf: off
    poses = cli._longterm_parser().parse_args(["--data", "x", "--odometry-map-poses", "belief"])
    assert poses.odometry_map_poses == "belief"
    with pytest.raises(SystemExit):
        cli._longterm_parser().parse_args(["--data", "x", "--odometry-map-poses", "guess"])


def test_a_replay_with_kidnaps_names_the_frames_the_robot_was_carried_to(tmp_path):
    from homeloc.eval.longterm_methods import is_kidnapped

    data = make_home(tmp_path)
    cfg = LongTermEvalConfig(data=str(data), out=tmp_path / "k", budget_bytes=60_000, odometry=True,
                             odometry_dock=True, odometry_kidnap=0.5, odometry_seed=2)  # fmt: skip
    got = json.loads((run_longterm(cfg) / "summary.json").read_text())["kidnaps"]
    rows = list(csv.DictReader((tmp_path / "k" / "frames.csv").open()))
    want = [r["name"] for r in rows if int(r["day"]) >= 1 and is_kidnapped(int(r["index"]), 2, 0.5)]
    assert got["share"] == 0.5 and got["frames"] == want and want  # the dock gives every frame a motion
    assert [r["name"] for r in rows if r["kidnapped"] == "True" and int(r["day"]) >= 1] == want
    # every frame after the mapping day in one group; "carried" lasts until the next dock (one round a day here)
    later = [r for r in rows if int(r["day"]) >= 1]
    assert sum(g["frames"] for g in got["groups"].values()) == len(later)
    assert got["groups"]["carried_to"]["frames"] == len(want)
    for a, b in zip(rows, rows[1:], strict=False):
        kept = b["day"] == a["day"] and a["carried"] == "True"
        assert b["carried"] == ("True" if kept else b["kidnapped"])
    false = sum(g["false"] for g in got["groups"].values())
    assert false == sum(r["odometry_verdict"] == "false" for r in later)
    table = (tmp_path / "k" / "table.md").read_text()
    assert "Kidnaps (--odometry-kidnap 0.5)" in table
    # the odometry map's change declarations are scored beside the long-term map's
    summary = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert summary["odometry_change_detection"]["declared"] == sum(
        len(r["major_changes"]) for r in summary["odometry"]
    )
    assert "Major changes (longterm map)" in table and "Major changes (odometry map)" in table
    for r in summary["days"] + summary["odometry"]:  # what declared each change, beside it
        assert len(r["major_change_signals"]) == len(r["major_changes"])
        assert set(r["major_change_signals"]) <= {"failures", "colour"}


def test_a_replay_with_slips_names_the_frames_the_wheels_slipped_to(tmp_path):
    from homeloc.eval.longterm_methods import is_kidnapped, is_slipped

    data = make_home(tmp_path)
    cfg = LongTermEvalConfig(data=str(data), out=tmp_path / "s", budget_bytes=60_000, odometry=True,
                             odometry_dock=True, odometry_slip=0.5, odometry_kidnap=0.3, odometry_seed=2)  # fmt: skip
    summary = json.loads((run_longterm(cfg) / "summary.json").read_text())
    got = summary["slips"]
    rows = list(csv.DictReader((tmp_path / "s" / "frames.csv").open()))
    later = [r for r in rows if int(r["day"]) >= 1]
    # a step both slipped and kidnapped reports no motion at all: a kidnap, not a slip
    want = [
        r["name"]
        for r in later
        if is_slipped(int(r["index"]), 2, 0.5) and not is_kidnapped(int(r["index"]), 2, 0.3)
    ]
    assert got["share"] == 0.5 and got["fault"] == "slips" and got["frames"] == want and want
    assert summary["kidnaps"]["frames"] and not set(summary["kidnaps"]["frames"]) & set(want)
    assert sum(g["frames"] for g in got["groups"].values()) == len(later)
    for a, b in zip(rows, rows[1:], strict=False):
        kept = b["day"] == a["day"] and a["slipped_since"] == "True"
        assert b["slipped_since"] == ("True" if kept else b["slipped"])
    false = sum(g["false"] for g in got["groups"].values())
    assert false == sum(r["odometry_verdict"] == "false" for r in later)
    table = (tmp_path / "s" / "table.md").read_text()
    assert (
        "Slips (--odometry-slip 0.5): the wheels slipped" in table
        and "Kidnaps (--odometry-kidnap 0.3)" in table
    )


def test_kidnap_summary_splits_the_frames_by_the_last_kidnap():
    from homeloc.eval.longterm_kidnaps import kidnap_line, kidnap_summary

    def rec(day, kid, carried, verdict):
        return {
            "name": f"d{day}",
            "day": day,
            "kidnapped": kid,
            "carried": carried,
            "odometry": {"verdict": verdict},
        }

    frames = [rec(0, False, False, None), rec(1, False, False, "correct"), rec(1, True, True, "false"),
              rec(1, False, True, "false"), rec(1, False, True, None), rec(2, False, False, "correct")]  # fmt: skip
    k = kidnap_summary(frames, 0.2)
    assert k["frames"] == ["d1"] and k["share"] == 0.2
    assert k["groups"] == {"carried_to": {"frames": 1, "correct": 0, "false": 1, "none": 0},
                           "after": {"frames": 2, "correct": 0, "false": 1, "none": 1},
                           "rest": {"frames": 2, "correct": 2, "false": 0, "none": 0}}  # fmt: skip
    line = kidnap_line(k)
    assert (
        "carried to 0 / 1 / 0 of 1" in line
        and "next dock 0 / 1 / 1 of 2" in line
        and "rest 2 / 0 / 0 of 2" in line
    )
    # slips: the same split by their own keys
    for r in frames:
        r["slipped"], r["slipped_since"] = r.pop("kidnapped"), r.pop("carried")
    s = kidnap_summary(frames, 0.2, fault="slips")
    assert s["groups"] == k["groups"] and s["frames"] == ["d1"] and s["fault"] == "slips"
    assert kidnap_summary(frames, 0.2)["frames"] == []  # no kidnap keys: no kidnaps
    assert "Slips (--odometry-slip 0.2)" in kidnap_line(s) and "slipped to 0 / 1 / 0 of 1" in kidnap_line(s)


def test_the_odometry_map_may_file_experiences_where_its_prior_puts_the_robot(tmp_path):
    from homeloc.runtime.longterm import LongTermMap
    from homeloc.runtime.longterm.odometry import planar

    data = make_home(tmp_path)
    (home,) = read_longterm(data)
    kw = dict(data=str(data), budget_bytes=60_000, odometry=True, refresh_below=1.0, odometry_dock=True,
              max_days=2)  # fmt: skip
    off = {}
    for poses in ("exact", "belief"):
        out = run_longterm(LongTermEvalConfig(out=tmp_path / poses, odometry_map_poses=poses, **kw))
        b = json.loads((out / "summary.json").read_text())["belief"]
        assert b["map_poses"] == poses and 0 < b["held"] <= 1 and b["m_median"] >= 0
        assert f"--odometry-map-poses {poses}" in (out / "table.md").read_text()
        assert "odometry_belief_m" in (out / "frames.csv").read_text().splitlines()[0]
        state = out / "state" / "home_00000"
        m = LongTermMap.load(state / json.loads((state / "progress.json").read_text())["maps"]["odometry"])
        filed = np.stack([planar(m.experience(k)["pose"]) for k in m.keyframe_ids])
        true = np.stack([planar(home.frames[int(k)].pose) for k in m.keyframe_ids])
        off[poses] = np.hypot(*(filed[:, :2] - true[:, :2]).T)
    assert np.allclose(
        off["exact"], 0.0, atol=1e-6
    )  # the rendered pose (a SLAM map without error), as float32
    assert np.nanmax(off["belief"]) > 0.005  # the prior's own estimate, noisy odometry and all


def test_the_evaluator_codes_descriptors_as_the_long_term_map_does_by_default():
    from homeloc.eval.cli import _longterm_parser
    from homeloc.runtime.longterm.config import DESCRIPTOR_BITS

    assert LongTermEvalConfig(data="x").descriptor_bits == DESCRIPTOR_BITS
    assert _longterm_parser().parse_args(["--data", "x"]).descriptor_bits == DESCRIPTOR_BITS

"""Issue #17's target check (pure): per home and day, memory after the first week, decay."""

from homeloc.eval.longterm_targets import home_days, met, target_check, targets_line


def frame(home: str, day: int, verdict: str | None) -> dict:
    return {"home": home, "day": day, "m": {"verdict": verdict}}


def test_a_home_day_is_met_only_at_the_share_with_nothing_false():
    assert met({"frames": 20, "correct": 19, "false": 0})  # 0.95 exactly
    assert not met({"frames": 20, "correct": 18, "false": 0})
    assert not met({"frames": 8, "correct": 8, "false": 1})


def test_days_are_counted_per_home_not_pooled():
    # day 2: home a 7/8 and home b 40/40 pool to 47/48 = 0.98, yet home a missed its day
    frames = [frame("a", 0, None)] * 3 + [frame("a", 1, "correct")] * 8 + [frame("b", 1, "correct")] * 6
    frames += [frame("b", 1, None), frame("b", 1, "false")]
    frames += [frame("a", 2, "correct")] * 7 + [frame("a", 2, None)] + [frame("b", 2, "correct")] * 40
    cells = home_days(frames, "m", first_day=0)
    assert [(c["home"], c["day"], c["correct"], c["false"]) for c in cells] == [
        ("a", 1, 8, 0), ("a", 2, 7, 0), ("b", 1, 6, 1), ("b", 2, 40, 0)
    ]  # fmt: skip
    rows = [{"day": d, "map_bytes": 100} for d in (0, 1, 2)]
    t = target_check(frames, rows, "m", budget_bytes=1000)
    assert t["home_days"] == 4 and t["home_days_met"] == 2
    assert t["missed"] == ["a day 2: 7/8, 0 false", "b day 1: 6/8, 1 false"]
    assert (t["frames"], t["correct"], t["false"]) == (64, 61, 1)


def test_memory_after_the_first_week_and_the_decay():
    # 14 days after the mapping day; success falls from 1.0 in the first week to 0.5 in the last;
    # bytes grow to the budget in the first week, then one day goes over it
    frames = [frame("h", d, "correct") for d in range(1, 8) for _ in range(2)]
    frames += [frame("h", d, v) for d in range(8, 15) for v in ("correct", None)]
    rows = [{"day": d, "map_bytes": min(100 * d, 700) + (50 if d == 10 else 0)} for d in range(15)]
    t = target_check(frames, rows, "m", budget_bytes=700)
    assert t["bytes_after_week"] == [700, 750] and t["within_budget"] is False
    assert t["first_week_success"] == 1.0 and t["last_week_success"] == 0.5
    assert target_check(frames, rows, "m", budget_bytes=None)["within_budget"] is None
    line = targets_line({"m": t}, 700)
    assert "m 7 of 14 home-days" in line and "700-750 B (OVER)" in line and "1.000 -> last week 0.500" in line

"""Which scheduled large changes the patrol could see (eval.longterm_visibility) and how change
detection counts them."""

import json

import numpy as np
import pytest

from homeloc.data_synthesis.formats.longterm import read_longterm
from homeloc.eval.evaluate_longterm import change_detection, change_line
from homeloc.eval.longterm_visibility import VISIBLE_SHARE, event_visibility, view_change, visible
from homeloc.runtime.io import write_image
from tests.data_synthesis.test_formats_longterm import SPOTS, make_home


def _masks(root, days: int, share) -> None:
    """changed/<name>.png for every frame: the top ``share(day, spot)`` of its rows changed."""
    home = root / "home_00000"
    for day in range(days):
        for k in range(len(SPOTS)):
            m = np.zeros((120, 160), np.uint8)
            m[: int(round(120 * share(day, k)))] = 255
            write_image(home / "changed" / f"d{day}_f{k}.png", m)


def _schedule(root, schedule: list[dict]) -> None:
    p = root / "home_00000" / "cameras.json"
    cams = json.loads(p.read_text())
    p.write_text(json.dumps(cams | {"schedule": schedule}))


def test_view_change_is_the_rooms_changed_share_after_against_before(tmp_path):
    # room 0 (spots 0 and 1) rearranged on day 3: half of its view changed from then on; room 1
    # (spot 2) has daily clutter at 0.05 every day, before and after
    make_home(tmp_path, days=6)
    _masks(tmp_path, 6, lambda day, k: (0.5 if day >= 3 else 0.0) if k < 2 else 0.05)
    (home,) = read_longterm(tmp_path)
    assert view_change(home, "rearrange", 0, 3, within_days=2) == pytest.approx(0.5, abs=0.01)
    assert view_change(home, "rearrange", 1, 3, within_days=2) == pytest.approx(0.0, abs=1e-6)
    # decorations taken down on day 3 (up before): the change is as large
    assert view_change(home, "decorations", 0, 3, within_days=2) == pytest.approx(0.5, abs=0.01)
    # no frames of the room before the first day: not measured; a repaint changes no depth
    assert view_change(home, "rearrange", 0, 0, within_days=2) is None
    assert view_change(home, "repaint", 0, 3, within_days=2) is None
    assert visible("repaint", None) and not visible("rearrange", None)
    # a repaint of a room the patrol had not seen before (day 0: nothing before it) changed nothing it knew
    assert view_change(home, "repaint", 0, 0, within_days=2) == 0.0 and not visible("repaint", 0.0)
    assert view_change(home, "repaint", 0, 9, within_days=2) == 0.0  # ... or does not see after it
    assert visible("rearrange", VISIBLE_SHARE) and not visible("rearrange", VISIBLE_SHARE - 0.01)


def test_event_visibility_keys_every_start_and_end_and_skips_homes_without_masks(tmp_path):
    make_home(tmp_path, days=6)
    _schedule(tmp_path, [{"kind": "rearrange", "room": 0, "start": 3, "end": None},
                         {"kind": "decorations", "room": 1, "start": 2, "end": 4}])  # fmt: skip
    (home,) = read_longterm(tmp_path)
    assert event_visibility([home], within_days=2) == {}  # rendered without changed/ folder
    _masks(tmp_path, 6, lambda day, k: (0.5 if day >= 3 else 0.0) if k < 2 else 0.05)
    (home,) = read_longterm(tmp_path)
    got = event_visibility([home], within_days=2)
    assert set(got) == {("home_00000", "rearrange", 0, 3), ("home_00000", "decorations", 1, 2),
                        ("home_00000", "decorations", 1, 4)}  # fmt: skip
    assert got[("home_00000", "rearrange", 0, 3)] == pytest.approx(0.5, abs=0.01)
    assert got[("home_00000", "decorations", 1, 4)] == pytest.approx(0.0, abs=1e-6)


def test_change_detection_counts_the_events_in_view_apart():
    schedule = {"h": [{"kind": "rearrange", "room": 1, "start": 5, "end": None},
                      {"kind": "decorations", "room": 0, "start": 6, "end": None},
                      {"kind": "repaint", "room": 0, "start": 8, "end": None}]}  # fmt: skip
    infos = [{"home": "h", "day": d, "method": "longterm", "major_changes": c}
             for d, c in ((5, []), (7, [1]), (9, [0]))]  # fmt: skip
    # the rearrangement seen (0.3 of its room's view), the decorations not (0.01), the repaint by colour
    vis = {("h", "rearrange", 1, 5): 0.3, ("h", "decorations", 0, 6): 0.01, ("h", "repaint", 0, 8): None}
    r = change_detection(schedule, infos, within_days=3, rooms={"h": 2}, visibility=vis)
    assert [(x["visible"], x["view_change"], x["detected"]) for x in r["rows"]] == [
        (True, 0.3, True), (False, 0.01, True), (True, None, True)]  # fmt: skip
    assert r["visible"] | {"chance": None} == {"share": VISIBLE_SHARE, "events": 2, "detected": 2, "unknown": 0,
                                              "chance": None}  # fmt: skip
    # chance over the two visible events alone: 2 declarations on 3 days x 2 rooms; the
    # rearrangement's window (days 5-8, room 1) holds days 5 and 7, the repaint's (8-11, room 0) day 9
    want = (1 - (1 - 2 / 6) ** 2) + (1 - (1 - 1 / 6) ** 2)
    assert r["visible"]["chance"] == pytest.approx(want, abs=1e-3)
    assert (
        "In view (a repaint of a room seen before it, or the room's view changed by >= 0.10 of its pixels): 2 of 2 detected"
        in (change_line(r, "longterm"))
    )
    # an event the masks do not cover is not counted either way; without visibility, no such fields
    r = change_detection(schedule, infos, within_days=3, visibility={("h", "rearrange", 1, 5): 0.3})
    assert [x["visible"] for x in r["rows"]] == [True, None, None] and r["visible"]["unknown"] == 2
    assert "2 not measured (no changed masks)" in change_line(r, "longterm")
    r = change_detection(schedule, infos, within_days=3)
    assert (
        "visible" not in r and "visible" not in r["rows"][0] and "In view" not in change_line(r, "longterm")
    )

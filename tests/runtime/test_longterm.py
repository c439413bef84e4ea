"""The long-term map: experiences per place, usage statistics, the byte budget, rooms and major
changes, the map file. Synthetic frames: each place is a cloud of 3-D points seen from two
nearby views; another appearance (night) gives the same points new descriptors."""

import subprocess
import sys

import numpy as np
import pytest

from homeloc.runtime import mapstore
from homeloc.runtime.features import Features
from homeloc.runtime.longterm import (
    BudgetConfig,
    ChangeConfig,
    ChangeMonitor,
    LongTermMap,
    PlaceConfig,
    Rooms,
    SearchConfig,
    plan_forget,
    usefulness,
)
from homeloc.runtime.loop_closure import LoopClosureDetector
from tests.runtime.test_frontend import synthetic_two_view

ROOMS = [[0, 0, 4, 4], [4, 0, 8, 4], [20, 0, 24, 4]]  # rooms 0 and 1 touch, room 2 stands apart


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def pose_at(x, y, yaw_deg=0.0):
    """Camera-to-map pose at (x, y, 0.8) looking along yaw in the floor plane (OpenCV axes)."""
    a = np.radians(yaw_deg)
    z = np.array([np.cos(a), np.sin(a), 0.0])
    xc = np.array([np.sin(a), -np.cos(a), 0.0])
    T = np.eye(4)
    T[:3, :3] = np.stack([xc, np.cross(z, xc), z], axis=1)
    T[:3, 3] = [x, y, 0.8]
    return T


class Place:
    """Two views of one place, in several appearances; ``g``: its global descriptor."""

    def __init__(self, seed, n=150):
        self.f0, self.f1, self.K, _, _ = synthetic_two_view(n=n, seed=seed)
        self.g = unit(np.random.default_rng(seed).standard_normal(16))
        self.seed, self.n = seed, n

    def view(self, which, appearance=0):
        f, g = (self.f0, self.f1)[which], self.g
        if appearance:  # new local descriptors; the global one moves a little (retrieval ranks it first)
            rng = np.random.default_rng(1000 * self.seed + appearance)
            f = Features(f.keypoints, f.scores, unit(rng.standard_normal((self.n, 16))))
            g = unit(g + 0.3 * unit(rng.standard_normal(16)))
        return unit(g + 0.01 * which), f


def test_a_failed_localization_becomes_an_experience_of_the_place():
    a = Place(0)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10))
    u = m.observe(*a.view(0), pose=pose_at(1, 1), kf_id=10)
    assert u.localization is None and u.added == 10 and u.place == 0
    u = m.observe(*a.view(1), pose=pose_at(1.2, 1), kf_id=11)  # same appearance: localizes, nothing added
    assert u.localization.kf_id == 10 and u.localization.place == 0 and u.added is None
    e = m.experience(10)
    assert e["matches"] == 1 and e["last_used"] == m.clock == 2 and e["created"] == 1
    u = m.observe(*a.view(0, appearance=1), pose=pose_at(1.1, 1.1, 10), kf_id=12)  # night: fails
    assert u.localization is None and u.added == 12 and u.place == 0
    u = m.observe(*a.view(1, appearance=1), pose=pose_at(1, 1), kf_id=13)  # the next night localizes
    assert u.localization.kf_id == 12 and u.added is None
    s = m.stats()
    assert (s.experiences, s.places, s.clock) == (2, 1, 4)


def test_a_new_pose_founds_a_place_and_rooms_restrict_the_search():
    a, b = Place(0), Place(1)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10))
    m.observe(*a.view(0), pose=pose_at(1, 1))
    assert m.observe(*b.view(0), pose=pose_at(21, 1)).place == 1  # another room: another place
    assert m.observe(*a.view(0, 1), pose=pose_at(1, 1, 90)).place == 2  # same spot, view turned 90 deg
    loc = m.observe(*b.view(1), pose=pose_at(21, 1)).localization
    assert loc.place == 1 and loc.room == 2 and m.last_room == 2
    loc = m.observe(*a.view(1), pose=pose_at(1, 1)).localization
    assert loc.kf_id == 0 and loc.searched == "all"  # room 0 is not next to room 2: found outside the prior
    loc = m.observe(*a.view(1), pose=pose_at(1, 1)).localization
    assert loc.searched == "rooms" and m.places_of_room(0).tolist() == [0, 2]


def test_frames_without_enough_keypoints_are_not_kept():
    a = Place(0, n=40)
    m = LongTermMap(K=a.K, place=PlaceConfig(min_keypoints=100))
    u = m.observe(*a.view(0), pose=pose_at(1, 1))
    assert u.added is None and len(m) == 0


def test_usefulness_orders_by_use_recency_and_staleness():
    s = usefulness(np.array([7, 0, 7, 7]), np.array([90, 90, 0, 90]), np.array([0, 0, 0, 1]), 100, 50.0, 4.0)
    assert s[0] > s[1] and s[0] > s[2] and s[0] > s[3]
    assert s[0] - s[2] == pytest.approx(90 / 50) and s[0] - s[3] == pytest.approx(4.0)
    young = usefulness(
        np.array([7, 0]), np.array([90, 99]), np.array([0, 0]), 100, 50.0, 4.0, np.array([0, 99]), grace=5
    )
    assert young[1] > young[0]  # created 1 tick ago: in its grace period, forgotten last


def test_plan_forget_drops_the_least_useful_but_never_the_last_of_a_place():
    places = np.array([0, 0, 0, 1, 2])
    score = np.array([5.0, 1.0, 3.0, -9.0, 0.0])
    plan = plan_forget(places, np.full(5, 100), score, 10, max_bytes=310)
    assert plan.drop.tolist() == [1, 2] and plan.nbytes == 310 and not plan.over_budget
    plan = plan_forget(places, np.full(5, 100), score, 10, max_bytes=50)  # only places' last ones left
    assert plan.drop.tolist() == [1, 2] and plan.over_budget
    assert plan_forget(places, np.full(5, 100), score, 10, max_bytes=None).drop.size == 0


def test_the_budget_is_kept_by_forgetting():
    a, b = Place(0), Place(1)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10))
    for k in range(4):  # four appearances of place a, one of b
        m.observe(*a.view(0, k), pose=pose_at(1, 1))
    m.observe(*b.view(0), pose=pose_at(21, 1))
    m.observe(*a.view(1, 3), pose=pose_at(1, 1))  # the last appearance of a is used again
    full = m.stats()
    assert (full.experiences, full.places) == (5, 2)
    budget = full.total_bytes - int(1.5 * full.bytes_per_experience)
    gone = m.forget(budget)
    s = m.stats()
    assert len(gone) == 2 and s.total_bytes <= budget and s.places == 2
    assert 3 in m.keyframe_ids and 4 in m.keyframe_ids  # a's used experience and b's only one stay
    assert len(m.forget(1)) == 1  # a budget no map meets: down to one experience per place, no further
    assert m.keyframe_ids.tolist() == [3, 4] and m.stats().places == 2


def test_change_monitor_tells_major_from_minor_changes():
    c = ChangeMonitor(ChangeConfig(window=4, major_share=0.5))
    outcomes = [True, False, True, True, True, False, True, True]  # a bag on the floor: single failures
    assert all(c.record(0, ok, t) is None for t, ok in enumerate(outcomes))
    assert [c.record(1, False, t) for t in range(10, 13)] == [None, None, None]
    assert c.record(1, True, 13) == 10  # rearranged: declared once, dated from the window's start
    assert c.record(1, False, 14) is None
    restored = ChangeMonitor(ChangeConfig(window=4, major_share=0.5))
    restored.restore(c.state())
    assert restored.history == c.history
    off = ChangeMonitor(ChangeConfig(window=4))  # the failure signal is off by default (session 25)
    assert ChangeConfig().major_share is None
    assert [off.record(1, False, t) for t in range(8)] == [None] * 8 and not off.history


def test_a_major_change_makes_the_old_experiences_of_the_room_stale():
    a = Place(0)
    m = LongTermMap(
        K=a.K,
        rooms=ROOMS,
        place=PlaceConfig(min_keypoints=10),
        change=ChangeConfig(window=2, major_share=1.0),
    )
    m.observe(*a.view(0), pose=pose_at(1, 1))
    m.observe(*a.view(0, 1), pose=pose_at(1, 1))  # rearranged: fails at a known place, added
    u = m.observe(*a.view(0, 2), pose=pose_at(1, 1))  # fails again: the room changed
    assert u.major_change == 0
    assert [int(m.experience(k)["stale"]) for k in m.keyframe_ids] == [1, 0, 0]
    assert m.observe(*a.view(1), pose=pose_at(1, 1)).localization.kf_id == 0  # matched again: fresh
    assert m.experience(0)["stale"] == 0


def test_the_map_file_round_trips_byte_for_byte_and_refuses_damage(tmp_path):
    a, b = Place(0), Place(1)
    m = LongTermMap(
        K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), budget=BudgetConfig(max_bytes=10**6)
    )
    m.observe(*a.view(0), pose=pose_at(1, 1))
    m.observe(*b.view(0), pose=pose_at(21, 1))
    m.observe(*a.view(1), pose=pose_at(1, 1))
    p = m.save(tmp_path / "home.hlmap")
    m2 = LongTermMap.load(p)
    assert m2.save(tmp_path / "again.hlmap").read_bytes() == p.read_bytes()
    assert (m2.clock, m2.last_room, m2.budget_config) == (m.clock, m.last_room, m.budget_config)
    assert m2.observe(*b.view(1), pose=pose_at(21, 1)).localization.kf_id == 1
    data = bytearray(p.read_bytes())
    data[-5] ^= 1
    (tmp_path / "bad.hlmap").write_bytes(bytes(data))
    with pytest.raises(mapstore.MapFormatError, match="bad.hlmap: checksum mismatch"):
        LongTermMap.load(tmp_path / "bad.hlmap")
    meta, arrays = mapstore.read(p)
    mapstore.write(tmp_path / "future.hlmap", meta | {"format_version": 99}, arrays)
    with pytest.raises(mapstore.MapFormatError, match="future.hlmap: long-term map format version 99"):
        LongTermMap.load(tmp_path / "future.hlmap")


def test_a_loop_closure_map_loads_as_a_long_term_map(tmp_path):
    a, b = Place(0), Place(1)
    det = LoopClosureDetector(index="flat", train_size=None, K=a.K, min_inliers=25)
    det.add_keyframe(5, a.view(0)[0], features=a.f0)
    det.add_keyframe(7, b.view(0)[0], features=b.f0)
    m = LongTermMap.load(det.save(tmp_path / "old.hlmap"))
    assert m.keyframe_ids.tolist() == [5, 7] and m.stats().places == 2 and m.verify_config.min_inliers == 25
    assert m.localize(*b.view(1)).kf_id == 7


def test_bad_input_is_refused_with_the_reason():
    a = Place(0)
    m = LongTermMap(K=a.K)
    with pytest.raises(ValueError, match="needs its features"):
        m.observe(a.g)
    with pytest.raises(ValueError, match="pose must be a finite 4 x 4"):
        m.observe(*a.view(0), pose=np.eye(3))
    m.add_experience(3, *a.view(0))
    with pytest.raises(ValueError, match="keyframe 3 is already in the map"):
        m.add_experience(3, *a.view(1))
    with pytest.raises(ValueError, match="radius_m must be > 0"):
        PlaceConfig(radius_m=0)
    with pytest.raises(ValueError, match="rooms must be finite"):
        Rooms([[0, 0, -1, 1]])


def test_rooms_of_poses_and_neighbours():
    r = Rooms(ROOMS)
    assert [r.room_of(pose_at(x, 1)) for x in (1, 5, 22, 10)] == [0, 1, 2, 1]  # (10, 1): nearest room
    assert r.neighbours(0) == {0, 1} and r.neighbours(2) == {2}
    assert Rooms().room_of(pose_at(1, 1)) == -1


def test_longterm_runtime_does_not_import_torch():
    code = "import sys, homeloc.runtime.longterm\nassert 'torch' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_weak_localization_can_refresh_the_place():
    a = Place(0)
    strict = LongTermMap(
        K=a.K, place=PlaceConfig(min_keypoints=10, refresh_below=1.0)
    )  # every match is "weak"
    strict.observe(*a.view(0), pose=pose_at(1, 1))
    u = strict.observe(*a.view(1), pose=pose_at(1.5, 1))  # within the place: filed by the localization
    assert u.localization.kf_id == 0 and u.added == 1 and u.place == u.localization.place == 0
    u = strict.observe(*a.view(0), pose=pose_at(9, 9))  # far from it by pose: a place of its own there
    assert (
        u.localization is not None
        and u.localization.place == 0
        and u.added == 2
        and u.place == 1
        and strict.stats().places == 2
    )
    u = strict.observe(*a.view(1))  # no pose: filed by the localization
    assert u.localization is not None and u.added == 3 and u.place == u.localization.place
    with pytest.raises(ValueError, match="place 7 is not in the map"):
        strict.add_experience(9, *a.view(0), place=7)


def test_per_place_retrieval_gives_every_place_a_candidate():
    a, b = Place(0), Place(1)
    m = LongTermMap(K=a.K, search=SearchConfig(top_k=2), place=PlaceConfig(min_keypoints=10))
    for k in range(3):  # three appearances of a, all closer to the query's global descriptor than b
        m.add_experience(k, unit(b.g + 0.5 * a.view(0, k + 1)[0]), a.view(0, k + 1)[1], pose_at(1, 1))
    m.add_experience(3, b.view(0)[0], b.view(0)[1], pose_at(21, 1))
    query = unit(b.g + 0.8 * a.g), b.view(1)[1]
    assert m.localize(*query) is None  # the two best experiences are both a's
    m.search_config = SearchConfig(top_k=2, per_place=True)
    assert m.localize(*query).kf_id == 3

"""The change layer's colour signal: a frame's colour signature ignores the light's colour and
brightness but not a repainted wall, and the map declares a room repainted from it."""

import numpy as np
import pytest

from homeloc.runtime import mapstore
from homeloc.runtime.longterm import ChangeConfig, ChangeMonitor, LongTermMap, PlaceConfig
from homeloc.runtime.longterm.colour import SCALE, colour_distance, colour_signature
from homeloc.runtime.longterm.store import Tables
from tests.runtime.test_longterm import ROOMS, Place, pose_at

BEIGE, BLUE = (0.75, 0.68, 0.55), (0.35, 0.55, 0.8)


def room_image(wall, gain=(1.0, 1.0, 1.0), seed=0, shape=(240, 320)):
    """A frame of a room: a wall over a wooden floor, furniture of fixed colours (one scene per
    ``seed``), lit by light of colour and brightness ``gain`` (linear RGB factors)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    srgb = np.empty((h, w, 3))
    srgb[: h * 2 // 3] = wall
    srgb[h * 2 // 3 :] = (0.55, 0.4, 0.25)
    for _ in range(8):
        y, x = rng.integers(0, h - 40), rng.integers(0, w - 50)
        srgb[y : y + 40, x : x + 50] = rng.uniform(0.15, 0.9, 3)
    noise = np.random.default_rng(seed + 1).normal(0, 0.01, srgb.shape)
    lin = np.clip(srgb + noise, 0, 1) ** 2.2 * np.asarray(gain)
    return (np.clip(lin, 0, 1) ** (1 / 2.2) * 255).round().astype(np.uint8)


def test_the_signature_ignores_the_light_and_sees_new_paint():
    day = colour_signature(room_image(BEIGE))
    assert day.dtype == np.uint16 and day.shape == (256,) and int(day.sum(dtype=np.int64)) == SCALE
    lamp = colour_signature(room_image(BEIGE, gain=(0.5, 0.35, 0.18)))  # dim, warm lamp light
    blue_sky = colour_signature(room_image(BEIGE, gain=(0.8, 0.9, 1.1)))
    repainted = colour_signature(room_image(BLUE))
    near = colour_distance(day, np.stack([lamp, blue_sky]))
    assert near.max() < 0.2
    assert colour_distance(day, repainted[None])[0] > 0.5
    assert colour_distance(day, day[None])[0] == 0.0
    assert colour_signature(room_image(BEIGE, gain=(0.01, 0.01, 0.01))) is None  # no colour to read
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        colour_signature(np.zeros((24, 32), np.uint8))


def _reference_signature(image):
    """The signature written out plainly (float powers, logs, histogram2d), as first measured."""
    srgb = image.astype(np.float32) / 255.0
    lin = srgb**2.2
    ok = (lin.sum(axis=2) > 0.03) & (srgb.max(axis=2) < 0.98)
    r, g, b = (lin[..., k][ok] + 1e-4 for k in range(3))
    u, v = np.log(r / g), np.log(b / g)
    edges = np.linspace(-1.0, 1.0, 17)
    h, _, _ = np.histogram2d(u - np.median(u), v - np.median(v), [edges, edges])
    return h.ravel() / h.sum()


def test_the_table_lookups_compute_the_plain_formula():
    rng = np.random.default_rng(3)
    images = [room_image(BEIGE, (0.6, 0.5, 0.3), seed=2), rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)]
    for im in images:
        got = colour_signature(im).astype(np.float64) / SCALE
        assert np.abs(got - _reference_signature(im)).sum() < 0.002


def test_the_monitor_declares_a_colour_change_once_from_the_median_of_its_window():
    c = ChangeMonitor(ChangeConfig(colour_shift=0.4, colour_window=2))
    assert [c.record_colour(0, s, t) for t, s in enumerate([0.1, 0.5, 0.2, 0.45])] == [
        None
    ] * 4  # single jumps
    assert c.record_colour(1, 0.6, 10) is None
    assert c.record_colour(1, 0.5, 11) == 10  # repainted: declared once, dated from the window's start
    assert c.record_colour(1, 0.7, 12) is None
    restored = ChangeMonitor(ChangeConfig(colour_shift=0.4, colour_window=2))
    restored.restore(c.state(), c.colour_state())
    assert restored.colour == c.colour and restored.record_colour(1, 0.5, 13) == 12
    off = ChangeMonitor(ChangeConfig(colour_shift=None))
    assert [off.record_colour(0, 1.0, t) for t in range(4)] == [None] * 4


def _colour_map(**change):
    a, b = Place(0), Place(1)
    config = ChangeConfig(**{"window": 50, "major_share": 1.0, "colour_window": 2, "colour_min_refs": 3,
                             "colour_min_age": 1} | change)  # fmt: skip
    return a, b, LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), change=config)


LIGHTS = [(1, 1, 1), (0.5, 0.35, 0.18), (0.8, 0.9, 1.1), (0.3, 0.3, 0.3)]
AT_A, AT_B = pose_at(1, 1), pose_at(3, 2, 90)  # two places of room 0


def _seen_under_every_light(m, a, b, lights=LIGHTS):
    for k, gain in enumerate(lights):  # each light a new appearance: an experience each
        m.observe(*a.view(0, k), pose=AT_A, colour=colour_signature(room_image(BEIGE, gain)))
        m.observe(*b.view(0, k), pose=AT_B, colour=colour_signature(room_image(BEIGE, gain, seed=5)))


def test_a_repainted_room_is_declared_changed_by_its_colour():
    a, b, m = _colour_map()
    _seen_under_every_light(m, a, b)
    assert m._t.colours["colour_place"].tolist() == [0, 1] * 4  # one signature per frame, at its place
    quiet = [m.observe(*a.view(0, 10), pose=AT_A, colour=colour_signature(room_image(BEIGE, LIGHTS[1]))),
             m.observe(*b.view(0, 10), pose=AT_B, colour=colour_signature(room_image(BEIGE, LIGHTS[2], seed=5)))]  # fmt: skip
    assert [u.major_change for u in quiet] == [None, None]  # new light on the old paint: no change
    ups = [m.observe(*a.view(0, 20), pose=AT_A, colour=colour_signature(room_image(BLUE, LIGHTS[1]))),
           m.observe(*b.view(0, 20), pose=AT_B, colour=colour_signature(room_image(BLUE, LIGHTS[2], seed=5)))]  # fmt: skip
    assert [(u.major_change, u.change_signal) for u in ups] == [(None, None), (0, "colour")]
    stale = [int(m.experience(k)["stale"]) for k in m.keyframe_ids]
    assert stale == [1] * 10 + [0, 0]  # the old paint's experiences; the two of the new paint stay
    assert len(m._t.colours["colour_place"]) == 12  # the old looks stay remembered
    assert m._changes.declared == {0: m.clock}
    # the new paint under lights not seen since: no second declaration before its look is remembered
    again = [m.observe(*p.view(0, 30 + k), pose=at, colour=colour_signature(room_image(BLUE, LIGHTS[3], seed=sd)))
             for k, (p, at, sd) in enumerate([(a, AT_A, 0), (b, AT_B, 5)] * 2)]  # fmt: skip
    assert [u.major_change for u in again] == [None] * 4


def test_a_patrol_compares_its_colours_with_older_ones_only():
    # the repainted room seen twice in a row at one place: compared with every signature, the second
    # frame finds the first one's new look and the room is not declared; with those at least 3
    # frames old (colour_min_age), it is
    for age, want in ((1, [None, None]), (3, [None, 0])):
        a, b, m = _colour_map(colour_min_age=age)
        _seen_under_every_light(m, a, b)
        ups = [m.observe(*a.view(0, 20 + k), pose=AT_A, colour=colour_signature(room_image(BLUE, LIGHTS[k])))
               for k in range(2)]  # fmt: skip
        assert [u.major_change for u in ups] == want, age
    with pytest.raises(ValueError, match="colour_min_age must be >= 1"):
        ChangeConfig(colour_min_age=0)


def test_a_full_place_forgets_the_older_of_its_two_most_alike_looks():
    t = Tables()
    looks = [
        colour_signature(room_image(w, g))
        for w, g in ((BEIGE, (1, 1, 1)), (BLUE, (1, 1, 1)), (BEIGE, (0.9, 0.9, 0.9)))
    ]
    for clock, sig in enumerate(looks):
        t.add_colour(7, clock, sig, keep=2)
    t.add_colour(8, 9, looks[0], keep=2)  # another place's memory is its own
    assert t.colours["colour_place"].tolist() == [7, 7, 8]
    assert t.colours["colour_clock"].tolist() == [1, 2, 9]  # the first beige went, the blue stays


def test_the_colour_check_needs_references_a_pose_and_can_be_off():
    a, b, m = _colour_map()
    blue = colour_signature(room_image(BLUE))
    _seen_under_every_light(m, a, b, LIGHTS[:2])  # two references per place: fewer than colour_min_refs
    assert m.observe(*a.view(0, 20), pose=AT_A, colour=blue).major_change is None
    assert m.observe(*b.view(0, 20), pose=AT_B, colour=blue).major_change is None
    a, b, m = _colour_map(colour_shift=None)
    _seen_under_every_light(m, a, b)
    assert m.observe(*a.view(0, 20), pose=AT_A, colour=blue).major_change is None
    assert m.observe(*b.view(0, 20), pose=AT_B, colour=blue).major_change is None
    a, b, m = _colour_map()
    _seen_under_every_light(m, a, b)
    assert m.observe(*a.view(0, 20), colour=blue).major_change is None  # no pose: no references
    assert m.observe(*b.view(0, 20), colour=blue).major_change is None
    with pytest.raises(ValueError, match="colour must be a colour_signature"):
        m.observe(*a.view(0, 30), pose=AT_A, colour=np.zeros(10))


def test_an_rgb_frame_brings_its_own_signature_and_a_descriptor_none():
    from homeloc.runtime.longterm.map import _colour_of

    rgb = room_image(BEIGE)
    assert np.array_equal(_colour_of(rgb, None), colour_signature(rgb))
    assert _colour_of(np.ones(16, np.float32), None) is None and _colour_of(rgb[..., 0], None) is None


def test_colour_signatures_and_history_persist_and_version_1_maps_load(tmp_path):
    a, b, m = _colour_map()
    _seen_under_every_light(m, a, b)
    m.observe(*a.view(0, 20), pose=AT_A, colour=colour_signature(room_image(BLUE)))
    p = m.save(tmp_path / "home.hlmap")
    m2 = LongTermMap.load(p)
    assert all(np.array_equal(m2._t.colours[k], v) for k, v in m._t.colours.items())
    assert m2._changes.colour == m._changes.colour and len(m2._t.colours["colour_place"]) == 9
    assert m2._changes.colour_state() == m._changes.colour_state()
    # what session 23's runtime wrote: format 1, no colour memory, no colour history
    meta, arrays = mapstore.read(p)
    for k in ("colour_place", "colour_clock", "colour_signature"):
        arrays.pop(k)
    meta = {k: v for k, v in meta.items() if k != "colour_changes"} | {"format_version": 1}
    mapstore.write(tmp_path / "v1.hlmap", meta, arrays)
    old = LongTermMap.load(tmp_path / "v1.hlmap")
    assert old.keyframe_ids.tolist() == m.keyframe_ids.tolist()
    assert len(old._t.colours["colour_place"]) == 0 and old._changes.colour == {}


def test_a_map_saved_before_colour_min_age_keeps_comparing_with_every_signature(tmp_path):
    a, b, m = _colour_map(colour_min_age=5)
    p = m.save(tmp_path / "home.hlmap")
    assert LongTermMap.load(p).change_config.colour_min_age == 5  # saved, restored
    meta, arrays = mapstore.read(p)
    meta["settings"]["change"].pop("colour_min_age")  # what sessions 24-37 wrote
    mapstore.write(tmp_path / "old.hlmap", meta, arrays)
    assert LongTermMap.load(tmp_path / "old.hlmap").change_config.colour_min_age == 1
    assert ChangeConfig().colour_min_age == 32 and ChangeConfig().colour_window == 4  # new maps

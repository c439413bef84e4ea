"""Stored local features: the int8 and 4-bit descriptor codings, the map file's arrays, and maps
(loop-closure and long-term) that keep 4-bit descriptors."""

import numpy as np
import pytest

from homeloc.runtime import mapstore
from homeloc.runtime.features import Features
from homeloc.runtime.longterm import LongTermMap, PlaceConfig
from homeloc.runtime.loop_closure import LoopClosureDetector
from homeloc.runtime.loop_closure.config import VerifyConfig
from homeloc.runtime.loop_closure.stored_features import StoredFeatures, pack_features, unpack_features
from tests.runtime.test_longterm import ROOMS, Place, pose_at


def _features(n=600, dim=64, seed=0):
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((n, dim)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return Features(
        rng.uniform(0, 300, (n, 2)).astype(np.float32), rng.uniform(0, 1, n).astype(np.float32), d
    )


def test_four_bit_descriptors_take_half_the_bytes_and_keep_their_direction():
    f = _features()
    s8, s4 = StoredFeatures.compress(f, 512), StoredFeatures.compress(f, 512, bits=4)
    assert (s8.bits, s4.bits) == (8, 4)
    assert s8.nbytes == 512 * (4 + 64 + 1) and s4.nbytes == 512 * (4 + 32 + 1)
    top = np.argsort(-f.scores, kind="stable")[:512]
    d4 = s4.features().descriptors
    assert d4.shape == (512, 64)
    np.testing.assert_allclose(np.linalg.norm(d4, axis=1), 1.0, rtol=1e-5)
    # each kept descriptor still points where it did (cosine to the original)
    assert np.sum(d4 * f.descriptors[top], axis=1).min() > 0.95
    # and its nearest neighbour among the originals is itself
    assert (np.argmax(d4 @ f.descriptors[top].T, axis=1) == np.arange(512)).all()
    np.testing.assert_array_equal(s4.features().keypoints, s8.features().keypoints)


def test_the_four_bit_step_scales_with_the_descriptor_size():
    from homeloc.runtime.loop_closure.stored_features import STEP4, step4

    assert step4(64) == STEP4 and step4(16) == STEP4 and step4(256) == pytest.approx(STEP4 / 2)
    # each size keeps its descriptors' directions at least as well as 64-D does (mean cosine 0.984
    # there; a fixed 0.08 gives 0.968 at 128-D and 0.938 at 256-D)
    for dim in (16, 64, 128, 256):
        f = _features(dim=dim)
        d4 = StoredFeatures.compress(f, 512, bits=4).features().descriptors
        top = np.argsort(-f.scores, kind="stable")[:512]
        assert np.sum(d4 * f.descriptors[top], axis=1).mean() > 0.98
    # decoding normalizes, so the step is not stored: the levels alone give the directions (a map
    # coded with 0.08 at 128-D before session 43 reads as it did)
    s4 = StoredFeatures.compress(_features(dim=128), 50, bits=4)
    levels = np.stack([s4.descriptors >> 4, s4.descriptors & 15], axis=2).reshape(50, 128) - 8.0
    np.testing.assert_allclose(
        s4.features().descriptors, levels / np.linalg.norm(levels, axis=1, keepdims=True), atol=1e-6
    )


def test_four_bits_warn_once_when_the_codes_collapse(caplog, monkeypatch):
    from homeloc.runtime.loop_closure import stored_features

    monkeypatch.setattr(stored_features, "_warned", False)
    with caplog.at_level("WARNING", logger=stored_features.__name__):
        for dim in (16, 64, 256):
            StoredFeatures.compress(_features(dim=dim), 50, bits=4)
        assert not caplog.records  # spread descriptors of any size: distinct codes
        f = _features(dim=16)  # near-identical descriptors, like a random-weight model's
        alike = f.descriptors * 0.02 + np.linspace(1, 0.2, 16, dtype=np.float32)
        f = Features(f.keypoints, f.scores, alike / np.linalg.norm(alike, axis=1, keepdims=True))
        StoredFeatures.compress(f, 50, bits=4)
        StoredFeatures.compress(f, 50, bits=4)
        StoredFeatures.compress(f, 50)  # int8 keeps them apart: not checked
    assert len(caplog.records) == 1
    assert (
        "collapsed" in caplog.records[0].getMessage()
        and "descriptor_bits=8" in caplog.records[0].getMessage()
    )


def test_bad_codings_are_refused():
    with pytest.raises(ValueError, match="descriptor bits must be one of"):
        StoredFeatures.compress(_features(), 512, bits=2)
    with pytest.raises(ValueError, match="even size"):
        StoredFeatures.compress(_features(dim=63), 512, bits=4)
    with pytest.raises(ValueError, match="descriptor_bits must be one of"):
        VerifyConfig(descriptor_bits=6)
    mixed = {1: StoredFeatures.compress(_features(), 50), 2: StoredFeatures.compress(_features(), 50, bits=4)}
    with pytest.raises(ValueError, match="cannot share a map file"):
        pack_features(np.array([1, 2]), mixed)


def test_the_file_arrays_keep_the_coding_and_files_without_it_are_int8():
    ids = np.array([4, 9])
    s4 = {k: StoredFeatures.compress(_features(seed=k), 100, bits=4) for k in ids.tolist()}
    arrays = pack_features(ids, s4)
    assert arrays["feat_bits"].tolist() == [4]
    back = unpack_features(arrays, ids)
    assert back[9].bits == 4
    np.testing.assert_array_equal(back[9].descriptors, s4[9].descriptors)
    s8 = {k: StoredFeatures.compress(_features(seed=k), 100) for k in ids.tolist()}
    arrays = pack_features(ids, s8)
    assert "feat_bits" not in arrays  # the arrays every map before 4-bit coding wrote
    assert unpack_features(arrays, ids)[4].bits == 8
    with pytest.raises(ValueError, match="coded in 3 bits"):
        unpack_features(pack_features(ids, s4) | {"feat_bits": np.array([3])}, ids)


def test_a_long_term_map_with_four_bit_descriptors_localizes_saves_and_loads(tmp_path):
    a, b = Place(0), Place(1)

    def build(bits):
        m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10),
                        verify=VerifyConfig(descriptor_bits=bits))  # fmt: skip
        m.observe(*a.view(0), pose=pose_at(1, 1))
        m.observe(*b.view(0), pose=pose_at(21, 1))
        return m

    m8, m4 = build(8), build(4)
    saved = m8.stats().bytes_per_experience - m4.stats().bytes_per_experience
    assert saved == a.n * 16 / 2  # half of each kept keypoint's 16-D descriptor
    assert m4.localize(*a.view(1)).kf_id == 0 and m4.localize(*b.view(1)).kf_id == 1
    p = m4.save(tmp_path / "home.hlmap")
    m = LongTermMap.load(p)
    assert (
        m.verify_config.descriptor_bits == 4
        and m.save(tmp_path / "again.hlmap").read_bytes() == p.read_bytes()
    )
    assert m.observe(*b.view(1), pose=pose_at(21, 1)).localization.kf_id == 1
    meta, arrays = mapstore.read(p)
    mapstore.write(tmp_path / "odd.hlmap", meta, arrays | {"feat_bits": np.array([5], np.int64)})
    with pytest.raises(mapstore.MapFormatError, match="odd.hlmap: long-term map content not understood"):
        LongTermMap.load(tmp_path / "odd.hlmap")


def test_a_loop_closure_map_with_four_bit_descriptors_round_trips(tmp_path):
    a, b = Place(0), Place(1)
    det = LoopClosureDetector(index="flat", train_size=None, K=a.K, min_inliers=25, descriptor_bits=4)
    det.add_keyframe(5, a.view(0)[0], features=a.f0)
    det.add_keyframe(7, b.view(0)[0], features=b.f0)
    loaded = LoopClosureDetector.load(det.save(tmp_path / "m.hlmap"))
    assert loaded.descriptor_bits == 4 and loaded.config == det.config
    np.testing.assert_array_equal(loaded.features_of(7).descriptors, det.features_of(7).descriptors)
    m = LongTermMap.load(tmp_path / "m.hlmap")  # and it becomes a long-term map that keeps the coding
    assert m.verify_config.descriptor_bits == 4 and m.localize(*b.view(1)).kf_id == 7
    meta, arrays = mapstore.read(tmp_path / "m.hlmap")
    mapstore.write(tmp_path / "odd.hlmap", meta, arrays | {"feat_bits": np.array([5], np.int64)})
    with pytest.raises(mapstore.MapFormatError, match="odd.hlmap: stored descriptors coded in 5 bits"):
        LoopClosureDetector.load(tmp_path / "odd.hlmap")


def test_a_loop_closure_map_saved_before_the_option_keeps_its_int8_coding(tmp_path):
    a, b = Place(0), Place(1)
    det = LoopClosureDetector(index="flat", train_size=None, K=a.K, min_inliers=25, descriptor_bits=8)
    det.add_keyframe(5, a.view(0)[0], features=a.f0)
    meta, arrays = mapstore.read(det.save(tmp_path / "m.hlmap"))
    config = {k: v for k, v in meta["config"].items() if k != "descriptor_bits"}
    mapstore.write(
        tmp_path / "before.hlmap", meta | {"config": config}, arrays
    )  # as maps were written before
    for m in (
        LoopClosureDetector.load(tmp_path / "before.hlmap"),
        LongTermMap.load(tmp_path / "before.hlmap"),
    ):
        bits = m.descriptor_bits if isinstance(m, LoopClosureDetector) else m.verify_config.descriptor_bits
        assert bits == 8  # the file's coding, whatever today's default
    loaded = LoopClosureDetector.load(tmp_path / "before.hlmap")
    loaded.add_keyframe(7, b.view(0)[0], features=b.f0)  # a new keyframe is coded alike, so it saves
    again = LoopClosureDetector.load(loaded.save(tmp_path / "again.hlmap"))
    assert again.descriptor_bits == 8 and again.features_of(7).descriptors.shape == b.f0.descriptors.shape
    mapstore.write(
        tmp_path / "odd.hlmap", meta | {"config": config}, arrays | {"feat_bits": np.array([5], np.int64)}
    )
    with pytest.raises(mapstore.MapFormatError, match="odd.hlmap: stored descriptors coded in 5 bits"):
        LoopClosureDetector.load(tmp_path / "odd.hlmap")


def test_the_long_term_map_keeps_four_bits_by_default_and_older_maps_stay_int8(tmp_path):
    a = Place(0)
    m = LongTermMap(K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10))
    assert m.verify_config.descriptor_bits == 4
    m.observe(*a.view(0), pose=pose_at(1, 1))
    assert m._t.features[0].bits == 4
    p = m.save(tmp_path / "new.hlmap")
    assert LongTermMap.load(p).verify_config.descriptor_bits == 4
    assert mapstore.read(p)[0]["format_version"] == 3  # a runtime from before 4 bits refuses it by name
    old = LongTermMap(
        K=a.K, rooms=ROOMS, place=PlaceConfig(min_keypoints=10), verify=VerifyConfig(descriptor_bits=8)
    )
    old.observe(*a.view(0), pose=pose_at(1, 1))
    meta, arrays = mapstore.read(old.save(tmp_path / "int8.hlmap"))
    assert meta["format_version"] == 2  # int8 maps stay readable by older runtimes
    settings = meta["settings"] | {
        "verify": {k: v for k, v in meta["settings"]["verify"].items() if k != "descriptor_bits"}
    }
    mapstore.write(
        tmp_path / "before.hlmap", meta | {"settings": settings}, arrays
    )  # as maps were written before
    m = LongTermMap.load(tmp_path / "before.hlmap")
    assert m.verify_config.descriptor_bits == 8 and m._t.features[0].bits == 8
    assert m.observe(*a.view(1), pose=pose_at(1, 1)).localization.kf_id == 0
    b = Place(1)
    assert m.observe(*b.view(0), pose=pose_at(21, 1), kf_id=7).added == 7  # a new experience: int8 too
    assert {f.bits for f in m._t.features.values()} == {8} and m.save(tmp_path / "again.hlmap").exists()

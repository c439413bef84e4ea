"""Sharded datasets: determinism, regenerating one shard alone, resume after a kill, verification."""

import json

import numpy as np
import pytest

from homeloc.data_synthesis import jobs, shards
from homeloc.data_synthesis.datasets import (
    OnTheFlyPairs,
    OnTheFlyShapes,
    PairShardDataset,
    ShapesShardDataset,
)
from homeloc.data_synthesis.pairs import PairConfig, make_pair, pack_masks, unpack_masks
from homeloc.data_synthesis.sources import SourceMix

CFG = PairConfig(size=(48, 64))
SRC = ["skimage"]


def build(out, **kw):
    args = dict(num=6, seed=3, config=CFG, shard_size=2, image_format=".png")
    args.update(kw)
    return jobs.synthesize_pairs(SRC, out, **args)


def shard_bytes(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("pairs-*.tar"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    build(out)
    return out, shard_bytes(out)


def test_same_seed_same_bytes(tmp_path, reference):
    _, ref = reference
    build(tmp_path)
    assert shard_bytes(tmp_path) == ref
    m = shards.verify(tmp_path)
    assert m["complete"] and m["num"] == 6 and len(m["shards"]) == 3


def test_other_seed_other_bytes(tmp_path, reference):
    build(tmp_path, seed=4)
    assert shard_bytes(tmp_path) != reference[1]


def test_one_shard_regenerated_alone_equals_the_full_run(tmp_path, reference):
    build(tmp_path, only_shards=[1])
    assert shard_bytes(tmp_path) == {"pairs-000001.tar": reference[1]["pairs-000001.tar"]}
    with pytest.raises(shards.DatasetError, match="incomplete"):
        shards.verify(tmp_path)
    build(tmp_path)  # completes the rest
    assert shard_bytes(tmp_path) == reference[1]


def test_pair_alone_equals_pair_in_sequence():
    mix = SourceMix(SRC)
    seq = [make_pair(mix, CFG, 9, i) for i in range(4)]
    alone = make_pair(SourceMix(SRC), CFG, 9, 3)
    for a, b in ((seq[3].image0, alone.image0), (seq[3].image1, alone.image1), (seq[3].valid1, alone.valid1)):
        assert np.array_equal(a, b)
    assert seq[3].meta == alone.meta


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip_byte"])
def test_resume_redoes_exactly_the_damaged_shard(tmp_path, reference, damage, monkeypatch):
    build(tmp_path)
    victim = tmp_path / "pairs-000001.tar"
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:1000])
    else:
        data = bytearray(victim.read_bytes())
        data[700] ^= 0x01
        victim.write_bytes(bytes(data))
    with pytest.raises(shards.DatasetError) as e:
        shards.verify(tmp_path)
    assert "pairs-000001.tar" in str(e.value)
    written = []
    real = shards.write_shard
    monkeypatch.setattr(
        shards, "write_shard", lambda path, samples: written.append(path.name) or real(path, samples)
    )
    build(tmp_path)
    assert written == ["pairs-000001.tar"]
    assert shard_bytes(tmp_path) == reference[1]
    shards.verify(tmp_path)


def test_killed_run_resumes_and_temp_files_never_count(tmp_path, reference, monkeypatch):
    real = jobs.PairMaker.__call__

    def dying(self, indices):
        for k, s in enumerate(real(self, indices)):
            if indices.start == 2 and k == 1:
                raise KeyboardInterrupt  # killed in the middle of shard 1
            yield s

    monkeypatch.setattr(jobs.PairMaker, "__call__", dying)
    with pytest.raises(KeyboardInterrupt):
        build(tmp_path)
    assert not (tmp_path / "pairs-000001.tar").exists()
    assert not list(tmp_path.glob(".*.tmp")), "a failed shard leaves no temp file"
    m = json.loads((tmp_path / shards.MANIFEST).read_text())
    assert list(m["shards"]) == ["pairs-000000.tar"] and not m["complete"]
    # A hard kill (SIGKILL) can leave a temp file behind, and a finished-looking file the manifest
    # does not list: neither counts as finished.
    (tmp_path / ".pairs-000001.tar.abc123.tmp").write_bytes(b"half a shard")
    (tmp_path / "pairs-000002.tar").write_bytes(b"renamed but never recorded")
    with pytest.raises(shards.DatasetError, match="incomplete"):
        shards.verify(tmp_path)
    monkeypatch.setattr(jobs.PairMaker, "__call__", real)
    build(tmp_path)
    shards.verify(tmp_path)
    assert shard_bytes(tmp_path) == reference[1]
    assert not list(tmp_path.glob(".*.tmp")), "the resumed run removes the killed run's temp file"


def test_skipped_source_images_are_listed_in_the_manifest(tmp_path):
    """One unreadable file in a source folder: the run finishes, the manifest lists it; strict stops."""
    from homeloc.runtime.io import ImageReadError, write_image

    src = tmp_path / "src"
    for i in range(2):
        img = (np.random.default_rng(i).random((80, 100, 3)) * 255).astype(np.uint8)
        write_image(src / f"good{i}.png", img)
    (src / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut")
    args = dict(num=8, seed=0, config=CFG, shard_size=4, image_format=".png")
    jobs.synthesize_pairs([f"folder:{src}"], tmp_path / "out", **args)
    m = shards.verify(tmp_path / "out")
    assert list(m["skipped_sources"]) == [str(src / "bad.jpg")]
    with pytest.raises(ImageReadError, match="bad.jpg"):
        jobs.synthesize_pairs([f"folder:{src}"], tmp_path / "strict", strict=True, **args)
    build(tmp_path / "clean")  # a clean dataset's manifest has no such key (its bytes are unchanged)
    assert "skipped_sources" not in json.loads((tmp_path / "clean" / shards.MANIFEST).read_text())


def test_config_change_needs_overwrite(tmp_path):
    build(tmp_path, num=2)
    with pytest.raises(shards.DatasetError, match="another configuration"):
        build(tmp_path, num=2, seed=99)
    build(tmp_path, num=2, seed=99, overwrite=True)
    assert shards.verify(tmp_path)["config"]["seed"] == 99


def test_corrupt_manifest_is_named(tmp_path):
    build(tmp_path, num=2)
    (tmp_path / shards.MANIFEST).write_text("{not json")
    with pytest.raises(shards.DatasetError, match="corrupt manifest"):
        shards.verify(tmp_path)


def test_pair_dataset_reads_what_was_written_and_matches_on_the_fly(reference):
    out, _ = reference
    ds = PairShardDataset(out, gray=False)
    fly = OnTheFlyPairs(SRC, 6, seed=3, config=CFG, gray=False)
    assert len(ds) == 6
    for i in (0, 5):
        a, b = ds[i], fly[i]
        assert a["image0"].shape == (3, 48, 64) and a["valid1"].dtype.is_floating_point is False
        for k in ("image0", "image1", "valid1", "change1", "valid0"):
            assert (a[k] == b[k]).all(), k  # PNG shards are lossless
        assert np.allclose(a["H_0to1"], b["H_0to1"])


def test_masks_pack_roundtrip_and_old_layout():
    rng = np.random.default_rng(0)
    v1, c1, v0 = (rng.random((5, 6)) > 0.5 for _ in range(3))
    assert all(
        np.array_equal(a, b) for a, b in zip(unpack_masks(pack_masks(v1, c1, v0)), (v1, c1, v0), strict=True)
    )
    old = np.stack([v1, c1, v0], -1).astype(np.uint8) * 255
    assert all(np.array_equal(a, b) for a, b in zip(unpack_masks(old), (v1, c1, v0), strict=True))


def test_shapes_dataset(tmp_path):
    jobs.synthesize_shapes(tmp_path, num=3, seed=1, size=(48, 64), shard_size=2)
    ds = ShapesShardDataset(tmp_path)
    fly = OnTheFlyShapes(3, seed=1, size=(48, 64))
    assert len(ds) == 3
    assert (ds[2]["image"] == fly[2]["image"]).all() and (
        ds[2]["keypoint_map"] == fly[2]["keypoint_map"]
    ).all()
    with pytest.raises(shards.DatasetError, match="expected 'pairs'"):
        PairShardDataset(tmp_path)

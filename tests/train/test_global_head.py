"""Global head training: frozen keypoint network, cached maps, floor initialisation, CLI fit + resume."""

import csv
import json

import pytest
import torch

from homeloc.data_synthesis.export_places import export_places_eval
from homeloc.data_synthesis.place_jobs import synthesize_places
from homeloc.data_synthesis.places import PlaceConfig
from homeloc.models.global_head import GlobalHead
from homeloc.models.keypoints import KeypointNet
from tests.conftest import train_cli

SIZE = (64, 80)


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    """12 synthesized places (3 views), an evaluator-format copy, and a tiny keypoint checkpoint."""
    out = tmp_path_factory.mktemp("global_places")
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
    torch.manual_seed(0)
    KeypointNet("tiny").save(out / "kp.pt")
    return out


def _fit(tmp_path, places, *extra):
    override = tmp_path / "override.yaml"
    override.write_text(
        "trainer:\n"
        f"  default_root_dir: {tmp_path}\n"
        "  max_epochs: 1\n  max_time: null\n"
        "  logger:\n"
        "    - class_path: lightning.pytorch.loggers.CSVLogger\n"
        f"      init_args: {{save_dir: {tmp_path}, name: csv}}\n"
        "  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        f"      init_args: {{dirpath: {tmp_path / 'ckpt'}, save_last: true}}\n"
        "    - class_path: homeloc.train.places.HardNegativeMiner\n"
        "      init_args: {every_n_epochs: 1, k: 3}\n"
        f"model:\n  init_args:\n    keypoints: {places / 'kp.pt'}\n    clusters: 4\n    out_dim: 8\n    crop: 0.3\n"
        "data:\n  init_args:\n"
        f"    sources: ['synthesized:{places / 'train'}']\n"
        f"    val_sets: {{synth: 'places:{places / 'eval'}'}}\n"
        f"    cache_dir: {tmp_path / 'maps'}\n"
        "    places_per_batch: 6\n    batches_per_epoch: 2\n"
    )
    return train_cli("global_head_cpu.yaml", override, *extra)


def test_fit_trains_only_the_head_and_resumes(tmp_path, places):
    r = _fit(tmp_path, places)
    assert r.returncode == 0, r.stderr[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["global_step"] == 2
    start = KeypointNet.from_checkpoint(places / "kp.pt").state_dict()
    for k, v in start.items():  # frozen: weights and BatchNorm statistics unchanged
        torch.testing.assert_close(ckpt["state_dict"][f"keypoints.{k}"], v, msg=k)
    head, init = GlobalHead.from_checkpoint(last), GlobalHead.from_checkpoint(tmp_path / "head_init.pt")
    assert head.out_dim == 8 and head.dim == 16
    assert not torch.equal(head.proj.weight, init.proj.weight)  # the head did train
    rows = list(csv.DictReader(open(next((tmp_path / "csv").rglob("metrics.csv")))))
    recall = [float(r["val_synth/R@1"]) for r in rows if r.get("val_synth/R@1")]
    assert recall and 0.0 <= recall[-1] <= 1.0
    cached = sorted((tmp_path / "maps").glob("synthesized-*.npz")) + sorted(
        (tmp_path / "maps").glob("val-synth-*.npz")
    )
    assert len(cached) == 2
    stamps = [c.stat().st_mtime_ns for c in cached]
    r = _fit(tmp_path, places, "--trainer.max_epochs", "2", "--ckpt_path", str(last))
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == 4
    assert [c.stat().st_mtime_ns for c in cached] == stamps  # maps reused, not recomputed


def test_head_starts_at_the_kmeans_floor():
    from homeloc.models.places import kmeans_centroids

    torch.manual_seed(0)
    maps = torch.nn.functional.normalize(torch.randn(6, 16, 5, 7), dim=1)
    head = GlobalHead(16, 4, None)
    cells = maps.flatten(2).transpose(1, 2).reshape(-1, 16).numpy()
    head.init_centroids(torch.from_numpy(kmeans_centroids(cells, 4)))
    a = head.pool.soft_assign(maps)
    # alpha = 50: the soft assignment is (almost) the hard nearest-centre rule of plain VLAD
    hard = torch.cdist(maps.flatten(2).transpose(1, 2), head.pool.centroids[None]).argmin(-1)
    assert (a.flatten(2).argmax(1) == hard).float().mean() > 0.99
    with pytest.raises(ValueError, match="4 x 16"):
        head.init_centroids(torch.zeros(3, 16))


def test_attention_starts_as_plain_netvlad_and_round_trips(tmp_path):
    torch.manual_seed(0)
    maps = torch.nn.functional.normalize(torch.randn(2, 16, 4, 6), dim=1)
    plain, att = GlobalHead(16, 4, None), GlobalHead(16, 4, None, attention=True)
    att.pool.load_state_dict(plain.pool.state_dict())
    torch.testing.assert_close(att(maps), plain(maps), atol=1e-5, rtol=0)
    att.save(tmp_path / "h.pt")
    back = GlobalHead.from_checkpoint(tmp_path / "h.pt")
    assert back.attention is not None and back.hparams == att.hparams


def test_grid_branch_cells_fit_and_round_trip(tmp_path):
    from homeloc.models.global_head import grid_means

    torch.manual_seed(0)
    maps = torch.nn.functional.normalize(torch.randn(12, 16, 8, 12), dim=1)
    ref = torch.nn.functional.adaptive_avg_pool2d(maps, (2, 3)).flatten(2).transpose(1, 2).flatten(1)
    torch.testing.assert_close(grid_means(maps, 2, 3), ref)  # divisible sizes: the same cells
    tiny = grid_means(maps[:, :, :1, :2], 2, 3)  # fewer positions than bins: empty cells are 0
    assert tiny.shape == (12, 6 * 16) and torch.isfinite(tiny).all()
    assert (
        int((tiny.reshape(12, 6, 16).abs().sum(-1) == 0).sum(1).min()) == 4
    )  # 2 positions fill 2 of 6 cells
    head = GlobalHead(16, 4, 8, grid=(2, 3), grid_dim=5, grid_weight=0.5)
    assert head.out_dim == 13
    head.fit_grid(head.grid_cells(maps))
    out = head(maps)
    assert out.shape == (12, 13)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(12))
    # the layout half carries grid_weight of the NetVLAD half's (unit) length
    ratio = out[:, 8:].norm(dim=1) / out[:, :8].norm(dim=1)
    torch.testing.assert_close(ratio, torch.full((12,), 0.5))
    head.save(tmp_path / "g.pt")
    back = GlobalHead.from_checkpoint(tmp_path / "g.pt")
    assert back.grid == (2, 3) and back.hparams == head.hparams
    torch.testing.assert_close(back(maps), out)
    GlobalHead(16, 4, 8).save(tmp_path / "plain.pt")  # a head without a grid still loads as one
    assert GlobalHead.from_checkpoint(tmp_path / "plain.pt").grid is None
    with pytest.raises(ValueError, match="grid"):
        GlobalHead(16, 4, 8, grid=(0, 3))


def test_add_grid_branch_keeps_the_netvlad_part(tmp_path, places, capsys):
    from homeloc.train.grid_branch import add_grid_branch, main

    torch.manual_seed(0)
    base = GlobalHead(16, 4, 8)
    base.save(tmp_path / "head.pt")
    src = [f"synthesized:{places / 'train'}"]
    out = add_grid_branch(tmp_path / "head.pt", src, tmp_path / "grid.pt", (2, 2), 4, 0.5,
                          places / "kp.pt", tmp_path / "maps")  # fmt: skip
    head = GlobalHead.from_checkpoint(out)
    assert head.grid == (2, 2) and head.out_dim == 12
    record = json.loads(out.with_suffix(".json").read_text())
    assert (
        record["base_head"] == str(tmp_path / "head.pt")
        and record["views"] == 12 * 3
        and record["grid"] == [2, 2]
    )
    for k, v in base.state_dict().items():
        torch.testing.assert_close(head.state_dict()[k], v, msg=k)
    with pytest.raises(ValueError, match="already has a grid"):
        add_grid_branch(
            out, src, tmp_path / "again.pt", keypoints=places / "kp.pt", cache_dir=tmp_path / "maps"
        )
    capsys.readouterr()  # the progress bars so far
    with pytest.raises(SystemExit) as e:
        main(["--head", str(tmp_path / "nope.pt"), "--sources", src[0], "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "nope.pt: no such file" in err and len(err.splitlines()) == 1


def test_add_grid_branch_can_refit_the_projection(tmp_path, places):
    from homeloc.runtime.hashing import file_sha256
    from homeloc.train.global_data import load_source
    from homeloc.train.grid_branch import add_grid_branch, main

    torch.manual_seed(0)
    base = GlobalHead(16, 4, 8)
    base.save(tmp_path / "head.pt")
    src = [f"synthesized:{places / 'train'}"]
    out = add_grid_branch(tmp_path / "head.pt", src, tmp_path / "grid.pt", (2, 2), 4, 0.5, places / "kp.pt",
                          tmp_path / "maps", proj_dim=6)  # fmt: skip
    head = GlobalHead.from_checkpoint(out)
    assert head.out_dim_arg == 6 and head.out_dim == 10
    assert json.loads(out.with_suffix(".json").read_text())["projection"] == "PCA-whitening to 6 of the views"
    for k, v in base.state_dict().items():  # the trained NetVLAD stays; the projection is new
        if k.startswith("pool."):
            torch.testing.assert_close(head.state_dict()[k], v, msg=k)
    assert head.proj.weight.shape == (6, 64)  # base: 8 x 64
    # whitened on the very views it was fitted on: unit variance, zero mean in every output dim
    net = KeypointNet.from_checkpoint(places / "kp.pt").eval()
    maps = load_source(
        src[0], net, file_sha256(places / "kp.pt"), tmp_path / "maps", 640, 256, 0
    ).maps.flatten(0, 1)
    with torch.no_grad():
        z = head.proj(head.pooled(maps.float()))
    torch.testing.assert_close(z.mean(0), torch.zeros(6), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(6), atol=1e-2, rtol=0)
    # the same through the CLI (its int options must still save plain, weights-only-loadable hparams)
    args = ["--head", str(tmp_path / "head.pt"), "--sources", src[0], "--out", str(tmp_path / "cli.pt"), "--grid", "2", "2",
            "--grid_dim", "4", "--proj_dim", "6", "--keypoints", str(places / "kp.pt"), "--cache_dir", str(tmp_path / "maps")]  # fmt: skip
    assert main(args) == 0
    assert GlobalHead.from_checkpoint(tmp_path / "cli.pt").hparams == head.hparams


def test_source_shares_one_positive_value_per_source():
    from homeloc.train.global_data import GlobalHeadData

    srcs = ["synthesized:a", "render:b"]
    assert GlobalHeadData(srcs, source_shares=[1, 3]).source_shares == [1.0, 3.0]
    for bad in ([1.0], [1.0, 0.0], [1.0, -1.0, 2.0]):
        with pytest.raises(ValueError, match="source_shares"):
            GlobalHeadData(srcs, source_shares=bad)

"""Keypoint training: losses, overfitting, resume, DDP, checkpoint round trip (tiny preset)."""


import numpy as np
import pytest
import torch

from homeloc.data_synthesis.datasets import OnTheFlyPairs, OnTheFlyShapes
from homeloc.models.keypoints import KeypointNet
from homeloc.train import losses
from homeloc.train.keypoints import KeypointSystem
from tests.conftest import train_cli


def _pairs_batch(n=2, seed=0):
    ds = OnTheFlyPairs(["skimage"], n, seed, {"size": (64, 96)})
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def test_cells_from_keypoint_map_labels():
    kp = torch.zeros(1, 16, 16)
    kp[0, 3, 5] = 1  # cell (0, 0), pixel index 3*8+5
    kp[0, 9, 8] = 1  # cell (1, 1), pixel index 1*8+0
    labels = losses.cells_from_keypoint_map(kp)
    assert labels.tolist() == [[[29, 64], [64, 8]]]


def test_cells_from_heatmap_is_a_distribution():
    heat = torch.rand(2, 1, 16, 24) * 0.05
    t = losses.cells_from_heatmap(heat)
    assert t.shape == (2, 65, 2, 3)
    torch.testing.assert_close(t.sum(1), torch.ones(2, 2, 3))
    assert (t >= 0).all()


def test_correspondences_identity_and_masks():
    H = torch.eye(3)[None]
    valid = torch.ones(1, 32, 32, dtype=torch.bool)
    change = torch.zeros_like(valid)
    change[0, :16] = True  # top half changed
    p0, p1, ok = losses.correspondences(H, valid, change, (32, 32))
    torch.testing.assert_close(p0, p1)
    assert ok.sum() == 8  # 16 cells, the top 8 are changed
    assert (p1[0, ok[0], 1] > 16).all()


def test_descriptor_loss_prefers_correct_descriptors():
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(1, 16, 8, 8), dim=1)
    H = torch.eye(3)[None]
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    change = torch.zeros_like(valid)
    good, acc_good = losses.descriptor_loss(d, d, H, valid, change)
    bad, _ = losses.descriptor_loss(d, d.flip(-1), H, valid, change)
    assert good < bad
    assert acc_good == 1.0


@pytest.mark.parametrize("stage", ["shapes", "pairs"])
def test_overfit_one_batch_halves_the_loss(stage, tmp_path):
    torch.manual_seed(0)
    if stage == "shapes":
        ds = OnTheFlyShapes(4, 0, (64, 96))
        batch = {k: torch.stack([ds[i][k] for i in range(4)]) for k in ("image", "keypoint_map")}
        system = KeypointSystem("tiny", stage="shapes", lr=1e-2)
    else:
        batch = _pairs_batch(2)
        teacher = KeypointNet("tiny")
        teacher.save(tmp_path / "teacher.pt")
        system = KeypointSystem("tiny", stage="pairs", teacher=f"checkpoint:{tmp_path / 'teacher.pt'}", lr=1e-2)
    system.log = lambda *a, **k: None
    opt = torch.optim.Adam(system.model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = system.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first, (first, loss.item())


def _fit(tmp_path, *extra):
    override = tmp_path / "override.yaml"
    override.write_text(
        "trainer:\n"
        f"  default_root_dir: {tmp_path}\n"
        "  logger: false\n"
        "  callbacks:\n"
        "    - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        f"      init_args: {{dirpath: {tmp_path / 'ckpt'}, save_last: true}}\n"
        "data:\n  init_args:\n    val_root: ''\n"
    )
    return train_cli("keypoints_tiny.yaml", override, *extra)


@pytest.mark.slow
def test_resume_continues_global_step(tmp_path):
    r = _fit(tmp_path, "--trainer.max_steps", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    last = tmp_path / "ckpt" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 3
    r = _fit(tmp_path, "--trainer.max_steps", "5", "--ckpt_path", str(last))
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == 5
    net = KeypointNet.from_checkpoint(last)  # Lightning checkpoint -> plain network
    assert net.preset == "tiny"


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    # With a detector teacher every parameter gets a gradient, so plain `ddp` works (no unused params).
    KeypointNet("tiny").save(tmp_path / "teacher.pt")
    r = _fit(tmp_path, "--trainer.max_steps", "2", "--trainer.strategy", "ddp",
             "--model.init_args.teacher", f"checkpoint:{tmp_path / 'teacher.pt'}",
             "--trainer.devices", "2", "--trainer.accelerator", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == 2


def test_checkpoint_round_trip(tmp_path):
    system = KeypointSystem("tiny", stage="shapes")
    path = tmp_path / "net.pt"
    system.model.save(path)
    net = KeypointNet.from_checkpoint(path)
    x = torch.rand(1, 1, 32, 48)
    system.model.eval()
    for a, b in zip(system.model(x), net(x), strict=True):
        torch.testing.assert_close(a, b)


def test_label_command(tmp_path):
    from homeloc.runtime.io import write_image
    from homeloc.train.label import label_images

    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    write_image(tmp_path / "imgs" / "a.png", (rng.random((40, 56)) * 255).astype(np.uint8))
    KeypointNet("tiny").save(tmp_path / "net.pt")
    out = label_images(tmp_path / "net.pt", tmp_path / "imgs", tmp_path / "labels", num_homographies=2, threshold=0.0)
    kp = np.load(tmp_path / "labels" / "a.png.npz")["keypoints"]
    assert out.exists() and kp.shape[1] == 2 and len(kp) > 0
    assert (kp[:, 0] < 56).all() and (kp[:, 1] < 40).all()

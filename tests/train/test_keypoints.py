"""Keypoint training: losses, overfitting, resume, DDP, checkpoint round trip (tiny preset)."""

import numpy as np
import pytest
import torch

from homeloc.data_synthesis.datasets import OnTheFlyPairs, OnTheFlyShapes
from homeloc.models.keypoints import KeypointNet
from homeloc.train import losses
from homeloc.train.keypoints import KeypointSystem
from tests.conftest import train_cli


def _scalar(value) -> float:
    """A logged value as a float (a tensor detached first, as Lightning's logger does)."""
    return float(value.detach()) if hasattr(value, "detach") else float(value)


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


def _identity_warp(h, w):
    return losses.warp_from_homography(torch.eye(3)[None], torch.ones(1, h, w, dtype=torch.bool))


def test_correspondences_identity_and_masks():
    valid = torch.ones(1, 32, 32, dtype=torch.bool)
    change = torch.zeros_like(valid)
    change[0, :16] = True  # top half changed
    p0, p1, ok = losses.correspondences(_identity_warp(32, 32), valid, change)
    torch.testing.assert_close(p0, p1)
    assert ok.sum() == 8  # 16 cells, the top 8 are changed
    assert (p1[0, ok[0], 1] > 16).all()


def test_warp_from_homography_matches_the_homography():
    H = torch.tensor([[[1.0, 0.02, 3.0], [-0.01, 0.95, 2.0], [1e-4, 0.0, 1.0]]])
    warp = losses.warp_from_homography(H, torch.ones(1, 24, 32, dtype=torch.bool))
    pts = torch.tensor([[[5.5, 7.25], [20.0, 10.5]]])
    xy, ok = losses.sample_warp(warp, pts)
    ph = torch.cat([pts, torch.ones(1, 2, 1)], -1) @ H.transpose(1, 2)
    torch.testing.assert_close(xy, ph[..., :2] / ph[..., 2:], atol=1e-3, rtol=0)
    assert ok.all()
    assert (warp[0, :, -1] == -1).all()  # x = 31 + 3 lands outside the 32-wide image1


def test_sample_warp_refuses_occlusion_edges_and_invalid_pixels():
    warp = _identity_warp(8, 8).clone()
    warp[0, :, 5:, 0] += 10  # a depth edge between columns 4 and 5
    warp[0, 6, 1] = -1  # an occluded pixel
    xy, ok = losses.sample_warp(warp, torch.tensor([[[1.5, 1.5], [4.5, 2.0], [1.5, 5.5]]]))
    assert ok.tolist() == [[True, False, False]]
    torch.testing.assert_close(xy[0, 0], torch.tensor([1.5, 1.5]))


def test_fused_targets_average_the_views_where_they_overlap():
    h, w = 16, 24
    heat0, heat1 = torch.zeros(1, 1, h, w), torch.zeros(1, 1, h, w)
    heat0[0, 0, 4, 4] = 0.8  # seen in view 0 only
    heat1[0, 0, 10, 12] = 0.6  # seen in view 1 only
    warp = _identity_warp(h, w)
    valid = torch.ones(1, h, w, dtype=torch.bool)
    t0, t1 = losses.fused_targets(heat0, heat1, warp, warp, valid, valid, torch.zeros_like(valid))
    torch.testing.assert_close(t0, t1)
    back = losses.heatmap_from_cells(t0)
    assert back[0, 0, 4, 4] == pytest.approx(0.4) and back[0, 0, 10, 12] == pytest.approx(0.3)
    torch.testing.assert_close(t0.sum(1), torch.ones(1, 2, 3))


def test_cells_from_score_map_peak_and_dustbin():
    score = torch.full((1, 1, 8, 16), 0.01)
    score[0, 0, 2, 3] = 0.9  # cell 0 has a strong peak; cell 1 is flat
    cells = losses.cells_from_score_map(score, temperature=0.05)
    torch.testing.assert_close(cells.sum(1), torch.ones(1, 1, 2))
    assert cells[0, 64, 0, 0] == pytest.approx(0.1) and cells[0, 2 * 8 + 3, 0, 0] > 0.8
    assert cells[0, 64, 0, 1] == pytest.approx(0.99)


def test_descriptor_loss_prefers_correct_descriptors():
    torch.manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(1, 16, 8, 8), dim=1)
    warp = _identity_warp(64, 64)
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    change = torch.zeros_like(valid)
    good, acc_good, _ = losses.descriptor_loss(d, d, warp, valid, change)
    bad, _, _ = losses.descriptor_loss(d, d.flip(-1), warp, valid, change)
    assert good < bad
    assert acc_good == 1.0
    t = torch.nn.functional.normalize(torch.randn(1, 8, 8, 8), dim=1)
    _, _, kl_self = losses.descriptor_loss(t, t, warp, valid, change, teacher=(t, t))
    _, _, kl_other = losses.descriptor_loss(d, d, warp, valid, change, teacher=(t, t))
    assert kl_self.abs() < 1e-5 < kl_other


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
        system = KeypointSystem(
            "tiny", stage="pairs", teacher=f"checkpoint:{tmp_path / 'teacher.pt'}", lr=1e-2
        )
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
    r = _fit(
        tmp_path,
        "--trainer.max_steps",
        "2",
        "--trainer.strategy",
        "ddp",
        "--model.init_args.teacher",
        f"checkpoint:{tmp_path / 'teacher.pt'}",
        "--trainer.devices",
        "2",
        "--trainer.accelerator",
        "cpu",
    )
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
    out = label_images(
        tmp_path / "net.pt", tmp_path / "imgs", tmp_path / "labels", num_homographies=2, threshold=0.0
    )
    kp = np.load(tmp_path / "labels" / "a.png.npz")["keypoints"]
    assert out.exists() and kp.shape[1] == 2 and len(kp) > 0
    assert (kp[:, 0] < 56).all() and (kp[:, 1] < 40).all()


def test_lift_cell_mass_keeps_where_and_lifts_weak_cells():
    score = torch.full((1, 1, 8, 16), 0.01)
    score[0, 0, 2, 3] = 0.9
    cells = losses.cells_from_score_map(score, temperature=0.05)
    lifted = losses.lift_cell_mass(cells, 0.5)
    torch.testing.assert_close(lifted.sum(1), torch.ones(1, 1, 2))
    assert lifted[0, 64, 0, 1] == pytest.approx(0.9)  # mass 0.01 -> 0.1
    mass = lambda c: c[:, :-1].sum(1, keepdim=True)  # noqa: E731
    torch.testing.assert_close(lifted[:, :-1] / mass(lifted), cells[:, :-1] / mass(cells))
    assert losses.lift_cell_mass(cells, 1.0) is cells


def test_sharpen_cells_is_the_colder_softmax_and_keeps_the_mass():
    score = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    cells = losses.cells_from_score_map(score, temperature=0.1)
    sharp = losses.sharpen_cells(cells, 5.0)
    torch.testing.assert_close(sharp, losses.cells_from_score_map(score, temperature=0.02))
    torch.testing.assert_close(sharp.sum(1), torch.ones(2, 2, 2))
    torch.testing.assert_close(sharp[:, -1], cells[:, -1])
    empty = torch.cat([torch.zeros(1, 64, 1, 1), torch.ones(1, 1, 1, 1)], 1)  # a pure-dustbin cell stays one
    torch.testing.assert_close(losses.sharpen_cells(empty, 5.0), empty)
    assert losses.sharpen_cells(cells, 1.0) is cells


def test_descriptor_anchor_loss_zero_for_the_same_map():
    d = torch.nn.functional.normalize(torch.randn(2, 8, 4, 4), dim=1)
    assert losses.descriptor_anchor_loss(d, d).abs() < 1e-6
    assert losses.descriptor_anchor_loss(d, -d) == pytest.approx(2.0)


def test_anchor_and_target_power_train_and_leave_checkpoints_clean(tmp_path):
    KeypointNet("tiny").save(tmp_path / "init.pt")
    with pytest.raises(ValueError, match="init_checkpoint"):
        KeypointSystem("tiny", teacher="none", anchor_weight=1.0)
    with pytest.raises(ValueError, match="target_power"):
        KeypointSystem("tiny", teacher="none", target_power=0.0)
    with pytest.raises(ValueError, match="target_sharpen"):
        KeypointSystem("tiny", teacher="none", target_sharpen=0.5)
    system = KeypointSystem(
        "tiny", teacher="none", init_checkpoint=str(tmp_path / "init.pt"), anchor_weight=1.0
    )
    logged = {}
    system.log = lambda name, value, **k: logged.__setitem__(
        name, float(getattr(value, "detach", lambda: value)())
    )
    system.model.eval()  # the anchor runs in eval mode: the same network there gives the same map
    system.training_step(_pairs_batch(2), 0).backward()
    assert logged["train/anchor"] == pytest.approx(0.0, abs=1e-5)
    assert not any(k.startswith("_anchor") for k in system.state_dict())


def test_detector_mix_pulls_targets_to_the_frozen_start(tmp_path):
    KeypointNet("tiny").save(tmp_path / "init.pt")
    with pytest.raises(ValueError, match="detector_mix"):
        KeypointSystem("tiny", teacher="none", init_checkpoint=str(tmp_path / "init.pt"), detector_mix=2.0)
    losses_by_mix = {}
    for mix in (0.0, 1.0):
        torch.manual_seed(0)
        system = KeypointSystem(
            "tiny",
            teacher=f"checkpoint:{tmp_path / 'init.pt'}",
            init_checkpoint=str(tmp_path / "init.pt"),
            detector_mix=mix,
            anchor_weight=1e-9 if mix == 0 else 0.0,  # both runs build the frozen copy
        )
        system.model.eval()
        logged = {}
        system.log = lambda name, value, **k: logged.__setitem__(name, _scalar(value))  # noqa: B023
        system.training_step(_pairs_batch(2), 0)
        losses_by_mix[mix] = logged["train/detector"]
    # mix 1: the target is the student's own softmax (cross-entropy = its entropy, the minimum)
    assert losses_by_mix[1.0] < losses_by_mix[0.0]


def test_distill_without_teacher_descriptors_is_refused():
    system = KeypointSystem("tiny", teacher="none", distill_weight=1.0)
    system.log = lambda *a, **k: None
    with pytest.raises(ValueError, match="pack-pairs --descriptors"):
        system.training_step(_pairs_batch(2), 0)


def test_target_sharpen_trains_and_changes_the_detector_loss(tmp_path):
    KeypointNet("tiny").save(tmp_path / "init.pt")
    det = {}
    for power in (1.0, 5.0):
        torch.manual_seed(0)
        system = KeypointSystem("tiny", teacher=f"checkpoint:{tmp_path / 'init.pt'}", target_sharpen=power)
        logged = {}
        system.log = lambda name, value, **k: logged.__setitem__(name, _scalar(value))  # noqa: B023
        loss = system.training_step(_pairs_batch(2), 0)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in system.model.parameters() if p.grad is not None)
        det[power] = logged["train/detector"]
    assert det[5.0] != pytest.approx(det[1.0])


def test_near_negatives_penalise_descriptors_that_vary_slowly():
    torch.manual_seed(0)
    warp = _identity_warp(64, 64)
    valid = torch.ones(1, 64, 64, dtype=torch.bool)
    change = torch.zeros_like(valid)
    sharp = torch.nn.functional.normalize(torch.randn(1, 16, 8, 8), dim=1)  # every cell its own
    smooth = torch.nn.functional.interpolate(torch.randn(1, 16, 2, 2), size=(8, 8), mode="bilinear")
    smooth = torch.nn.functional.normalize(smooth + 0.05 * torch.randn(1, 16, 8, 8), dim=1)
    gain = {}
    for name, d in (("sharp", sharp), ("smooth", smooth)):
        plain, acc, _ = losses.descriptor_loss(d, d, warp, valid, change)
        near, acc_near, _ = losses.descriptor_loss(d, d, warp, valid, change, near_px=8.0)
        assert near > plain and acc_near == acc  # more negatives in the rows; accuracy is the square's
        gain[name] = float(near - plain)
    assert gain["smooth"] > gain["sharp"]  # neighbours of a slowly varying map look like the positive
    system = KeypointSystem("tiny", teacher="none", near_negative_px=6.0)
    system.log = lambda *a, **k: None
    loss = system.training_step(_pairs_batch(2), 0)
    loss.backward()
    assert torch.isfinite(loss) and all(
        torch.isfinite(p.grad).all() for p in system.model.parameters() if p.grad is not None
    )
    with pytest.raises(ValueError, match="near_negative_px"):
        KeypointSystem("tiny", teacher="none", near_negative_px=-1.0)


def test_anchor_checkpoint_is_the_reference_when_given(tmp_path):
    torch.manual_seed(0)
    KeypointNet("tiny").save(tmp_path / "init.pt")
    torch.manual_seed(1)
    KeypointNet("tiny").save(tmp_path / "other.pt")
    logged = {}
    for ref in ("init.pt", "other.pt"):
        system = KeypointSystem("tiny", teacher="none", init_checkpoint=str(tmp_path / "init.pt"),
                                anchor_checkpoint=str(tmp_path / ref), anchor_weight=1.0)  # fmt: skip
        system.log = lambda name, value, r=ref, **k: logged.__setitem__((r, name), _scalar(value))
        system.model.eval()
        system.training_step(_pairs_batch(2), 0)
    assert logged[("init.pt", "train/anchor")] == pytest.approx(0.0, abs=1e-5)
    assert logged[("other.pt", "train/anchor")] > 0.01  # another network's map: the anchor pulls

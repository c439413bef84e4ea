"""KeypointNet: shapes, input checks, presets' cost, checkpoints, ONNX export of the dense core."""

import numpy as np
import pytest
import torch

from homeloc.models.keypoints import KeypointNet, KeypointNetConfig
from homeloc.models.macs import count_macs, count_params


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _tiny(seed: int = 0) -> KeypointNet:
    torch.manual_seed(seed)
    return KeypointNet("tiny").eval()


@pytest.mark.parametrize("preset", ["tiny", "edge", "superpoint"])
def test_shapes_dtypes_and_unit_descriptors(preset):
    model = KeypointNet(preset).eval()
    x = torch.rand(2, 1, 32, 48)
    with torch.no_grad():
        logits, desc = model(x)
    dim = KeypointNet.PRESETS[preset].descriptor_dim
    assert logits.shape == (2, 65, 4, 6) and logits.dtype == torch.float32
    assert desc.shape == (2, dim, 4, 6) and desc.dtype == torch.float32
    torch.testing.assert_close(desc.norm(dim=1), torch.ones(2, 4, 6), atol=1e-5, rtol=0)


def test_descriptor_dim_override_and_presets():
    assert set(KeypointNet.PRESETS) >= {"edge", "superpoint", "tiny"}
    model = KeypointNet("tiny", descriptor_dim=8).eval()
    with torch.no_grad():
        _, desc = model(torch.rand(1, 1, 16, 16))
    assert desc.shape == (1, 8, 2, 2)
    assert model.hparams == {"preset": "tiny", "descriptor_dim": 8}
    with pytest.raises(ValueError, match="unknown preset"):
        KeypointNet("huge")
    with pytest.raises(ValueError, match="descriptor_dim"):
        KeypointNet("tiny", descriptor_dim=0)
    with pytest.raises(ValueError, match="multiply to"):
        KeypointNetConfig(stages=((8, 1, 2), (8, 1, 2)))


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.rand(1, 3, 16, 16), "1 \\(gray\\) channel"),
        (torch.rand(1, 1, 20, 16), "multiples of 8"),
        (torch.rand(1, 1, 16, 12), "multiples of 8"),
        (torch.randint(0, 255, (1, 1, 16, 16), dtype=torch.uint8), "float32"),
        (torch.rand(1, 1, 16, 16, dtype=torch.float64), "float32"),
        (torch.rand(1, 16, 16), "B x 1 x H x W"),
        (np.zeros((1, 1, 16, 16), np.float32), "torch.Tensor"),
    ],
)
def test_bad_input_raises_clear_error(x, match):
    with pytest.raises(ValueError, match=match):
        _tiny()(x)


def test_train_mode_backward():
    model = KeypointNet("tiny").train()
    logits, desc = model(torch.rand(2, 1, 32, 32))
    (logits.logsumexp(1).mean() + desc.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_edge_budget_and_macs_counter():
    edge = KeypointNet("edge").eval()
    gmacs = count_macs(edge, torch.rand(1, 1, 480, 640)) / 1e9
    assert gmacs <= 1.5, f"edge costs {gmacs:.3f} GMACs at 640x480"
    assert count_params(edge) < count_params(KeypointNet("superpoint"))
    # the counter itself: one 3x3 conv 1->4 on 8x8 with padding = 8*8*4*9 MACs
    conv = torch.nn.Conv2d(1, 4, 3, padding=1)
    assert count_macs(conv, torch.rand(1, 1, 8, 8)) == 8 * 8 * 4 * 9
    assert count_macs(torch.nn.Linear(5, 3), torch.rand(2, 5)) == 2 * 3 * 5


# ---------------------------------------------------------------- checkpoints
def _same_outputs(a: KeypointNet, b: KeypointNet) -> None:
    x = torch.rand(1, 1, 24, 32)
    with torch.no_grad():
        for u, v in zip(a.eval()(x), b.eval()(x), strict=True):
            assert torch.equal(u, v)


def test_save_from_checkpoint_round_trip(tmp_path):
    model = _tiny()
    with torch.no_grad():  # non-default BN statistics must survive too
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path / "sub" / "kp.pt"
    model.save(path)
    assert not list(path.parent.glob(".*.tmp"))
    loaded = KeypointNet.from_checkpoint(path)
    assert loaded.preset == "tiny" and not loaded.training
    _same_outputs(model, loaded)


def test_custom_config_round_trip(tmp_path):
    cfg = KeypointNetConfig(stages=((8, 1, 4), (16, 1, 2)), head_width=8, fine_width=4, descriptor_dim=8)
    model = KeypointNet("custom", config=cfg).eval()
    model.save(tmp_path / "c.pt")
    loaded = KeypointNet.from_checkpoint(tmp_path / "c.pt")
    assert loaded.config == cfg
    _same_outputs(model, loaded)


def test_lightning_checkpoint(tmp_path):
    model = _tiny(seed=3)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["teacher.net.weight"] = torch.zeros(3)  # other submodules of the LightningModule are ignored
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": state,
        "hyper_parameters": {"preset": "tiny", "descriptor_dim": 16, "lr": 1e-3},
        "optimizer_states": [],
    }
    torch.save(ckpt, tmp_path / "last.ckpt")
    _same_outputs(model, KeypointNet.from_checkpoint(tmp_path / "last.ckpt"))
    # hyper-parameters nested one level (e.g. LightningCLI's model init args)
    ckpt["hyper_parameters"] = {"model": {"preset": "tiny", "descriptor_dim": 16}, "lr": 1e-3}
    torch.save(ckpt, tmp_path / "nested.ckpt")
    _same_outputs(model, KeypointNet.from_checkpoint(tmp_path / "nested.ckpt"))


def test_half_save_halves_the_file_and_loads_back_as_float32(tmp_path):
    model = KeypointNet("edge").eval()
    model.save(tmp_path / "full.pt")
    model.save(tmp_path / "half.pt", half=True)
    ratio = (tmp_path / "half.pt").stat().st_size / (tmp_path / "full.pt").stat().st_size
    assert 0.45 < ratio < 0.6
    back = KeypointNet.from_checkpoint(tmp_path / "half.pt")
    assert all(p.dtype == torch.float32 for p in back.parameters())
    x = torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        (l0, d0), (l1, d1) = model(x), back(x)
    assert torch.allclose(l0, l1, atol=0.05) and torch.allclose(d0, d1, atol=0.01)
    assert not torch.equal(l0, l1)  # the weights were rounded, so this is the half file


def test_checkpoint_errors(tmp_path):
    model = _tiny()
    model.save(tmp_path / "ok.pt")
    ckpt = torch.load(tmp_path / "ok.pt", weights_only=True)

    ckpt["hparams"]["descriptor_dim"] = 32
    torch.save(ckpt, tmp_path / "dim.pt")
    with pytest.raises(ValueError, match=r"descriptor_out.weight: shape \(16, 24, 1, 1\), expected \(32"):
        KeypointNet.from_checkpoint(tmp_path / "dim.pt")

    ckpt["hparams"]["descriptor_dim"] = 16
    ckpt["state_dict"] = {k: v.double() for k, v in ckpt["state_dict"].items()}
    torch.save(ckpt, tmp_path / "dtype.pt")
    with pytest.raises(ValueError, match="dtype torch.float64"):
        KeypointNet.from_checkpoint(tmp_path / "dtype.pt")

    torch.save({"state_dict": {}, "hyper_parameters": {"lr": 1}}, tmp_path / "nohp.ckpt")
    with pytest.raises(ValueError, match="no 'preset'"):
        KeypointNet.from_checkpoint(tmp_path / "nohp.ckpt")

    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a checkpoint"):
        KeypointNet.from_checkpoint(tmp_path / "list.pt")

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights-only"):
        KeypointNet.from_checkpoint(tmp_path / "junk.pt")

    with pytest.raises(FileNotFoundError):
        KeypointNet.from_checkpoint(tmp_path / "missing.pt")


# ---------------------------------------------------------------- ONNX
def test_tiny_onnx_export_dynamic_hw_matches_torch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from homeloc.export.onnx_export import export_onnx

    model = _tiny()
    path = export_onnx(model, tmp_path / "tiny.onnx", height=32, width=48)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert {o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")} == {17}
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"If", "Loop", "BatchNormalization", "NonZero", "TopK"}, ops
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits", "descriptors"]
    for shape in [(1, 1, 32, 48), (2, 1, 64, 40)]:
        x = torch.rand(*shape)
        got = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            want = model(x)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)

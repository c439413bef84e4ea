import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def train_cli(config: str, override: str, *extra: str):
    """`homeloc-train fit --config configs/train/CONFIG --config OVERRIDE_YAML EXTRA...` in a
    subprocess (wandb disabled), as a user runs it; returns the CompletedProcess."""
    import subprocess
    import sys

    path = Path(override)
    cmd = [sys.executable, "-m", "homeloc.train.cli", "fit", "--config", str(ROOT / "configs/train" / config),
           "--config", str(path), *extra]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def shared_data():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not present (research data is only on dev/CI machines)")
    return SHARED


# ----------------------------------------------------------------- runtime: tiny ONNX models
def _export_onnx(model, example, path, outputs, dynamic_axes, metadata):
    import onnx
    import torch

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings from the models' input checks
        torch.onnx.export(model, example, str(path), input_names=["image"], output_names=outputs,
                          dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)  # fmt: skip
    proto = onnx.load(str(path))
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="session")
def runtime_models(tmp_path_factory):
    """Random-weight ``tiny`` keypoint and place ONNX files following the export contract
    (``{"keypoints": path, "places": path}``), built once per session with torch."""
    import torch

    from homeloc.models.keypoints import KeypointNet
    from homeloc.models.places import PlaceNet

    out = tmp_path_factory.mktemp("runtime_models")
    torch.manual_seed(0)
    common = {"homeloc.version": "test", "homeloc.precision": "fp32", "homeloc.input_mean": "0.0",
              "homeloc.input_std": "1.0"}  # fmt: skip
    kp = _export_onnx(
        KeypointNet("tiny").eval(), torch.rand(1, 1, 64, 80), out / "keypoints.fp32.onnx", ["logits", "descriptors"],
        {"image": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h8", 3: "w8"},
         "descriptors": {0: "n", 2: "h8", 3: "w8"}},
        {**common, "homeloc.kind": "keypoints", "homeloc.cell": "8", "homeloc.descriptor_dim": "16"},
    )  # fmt: skip
    places = _export_onnx(
        PlaceNet("keypoint:tiny", "gem", reduce_dim=16, out_dim=16).eval(), torch.rand(1, 3, 64, 80),
        out / "places.fp32.onnx", ["descriptor"], {"image": {0: "n"}, "descriptor": {0: "n"}},
        {**common, "homeloc.kind": "places", "homeloc.input_size": "64,80", "homeloc.descriptor_dim": "16"},
    )  # fmt: skip
    return {"keypoints": kp, "places": places}

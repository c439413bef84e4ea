"""The `ours` / `ours:PATH` method: our keypoint and place models inside the evaluation.

`ours` is the shipped default (runtime/assets, int8 ONNX); `ours:PATH` is an exported `.onnx`
(run through the torch-free runtime, exactly as on the robot) or a torch checkpoint (our plain
format or a Lightning checkpoint of train.keypoints.KeypointSystem / train.places.PlaceSystem).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from homeloc.eval.errors import MethodError
from homeloc.runtime.features import Features

if TYPE_CHECKING:
    from homeloc.eval.methods import MethodRequest


def _resolve(request: MethodRequest, kind: str) -> Path:
    if request.arg is None:
        from homeloc.runtime.assets import shipped_model

        try:
            return shipped_model(kind, "int8")
        except ValueError as e:  # a shipped file that does not match runtime/assets/MANIFEST.json
            raise MethodError(f"ours: {e}") from None
        except FileNotFoundError as e:
            raise MethodError(
                f"ours: no shipped {kind} model yet ({e}); pass ours:PATH to a checkpoint or .onnx"
            ) from None
    path = Path(request.arg)
    if not path.is_file():
        raise MethodError(f"ours:{request.arg}: model file not found")
    return path


@dataclass
class TorchKeypoints:
    """A KeypointNet checkpoint through models.postprocess.extract (CPU, eval mode)."""

    path: Path
    max_keypoints: int
    threads: int
    distance: str = "l2"
    net: object = field(init=False, repr=False)

    def __post_init__(self):
        import torch

        from homeloc.models.keypoints import KeypointNet

        torch.set_num_threads(max(1, self.threads))
        try:
            self.net = KeypointNet.from_checkpoint(self.path).eval()
        except ValueError as e:
            raise MethodError(f"ours:{self.path}: {e}") from None

    @property
    def model_file(self) -> Path:
        return self.path

    def extract(self, image: np.ndarray) -> Features:
        import torch

        from homeloc.models.postprocess import extract

        with torch.no_grad():
            f = extract(self.net, image, max_keypoints=self.max_keypoints)
        return Features(f.keypoints.numpy(), f.scores.numpy(), f.descriptors.float().numpy())


@dataclass
class OnnxKeypoints:
    """An exported keypoint model through runtime.frontend.Frontend (what the robot runs)."""

    path: Path
    max_keypoints: int
    threads: int
    distance: str = "l2"

    def __post_init__(self):
        from homeloc.runtime.frontend import Frontend

        try:
            self.frontend = Frontend(
                self.path, max_keypoints=self.max_keypoints, threads=max(1, self.threads)
            )
        except ValueError as e:  # corrupt/empty/text file, another kind of model: names the file
            raise MethodError(f"ours: {e}") from None

    @property
    def model_file(self) -> Path:
        return self.path

    def extract(self, image: np.ndarray) -> Features:
        f = self.frontend.extract(image)
        return Features(f.keypoints, f.scores, f.descriptors.astype(np.float32))


@dataclass
class TorchPlaces:
    """A PlaceNet checkpoint; images resized to the network's input size."""

    path: Path
    threads: int

    def __post_init__(self):
        import torch

        from homeloc.models.places import PlaceNet

        torch.set_num_threads(max(1, self.threads))
        try:
            self.net = PlaceNet.from_checkpoint(self.path).eval()
        except ValueError as e:
            raise MethodError(f"ours:{self.path}: {e}") from None

    @property
    def model_file(self) -> Path:
        return self.path

    def fit(self, database_images) -> None:  # nothing to fit: the model is trained
        return None

    def describe(self, images) -> np.ndarray:
        import torch

        from homeloc.runtime.places import prepare_place_image

        batch = [prepare_place_image(img, self.net.input_size, 3) for img in images]
        out = []
        with torch.no_grad():
            for i in range(0, len(batch), 64):
                x = torch.from_numpy(np.stack(batch[i : i + 64]))
                out.append(self.net(x).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.net.out_dim), np.float32)


@dataclass
class OnnxPlaces:
    path: Path
    threads: int

    def __post_init__(self):
        from homeloc.runtime.places import GlobalDescriptor

        try:
            self.model = GlobalDescriptor(self.path, threads=max(1, self.threads))
        except ValueError as e:  # corrupt/empty/text file, another kind of model: names the file
            raise MethodError(f"ours: {e}") from None

    @property
    def model_file(self) -> Path:
        return self.path

    def fit(self, database_images) -> None:
        return None

    def describe(self, images) -> np.ndarray:
        return np.asarray(self.model.describe(list(images)), np.float32)


def ours_factory(request: MethodRequest):
    kind = "keypoints" if request.task == "local" else "places"
    path = _resolve(request, kind)
    onnx = path.suffix == ".onnx"
    if kind == "keypoints":
        cls = OnnxKeypoints if onnx else TorchKeypoints
        return cls(path, request.max_keypoints, request.threads)
    return (OnnxPlaces if onnx else TorchPlaces)(path, request.threads)

"""Global (place) descriptors on the robot from the ONNX place model. numpy/OpenCV/onnxruntime only.

ONNX contract (written by ``homeloc-export --kind places``): input ``image`` float32
N x 3 x H x W in [0, 1] at the fixed size ``homeloc.input_size`` ("H,W") (normalisation is
inside the graph); output ``descriptor`` N x D, L2-normalised; ``homeloc.kind=places``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.assets import check_kind, model_metadata, open_session, resolve_model
from homeloc.runtime.frontend import check_image

log = logging.getLogger(__name__)


class GlobalDescriptor:
    """One L2-normalised vector per image, for place recognition / loop-closure retrieval.

    Args:
        model_path: place ONNX file; None = the shipped model (``runtime.assets``).
        threads: onnxruntime intra-op threads.
        input_size: (H, W) to resize images to; default from ``homeloc.input_size`` or the
            model's static input shape.
        batch_size: images per ORT run in :meth:`describe` (1 when the model's batch is fixed).
        precision: which shipped model when ``model_path`` is None.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        threads: int = 1,
        input_size: tuple[int, int] | None = None,
        batch_size: int = 16,
        precision: str = "int8",
        providers: list[str] | None = None,
    ) -> None:
        self.model_path: Path = resolve_model(model_path, "places", precision)
        self._session = open_session(self.model_path, threads, providers)
        self.metadata = model_metadata(self._session)
        check_kind(self.metadata, "places", self.model_path)
        inputs, outputs = self._session.get_inputs(), [o.name for o in self._session.get_outputs()]
        if len(inputs) != 1 or inputs[0].name != "image" or "descriptor" not in outputs:
            raise ValueError(
                f"{self.model_path}: expected input 'image' and output 'descriptor'; got inputs "
                f"{[i.name for i in inputs]}, outputs {outputs}"
            )
        shape = inputs[0].shape
        if len(shape) != 4:
            raise ValueError(f"{self.model_path}: input 'image' must be N x C x H x W, got {shape}")
        self.channels = shape[1] if isinstance(shape[1], int) else 3
        if self.channels not in (1, 3):
            raise ValueError(f"{self.model_path}: input must have 1 or 3 channels, got {shape}")
        self.input_size = self._input_size(input_size, shape)
        self.batch_size = 1 if shape[0] == 1 else max(1, int(batch_size))
        dim = self.metadata.get("homeloc.descriptor_dim")
        out_shape = self._session.get_outputs()[outputs.index("descriptor")].shape
        self._dim = int(dim) if dim is not None else (out_shape[1] if isinstance(out_shape[1], int) else None)

    def _input_size(self, given: tuple[int, int] | None, shape: list) -> tuple[int, int]:
        if given is not None:
            h, w = (int(v) for v in given)
        elif "homeloc.input_size" in self.metadata:
            try:
                h, w = (int(v) for v in self.metadata["homeloc.input_size"].split(","))
            except ValueError:
                raise ValueError(
                    f"{self.model_path}: homeloc.input_size must be 'H,W', got {self.metadata['homeloc.input_size']!r}"
                ) from None
        elif isinstance(shape[2], int) and isinstance(shape[3], int):
            h, w = shape[2], shape[3]
        else:
            raise ValueError(
                f"{self.model_path}: no homeloc.input_size metadata and dynamic H, W: pass input_size=(H, W)"
            )
        if h <= 0 or w <= 0:
            raise ValueError(f"input size must be positive, got {(h, w)}")
        return h, w

    @property
    def dim(self) -> int:
        """Descriptor dimension D (runs the model once on a blank image when the metadata lacks it)."""
        if self._dim is None:
            self._dim = int(self.describe(np.zeros((*self.input_size, 3), np.uint8)).shape[1])
        return self._dim

    def describe(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Global descriptors.

        Args:
            images: one image (H x W gray or H x W x 3 RGB, uint8 or float32 in [0, 1], any size)
                or a list of them (sizes may differ), or an N x H x W x 3 array.

        Returns:
            N x D float32, unit L2 norm (N = 1 for a single image).
        """
        batch = self._as_list(images)
        out = []
        for i in range(0, len(batch), self.batch_size):
            x = np.stack([self._prepare(im) for im in batch[i : i + self.batch_size]])
            out.append(self._session.run(["descriptor"], {"image": x})[0])
        desc = np.concatenate(out).astype(np.float32, copy=False)
        if desc.ndim != 2:
            raise ValueError(f"{self.model_path}: output 'descriptor' must be N x D, got {desc.shape}")
        return desc / np.maximum(np.linalg.norm(desc, axis=1, keepdims=True), 1e-12)

    @staticmethod
    def _as_list(images) -> list[np.ndarray]:
        if isinstance(images, np.ndarray):
            return list(images) if images.ndim == 4 else [images]
        if isinstance(images, (list, tuple)):
            if not images:
                raise ValueError("no images given")
            return list(images)
        raise ValueError(f"images must be a numpy array or a list of arrays, got {type(images).__name__}")

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        """C x H x W float32 in [0, 1] at the model's input size."""
        check_image(image)
        return prepare_place_image(image, self.input_size, self.channels)


def prepare_place_image(image: np.ndarray, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """The place models' input: one owner for training, export parity, evaluation and the robot.

    Args:
        image: H x W (x 1) gray or H x W x 3 RGB, uint8 (0..255) or float32 in [0, 1].
        size: (h, w) input size of the model.
        channels: 3 (RGB; gray is repeated) or 1 (gray; RGB is converted).

    Returns:
        channels x h x w float32 in [0, 1], resized with INTER_AREA when shrinking the height
        (no aliasing), else bilinear.
    """
    img = image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image
    h, w = size
    interp = cv2.INTER_AREA if img.shape[0] > h else cv2.INTER_LINEAR
    img = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=interp)
    img = (
        img.astype(np.float32) * np.float32(1.0 / 255.0) if img.dtype == np.uint8 else img.astype(np.float32)
    )
    if channels == 3:
        img = np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img
        return np.ascontiguousarray(img.transpose(2, 0, 1))
    gray = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return gray[None]

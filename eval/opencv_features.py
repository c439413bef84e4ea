"""OpenCV peers: ORB, SIFT, AKAZE with a common keypoint budget (default parameters otherwise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.features import Features
from homeloc.runtime.io import to_gray
from homeloc.runtime.matching import Distance

_DIMS = {"orb": (32, np.uint8), "akaze": (61, np.uint8), "sift": (128, np.float32)}
MIN_SIDE = 2  # smaller images have no keypoints (and crash ORB's pyramid and AKAZE)


@dataclass
class OpenCVFeatures:
    """ORB / SIFT / AKAZE from OpenCV with default parameters; at most `max_keypoints`, highest
    detector response first. ORB and SIFT get the budget as `nfeatures`; AKAZE (no such option)
    keeps its top responses."""

    kind: str
    max_keypoints: int = 1024

    def __post_init__(self) -> None:
        if self.kind not in _DIMS:
            raise ValueError(f"unknown OpenCV feature {self.kind!r}; expected one of {sorted(_DIMS)}")
        self.distance: Distance = "l2" if self.kind == "sift" else "hamming"
        self.model_file: Path | None = None
        if self.kind == "orb":
            self._det = cv2.ORB_create(nfeatures=self.max_keypoints)
        elif self.kind == "sift":
            self._det = cv2.SIFT_create(nfeatures=self.max_keypoints)
        else:
            self._det = cv2.AKAZE_create()

    def extract(self, image: np.ndarray) -> Features:
        """uint8 HxW or HxWx3 RGB -> Features (keypoints in this image's pixels)."""
        gray = to_gray(image)
        dim, dtype = _DIMS[self.kind]
        if min(gray.shape[:2]) < MIN_SIDE:  # ORB/AKAZE raise inside OpenCV on a 1-px side; SIFT finds none
            return Features.empty(dim, dtype)
        kps, desc = self._det.detectAndCompute(gray, None)
        if desc is None or len(kps) == 0:
            return Features.empty(dim, dtype)
        kp = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
        sc = np.array([k.response for k in kps], np.float32)
        return Features(kp, sc, np.ascontiguousarray(desc.astype(dtype))).top_k(self.max_keypoints)

"""SLAM frontend on the robot: keypoints + descriptors from the ONNX keypoint model, matching and
two-view geometry. numpy, onnxruntime and OpenCV only (never torch).

ONNX contract (written by ``homeloc-export --kind keypoints``): input ``image`` float32
N x 1 x H x W in [0, 1] with H, W multiples of 8 (normalisation is inside the graph); outputs
``logits`` N x 65 x H/8 x W/8 (raw detector logits) and ``descriptors`` N x D x H/8 x W/8
(L2-normalised); ``metadata_props`` ``homeloc.kind=keypoints``, ``homeloc.cell``,
``homeloc.descriptor_dim``, ``homeloc.version``, ``homeloc.precision``. A model with a third
output ``global`` N x G (the one-pass ``frontend`` model, ``python -m homeloc.export.frontend``)
also gives the image's place descriptor in ``Features.global_descriptor``, from the same forward.

Conventions: keypoints are float32 ``(x, y)`` pixels of the original image (OpenCV: pixel centres
at integers); matches are M x 2 int64 index pairs ``(i0, i1)``; transforms map image 0 to image 1.

Example::

    fe = Frontend("keypoints.int8.onnx", max_keypoints=1024, threads=2)
    f0, f1 = fe.extract(img0), fe.extract(img1)
    m = fe.match(f0, f1)
    pose = fe.estimate_relative_pose(f0, f1, m, K)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homeloc.runtime import postprocess as pp
from homeloc.runtime import reliability as rel
from homeloc.runtime.assets import check_kind, model_metadata, open_session, resolve_model
from homeloc.runtime.features import Features
from homeloc.runtime.geometry import (
    RANSAC,
    Ransac,
    find_fundamental,
    find_homography,
    find_relative_pose,
    find_rotation,
)
from homeloc.runtime.matching import mutual_nearest_neighbours

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Geometry:
    """A two-view model fitted to matches.

    model: "homography", "fundamental", "essential" or "rotation"; matrix: 3 x 3 float64 mapping
    image 0 to image 1 (None when estimation failed: too few matches or degenerate); inliers: M
    bool mask over the matches given.
    """

    model: str
    matrix: np.ndarray | None
    inliers: np.ndarray

    @property
    def num_inliers(self) -> int:
        return int(np.count_nonzero(self.inliers))

    @property
    def ok(self) -> bool:
        return self.matrix is not None


@dataclass(frozen=True)
class RelativePose(Geometry):
    """Essential matrix plus the pose of camera 1 in camera 0's frame: x1 = R x0 + t, |t| = 1.

    R: 3 x 3 float64 rotation, t: 3 float64 unit translation (None when estimation failed);
    inliers are the matches consistent with E that also pass the cheirality check. Model
    "rotation" (:func:`estimate_rotation`): two views from one spot, matrix the homography
    K R K^-1, t zero.
    """

    R: np.ndarray | None = None
    t: np.ndarray | None = None


# -------------------------------------------------------------------------- matching / geometry
def match_features(f0: Features, f1: Features, max_distance: float | None = None) -> np.ndarray:
    """Mutual nearest neighbours in descriptor space (L2 on unit descriptors).

    Returns M x 2 int64 ``(i0, i1)`` sorted by i0; with ``max_distance`` only pairs whose
    descriptor distance is <= max_distance (0..2) are kept.
    """
    _check_features(f0, "f0")
    _check_features(f1, "f1")
    if f0.descriptor_dim != f1.descriptor_dim:
        raise ValueError(f"descriptor dimensions differ: {f0.descriptor_dim} vs {f1.descriptor_dim}")
    return mutual_nearest_neighbours(f0.descriptors, f1.descriptors, "cosine", max_distance)


def estimate_homography(
    f0: Features, f1: Features, matches: np.ndarray, threshold: float = 3.0, ransac: Ransac = RANSAC
) -> Geometry:
    """Homography image 0 -> image 1 by OpenCV USAC MAGSAC++ (``threshold`` px reprojection)."""
    p0, p1 = _matched_points(f0, f1, matches)
    H, inliers = find_homography(p0, p1, threshold, ransac)
    return Geometry("homography", H, inliers)


def estimate_fundamental(
    f0: Features, f1: Features, matches: np.ndarray, threshold: float = 1.0, ransac: Ransac = RANSAC
) -> Geometry:
    """Fundamental matrix (x1^T F x0 = 0) by OpenCV USAC MAGSAC++ (``threshold`` px epipolar)."""
    p0, p1 = _matched_points(f0, f1, matches)
    F, inliers = find_fundamental(p0, p1, threshold, ransac)
    return Geometry("fundamental", F, inliers)


def estimate_relative_pose(
    f0: Features,
    f1: Features,
    matches: np.ndarray,
    K: np.ndarray,
    threshold: float = 1.0,
    ransac: Ransac = RANSAC,
) -> RelativePose:
    """Essential matrix by OpenCV USAC MAGSAC++ and the pose recovered from it (``recoverPose``).

    K: 3 x 3 intrinsics of the camera (the same for both images); threshold in pixels.
    """
    K = _check_K(K)
    p0, p1 = _matched_points(f0, f1, matches)
    E, R, t, inliers = find_relative_pose(p0, p1, K, threshold, ransac)
    return RelativePose("essential", E, inliers, R=R, t=t)


def estimate_rotation(
    f0: Features, f1: Features, matches: np.ndarray, K: np.ndarray, threshold: float = 1.0
) -> RelativePose:
    """Rotation-only model ``x1 ~ K R K^-1 x0`` (:func:`.geometry.find_rotation`): two views from
    one spot, where an essential matrix is undefined and ``recoverPose``'s cheirality check drops
    the points at infinity. Model "rotation", matrix K R K^-1, t zero; threshold in pixels."""
    K = _check_K(K)
    p0, p1 = _matched_points(f0, f1, matches)
    R, inliers = find_rotation(p0, p1, K, threshold)
    if R is None:
        return RelativePose("rotation", None, inliers)
    return RelativePose("rotation", K @ R @ np.linalg.inv(K), inliers, R=R, t=np.zeros(3))


def _matched_points(f0: Features, f1: Features, matches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _check_features(f0, "f0")
    _check_features(f1, "f1")
    m = np.asarray(matches)
    if m.size == 0:
        return np.zeros((0, 2), np.float64), np.zeros((0, 2), np.float64)
    if m.ndim != 2 or m.shape[1] != 2 or not np.issubdtype(m.dtype, np.integer):
        raise ValueError(f"matches must be an M x 2 integer array, got {m.dtype} {m.shape}")
    if m.min() < 0 or m[:, 0].max() >= len(f0) or m[:, 1].max() >= len(f1):
        raise ValueError(f"matches index outside the features ({len(f0)} and {len(f1)} keypoints)")
    return f0.keypoints[m[:, 0]].astype(np.float64), f1.keypoints[m[:, 1]].astype(np.float64)


def _check_features(f: Features, name: str) -> None:
    if not isinstance(f, Features):
        raise ValueError(f"{name} must be homeloc.runtime.Features, got {type(f).__name__}")


def _check_K(K: np.ndarray) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"K must be a finite 3 x 3 intrinsics matrix with positive focal lengths, got {K.shape}"
        )
    return K


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless image is a non-empty H x W (x 1 | 3) uint8 or float32 array with
    finite values in [0, 1] (NaN, inf and out-of-range floats are refused, never clipped)."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype not in (np.uint8, np.float32):
        raise ValueError(f"image dtype must be uint8 (0..255) or float32 in [0, 1], got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ValueError(f"image must be H x W gray or H x W x 3 RGB, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"image is empty (shape {image.shape})")
    if image.dtype == np.float32 and (not np.isfinite(image).all() or image.min() < 0.0 or image.max() > 1.0):
        raise ValueError("float32 images must hold finite values in [0, 1]")


# ------------------------------------------------------------------------------------ frontend
class Frontend:
    """Keypoint extraction with the ONNX keypoint model + matching and two-view geometry.

    Args:
        model_path: keypoint ONNX file; None = the shipped model (``runtime.assets``).
        max_keypoints: keep at most this many keypoints (best scores first).
        threads: onnxruntime intra-op threads.
        nms_radius, threshold, border, refine_radius: sparse post-processing
            (``runtime.postprocess``): NMS window, minimum heatmap probability (None: the model's
            ``homeloc.detection_threshold`` metadata, else ``postprocess.THRESHOLD``), border in
            pixels, sub-pixel soft-argmax radius.
        min_contrast: local gray-level std (0..1) a keypoint needs (flat, dark, saturated or
            blurred regions give none; a uniform image gives zero keypoints); 0 disables.
        precision: which shipped model when ``model_path`` is None ("int8" or "fp32").
        providers: onnxruntime execution providers (default CPU).
        reliability: the frame-reliability model (``runtime.reliability``): None = the shipped
            one when present, a path = that JSON, False = none (``Features.reliability`` None).
        global_descriptor: require the model's ``global`` output (with ``model_path`` None: the
            shipped one-pass ``frontend`` model instead of ``keypoints``); a model that has the
            output always fills ``Features.global_descriptor``.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        max_keypoints: int = 1024,
        threads: int = 1,
        nms_radius: int = pp.NMS_RADIUS,
        threshold: float | None = None,
        border: int = pp.BORDER,
        refine_radius: int = pp.REFINE_RADIUS,
        precision: str = "int8",
        providers: list[str] | None = None,
        min_contrast: float = pp.MIN_CONTRAST,
        reliability: str | os.PathLike | bool | None = None,
        global_descriptor: bool = False,
    ) -> None:
        if not isinstance(max_keypoints, int) or max_keypoints < 1:
            raise ValueError(f"max_keypoints must be a positive int, got {max_keypoints!r}")
        if nms_radius < 0 or border < 0 or refine_radius < 0:
            raise ValueError("nms_radius, border and refine_radius must be >= 0")
        if threshold is not None and not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if not 0.0 <= min_contrast < 1.0:
            raise ValueError(f"min_contrast must be in [0, 1), got {min_contrast}")
        self.min_contrast = float(min_contrast)
        self.model_path: Path = resolve_model(
            model_path, "frontend" if global_descriptor else "keypoints", precision
        )
        self.max_keypoints, self.threads = max_keypoints, threads
        self.nms_radius, self.border, self.refine_radius = nms_radius, border, refine_radius
        self._session = open_session(self.model_path, threads, providers)
        self.metadata = model_metadata(self._session)
        check_kind(self.metadata, "keypoints", self.model_path)
        if threshold is None:  # the model's own (homeloc-export --detection-threshold), else the runtime's
            threshold = pp.model_threshold(self.metadata, self.model_path)
        self.threshold = threshold
        self._check_io()
        self.has_global = "global" in {o.name for o in self._session.get_outputs()}
        if global_descriptor and not self.has_global:
            raise ValueError(
                f"{self.model_path}: has no 'global' output (global_descriptor=True needs a frontend model)"
            )
        self._outputs = ["logits", "descriptors", "global"] if self.has_global else ["logits", "descriptors"]
        cell = int(self.metadata.get("homeloc.cell", pp.CELL))
        if cell != pp.CELL:
            raise ValueError(f"{self.model_path}: homeloc.cell={cell}, the runtime supports {pp.CELL} only")
        dim = self.metadata.get("homeloc.descriptor_dim")
        self._descriptor_dim = int(dim) if dim is not None else None
        self.reliability_model = _reliability_model(reliability)

    def _check_io(self) -> None:
        inputs = self._session.get_inputs()
        outputs = {o.name for o in self._session.get_outputs()}
        if len(inputs) != 1 or inputs[0].name != "image" or not {"logits", "descriptors"} <= outputs:
            raise ValueError(
                f"{self.model_path}: expected input 'image' and outputs 'logits', 'descriptors'; got "
                f"inputs {[i.name for i in inputs]}, outputs {sorted(outputs)}"
            )
        shape = inputs[0].shape
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 1):
            raise ValueError(f"{self.model_path}: input 'image' must be N x 1 x H x W, got {shape}")

    @property
    def descriptor_dim(self) -> int | None:
        """D from the model metadata (None until the first extract when the metadata lacks it)."""
        return self._descriptor_dim

    def extract(self, image: np.ndarray) -> Features:
        """Keypoints, scores and descriptors of one image.

        Args:
            image: H x W gray or H x W x 3 RGB, uint8 (or float32 in [0, 1]), any size; padded
                internally to multiples of 8 by edge replication.

        Returns:
            Features with at most ``max_keypoints`` keypoints in the original pixel frame,
            best score first, ``image_size=(H, W)``; ``global_descriptor`` (G float32, unit norm,
            over the padded image) when the model has the ``global`` output, else None.

        Raises:
            ValueError: not a numpy array, wrong dtype, wrong shape or empty.
        """
        check_image(image)
        x, (h, w) = pp.prepare_image(image)
        logits, desc, *glob = self._session.run(self._outputs, {"image": x})
        f = pp.postprocess(
            logits,
            desc,
            image_size=(h, w),
            max_keypoints=self.max_keypoints,
            nms_radius=self.nms_radius,
            threshold=self.threshold,
            border=self.border,
            refine_radius=self.refine_radius,
            image=x,
            min_contrast=self.min_contrast,
        )
        if glob:
            f = dataclasses.replace(f, global_descriptor=glob[0][0])
        if self._descriptor_dim is None:
            self._descriptor_dim = int(desc.shape[1])
        if self.reliability_model is not None:
            stats = rel.frame_stats(x[..., :h, :w], f, self.max_keypoints)
            f = dataclasses.replace(
                f, reliability=self.reliability_model.frame(stats), causes=rel.causes(stats)
            )
        return f

    def confidence(
        self, geometry: Geometry, f0: Features, f1: Features, matches: np.ndarray, K: np.ndarray | None = None
    ) -> rel.Confidence:
        """Probability that a two-view estimate from :meth:`estimate_homography` /
        ``estimate_fundamental`` / ``estimate_relative_pose`` (on these features and matches) is
        right, and its covariance scale in px^2 (``runtime.reliability.registration_confidence``;
        K is needed for an essential matrix)."""
        if self.reliability_model is None:
            raise ValueError("this Frontend has no reliability model (reliability=False or none shipped)")
        p0, p1 = _matched_points(f0, f1, matches)
        size = f0.image_size or (int(p0[:, 1].max(initial=0)) + 1, int(p0[:, 0].max(initial=0)) + 1)
        return rel.registration_confidence(
            self.reliability_model, geometry.model, geometry.matrix, geometry.inliers, p0, p1, size, K
        )

    # The matching and geometry functions need no model; they are methods too for convenience.
    @staticmethod
    def match(f0: Features, f1: Features, max_distance: float | None = None) -> np.ndarray:
        """Mutual nearest neighbours; see :func:`match_features`."""
        return match_features(f0, f1, max_distance)

    @staticmethod
    def estimate_homography(
        f0: Features, f1: Features, matches: np.ndarray, threshold: float = 3.0
    ) -> Geometry:
        """See :func:`estimate_homography`."""
        return estimate_homography(f0, f1, matches, threshold)

    @staticmethod
    def estimate_fundamental(
        f0: Features, f1: Features, matches: np.ndarray, threshold: float = 1.0
    ) -> Geometry:
        """See :func:`estimate_fundamental`."""
        return estimate_fundamental(f0, f1, matches, threshold)

    @staticmethod
    def estimate_relative_pose(
        f0: Features, f1: Features, matches: np.ndarray, K: np.ndarray, threshold: float = 1.0
    ) -> RelativePose:
        """See :func:`estimate_relative_pose`."""
        return estimate_relative_pose(f0, f1, matches, K, threshold)


def _reliability_model(spec: str | os.PathLike | bool | None) -> rel.ReliabilityModel | None:
    """None -> the shipped model if present; False -> none; a path -> that model (errors name it)."""
    if spec is False:
        return None
    if spec is None or spec is True:
        if not rel.DEFAULT_MODEL.is_file():
            if spec is True:
                raise FileNotFoundError(f"{rel.DEFAULT_MODEL}: no shipped reliability model")
            return None
        return rel.ReliabilityModel.load()
    return rel.ReliabilityModel.load(spec)

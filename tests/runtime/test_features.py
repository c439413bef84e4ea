"""runtime.features.Features: the one numpy features type (validation, dtypes, helpers)."""

import numpy as np
import pytest

from homeloc.runtime.features import Features


def test_features_validation_and_helpers():
    with pytest.raises(ValueError, match="keypoints must be N x 2"):
        Features(np.zeros((3, 3), np.float32), np.zeros(3, np.float32), np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="descriptors must be N x D"):
        Features(np.zeros((3, 2), np.float32), np.zeros(3, np.float32), np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="differ in length"):
        Features(np.zeros((3, 2), np.float32), np.zeros(2, np.float32), np.zeros((3, 8), np.float32))
    f = Features(
        np.array([[0, 0], [1, 1], [2, 2]], np.float32),
        np.array([0.1, 0.9, 0.5], np.float32),
        np.eye(3, dtype=np.float32),
        image_size=(4, 5),
    )
    assert f.top_k(2).scores.tolist() == pytest.approx([0.9, 0.5])
    assert f.top_k(2).image_size == (4, 5) and len(f.top_k(0)) == 3
    # a pixel centre maps to a pixel centre: x=0 at half size -> x=0.5 at full size
    assert f.rescaled(2.0, 2.0).keypoints[0].tolist() == [0.5, 0.5]


def test_features_dtypes():
    f = Features(np.zeros((2, 2)), np.zeros(2), np.ones((2, 4)))  # float64 in -> float32 out
    assert f.keypoints.dtype == f.scores.dtype == f.descriptors.dtype == np.float32
    packed = Features(np.zeros((2, 2)), np.zeros(2), np.ones((2, 32), np.uint8))  # ORB bits stay bits
    assert packed.descriptors.dtype == np.uint8 and packed.descriptor_dim == 32
    empty = Features.empty(64, np.uint8)
    assert len(empty) == 0 and empty.descriptors.shape == (0, 64)
    assert Features(np.zeros(0), np.zeros(0), np.zeros((0, 8))).keypoints.shape == (0, 2)

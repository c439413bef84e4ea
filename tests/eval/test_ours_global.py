"""The ours_global places method: the one-pass frontend's global output, registered beside the peers."""

import numpy as np
import pytest

from homeloc.eval.methods import MethodError, available_methods, create_method
from tests.runtime.test_frontend import textured
from tests.runtime.test_frontend_global import frontend_model  # noqa: F401 (fixture)


def test_ours_global_describes_with_the_frontend_global(frontend_model):  # noqa: F811
    _, path = frontend_model
    assert "ours_global" in available_methods("places")
    m = create_method(f"ours_global:{path}", "places")
    images = [textured(64, 80, seed=s) for s in range(3)] + [
        textured(32, 64, seed=9)
    ]  # the last one upscaled
    m.fit(images)
    d = m.describe(images)
    assert d.shape == (4, 8) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-4)
    assert m.model_file == path


def test_ours_global_refuses_a_keypoint_only_model(runtime_models):
    with pytest.raises(MethodError, match="no 'global' output"):
        create_method(f"ours_global:{runtime_models['keypoints']}", "places")

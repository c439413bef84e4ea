"""The long-term evaluator's noise floor (eval.longterm_evidence): which earlier frames are a
frame's negatives, the floor is the highest score against them, "seen" compares with it."""

import numpy as np

from homeloc.eval.longterm_evidence import FAR_M, floor_frame, negatives_of, noise_floor, seen
from homeloc.runtime.features import Features
from homeloc.runtime.loop_closure.config import VerifyConfig

K = np.array([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])


def _features(rng, n=300):
    kp = rng.uniform([0, 0], [319, 239], (n, 2)).astype(np.float32)
    d = rng.standard_normal((n, 64)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return Features(kp, rng.uniform(0.1, 1, n).astype(np.float32), d, (240, 320))


def _moved(f: Features, rng, tx: float = 0.3) -> Features:
    """The same points seen from a camera moved ``tx`` metres sideways (depths 2-6 m)."""
    z = rng.uniform(2, 6, len(f))
    kp = f.keypoints + np.stack([K[0, 0] * tx / z, np.zeros_like(z)], 1).astype(np.float32)
    return Features(kp, f.scores, f.descriptors, f.image_size)


def test_negatives_are_earlier_elsewhere_and_most_similar_first():
    days = np.array([0, 0, 0, 0, 1, 2])
    centres = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0], [0.5, 0, 0], [4, 4, 0], [0, 0, 0]], float)
    desc = np.eye(6)[[0, 1, 2, 3, 4, 5]].astype(float)
    desc[5] = [0, 0.2, 0.9, 0, 0.5, 0]  # frame 5 looks most like frame 2, then 4, then 1

    def same(i, others):  # frame 1 is judged the same place as frame 5 (a doorway view)
        return np.isin(others, [1]) if i == 5 else np.zeros(len(others), bool)

    neg = negatives_of(5, days, centres, same, desc, count=5)
    # frame 0 and 3 are within FAR_M, frame 1 is the place, frame 5 itself is not earlier
    assert list(neg) == [2, 4]
    assert list(negatives_of(5, days, centres, same, desc, count=1)) == [2]
    assert len(negatives_of(0, days, centres, same, desc, count=3)) == 0  # nothing before the first day
    assert len(negatives_of(5, days, centres, same, desc, count=0)) == 0
    assert FAR_M > 1.0  # beyond the place radius


def test_the_floor_is_the_highest_score_against_the_negatives():
    rng = np.random.default_rng(0)
    v = VerifyConfig(min_inliers=12, min_inlier_ratio=0.1)
    q = _features(rng)
    unrelated = [_features(np.random.default_rng(s)) for s in (1, 2)]
    low = noise_floor(q, unrelated, v, K)
    assert 0.0 <= low < 0.3
    # a negative that happens to show the same points raises the floor to its score
    high = noise_floor(q, [*unrelated, _moved(q, rng)], v, K)
    assert high > 0.9 and high > low
    assert noise_floor(q, [], v, K) == 0.0


def test_floor_frames_are_what_a_map_stores():
    rng = np.random.default_rng(3)
    f = _features(rng, 700)
    ff = floor_frame(f, np.ones(8), VerifyConfig(max_stored_features=512))
    assert len(ff.stored) == 512 and ff.stored.descriptors.dtype == np.float32
    assert ff.descriptor.dtype == np.float32


def test_seen_means_above_the_floor():
    assert seen(0.3, 0.2) is True
    assert seen(0.2, 0.2) is False  # as strong as a wrong place is not seen
    assert seen(None, 0.2) is None and seen(0.3, None) is None

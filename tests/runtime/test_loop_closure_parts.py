"""The parts of homeloc.runtime.loop_closure on their own: config validation and the flat-option
mapping, the pure prune plan, index byte accounting, the temporal filter."""

import dataclasses
import inspect

import numpy as np
import pytest

from homeloc.runtime.loop_closure import (
    IndexConfig,
    LoopClosureDetector,
    PruneBudget,
    PruneConfig,
    RetrievalConfig,
    TemporalConfig,
    VerifyConfig,
    plan_prune,
)
from homeloc.runtime.loop_closure.config import GROUPS, LEGACY_OPTIONS, flatten, legacy_default, resolve
from homeloc.runtime.loop_closure.index import DescriptorIndex, largest_divisor
from homeloc.runtime.loop_closure.results import Candidate
from homeloc.runtime.loop_closure.verify import TemporalFilter


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------ config
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: IndexConfig(kind="hnsw"), "unknown index 'hnsw'"),
        (lambda: IndexConfig(pca_dim=0), "pca_dim must be >= 1"),
        (lambda: IndexConfig(pq_bytes=0), "pq_bytes must be >= 1"),
        (lambda: IndexConfig(nprobe=0), "nprobe must be >= 1"),
        (lambda: IndexConfig(train_size=0), "train_size must be >= 1 or None"),
        (lambda: RetrievalConfig(top_k=0), "top_k must be >= 1"),
        (lambda: RetrievalConfig(exclude_recent=-1), "exclude_recent must be >= 0"),
        (lambda: TemporalConfig(k=0), r"temporal_k \(TemporalConfig.k\) must be >= 1"),
        (lambda: TemporalConfig(window=-1), "temporal_window .* must be >= 0"),
        (lambda: VerifyConfig(method="affine"), "unknown verification 'affine'"),
        (lambda: VerifyConfig(min_inliers=-1), "min_inliers must be >= 0"),
        (lambda: VerifyConfig(top=-1), "verify_top .* must be >= 0"),
        (lambda: VerifyConfig(max_stored_features=0), "max_stored_features must be >= 1"),
    ],
)
def test_config_validation_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_configs_are_frozen_and_coerce_like_the_old_constructor():
    assert IndexConfig(pca_whiten=1).pca_whiten is True
    assert RetrievalConfig(min_score=1).min_score == 1.0 and isinstance(
        RetrievalConfig(min_score=1).min_score, float
    )
    assert isinstance(PruneConfig(duplicate_score=1).duplicate_score, float)
    IndexConfig(nlist=0)  # 0 / None: automatic nlist, accepted as before
    with pytest.raises(dataclasses.FrozenInstanceError):
        IndexConfig().pq_bytes = 8


def test_constructor_defaults_are_the_config_defaults():
    params = inspect.signature(LoopClosureDetector.__init__).parameters
    for name in LEGACY_OPTIONS:
        assert params[name].default == legacy_default(name), name
    assert set(GROUPS) == {g for g, _ in LEGACY_OPTIONS.values()}


def test_flat_options_and_config_objects_build_the_same_detector(tmp_path):
    flat = LoopClosureDetector(index="pq", pq_bytes=16, train_size=None, min_inliers=0, top_k=7,
                               temporal_k=2, verification="homography", duplicate_score=0.8)  # fmt: skip
    grouped = LoopClosureDetector(
        index=IndexConfig("pq", pq_bytes=16, train_size=None),
        retrieval=RetrievalConfig(top_k=7),
        temporal=TemporalConfig(k=2),
        verify=VerifyConfig(min_inliers=0, method="homography"),
        pruning=PruneConfig(duplicate_score=0.8),
    )
    assert flat.config == grouped.config
    assert list(flat.config) == list(LEGACY_OPTIONS)  # the flat form maps save, in its old order
    assert flat.index_config == grouped.index_config == IndexConfig("pq", pq_bytes=16, train_size=None)
    assert (grouped.index, grouped.pq_bytes, grouped.top_k, grouped.verification) == (
        "pq",
        16,
        7,
        "homography",
    )
    db = unit(np.random.default_rng(0).standard_normal((300, 32)))
    for det in (flat, grouped):
        det.add_descriptors(np.arange(300), db)
        det.train()
    assert flat.save(tmp_path / "a").read_bytes() == grouped.save(tmp_path / "b").read_bytes()


def test_mixing_flat_options_with_a_config_object():
    det = LoopClosureDetector(index=IndexConfig("flat"), min_inliers=0, pq_bytes=64)  # 64: the default
    assert det.index == "flat" and det.min_inliers == 0
    with pytest.raises(ValueError, match="pq_bytes=32 conflicts with index=IndexConfig"):
        LoopClosureDetector(index=IndexConfig("flat"), pq_bytes=32)
    with pytest.raises(ValueError, match="temporal_k=3 conflicts"):
        LoopClosureDetector(temporal=TemporalConfig(), temporal_k=3)
    with pytest.raises(TypeError, match="verify must be a VerifyConfig"):
        LoopClosureDetector(verify=TemporalConfig())
    with pytest.raises(TypeError, match="unknown loop-closure option"):
        resolve({}, {"pq_size": 3})
    assert flatten(resolve({}, {})) == {name: legacy_default(name) for name in LEGACY_OPTIONS}


def test_flat_attributes_write_through_the_groups():
    det = LoopClosureDetector(index="flat", min_inliers=0)
    det.min_score = 0.5
    det.temporal_k = 3
    assert det.retrieval_config.min_score == 0.5 and det.temporal_config == TemporalConfig(k=3)
    assert det.config["min_score"] == 0.5 and det.config["temporal_k"] == 3
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        det.top_k = 0
    assert det.top_k == 5


# ------------------------------------------------------------------------------------- prune
def _five():
    """v0 ~ v1 (cos 0.995), v2 ~ v3 (cos 0.958), v4 apart."""
    return unit([[1, 0, 0], [1, 0.1, 0], [0, 1, 0], [0, 1, 0.3], [0, 0, 1]])


def test_prune_plan_merges_duplicates_into_the_keyframe_with_more_features():
    X = _five()
    before = X.copy()
    sizes = np.array([10, 20, 10, 10, 10])
    plan = plan_prune(X, num_features=[0, 5, 0, 0, 0], sizes=sizes, fixed_bytes=100, duplicate_score=0.99)
    assert plan.merged == {0: 1} and plan.drop == [0]
    assert (plan.keyframes, plan.nbytes, plan.over_budget) == (4, 100 + 60 - 10, False)
    assert set(plan.prototypes) == {1}
    np.testing.assert_allclose(plan.prototypes[1], unit(X[0] + X[1]), atol=1e-6)  # the group's mean
    np.testing.assert_array_equal(X, before)  # pure: the input is not modified


def test_prune_plan_fits_a_budget_and_resolves_chains():
    X, sizes = _five(), np.full(5, 10)
    plan = plan_prune(X, [0, 5, 0, 3, 0], sizes, 100, 0.99, PruneBudget(max_keyframes=3))
    assert plan.merged == {0: 1, 2: 3} and plan.keyframes == 3 and not plan.over_budget
    one = plan_prune(X, [0, 5, 0, 3, 0], sizes, 100, 0.99, PruneBudget(max_keyframes=1))
    (survivor,) = set(one.merged.values())  # every chain ends at the one survivor
    assert sorted(one.merged) == sorted(set(range(5)) - {survivor}) and one.keyframes == 1
    impossible = plan_prune(X, [0] * 5, sizes, 100, 0.99, PruneBudget(max_bytes=50))
    assert impossible.over_budget and impossible.keyframes == 1 and impossible.nbytes == 110
    assert plan_prune(X[:1], [0], sizes[:1], 100, 0.5).merged == {}


def test_prune_plan_uses_complete_linkage():
    deg = np.radians([0.0, 8.0, 17.0])  # neighbours at 8 and 9 degrees, the ends 17 apart
    X = np.stack([np.cos(deg), np.sin(deg)], axis=1).astype(np.float32)
    plan = plan_prune(X, [0, 9, 0], np.full(3, 10), 0, duplicate_score=0.985)  # cos 8, 9 deg > 0.985 > cos 17
    assert plan.merged == {0: 1}  # 2 would join {0, 1} by its pair with 1, but is too far from 0


def test_prune_budget_validation():
    with pytest.raises(ValueError, match="max_keyframes must be >= 1"):
        PruneBudget(max_keyframes=0)
    with pytest.raises(ValueError, match="max_bytes must be >= 0"):
        PruneBudget(max_bytes=-1)


# ---------------------------------------------------------------------------- byte accounting
def _trained(cfg, d=64, n=300):
    idx = DescriptorIndex(cfg)
    idx.train(unit(np.random.default_rng(1).standard_normal((n, d))))
    idx.add(unit(np.random.default_rng(2).standard_normal((10, d))))
    return idx


def test_index_byte_accounting():
    empty = DescriptorIndex(IndexConfig())
    assert (empty.code_bytes, empty.fixed_bytes, empty.entry_overhead, empty.index_dim, len(empty)) == (
        0,
        0,
        8,
        0,
        0,
    )

    flat = DescriptorIndex(IndexConfig("flat"))
    flat.add(unit(np.ones((10, 32))))
    assert (flat.code_bytes, flat.fixed_bytes, flat.entry_overhead, flat.trained) == (4 * 32, 0, 8, True)

    pq = _trained(IndexConfig("pq", pq_bytes=16, train_size=None))
    assert (pq.code_bytes, pq.entry_overhead, len(pq)) == (16, 8, 10)
    assert pq.fixed_bytes == 256 * 64 * 4  # 16 codebooks x 256 centroids x 4 dims x float32

    ivf = _trained(IndexConfig("ivfpq", pca_dim=32, pq_bytes=8, nlist=4, train_size=None))
    assert (ivf.code_bytes, ivf.entry_overhead, ivf.index_dim, ivf.dim) == (8, 16, 32, 64)
    pca = (32 * 64 + 32) * 4
    assert ivf.fixed_bytes == pca + 256 * 32 * 4 + 4 * 32 * 4  # PCA + codebooks + coarse centroids

    assert _trained(IndexConfig("pq", pq_bytes=10, train_size=None), d=48).code_bytes == 8  # divides 48
    assert [largest_divisor(48, m) for m in (10, 64, 1)] == [8, 48, 1]


def test_stats_add_up():
    det = LoopClosureDetector(index="ivfpq", pq_bytes=8, train_size=None, min_inliers=0)
    det.train(unit(np.random.default_rng(3).standard_normal((300, 32))))
    det.add_descriptors(np.arange(20), unit(np.random.default_rng(4).standard_normal((20, 32))))
    s = det.stats()
    assert s.total_bytes == s.fixed_bytes + 20 * (s.code_bytes + s.overhead_bytes_per_keyframe)
    assert (s.code_bytes, s.overhead_bytes_per_keyframe, s.local_bytes_per_keyframe) == (8, 16, 0.0)


# ---------------------------------------------------------------------------------- temporal
def test_temporal_filter():
    positions = {10: 0, 11: 1, 12: 2, 20: 9}
    f = TemporalFilter(TemporalConfig(k=2, window=1))
    assert not f.accept(Candidate(10, 0.9), positions)
    assert f.accept(Candidate(11, 0.9), positions)  # 1 position apart: the streak is 2
    assert not f.accept(Candidate(20, 0.9), positions)  # jumps: restarts
    assert not f.accept(None, positions)  # nothing retrieved: restarts
    assert not f.accept(Candidate(12, 0.9), positions)
    del positions[12]  # the previous best was pruned: restarts
    positions[11] = 1
    assert not f.accept(Candidate(11, 0.9), positions)

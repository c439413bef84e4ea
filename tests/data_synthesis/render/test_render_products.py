"""Products from renders: 3-D pairs (read by PairsData's dataset), pose pairs, loop sequences, places."""

import numpy as np
import pytest

from homeloc.data_synthesis.formats.loops import load_loop_sequence
from homeloc.data_synthesis.formats.pose import load_pose_pairs
from homeloc.data_synthesis.render import products
from homeloc.data_synthesis.render.datasets import Pairs3DShardDataset, open_pair_dataset
from homeloc.data_synthesis.render.jobs import render_homes
from homeloc.data_synthesis.render.layout import read_render
from tests.data_synthesis.render.conftest import tiny_config


@pytest.fixture(scope="module")
def two_homes(tmp_path_factory):
    out = tmp_path_factory.mktemp("prod") / "r"
    render_homes(out, 2, 4, seed=7, cfg=tiny_config(size=(30, 40)))
    return out


def test_pairs3d_dataset_items(two_homes, tmp_path):
    products.export_pairs3d(two_homes, tmp_path / "p3", num=3, min_overlap=0.1)
    ds = open_pair_dataset(tmp_path / "p3")
    assert isinstance(ds, Pairs3DShardDataset) and len(ds) == 3
    item = ds[0]
    assert item["image0"].shape == (1, 30, 40) and item["H_0to1"].shape == (3, 3)
    assert item["warp_0to1"].shape == (30, 40, 2) and item["valid0"].dtype.is_floating_point is False
    ok = item["valid0"].numpy()
    warp = item["warp_0to1"].numpy()
    assert ok.any() and (warp[ok] >= -0.5).all() and (warp[~ok] == -1).all()


def test_pose_pairs_read_by_the_pose_format(two_homes, tmp_path):
    path = products.export_pose_pairs(two_homes, tmp_path / "pose", num=3, min_overlap=0.1)
    pairs = load_pose_pairs(path).pairs
    assert 1 <= len(pairs) <= 3
    p = pairs[0]
    assert np.allclose(p.R @ p.R.T, np.eye(3), atol=1e-6) and np.linalg.norm(p.t) > 0


def test_loops_and_places(two_homes, tmp_path):
    out = products.export_loops(two_homes, tmp_path / "loops", min_overlap=0.1)
    seq = load_loop_sequence(out / "home_00000")
    assert seq.count("map") == 2 and seq.count("queries") == 2 and seq.count("distractors") == 2
    assert seq.K is not None
    csv = products.export_places(two_homes, tmp_path / "places", min_overlap=0.1)
    assert csv.read_text().startswith("query,positives")
    homes = read_render(two_homes)
    assert products.covisibility(homes["home_00000"][0], homes["home_00000"][0]) > 0.9

"""A synthesized pair dataset exported as pairs.txt reads back in the evaluator with the same H."""

import numpy as np

from homeloc.data_synthesis.export_pairs import export_pairs_txt
from homeloc.data_synthesis.formats.matching import load_matching_dataset
from homeloc.data_synthesis.jobs import synthesize_pairs
from homeloc.data_synthesis.pairs import PairConfig


def test_export_pairs_round_trip(tmp_path):
    synthesize_pairs(["skimage"], tmp_path / "ds", 3, seed=5, config=PairConfig(size=(64, 96)))
    pairs_txt = export_pairs_txt(tmp_path / "ds", tmp_path / "files")
    ds = load_matching_dataset(str(pairs_txt))
    assert len(ds.pairs) == 3
    from homeloc.data_synthesis.datasets import PairShardDataset

    H = PairShardDataset(tmp_path / "ds")[1]["H_0to1"].numpy()
    np.testing.assert_allclose(ds.pairs[1].H / ds.pairs[1].H[2, 2], H / H[2, 2], rtol=1e-5, atol=1e-6)
    assert ds.pairs[1].image0.load().shape[:2] == (64, 96)

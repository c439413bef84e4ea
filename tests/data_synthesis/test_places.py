"""Place datasets: groups of hard negatives, views, torch datasets, the evaluation export."""

import csv

import numpy as np
import pytest

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.export_places import export_places_eval
from homeloc.data_synthesis.place_datasets import OnTheFlyPlaces, PlaceShardDataset
from homeloc.data_synthesis.place_jobs import synthesize_places
from homeloc.data_synthesis.places import PlaceConfig, _iou, make_place
from homeloc.data_synthesis.sources import SourceMix

SIZE = (48, 64)


def test_groups_share_a_source_with_far_apart_crops():
    mix, cfg = SourceMix(["skimage"]), PlaceConfig()
    places = [make_place(mix, cfg, 0, i, views=3, places_per_source=4, size=SIZE) for i in range(8)]
    for g in (0, 1):
        members = places[4 * g : 4 * g + 4]
        assert {p.meta["group"] for p in members} == {g}
        assert len({p.meta["source"] for p in members}) == 1
        crops = [p.meta["crop"] for p in members]
        ious = [_iou(a, b) for i, a in enumerate(crops) for b in crops[i + 1 :]]
        assert np.mean(ious) < 0.2, ious
    p = places[0]
    assert len(p.views) == 3 and all(v.shape == (*SIZE, 3) for v in p.views)
    assert np.allclose(p.homographies[0], np.eye(3)) and not np.allclose(p.homographies[1], np.eye(3))
    assert p.meta["views"][0]["preset"] in cfg.view0
    assert all(v["preset"] in cfg.view_presets for v in p.meta["views"][1:])


def test_place_is_reproducible_alone():
    cfg = PlaceConfig()
    a = make_place(SourceMix(["skimage"]), cfg, 1, 5, views=3, size=SIZE)
    mix = SourceMix(["skimage"])
    for i in range(5):
        make_place(mix, cfg, 1, i, views=3, size=SIZE)
    b = make_place(mix, cfg, 1, 5, views=3, size=SIZE)
    assert a.meta == b.meta and all(np.array_equal(x, y) for x, y in zip(a.views, b.views, strict=True))


def test_bad_place_arguments():
    with pytest.raises(ValueError, match="at least 2 views"):
        make_place(SourceMix(["skimage"]), PlaceConfig(), 0, 0, views=1)
    with pytest.raises(ValueError, match="unknown photometric preset"):
        PlaceConfig(view_presets={"midnight": 1.0})
    with pytest.raises(ValueError, match="crop_fraction"):
        PlaceConfig(crop_fraction=(0.5, 1.5))


@pytest.fixture(scope="module")
def places_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("places")
    synthesize_places(
        ["skimage"],
        out,
        num_places=6,
        seed=2,
        views=3,
        places_per_source=2,
        size=SIZE,
        shard_size=4,
        image_format=".png",
    )
    return out


def test_place_dataset_and_on_the_fly_twin(places_dir):
    ds = PlaceShardDataset(places_dir)
    fly = OnTheFlyPlaces(["skimage"], 6, seed=2, views=3, places_per_source=2, size=SIZE)
    assert len(ds) == 6
    item = ds[3]
    assert item["views"].shape == (3, 1, *SIZE) and item["H"].shape == (3, 3, 3)
    assert item["place"] == 3 and item["group"] == 1
    assert (item["views"] == fly[3]["views"]).all() and item["group"] == fly[3]["group"]
    assert PlaceShardDataset(places_dir, gray=False)[0]["views"].shape == (3, 3, *SIZE)
    assert ds.meta(3)["group"] == 1 and ds.meta(3)["place"] == 3
    same = ds.same_place()
    assert len(same) == 6 and all(3 not in s or i != 3 for i, s in enumerate(same))
    for i, others in enumerate(same):
        for j in others:
            assert i in same[j] and ds.meta(j)["source_image"] == ds.meta(i)["source_image"]


def test_export_for_evaluation(places_dir, tmp_path):
    gt = export_places_eval(
        places_dir, tmp_path, query_presets=("night_lamp", "night_ir", "dusk", "glare", "day")
    )
    rows = list(csv.reader(gt.open()))
    assert rows[0] == ["query", "positives"]
    db = sorted(p.name for p in (tmp_path / "database").iterdir())
    assert len(db) == 6
    assert len(rows) - 1 == len(list((tmp_path / "queries").iterdir())) > 0
    for q, pos in rows[1:]:
        assert (tmp_path / "queries" / q).is_file()
        own = q.split("_v")[0] + ".png"
        assert own in pos.split() and all(p in db for p in pos.split())
    assert (
        export_places_eval(places_dir, tmp_path, ("night_lamp", "night_ir", "dusk", "glare", "day")) == gt
    )  # kept
    with pytest.raises(shards.DatasetError, match="overwrite"):
        export_places_eval(places_dir, tmp_path)  # other options
    export_places_eval(places_dir, tmp_path, overwrite=True)
    eval_places = pytest.importorskip("homeloc.data_synthesis.formats.places")
    ds = eval_places.load_places_folder(tmp_path)
    assert len(ds.database) == 6 and all(len(p) >= 1 for p in ds.positives)


def test_real_webcam_places(shared_data, tmp_path):
    mix = SourceMix([f"webcam:{shared_data / 'webcam'}"])
    p = make_place(mix, PlaceConfig(), 0, 0, views=4, size=SIZE)
    assert p.meta["real"] and p.meta["source"].startswith("webcam:")
    captures = [v["capture"] for v in p.meta["views"]]
    assert len(set(captures)) == 4, "views are distinct real captures"
    assert p.views[0].mean() >= max(v.mean() for v in p.views[1:]) - 25  # view 0: the brightest capture

"""Sources: folders, webcam timelapses, bad sources with errors that name them."""

import numpy as np
import pytest

from homeloc.data_synthesis.pairs import sample_rng
from homeloc.data_synthesis.sources import FolderSource, SourceMix, WebcamSource, load_cached, parse_source
from homeloc.runtime.io import ImageReadError, write_image

IMG = (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)


def test_empty_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image files") as e:
        SourceMix([f"folder:{tmp_path}"])
    assert str(tmp_path) in str(e.value)


def test_missing_source_path_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as e:
        parse_source(f"webcam:{tmp_path / 'nope'}")
    assert "nope" in str(e.value)
    with pytest.raises(ValueError, match="no source"):
        SourceMix([])


def test_unreadable_file_in_a_folder_names_the_file(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    src = FolderSource(tmp_path)
    with pytest.raises(ImageReadError) as e:
        src.sample(np.random.default_rng(0))
    assert "broken.jpg" in str(e.value)
    load_cached.cache_clear()


def test_folder_source_is_recursive_and_weighted(tmp_path):
    write_image(tmp_path / "a" / "b" / "x.png", IMG)
    mix = SourceMix([f"{tmp_path}@2", "skimage@1"])
    assert mix.p.tolist() == pytest.approx([2 / 3, 1 / 3])
    s = mix.sources[0].sample(np.random.default_rng(0))
    assert s.id == "folder:a/b/x.png" and s.image1 is None and np.array_equal(s.image0, IMG)


def test_webcam_root_with_a_manifest_file_and_scene_folders(tmp_path):
    """Regression: a text file beside the scene folders made the root count as one scene."""
    (tmp_path / "MANIFEST.md").write_text("# webcam\n")
    for scene in ("a", "b"):
        for t in ("20200101_120000", "20200101_230000"):
            write_image(tmp_path / scene / f"{t}.jpg", IMG)
    src = WebcamSource(tmp_path)
    assert src.names == ["a", "b"]
    s = src.sample(sample_rng(0, 0))
    assert s.image1 is not None and np.array_equal(s.h_0to1, np.eye(3)) and s.id.startswith("webcam:")


def test_webcam_folder_of_images_is_one_scene(tmp_path):
    for t in ("20200101_120000", "20200101_230000", "20200102_120000"):
        write_image(tmp_path / f"{t}.png", IMG)
    assert WebcamSource(tmp_path).names == [tmp_path.name]


def test_webcam_scene_needs_two_images(tmp_path):
    write_image(tmp_path / "a" / "20200101_120000.png", IMG)
    with pytest.raises(FileNotFoundError, match="at least two images"):
        WebcamSource(tmp_path)


def test_shared_webcam_data(shared_data):
    src = WebcamSource(shared_data / "webcam")
    assert len(src.names) >= 4 and len(src) >= 100


def _broken(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


def test_an_unreadable_image_is_skipped_and_counted_strict_stops(tmp_path):
    """One bad file among good ones: sampling redraws (a sample still depends only on the seed and
    the files), the file is listed in skipped(); strict=True raises naming it."""
    for i in range(3):
        write_image(tmp_path / f"good{i}.png", IMG)
    _broken(tmp_path / "bad.jpg")
    mix = SourceMix([f"folder:{tmp_path}"])
    ids = [mix.sample(sample_rng(0, i)).id for i in range(20)]
    assert "folder:bad.jpg" not in ids and set(mix.skipped()) == {str(tmp_path / "bad.jpg")}
    again = SourceMix([f"folder:{tmp_path}"])  # a fresh process (worker) draws the same samples
    assert [again.sample(sample_rng(0, i)).id for i in range(20)] == ids
    strict = SourceMix([f"folder:{tmp_path}"], strict=True)
    with pytest.raises(ImageReadError, match="bad.jpg"):
        for i in range(20):
            strict.sample(sample_rng(0, i))
    load_cached.cache_clear()


def test_webcam_pairs_skip_an_unreadable_capture(tmp_path):
    for t in ("20200101_120000", "20200101_230000", "20200102_120000"):
        write_image(tmp_path / f"{t}.png", IMG)
    _broken(tmp_path / "20200103_120000.jpg")
    src = WebcamSource(tmp_path)
    for i in range(10):
        assert "20200103" not in src.sample(sample_rng(0, i)).id
    assert len(src.skipped) == 1
    load_cached.cache_clear()

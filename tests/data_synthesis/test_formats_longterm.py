"""The months-long sequence reader (data_synthesis.formats.longterm) on a tiny home in the renderer's
layout; ``make_home`` is the fixture the long-term evaluation tests replay."""

import json

import cv2
import numpy as np
import pytest
import skimage.data

from homeloc.data_synthesis.formats.errors import DataError
from homeloc.data_synthesis.formats.longterm import read_longterm
from homeloc.runtime.io import write_image
from tests.runtime.test_longterm import pose_at

ROOMS = [[0, 0, 4, 4], [4, 0, 8, 4]]
SPOTS = [(1, 1, 0), (3, 2, 90), (6, 1, 0)]  # (x, y, yaw): two places in room 0, one in room 1


def _rgb(k, day, gain=1.0, h=120, w=160):
    """Spot k on day `day`: two fronto-parallel photo planes seen by a camera moved sideways, so
    the near one shifts 3x as far as the far one (parallax: the essential matrix is well posed)."""
    photos = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]
    far, near = (
        cv2.resize(photos[i % 4], (w + 60, h + 60), interpolation=cv2.INTER_AREA) for i in (k, k + 1)
    )
    out = far[20 : 20 + h, 20 + 2 * day : 20 + 2 * day + w].astype(np.float32)
    out[30:90, 40:120] = near[50:110, 20 + 6 * day : 100 + 6 * day]
    return (out * gain).clip(0, 255).astype(np.uint8)


def make_home(root, days=3, name="home_00000"):
    """A rendered-layout home: every day one patrol over SPOTS (the last day dimmer), frames listed
    out of day order in cameras.json (the reader sorts them)."""
    home = root / name
    frames = []
    for day in reversed(range(days)):
        for k, (x, y, yaw) in enumerate(SPOTS):
            fname = f"d{day}_f{k}"
            write_image(home / "rgb" / f"{fname}.png", _rgb(k, day, gain=0.6 if day == days - 1 else 1.0))
            write_image(
                home / "depth" / f"{fname}.png", np.full((120, 160), 3000, np.uint16)
            )  # a wall 3 m ahead
            frames.append({"name": fname, "pose_c2w": pose_at(x + 0.1 * day, y, yaw).tolist(), "lighting": "noon",
                           "day": day, "sequence": f"day{day}"})  # fmt: skip
    cams = {"K": [[100, 0, 79.5], [0, 100, 59.5], [0, 0, 1]], "width": 160, "height": 120, "rooms": ROOMS,
            "frames": frames}  # fmt: skip
    (home / "cameras.json").write_text(json.dumps(cams))
    return root


def test_reader_sorts_by_day_and_names_bad_files(tmp_path):
    make_home(tmp_path)
    (h,) = read_longterm(tmp_path)
    assert [f.day for f in h.frames] == [0, 0, 0, 1, 1, 1, 2, 2, 2] and h.days == [0, 1, 2]
    assert [f.name for f in h.frames[:3]] == ["d0_f0", "d0_f1", "d0_f2"] and h.rooms.shape == (2, 4)
    assert read_longterm(tmp_path / "home_00000")[0].name == "home_00000"
    (tmp_path / "home_00000" / "rgb" / "d1_f2.png").unlink()
    with pytest.raises(DataError, match="d1_f2.png: image missing"):
        read_longterm(tmp_path)
    (tmp_path / "home_00000" / "cameras.json").write_text("{")
    with pytest.raises(DataError, match="cameras.json"):
        read_longterm(tmp_path)
    with pytest.raises(DataError, match="no home_"):
        read_longterm(tmp_path / "home_00000" / "rgb")

"""A malicious or non-checkpoint file: refused as "not a homeloc checkpoint", never with torch's
hint to retry with weights_only=False, and its code never runs."""

import os

import pytest
import torch

from homeloc.export.checkpoint import CheckpointError, read_checkpoint
from homeloc.models.checkpoint_io import load_checkpoint
from homeloc.models.keypoints import KeypointNet
from homeloc.models.places import PlaceNet


class _Payload:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def bad_files(tmp_path):
    torch.save({"state_dict": {}, "x": _Payload(tmp_path / "pwned")}, tmp_path / "evil.ckpt")
    (tmp_path / "text.ckpt").write_text("hello, not a checkpoint")
    (tmp_path / "empty.ckpt").write_bytes(b"")
    return tmp_path


@pytest.mark.parametrize("name", ["evil.ckpt", "text.ckpt", "empty.ckpt"])
@pytest.mark.parametrize(
    "load", [load_checkpoint, KeypointNet.from_checkpoint, PlaceNet.from_checkpoint, read_checkpoint]
)
def test_not_a_homeloc_checkpoint_without_the_unsafe_hint(bad_files, name, load):
    with pytest.raises(ValueError) as e:
        load(bad_files / name)
    msg = str(e.value)
    assert msg.startswith(f"{bad_files / name}: not a homeloc checkpoint"), msg
    assert "weights_only=False" not in msg and "Re-running" not in msg and "likely succeed" not in msg
    assert "\n" not in msg
    assert not (bad_files / "pwned").exists(), "the file's code must never run"
    if load is read_checkpoint:
        assert isinstance(e.value, CheckpointError)

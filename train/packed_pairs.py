"""Training-ready pair shards (kind "pairs_packed"): what `TrainingPairs` computes per item, stored once.

A real run on 2 cores reached half the model-only rate because every item was decoded (PNG),
its warps computed (depth reprojection, a least-squares H) and its teacher entry inflated (deflate)
in DataLoader workers that share the trainer's cores. `pack_pairs` does that work once; an item is
then a few raw `.npy` members read from a tar at known offsets: no decode, no geometry.

Per pair (members of `pairs_packed-NNNNNN.tar`, written by data_synthesis.shards, so a pack is
resumable after kill -9, sha256-checked on open and byte-identical when rerun):

    image0.npy, image1.npy   HxW uint8 gray, the pixels the student sees (float = uint8 / 255)
    masks.npy                HxW uint8 bit flags (data_synthesis.pairs.pack_masks)
    warp01.npy, warp10.npy   HxWx2 float32 dense correspondences (x, y), -1 where invalid
    heat0.npy, heat1.npy     HxW float16 teacher keypoint probability (with a teacher cache)
    desc0.npy, desc1.npy     D x H/8 x W/8 float16 teacher descriptors (with --descriptors)
    json                     {"H_0to1": 3x3, "source": [folder, index], "keys": [sha256 x2]}

The manifest's config records the packed format `version`, the source folders (with their
config hashes) and the teacher; a folder of another version is refused with one line.
Arrays are read with allow_pickle=False.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, Dataset

from homeloc.data_synthesis import shards
from homeloc.data_synthesis.datasets import _ShardIndex
from homeloc.data_synthesis.pairs import pack_masks, unpack_masks

KIND = "pairs_packed"
VERSION = 1


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _uint8(image: torch.Tensor) -> np.ndarray:
    """1xHxW float [0,1] made from uint8 pixels -> those pixels (exact: x = u / 255)."""
    return np.clip(np.round(image[0].numpy() * 255.0), 0, 255).astype(np.uint8)


@dataclass
class PairPacker:
    """Picklable sample factory for shards.build: global pair index -> packed members. The items
    come from train.data.TrainingPairs, so a packed item equals the unpacked one by construction."""

    data: list[str]
    teacher_cache: str | None
    descriptors: bool

    def __call__(self, indices):
        from homeloc.data_synthesis.render.datasets import open_pair_dataset
        from homeloc.train.data import TrainingPairs
        from homeloc.train.teacher_cache import image_key

        parts = [TrainingPairs(open_pair_dataset(d), self.teacher_cache, self.descriptors) for d in self.data]
        concat = ConcatDataset(parts)
        for i in indices:
            item = concat[i]
            part = int(np.searchsorted(concat.cumulative_sizes, i, side="right"))
            local = i - (concat.cumulative_sizes[part - 1] if part else 0)
            images = [_uint8(item["image0"]), _uint8(item["image1"])]
            meta = {"H_0to1": item["H_0to1"].double().tolist(), "source": [self.data[part], local],
                    "keys": [image_key(im) for im in images]}  # fmt: skip
            masks = pack_masks(*(item[k].numpy() for k in ("valid1", "change1", "valid0")))
            out = {"__key__": f"{i:09d}", "json": json.dumps(meta, sort_keys=True).encode(),
                   "image0.npy": _npy(images[0]), "image1.npy": _npy(images[1]), "masks.npy": _npy(masks),
                   "warp01.npy": _npy(item["warp_0to1"].numpy()),
                   "warp10.npy": _npy(item["warp_1to0"].numpy())}  # fmt: skip
            for v in ("0", "1"):
                if "teacher_heat" + v in item:  # stored as cached (float16: the cast back is exact)
                    out[f"heat{v}.npy"] = _npy(item["teacher_heat" + v][0].numpy().astype(np.float16))
                if "teacher_desc" + v in item:
                    out[f"desc{v}.npy"] = _npy(item["teacher_desc" + v].numpy())
            yield out


def _source_info(root: str) -> dict:
    manifest = shards.verify(Path(root))  # an incomplete or corrupt source fails here, naming it
    return {
        "path": str(Path(root).resolve()),
        "kind": manifest["kind"],
        "config_hash": manifest["config_hash"],
    }


def pack_pairs(
    data: list[str],
    out: str,
    teacher_cache: str | None = None,
    descriptors: bool = False,
    shard_size: int = 200,
    overwrite: bool = False,
) -> Path:
    """Pack `homeloc-synthesize pairs` / `render-export --product pairs3d` folders (`data`, in
    order) into one training-ready folder `out` (see the module docstring); returns its manifest.

    teacher_cache: a `homeloc-train cache-teacher` folder covering every image (its heat, and with
    descriptors=True its descriptors, are stored beside the pair); None packs without a teacher.
    Resumable (finished shards are kept); another configuration in `out` needs overwrite=True."""
    from homeloc.data_synthesis.render.datasets import open_pair_dataset
    from homeloc.train.teacher_cache import TeacherCache

    data = [data] if isinstance(data, str) else list(data)
    for root in data:
        if not Path(root).is_dir():
            raise ValueError(f"--data: {root}: not a folder")
    teacher = None
    if teacher_cache:
        m = TeacherCache(teacher_cache).manifest()
        if m is None:
            raise ValueError(
                f"--teacher_cache: {teacher_cache}: no manifest.json (not a cache-teacher folder)"
            )
        teacher = m.get("teacher")
    config = {"version": VERSION, "data": [_source_info(d) for d in data], "teacher": teacher,
              "teacher_cache": str(Path(teacher_cache).resolve()) if teacher_cache else None,
              "descriptors": bool(descriptors and teacher_cache)}  # fmt: skip
    num = sum(len(open_pair_dataset(d)) for d in data)
    maker = PairPacker(data, teacher_cache, bool(descriptors))
    return shards.build(Path(out), KIND, config, num, shard_size, maker, 1, overwrite)


def is_packed(root: str | Path) -> bool:
    """True if `root` is a pack_pairs folder (by its manifest's kind)."""
    return (shards.read_manifest(Path(root)) or {}).get("kind") == KIND


class PackedPairs(Dataset):
    """A pack_pairs folder. Items: image0/image1 (1xHxW float [0,1]), H_0to1 (3x3 float32),
    valid0/valid1/change1 (HxW bool), warp_0to1/warp_1to0 (HxWx2 float32, -1 invalid) and, when
    packed with a teacher, teacher_heat0/1 (1xHxW float32) and teacher_desc0/1 (D x h x w float16):
    the keys of train.data.TrainingPairs, so packed and unpacked folders mix in one batch."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        manifest = shards.read_manifest(self.root) or {}
        version = manifest.get("config", {}).get("version") if manifest.get("kind") == KIND else None
        if version != VERSION:
            raise shards.DatasetError(
                f"{self.root / shards.MANIFEST}: not packed pairs version {VERSION} "
                f"(kind {manifest.get('kind')!r}, version {version!r}); repack with `homeloc-train pack-pairs`"
            )
        self.index = _ShardIndex(self.root, KIND)  # checks every shard's sha256

    def __len__(self):
        return len(self.index)

    def _arrays(self, i: int) -> tuple[dict[str, np.ndarray], dict]:
        path, members = self.index.items[i]
        need = ("json", "image0.npy", "image1.npy", "masks.npy", "warp01.npy", "warp10.npy")
        if any(k not in members for k in need):
            missing = [k for k in need if k not in members]
            raise shards.DatasetError(f"{path}: sample {i} lacks {', '.join(missing)} (corrupt pack)")
        raw = self.index.read(i)
        try:
            arrays = {k[:-4]: np.lib.format.read_array(io.BytesIO(v), allow_pickle=False)
                      for k, v in raw.items() if k.endswith(".npy")}  # fmt: skip
            return arrays, json.loads(raw["json"])
        except (ValueError, EOFError, json.JSONDecodeError) as e:
            raise shards.DatasetError(f"{path}: sample {i} unreadable ({e})") from None

    def __getitem__(self, i):
        a, meta = self._arrays(i)
        valid1, change1, valid0 = unpack_masks(a["masks"])
        out = {
            "image0": torch.from_numpy(a["image0"]).float()[None] / 255.0,
            "image1": torch.from_numpy(a["image1"]).float()[None] / 255.0,
            "H_0to1": torch.as_tensor(meta["H_0to1"], dtype=torch.float32),
            "valid0": torch.from_numpy(valid0),
            "valid1": torch.from_numpy(valid1),
            "change1": torch.from_numpy(change1),
            "warp_0to1": torch.from_numpy(a["warp01"]),
            "warp_1to0": torch.from_numpy(a["warp10"]),
        }
        for v in ("0", "1"):
            if "heat" + v in a:
                out["teacher_heat" + v] = torch.from_numpy(a["heat" + v].astype(np.float32))[None]
            if "desc" + v in a:
                out["teacher_desc" + v] = torch.from_numpy(a["desc" + v])
        return out

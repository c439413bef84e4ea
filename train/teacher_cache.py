"""Teacher outputs computed once per training image, stored on disk, read back by the data module.

ALIKED costs ~0.1-0.5 s per frame on these CPUs, which would cap training at a few images/s if it
ran in the loop; a pairs folder is fixed, so its teacher outputs can be computed ahead of time.

Cache layout (`build_teacher_cache(data, out, teacher)`):

    OUT/manifest.json              {"format", "teacher", "entries", "complete"}
    OUT/<k[:2]>/<k>.npz            heat  HxW float16 (keypoint probability in the 65-cell form,
                                          dustbin implicit: 1 - sum over the cell)
                                   desc  h x w x D float16 (unit descriptors at the 1/8 cell centres)

The key k is the SHA-256 of the image the student sees (gray uint8 pixels + shape), so an entry
is valid for any dataset that yields the same image. A pair's second image already contains its
warp and lighting (the pixels are warped before they are stored), so the warp needs no key of its
own. Entries are written atomically (temp + rename) with fixed zip timestamps, so a run killed with
-9 resumes where it stopped and gives identical bytes. Files are npz read without pickle.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from homeloc.runtime.io import atomic_write

log = logging.getLogger(__name__)
FORMAT = 1
MANIFEST = "manifest.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class CacheMiss(KeyError):
    """A training image has no teacher entry; the message names the file and the fix."""

    def __str__(self):  # KeyError quotes its message; one readable line instead
        return str(self.args[0])


@dataclass(frozen=True)
class TeacherOutput:
    """heat: HxW float16 keypoint probability; desc: h x w x D float16 unit descriptors (h = H/8)."""

    heat: np.ndarray
    desc: np.ndarray


def image_key(image: torch.Tensor | np.ndarray) -> str:
    """SHA-256 of a gray image as the student sees it: 1xHxW / HxW float [0,1] or uint8."""
    a = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    a = a.reshape(a.shape[-2:])
    if a.dtype != np.uint8:
        a = np.clip(np.round(a * 255.0), 0, 255).astype(np.uint8)
    h = hashlib.sha256(f"{a.shape[0]}x{a.shape[1]}:".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def encode_entry(out: TeacherOutput) -> bytes:
    """Deterministic npz bytes (deflate, fixed timestamps): the same outputs give the same file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, arr in (("heat", out.heat), ("desc", out.desc)):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr, np.float16), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, npy.getvalue())
    return buf.getvalue()


class TeacherCache:
    """Read/write access to a cache folder (see the module docstring)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def manifest(self) -> dict | None:
        p = self.root / MANIFEST
        return json.loads(p.read_text()) if p.is_file() else None

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def put(self, key: str, out: TeacherOutput) -> None:
        atomic_write(self.path(key), encode_entry(out))

    def get(self, key: str, descriptors: bool = True) -> TeacherOutput:
        """The entry of image `key`; descriptors=False skips reading them (desc is then 0 x 0 x 0)."""
        p = self.path(key)
        try:
            with np.load(p, allow_pickle=False) as z:
                return TeacherOutput(z["heat"], z["desc"] if descriptors else np.zeros((0, 0, 0), np.float16))
        except FileNotFoundError:
            raise CacheMiss(
                f"{p}: no teacher output for this training image; run `homeloc-train cache-teacher "
                f"--data DATA --out {self.root}` on the pairs folder first"
            ) from None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise CacheMiss(
                f"{p}: unreadable teacher cache entry ({e}); delete it and rerun cache-teacher"
            ) from None


def _check_manifest(cache: TeacherCache, teacher: str) -> None:
    m = cache.manifest()
    if m is not None and m.get("teacher") != teacher:
        raise ValueError(
            f"{cache.root / MANIFEST}: this cache holds teacher {m.get('teacher')!r}, not {teacher!r}; "
            "choose another --out (entries are not overwritten)"
        )


def build_teacher_cache(data: list[str], out: str, teacher: str = "aliked-n16") -> Path:
    """Run `teacher` ('aliked-n16' | 'aliked-t16' | 'aliked-n32' | 'xfeat') once per image of every
    pair in the `data` folders (`homeloc-synthesize pairs` or `render-export --product pairs3d`)
    and store its outputs in `out`. Skips entries that exist (resumable); returns `out`.

    data: pair folders; out: cache folder (created). Entries are keyed by image only, so a folder
    holds one teacher: another teacher's folder is refused."""
    from homeloc.data_synthesis.render.datasets import open_pair_dataset
    from homeloc.train.teachers import build_dense_teacher

    cache = TeacherCache(out)
    _check_manifest(cache, teacher)
    data = [data] if isinstance(data, str) else list(data)
    for root in data:
        if not Path(root).is_dir():
            raise ValueError(f"--data: {root}: not a folder")
    net = build_dense_teacher(teacher)  # an unknown teacher fails before anything is written
    datasets = [open_pair_dataset(root) for root in data]
    known = (cache.manifest() or {}).get("data", [])  # folders covered by earlier calls stay listed
    info = {"format": FORMAT, "teacher": teacher, "data": known + [d for d in data if d not in known],
            "pairs": sum(len(ds) for ds in datasets)}  # fmt: skip
    atomic_write(cache.root / MANIFEST, json.dumps({**info, "complete": False}, indent=1))
    with tqdm(total=info["pairs"], desc=f"teacher {teacher}", unit="pair", mininterval=10) as bar:
        for ds in datasets:
            for i in range(len(ds)):
                item = ds[i]
                for key in ("image0", "image1"):
                    k = image_key(item[key])
                    if cache.has(k):
                        continue
                    with torch.inference_mode():
                        heat, desc = net.dense(item[key][None])
                    cache.put(k, TeacherOutput(heat[0, 0].numpy(), desc[0].permute(1, 2, 0).numpy()))
                bar.update(1)
    atomic_write(cache.root / MANIFEST, json.dumps({**info, "complete": True}, indent=1))
    log.info("teacher cache %s: %d pairs", out, info["pairs"])
    return cache.root

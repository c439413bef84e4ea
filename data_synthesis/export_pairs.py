"""Write a synthesized pair dataset as plain files + `pairs.txt`, the generic format that
`homeloc-evaluate matching` (and any other tool) reads: `image0 image1 h11 ... h33` per line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from homeloc.data_synthesis import shards
from homeloc.runtime.io import atomic_write


def export_pairs_txt(data: str | Path, out: str | Path, limit: int | None = None) -> Path:
    """Verified shards of `data` -> OUT/images/<key>_{0,1}.<ext> and OUT/pairs.txt; returns pairs.txt.

    Image bytes are copied as stored (no re-encoding), so the evaluation sees the training bytes."""
    data, out = Path(data), Path(out)
    manifest = shards.verify(data)
    if manifest["kind"] != "pairs":
        raise shards.DatasetError(f"{data}: holds a {manifest['kind']!r} dataset, not pairs")
    lines = ["# image0 image1 H_0to1 (row-major, OpenCV pixel coordinates); from " + str(data)]
    n = 0
    for name in tqdm(sorted(manifest["shards"]), desc="export pairs", unit="shard"):
        for key, members in shards.iter_shard(data / name):
            if limit is not None and n >= limit:
                break
            meta = json.loads(members["json"])
            files = []
            for view in ("img0", "img1"):
                suffix = next(k for k in members if k.startswith(view + "."))
                rel = f"images/{key}_{view[-1]}.{suffix.split('.', 1)[1]}"
                atomic_write(out / rel, members[suffix])
                files.append(rel)
            h = np.asarray(meta["H_0to1"], np.float64).ravel()
            lines.append(" ".join(files + [f"{v:.10g}" for v in h]))
            n += 1
    return atomic_write(out / "pairs.txt", "\n".join(lines) + "\n")

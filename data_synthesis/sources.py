"""Image sources for synthesis: folders, static-webcam timelapses, HPatches sequences, scikit-image.

A source spec is a string `KIND:PATH[@WEIGHT]` (`folder:`, `webcam:`, `hpatches:`) or `skimage`;
a bare existing path is a folder. `sample(rng)` returns a SourceSample: one image, or a real pair
with its ground-truth homography (identity for a fixed webcam).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from homeloc.runtime.io import IMAGE_EXTENSIONS, ImageReadError, list_images, read_image

log = logging.getLogger(__name__)

MAX_SIDE = 640  # sources are decoded once and cached at this size: synthesis works at <= 640 px


@dataclass
class SourceSample:
    image0: np.ndarray  # uint8 HxWx3 RGB
    image1: np.ndarray | None = None  # a real second view (same place, other time/viewpoint)
    h_0to1: np.ndarray | None = None  # ground truth between the two real views
    id: str = ""


@lru_cache(maxsize=256)
def load_cached(path: str) -> np.ndarray:
    """Read once per process, downscaled so the longer side is <= MAX_SIDE (returns scale too)."""
    img = read_image(path)
    s = MAX_SIDE / max(img.shape[:2])
    if s < 1:
        img = cv2.resize(
            img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA
        )
    return img


def _scale_of(path: str, img: np.ndarray) -> float:
    """Scale between the file's pixels and the cached image (for homography ground truth)."""
    full = _full_size(path)
    return img.shape[1] / full[0]


@lru_cache(maxsize=4096)
def _full_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.size


class Source:
    """A kind of source. An unreadable image file is skipped (recorded in ``skipped``, path ->
    reason, and drawn again from the same rng, so a sample still depends only on (seed, index)
    and the files), unless ``strict``, where its ImageReadError stops the run."""

    name = "source"
    strict = False

    def __len__(self) -> int:
        raise NotImplementedError

    def sample(self, rng: np.random.Generator) -> SourceSample:
        """One draw; redrawn while the drawn files are unreadable (see the class docstring)."""
        for _ in range(100 * len(self) + 100):
            s = self._draw(rng)
            if s is not None:
                return s
            if len(self.skipped) >= len(self):
                break
        raise ImageReadError(
            f"{getattr(self, 'root', self.name)}: no readable image ({len(self.skipped)} unreadable, "
            f"e.g. {next(iter(self.skipped.values()), '')})"
        )

    def _draw(self, rng: np.random.Generator) -> SourceSample | None:
        raise NotImplementedError

    @property
    def skipped(self) -> dict[str, str]:
        if "_skipped" not in self.__dict__:
            self._skipped: dict[str, str] = {}
        return self._skipped

    def _load(self, path: str | Path) -> np.ndarray | None:
        """The (cached) image, or None when it is unreadable and this source is not strict."""
        key = str(path)
        if key in self.skipped:
            return None
        try:
            return load_cached(key)
        except ImageReadError as e:
            if self.strict:
                raise
            self.skipped[key] = str(e)
            log.warning("skipping an unreadable source image (--strict stops instead): %s", e)
            return None


class FolderSource(Source):
    """Any folder of images (recursive); each image is a single view."""

    name = "folder"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.files = list_images(self.root)

    def __len__(self):
        return len(self.files)

    def _draw(self, rng):
        f = self.files[int(rng.integers(len(self.files)))]
        img = self._load(f)
        return None if img is None else SourceSample(img, id=f"{self.name}:{f.relative_to(self.root)}")


class WebcamSource(Source):
    """Static-camera timelapses: ROOT/<scene>/<images> (or ROOT/<images>, one scene); two captures
    of a scene are a real lighting pair with identity geometry."""

    name = "webcam"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        # A folder of images is one scene; a folder of folders holds several.
        direct = [p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        scenes = [self.root] if direct else sorted(d for d in self.root.iterdir() if d.is_dir())
        self.scenes = {d.name: list_images(d, recursive=False) for d in scenes}
        self.scenes = {k: v for k, v in self.scenes.items() if len(v) >= 2}
        if not self.scenes:
            raise FileNotFoundError(f"{self.root}: no scene folder with at least two images")
        self.names = sorted(self.scenes)

    def __len__(self):
        return sum(len(v) for v in self.scenes.values())

    def _draw(self, rng):
        scene = self.names[int(rng.integers(len(self.names)))]
        i, j = rng.choice(len(self.scenes[scene]), 2, replace=False)
        f0, f1 = self.scenes[scene][i], self.scenes[scene][j]
        im0, im1 = self._load(f0), self._load(f1)
        if im0 is None or im1 is None:
            return None
        if im0.shape != im1.shape:
            raise ImageReadError(
                f"{f1}: size {im1.shape} differs from {f0} {im0.shape} in a fixed-camera scene"
            )
        return SourceSample(im0, im1, np.eye(3), id=f"webcam:{scene}/{f0.name}|{f1.name}")


class HPatchesSource(Source):
    """HPatches-layout sequences ROOT/<seq>/{1..6}.<ext> with H_1_k; a pair is (1, k)."""

    name = "hpatches"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.pairs = []
        for seq in sorted(d for d in self.root.iterdir() if d.is_dir() and any(d.glob("H_1_*"))):
            imgs = {p.stem: p for p in list_images(seq, recursive=False)}
            for hfile in sorted(seq.glob("H_1_*")):
                k = hfile.name.split("_")[-1]
                if "1" in imgs and k in imgs:
                    self.pairs.append((imgs["1"], imgs[k], hfile))
        if not self.pairs:
            raise FileNotFoundError(f"{self.root}: no HPatches sequence (folders with 1.*, k.* and H_1_k)")

    def __len__(self):
        return len(self.pairs)

    def _draw(self, rng):
        f0, f1, hf = self.pairs[int(rng.integers(len(self.pairs)))]
        try:
            h = np.loadtxt(hf).reshape(3, 3)
        except ValueError as e:
            raise ValueError(f"{hf}: not a 3x3 homography ({e})") from None
        im0, im1 = self._load(f0), self._load(f1)
        if im0 is None or im1 is None:
            return None
        s0, s1 = np.diag([_scale_of(str(f0), im0)] * 2 + [1]), np.diag([_scale_of(str(f1), im1)] * 2 + [1])
        return SourceSample(im0, im1, s1 @ h @ np.linalg.inv(s0), id=f"hpatches:{f0.parent.name}/1|{f1.stem}")


SKIMAGE_PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "cat",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "rocket",
    "text",
    "page",
    "moon",
    "clock",
    "horse",
    "immunohistochemistry",
    "colorwheel",
    "logo",
    "hubble_deep_field",
    "motorcycle_left",
    "motorcycle_right",
    "chelsea",
)


@lru_cache(maxsize=1)
def skimage_photos() -> tuple[tuple[str, np.ndarray], ...]:
    """The photographs bundled inside scikit-image's wheel (no download); always available."""
    import skimage.data as skd

    out = []
    for name in SKIMAGE_PHOTOS:
        try:
            img = np.asarray(getattr(skd, name)())
        except Exception:  # noqa: BLE001 - images that would need a download are simply absent
            continue
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        img = np.ascontiguousarray(img[..., :3]).astype(np.uint8)
        if min(img.shape[:2]) >= 128:
            out.append((name, img))
    return tuple(out)


class SkimageSource(Source):
    name = "skimage"

    def __init__(self):
        self.photos = skimage_photos()
        if not self.photos:
            raise RuntimeError("scikit-image ships no usable photos in this install")

    def __len__(self):
        return len(self.photos)

    def _draw(self, rng):
        name, img = self.photos[int(rng.integers(len(self.photos)))]
        return SourceSample(img, id=f"skimage:{name}")


KINDS = {"folder": FolderSource, "webcam": WebcamSource, "hpatches": HPatchesSource}


def parse_source(spec: str, strict: bool = False) -> tuple[Source, float]:
    """'webcam:../shared/data/webcam@2' -> (WebcamSource, 2.0). Errors name the spec.
    strict: an unreadable image stops sampling (otherwise it is skipped, see Source)."""
    weight = 1.0
    m = re.match(r"^(.*)@([0-9.]+)$", spec)
    if m:
        spec, weight = m.group(1), float(m.group(2))
    if spec == "skimage":
        return SkimageSource(), weight
    kind, _, path = spec.partition(":")
    if kind not in KINDS:
        kind, path = "folder", spec
    if not Path(path).exists():
        raise FileNotFoundError(f"source {spec!r}: {path} does not exist")
    source = KINDS[kind](path)
    source.strict = strict
    return source, weight


class SourceMix:
    """Weighted mixture of sources; sampling draws a source by weight, then an item from it."""

    def __init__(self, specs: list[str], strict: bool = False):
        if not specs:
            raise ValueError("no source given: pass --source skimage, folder:DIR, webcam:DIR or hpatches:DIR")
        parsed = [parse_source(s, strict) for s in specs]
        self.specs = list(specs)
        self.sources = [p[0] for p in parsed]
        w = np.array([p[1] for p in parsed], np.float64)
        self.p = w / w.sum()

    def sample(self, rng) -> SourceSample:
        return self.sources[int(rng.choice(len(self.sources), p=self.p))].sample(rng)

    def skipped(self) -> dict[str, str]:
        """Unreadable image files skipped so far (path -> reason), over every source."""
        return {k: v for s in self.sources for k, v in s.skipped.items()}

    def sample_single(self, rng) -> np.ndarray:
        """Any image (first view), e.g. to cut occluder textures from."""
        return self.sample(rng).image0

"""Real captures of the static webcams (`../shared/data/webcam/<scene>/YYYYMMDD_HHMMSS.*`) with
their day / dusk / night bucket two ways: by local capture hour (file names are UTC, the AMOS
archive's convention, converted with each scene's time zone) and by brightness relative to the
scene's median. Read by the synthesis statistics (stats.py)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from homeloc.data_synthesis.formats.matching import bucket_from_brightness, bucket_from_hour
from homeloc.runtime.io import list_images, read_image

log = logging.getLogger(__name__)

TIMESTAMP = re.compile(r"^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})")
# Local time zone per webcam scene (file names hold UTC capture times).
SCENE_TZ = {
    "chamonix": "Europe/Paris",
    "courbevoie": "Europe/Paris",
    "frankfurt": "Europe/Berlin",
    "mexico": "America/Mexico_City",
}
_FALLBACK_UTC_OFFSET = {"Europe/Paris": 1, "Europe/Berlin": 1, "America/Mexico_City": -6}  # no tz database
# Hour buckets (local): night [21:00, 05:00), dusk [05:00, 08:00) and [17:00, 21:00), day otherwise.
# Brightness buckets: mean luma / the scene's median mean luma below 0.60 night, below 0.85 dusk.


def luminance(img: np.ndarray) -> np.ndarray:
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _tz(name: str):
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:  # noqa: BLE001 - no tz database on this machine: a fixed standard offset
        log.warning("time zone %s unavailable; using a fixed UTC offset (no daylight saving)", name)
        return timezone(timedelta(hours=_FALLBACK_UTC_OFFSET.get(name, 0)))


def local_hour(path: Path, scene: str) -> float | None:
    """Local capture hour (fractional) from a YYYYMMDD_HHMMSS (UTC) file name; None if unnamed so."""
    m = TIMESTAMP.match(path.stem)
    if not m:
        return None
    try:
        t = datetime(*(int(g) for g in m.groups()), tzinfo=UTC)
    except ValueError:
        return None
    if scene in SCENE_TZ:
        t = t.astimezone(_tz(SCENE_TZ[scene]))
    return t.hour + t.minute / 60 + t.second / 3600


@dataclass
class Capture:
    path: Path
    scene: str
    hour: float | None
    hour_bucket: str | None
    brightness_bucket: str
    image: np.ndarray  # RGB uint8 at the analysis size


def fit(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (area) and centre-crop to size (h, w), as synthesis renders its crops."""
    h, w = img.shape[:2]
    s = max(size[0] / h, size[1] / w)
    img = cv2.resize(
        img, (max(round(w * s), size[1]), max(round(h * s), size[0])), interpolation=cv2.INTER_AREA
    )
    y0, x0 = (img.shape[0] - size[0]) // 2, (img.shape[1] - size[1]) // 2
    return np.ascontiguousarray(img[y0 : y0 + size[0], x0 : x0 + size[1]])


def load_captures(root: str | Path, size: tuple[int, int] = (240, 320)) -> list[Capture]:
    """Every capture of every scene folder under root, bucketed by local hour and by brightness."""
    root = Path(root)
    scenes = sorted(d for d in root.iterdir() if d.is_dir())
    if not scenes:
        raise FileNotFoundError(f"{root}: no scene folders (expected ROOT/<scene>/YYYYMMDD_HHMMSS.jpg)")
    out = []
    for d in scenes:
        files = list_images(d, recursive=False)
        imgs = [fit(read_image(f), size) for f in files]
        lumas = [float(luminance(i).mean()) for i in imgs]
        ref = float(np.median(lumas)) or 1.0
        for f, img, luma in zip(files, imgs, lumas, strict=True):
            hour = local_hour(f, d.name)
            out.append(
                Capture(
                    f,
                    d.name,
                    hour,
                    None if hour is None else bucket_from_hour(hour),
                    bucket_from_brightness(luma / ref),
                    img,
                )
            )
    return out

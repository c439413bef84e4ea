"""Image reading and atomic writing, shared by every package (torch-free)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import cv2
import numpy as np

MAX_PIXELS = 100_000_000  # beyond this a file is refused rather than decoded (decompression bombs)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".pbm", ".bmp", ".tif", ".tiff", ".webp")


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the problem."""


def _header_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the header, without decoding pixels (None when unknown).

    Raises ImageReadError for a header PIL itself refuses as a decompression bomb (> ~179 MP)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError as e:
        raise ImageReadError(f"{path}: image is above the {MAX_PIXELS // 1_000_000} MP limit ({e})") from None
    except Exception:  # noqa: BLE001 - any other failure falls back to OpenCV's decoder
        return None


def _to_uint8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(img)) <= 1.0 else 255.0
        return np.clip(img / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.clip(img, 0, 255).astype(np.uint8)


def read_image(path: str | os.PathLike, gray: bool = False) -> np.ndarray:
    """Read any common image file as uint8.

    Returns HxW (gray=True) or HxWx3 RGB uint8. 16-bit, float, RGBA and CMYK inputs are converted.
    Raises ImageReadError naming the file for a missing, empty, truncated, non-image or > 100 MP file.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file does not exist")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: file is empty (0 bytes)")
    with warnings.catch_warnings():  # PIL warns from ~89 MP on; we decide ourselves just below
        warnings.simplefilter("ignore")
        size = _header_size(path)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise ImageReadError(
            f"{path}: image is {size[0]}x{size[1]}, above the {MAX_PIXELS // 1_000_000} MP limit"
        )
    raw = path.read_bytes()
    data = np.frombuffer(raw, dtype=np.uint8)
    with _quiet_opencv():
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        img = _read_with_pil(path)
    if img is None:
        raise ImageReadError(f"{path}: not a readable image (unknown format or corrupt data)")
    if _looks_truncated(raw):
        raise ImageReadError(f"{path}: image data is truncated")
    if img.shape[0] * img.shape[1] > MAX_PIXELS:
        raise ImageReadError(f"{path}: image is {img.shape[1]}x{img.shape[0]}, above the 100 MP limit")
    img = _to_uint8(img)
    if img.ndim == 2:
        rgb = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if not gray else img
    elif img.shape[2] == 4:
        rgb = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        rgb = img[..., ::-1]  # OpenCV decodes BGR
    else:
        raise ImageReadError(f"{path}: unsupported channel count {img.shape[2]}")
    if gray:
        return rgb if rgb.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(rgb)


def _read_with_pil(path: Path) -> np.ndarray | None:
    """Fallback decoder (CMYK JPEG/TIFF, odd PNG modes); returns BGR/gray like OpenCV or None."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except Exception:  # noqa: BLE001 - any decoder failure means "not readable"
        return None
    return arr if arr.ndim == 2 else arr[..., ::-1]


def _looks_truncated(raw: bytes) -> bool:
    """OpenCV fills truncated JPEG/PNG with grey silently; check that the image's own data reaches
    its end marker (JPEG EOI after the last scan, PNG IEND). Bytes after that marker (the video of
    a motion photo, camera trailers) are not part of the image and are accepted."""
    if raw[:2] == b"\xff\xd8":
        complete = _jpeg_complete(raw)
        return not complete if complete is not None else b"\xff\xd9" not in raw[-64:]
    if raw[:8] == b"\x89PNG\r\n\x1a\n":
        return not _png_complete(raw)
    return False


def _jpeg_complete(b: bytes) -> bool | None:
    """Whether the JPEG's marker segments and entropy-coded scans reach EOI (None: unparseable)."""
    i, n = 2, len(b)
    while i + 1 < n:
        if b[i] != 0xFF:
            return None
        m = b[i + 1]
        if m == 0xD9:  # EOI
            return True
        if m == 0xFF:  # fill byte
            i += 1
            continue
        if m == 0x01 or 0xD0 <= m <= 0xD7:  # standalone markers
            i += 2
            continue
        if i + 4 > n:
            return False
        i += 2 + ((b[i + 2] << 8) | b[i + 3])  # a segment: skip it (thumbnails inside APPn too)
        if m != 0xDA:
            continue
        while True:  # after SOS: entropy-coded data up to the next marker (not FF00 / RSTn / fill)
            j = b.find(b"\xff", i)
            if j < 0 or j + 1 >= n:
                return False
            nxt = b[j + 1]
            if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                i = j + 2
            elif nxt == 0xFF:
                i = j + 1
            else:
                i = j
                break
    return False


def _png_complete(b: bytes) -> bool:
    """Whether the PNG's chunks are whole up to IEND."""
    i, n = 8, len(b)
    while i + 8 <= n:
        length = int.from_bytes(b[i : i + 4], "big")
        end = i + 12 + length  # length, type, data, CRC
        if end > n:
            return False
        if b[i + 4 : i + 8] == b"IEND":
            return True
        i = end
    return False


@contextlib.contextmanager
def _quiet_opencv():
    prev = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
    if prev is not None:
        cv2.setLogLevel(0)
    try:
        yield
    finally:
        if prev is not None:
            cv2.setLogLevel(prev)


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Sorted image files under folder; raises naming the folder when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    it = folder.rglob("*") if recursive else folder.glob("*")
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise FileNotFoundError(f"{folder}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found")
    return files


def make_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Create the output folder (parents too) or raise an OSError naming the option and the problem
    (a file in the way, a read-only or missing parent)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(f"{option} {path}: cannot create the folder ({e.strerror or e})") from None
    probe = path / f".homeloc-write-test-{id(path)}"
    try:
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"{option} {path}: folder is not writable ({e.strerror or e})") from None
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temp file beside path; on success fsync and rename it over path, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write bytes or text to path atomically (temp file, fsync, rename); returns path."""
    with atomic_open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def encode_image(img: np.ndarray, ext: str = ".png", quality: int = 95) -> bytes:
    """Encode an RGB or gray uint8 image to bytes."""
    if img.ndim == 2 or img.shape[2] == 1:
        arr = img
    elif img.shape[2] == 3:
        arr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)  # 40x faster than a reversed-stride copy
    else:
        arr = cv2.cvtColor(img, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, arr, params)
    if not ok:
        raise ValueError(f"could not encode image as {ext}")
    return buf.tobytes()


def write_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Atomically write an RGB or gray uint8 image; the format follows the extension."""
    path = Path(path)
    return atomic_write(path, encode_image(img, path.suffix.lower() or ".png"))


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 HxW from uint8 HxW or HxWx3 RGB (checked, with a clear error otherwise)."""
    if image.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        return image[..., 0]
    raise ValueError(f"images must be HxW or HxWx3, got shape {image.shape}")

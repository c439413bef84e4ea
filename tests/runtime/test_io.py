"""homeloc.runtime.io: read_image over formats and bad files (errors name the file and the problem); atomic writes."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from homeloc.runtime.io import (
    ImageReadError,
    atomic_open,
    atomic_write,
    encode_image,
    list_images,
    read_image,
    write_image,
)

RGB = np.zeros((20, 30, 3), np.uint8)
RGB[..., 0] = 200  # red
RGB[:, 15:, 2] = 100


def test_png_jpeg_bmp_tiff_ppm_roundtrip(tmp_path):
    for ext in (".png", ".bmp", ".tif", ".ppm"):
        p = write_image(tmp_path / f"a{ext}", RGB)
        assert np.array_equal(read_image(p), RGB), ext
    jpg = read_image(write_image(tmp_path / "a.jpg", RGB))
    assert np.abs(jpg.astype(int) - RGB).mean() < 3  # chroma subsampling blurs the colour edge


def test_16bit_png(tmp_path):
    img16 = (np.arange(20 * 30 * 3, dtype=np.uint32).reshape(20, 30, 3) * 37 % 65536).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "a.png"), img16[..., ::-1])  # OpenCV writes BGR
    out = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (20, 30, 3)
    assert np.abs(out.astype(int) - np.round(img16 / 257).astype(int)).max() <= 1
    gray16 = np.full((10, 12), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    assert (read_image(tmp_path / "g.png", gray=True) == 255).all()


def test_rgba_gray_and_cmyk(tmp_path):
    rgba = np.dstack([RGB, np.full((20, 30), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(read_image(tmp_path / "rgba.png"), RGB)
    gray = np.tile(np.arange(30, dtype=np.uint8) * 8, (20, 1))
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    g = read_image(tmp_path / "gray.png", gray=True)
    assert g.shape == (20, 30) and np.array_equal(g, gray)
    g3 = read_image(tmp_path / "gray.png")
    assert g3.shape == (20, 30, 3) and np.array_equal(g3[..., 1], gray)
    Image.fromarray(RGB, "RGB").convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
    c = read_image(tmp_path / "cmyk.jpg")
    assert c.shape == (20, 30, 3) and np.abs(c.astype(int) - RGB).mean() < 8
    assert read_image(tmp_path / "rgba.png", gray=True).shape == (20, 30)


def test_missing_empty_truncated_and_non_image_files_name_the_file(tmp_path):
    cases = {}
    cases["missing.png"] = ("does not exist", None)
    (tmp_path / "empty.jpg").write_bytes(b"")
    cases["empty.jpg"] = ("empty", None)
    jpg = encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ".jpg")
    (tmp_path / "cut.jpg").write_bytes(jpg[: len(jpg) // 2])
    cases["cut.jpg"] = ("truncated", None)
    png = encode_image(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ".png")
    (tmp_path / "cut.png").write_bytes(png[: len(png) * 2 // 3])
    cases["cut.png"] = ("truncated|corrupt", None)
    (tmp_path / "notes.png").write_text("these are not pixels\n" * 10)
    cases["notes.png"] = ("not a readable image", None)
    (tmp_path / "dir.png").mkdir()
    cases["dir.png"] = ("not a regular file", None)
    for name, (problem, _) in cases.items():
        with pytest.raises(ImageReadError, match=problem) as e:
            read_image(tmp_path / name)
        assert str(tmp_path / name) in str(e.value), e.value


def _png_header_only(path, width, height):
    """A PNG signature + IHDR claiming width x height, no pixel data: a decompression bomb stand-in."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk + end)


@pytest.mark.parametrize(
    "size", [(12_000, 9_000), (20_000, 20_000)]
)  # 108 MP (PIL warns), 400 MP (PIL refuses)
def test_images_above_100_megapixels_are_refused_before_decoding(tmp_path, size):
    p = tmp_path / "huge.png"
    _png_header_only(p, *size)
    with pytest.raises(ImageReadError, match="100 MP") as e:
        read_image(p)
    assert str(p) in str(e.value)


def test_list_images_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image files") as e:
        list_images(tmp_path)
    assert str(tmp_path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        list_images(tmp_path / "nope")
    write_image(tmp_path / "sub" / "x.JPG", RGB)
    assert [p.name for p in list_images(tmp_path)] == ["x.JPG"]


def test_atomic_write_leaves_nothing_half_written(tmp_path):
    p = atomic_write(tmp_path / "a" / "f.bin", b"12345")
    assert p.read_bytes() == b"12345"
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "a" / "f.bin") as f:
        f.write(b"partial")
        raise RuntimeError("killed")
    assert p.read_bytes() == b"12345", "the old file survives a failed write"
    assert sorted(x.name for x in (tmp_path / "a").iterdir()) == ["f.bin"], "no temp file left"


def test_encode_image_channel_order(tmp_path):
    rgba = np.dstack([RGB, np.full((20, 30), 255, np.uint8)])
    for img in (RGB, rgba, RGB[..., 0]):
        data = encode_image(img, ".png")
        dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if img.ndim == 3:
            dec = cv2.cvtColor(dec, cv2.COLOR_BGR2RGB if img.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        assert np.array_equal(dec, img)


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_bytes_after_the_end_marker_are_accepted_truncation_is_not(tmp_path, ext):
    """Motion photos and some cameras append data (a video, a trailer) after JPEG EOI / PNG IEND:
    the image is whole and decodes pixel-identical; a file cut inside the image is still refused."""
    img = (np.random.default_rng(1).random((60, 80, 3)) * 255).astype(np.uint8)
    plain = write_image(tmp_path / f"plain{ext}", img)
    data = plain.read_bytes()
    (tmp_path / f"motion{ext}").write_bytes(data + b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40)
    assert np.array_equal(read_image(tmp_path / f"motion{ext}"), read_image(plain))
    with Image.open(tmp_path / f"motion{ext}") as im:  # PIL agrees
        assert np.array_equal(np.asarray(im.convert("RGB")), read_image(plain))
    (tmp_path / f"cut{ext}").write_bytes(data[: len(data) - 40])
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(tmp_path / f"cut{ext}")


def test_progressive_jpeg_with_trailer_is_whole(tmp_path):
    img = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "p.jpg", progressive=True, quality=90)
    (tmp_path / "t.jpg").write_bytes((tmp_path / "p.jpg").read_bytes() + b"trailer" * 100)
    assert np.array_equal(read_image(tmp_path / "t.jpg"), read_image(tmp_path / "p.jpg"))


def test_make_output_dir_names_the_option_and_problem(tmp_path):
    from homeloc.runtime.io import make_output_dir

    assert make_output_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"--out .*f: exists and is not a folder"):
        make_output_dir(tmp_path / "f")
    with pytest.raises(OSError, match=r"--data-out .*: cannot create the folder"):
        make_output_dir(tmp_path / "f" / "sub", "--data-out")

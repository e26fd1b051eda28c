"""Tests for inpaint_cli.io: tiny images built in memory, odd containers spliced together by hand."""

from __future__ import annotations

import io as stdio
import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from inpaint_cli import io, masks
from inpaint_cli.errors import InpaintError, UsageError

# ------------------------------------------------------------------------------------------- helpers


def encode(ext: str, bgr: np.ndarray, params: list[int] | None = None) -> bytes:
    """Encode with cv2 directly, so reading is tested independently of write_image."""
    ok, buf = cv2.imencode(ext, bgr, params or [])
    assert ok
    return buf.tobytes()


def png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def exif_tiff(orientation: int, order: str = "<") -> bytes:
    """A minimal EXIF/TIFF block: header + IFD0 with only the Orientation tag (SHORT)."""
    head = b"II*\x00" if order == "<" else b"MM\x00*"
    entry = struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return (
        head + struct.pack(order + "I", 8) + struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)
    )


def jpeg_with_exif(jpeg: bytes, tiff: bytes) -> bytes:
    """Splice an APP1 Exif segment right after SOI."""
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_exif(png: bytes, tiff: bytes) -> bytes:
    """Insert an eXIf chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    return png[:33] + png_chunk(b"eXIf", tiff) + png[33:]


def riff_chunk(fourcc: bytes, body: bytes) -> bytes:
    return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")


def webp_with_exif(webp: bytes, width: int, height: int, tiff: bytes) -> bytes:
    """Turn a simple (VP8) WebP into the extended format (VP8X) with an EXIF chunk."""
    vp8x = riff_chunk(
        b"VP8X",
        bytes([0x08, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little"),
    )
    body = b"WEBP" + vp8x + webp[12:] + riff_chunk(b"EXIF", tiff)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_tiff(arr: np.ndarray, orientation: int) -> bytes:
    """An uncompressed single-strip little-endian TIFF with an Orientation tag (cv2 cannot write one)."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    bits = arr.dtype.itemsize * 8
    data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    n_tags = 10
    extra_at = 8 + 2 + 12 * n_tags + 4
    extra = struct.pack(f"<{c}H", *[bits] * c) if c > 2 else b""
    pixels_at = extra_at + len(extra)
    entries = [
        (256, 4, 1, w),
        (257, 4, 1, h),
        (258, 3, c, extra_at if c > 2 else bits),
        (259, 3, 1, 1),
        (262, 3, 1, 1 if c == 1 else 2),
        (273, 4, 1, pixels_at),
        (274, 3, 1, orientation),
        (277, 3, 1, c),
        (278, 4, 1, h),
        (279, 4, 1, len(data)),
    ]
    out = b"II*\x00" + struct.pack("<IH", 8, n_tags)
    for tag, kind, count, value in entries:
        if kind == 3 and not (tag == 258 and c > 2):
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + extra + data


def marked(h: int = 16, w: int = 24) -> np.ndarray:
    """A BGR test card: a red 4x4 block in the top-left corner, a green one bottom-left, gray elsewhere."""
    img = np.full((h, w, 3), 90, np.uint8)
    img[:4, :4] = (0, 0, 255)
    img[-4:, :4] = (0, 255, 0)
    return img


def red_centre(rgb: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero((rgb[..., 0] > 200) & (rgb[..., 1] < 80))
    return float(rows.mean()), float(cols.mean())


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_lossless_round_trip_is_bit_exact(tmp_path, dtype, channels, ext):
    rng = np.random.default_rng(channels)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, size=(7, 9, channels), dtype=dtype)
    target = tmp_path / f"img{ext}"
    io.write_image(target, pixels)
    image = io.read_image(target)
    assert image.pixels.dtype == dtype
    assert image.pixels.shape == (7, 9, channels)
    assert np.array_equal(image.pixels, pixels)
    assert image.bit_depth == (16 if dtype == np.uint16 else 8)
    assert image.is_gray == (channels == 1)
    assert image.has_alpha == (channels == 4)
    assert (image.height, image.width, image.channels) == (7, 9, channels)
    assert image.source == str(target)


def test_channel_order_is_rgb_on_both_sides(tmp_path):
    red = np.zeros((2, 3, 3), np.uint8)
    red[..., 0] = 255
    target = tmp_path / "red.png"
    io.write_image(target, red)
    assert tuple(cv2.imread(str(target), cv2.IMREAD_UNCHANGED)[0, 0]) == (0, 0, 255)  # BGR on disk
    assert tuple(io.read_image(target).pixels[1, 2]) == (255, 0, 0)
    # a file written by another program (cv2, BGR) reads as RGB
    bgr = np.zeros((2, 2, 4), np.uint8)
    bgr[...] = (255, 0, 0, 77)  # blue, partly transparent
    blue = io.read_image(write_bytes(tmp_path / "blue.png", encode(".png", bgr)))
    assert tuple(blue.pixels[0, 0]) == (0, 0, 255, 77)


def test_rgb_and_alpha_accessors():
    pixels = np.array([[[0, 128, 255, 7], [255, 255, 255, 9]]], np.uint8)
    image = io.Image(pixels, "x.png")
    rgb = image.rgb()
    assert rgb.dtype == np.float32 and rgb.shape == (1, 2, 3)
    assert np.allclose(rgb[0, 0], [0.0, 128 / 255, 1.0])
    assert np.array_equal(image.alpha(), np.array([[7, 9]], np.uint8))
    gray = io.Image(np.array([[0, 65535]], np.uint16), "g.png")  # 2-D is accepted as (H, W, 1)
    assert gray.pixels.shape == (1, 2, 1) and gray.alpha() is None
    assert np.array_equal(gray.rgb(), np.array([[[0, 0, 0], [1, 1, 1]]], np.float32))


def test_gray_alpha_png_becomes_rgba(tmp_path):
    rows = b"".join(b"\x00" + bytes([10, 200, 30, 100]) for _ in range(2))  # LA pixels (10,200), (30,100)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 4, 0, 0, 0))
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    image = io.read_image(write_bytes(tmp_path / "la.png", png))
    assert image.pixels.shape == (2, 2, 4)
    assert tuple(image.pixels[0, 0]) == (10, 10, 10, 200)
    assert tuple(image.pixels[1, 1]) == (30, 30, 30, 100)


def test_non_ascii_path(tmp_path):
    target = tmp_path / "фото ü" / "画像.png"
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    io.write_image(target, pixels)
    assert np.array_equal(io.read_image(target).pixels, pixels)


def test_stdin(monkeypatch):
    data = encode(".png", np.full((3, 4, 3), 42, np.uint8))
    monkeypatch.setattr(sys, "stdin", _FakeStream(data))
    image = io.read_image("-")
    assert image.source == "<stdin>"
    assert image.pixels.shape == (3, 4, 3) and int(image.pixels.max()) == 42


class _FakeStream:
    def __init__(self, data: bytes = b"") -> None:
        self.buffer = stdio.BytesIO(data)

    def isatty(self) -> bool:
        return False


# ------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("order", ["<", ">"])
def test_jpeg_exif_orientation_6_matches_cv2(tmp_path, order):
    jpeg = jpeg_with_exif(encode(".jpg", marked(), [cv2.IMWRITE_JPEG_QUALITY, 100]), exif_tiff(6, order))
    path = write_bytes(tmp_path / "o6.jpg", jpeg)
    image = io.read_image(path)
    assert image.pixels.shape == (24, 16, 3)  # transposed
    reference = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]  # imread applies orientation
    assert reference.shape == image.pixels.shape
    assert np.array_equal(image.pixels, reference)
    # rotated clockwise: the top-left red block ends up top-right
    assert red_centre(image.pixels) == pytest.approx((1.5, 13.5), abs=0.6)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_png_exif_every_orientation_matches_cv2(tmp_path, orientation):
    path = write_bytes(
        tmp_path / "o.png", png_with_exif(encode(".png", marked()), exif_tiff(orientation, ">"))
    )
    reference = cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1]
    image = io.read_image(path)
    assert np.array_equal(image.pixels, reference)
    assert image.pixels.shape == ((16, 24, 3) if orientation < 5 else (24, 16, 3))


def test_webp_exif_orientation(tmp_path):
    webp = encode(".webp", marked(), [cv2.IMWRITE_WEBP_QUALITY, 100])
    path = write_bytes(tmp_path / "o.webp", webp_with_exif(webp, 24, 16, exif_tiff(8)))
    image = io.read_image(path)
    assert image.pixels.shape == (24, 16, 3)
    assert np.array_equal(image.pixels, cv2.imread(str(path), cv2.IMREAD_COLOR)[..., ::-1])
    # counter-clockwise: top-left goes to bottom-left
    assert red_centre(image.pixels) == pytest.approx((21.5, 1.5), abs=0.6)


def test_tiff_orientation_applied_exactly_once(tmp_path):
    # cv2 rotates TIFFs by itself (even with IMREAD_UNCHANGED); rotating again would turn it 180°.
    rgb = marked()[..., ::-1]
    image = io.read_image(write_bytes(tmp_path / "o.tif", make_tiff(np.ascontiguousarray(rgb), 6)))
    assert image.pixels.shape == (24, 16, 3)
    assert red_centre(image.pixels) == pytest.approx((1.5, 13.5))


def test_mask_gets_orientation_too(tmp_path):
    mask = np.zeros((4, 6), np.uint8)
    mask[0, 0] = 255
    path = write_bytes(tmp_path / "m.png", png_with_exif(encode(".png", mask), exif_tiff(6)))
    hole = masks.read_mask(path)
    assert hole.shape == (6, 4)
    assert np.argwhere(hole).tolist() == [[0, 3]]


def test_garbage_exif_is_ignored(tmp_path):
    path = write_bytes(
        tmp_path / "g.jpg", jpeg_with_exif(encode(".jpg", marked()), b"II*\x00\xff\xff\xff\x7f junk")
    )
    assert io.read_image(path).pixels.shape == (16, 24, 3)


# ---------------------------------------------------------------------------------- size guard (bombs)


def _no_decode(*_args, **_kwargs):
    raise AssertionError("the decoder must not run for an oversized image")


BOMBS = {
    "png": b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)),
    "jpeg": b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, 60000, 50000, 1) + b"\x01\x11\x00",
    "webp-vp8x": b"RIFF"
    + struct.pack("<I", 30)
    + b"WEBPVP8X"
    + struct.pack("<I", 10)
    + b"\x00" * 4
    + (20000 - 1).to_bytes(3, "little")
    + (20000 - 1).to_bytes(3, "little"),
    "webp-vp8l": b"RIFF"
    + struct.pack("<I", 30)
    + b"WEBPVP8L"
    + struct.pack("<I", 5)
    + b"\x2f"
    + struct.pack("<I", 16383 | (16383 << 14)),
    "bmp": b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHI", 40, 30000, -30000, 1, 24, 0),
    "tiff": b"II*\x00"
    + struct.pack("<IH", 8, 2)
    + struct.pack("<HHII", 256, 4, 1, 40000)
    + struct.pack("<HHII", 257, 4, 1, 40000)
    + struct.pack("<I", 0),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_oversized_header_refused_before_decoding(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(cv2, "imdecode", _no_decode)
    path = write_bytes(tmp_path / f"bomb.{kind}", BOMBS[kind])
    with pytest.raises(InpaintError) as err:
        io.read_image(path)
    message = err.value.message
    assert message.startswith(f"{path}: ")
    assert "120,000,000" in message and "--max-pixels" in message and "INPAINT_MAX_PIXELS" in message
    assert "\n" not in message and err.value.exit_code == 1


def test_png_bomb_names_its_size(tmp_path):
    path = write_bytes(tmp_path / "bomb.png", BOMBS["png"])
    with pytest.raises(InpaintError, match=r"100000x100000 is 10,000,000,000 pixels"):
        io.read_image(path)


def test_max_pixels_argument_and_environment(tmp_path, monkeypatch):
    path = write_bytes(tmp_path / "small.jpg", encode(".jpg", np.zeros((10, 10, 3), np.uint8)))
    assert io.read_image(path, max_pixels=100).width == 10  # exactly at the limit is fine
    with pytest.raises(InpaintError, match=r"10x10 is 100 pixels, over the limit of 99"):
        io.read_image(path, max_pixels=99)
    with pytest.raises(InpaintError, match="over the limit"):
        masks.read_mask(path, max_pixels=99)
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "50")
    with pytest.raises(InpaintError, match="over the limit of 50"):
        io.read_image(path)
    assert io.read_image(path, max_pixels=1000).height == 10  # the argument wins over the environment
    monkeypatch.setenv("INPAINT_MAX_PIXELS", "lots")
    with pytest.raises(UsageError, match="INPAINT_MAX_PIXELS"):
        io.read_image(path)
    with pytest.raises(UsageError):
        io.read_image(path, max_pixels=0)


def test_size_checked_after_decoding_for_other_formats(tmp_path):
    pgm = b"P5\n20 10\n255\n" + bytes(200)  # a format without a header parser here
    path = write_bytes(tmp_path / "x.pgm", pgm)
    assert io.read_image(path).pixels.shape == (10, 20, 1)
    with pytest.raises(InpaintError, match="20x10 is 200 pixels"):
        io.read_image(path, max_pixels=199)


# --------------------------------------------------------------------------------------- truncation


def _photo() -> np.ndarray:
    return np.random.default_rng(5).integers(0, 256, (32, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tif"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_files_are_reported(tmp_path, ext, keep):
    data = encode(ext, _photo())
    path = write_bytes(tmp_path / f"cut{ext}", data[: int(len(data) * keep)])
    with pytest.raises(InpaintError, match=r"truncated image .*re-export or re-download it") as err:
        io.read_image(path)
    assert err.value.message.startswith(f"{path}: ")


def test_jpeg_without_eoi_is_truncated(tmp_path):
    data = encode(".jpg", _photo())
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(InpaintError, match="truncated"):
        io.read_image(write_bytes(tmp_path / "noeoi.jpg", data[:-2]))


def test_png_without_iend_is_truncated_and_quiet(tmp_path, capfd):
    data = encode(".png", _photo())
    assert data[-12:] == png_chunk(b"IEND", b"")
    with pytest.raises(InpaintError, match="truncated"):
        io.read_image(write_bytes(tmp_path / "noiend.png", data[:-12]))
    assert capfd.readouterr().err == ""  # caught before libpng could complain


def test_jpeg_thumbnail_eoi_does_not_hide_truncation(tmp_path):
    # An EXIF block carrying a complete embedded JPEG (with its own FF D9) must not count as the end.
    thumb = encode(".jpg", np.zeros((8, 8, 3), np.uint8))
    full = jpeg_with_exif(encode(".jpg", _photo()), exif_tiff(1) + thumb)
    assert io.read_image(write_bytes(tmp_path / "ok.jpg", full)).width == 40
    with pytest.raises(InpaintError, match="truncated"):
        io.read_image(write_bytes(tmp_path / "cut.jpg", full[: len(full) - 100]))


def test_data_after_jpeg_eoi_is_fine(tmp_path):
    # Motion photos and some cameras append data after the JPEG's end marker.
    data = encode(".jpg", _photo()) + b"\x00\x00ftypmp42" + bytes(300)
    assert io.read_image(write_bytes(tmp_path / "motion.jpg", data)).pixels.shape == (32, 40, 3)


def test_progressive_jpeg_reads(tmp_path):
    data = encode(".jpg", _photo(), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 1])
    assert io.read_image(write_bytes(tmp_path / "p.jpg", data)).pixels.shape == (32, 40, 3)


# -------------------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    path = tmp_path / "photo.png"
    with pytest.raises(InpaintError) as err:
        io.read_image(path)
    assert err.value.message == f"{path}: no such file; check the path"
    assert err.value.exit_code == 1


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(InpaintError, match="is a directory"):
        masks.read_mask(tmp_path)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("noise.png", bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8))),
        ("notes.txt", b"hello\n"),
    ],
)
def test_not_an_image(tmp_path, name, data):
    path = write_bytes(tmp_path / name, data)
    with pytest.raises(InpaintError) as err:
        io.read_image(path)
    assert err.value.message.startswith(f"{path}: not an image (could not decode it); ")


def test_corrupt_data_in_a_known_container(tmp_path):
    data = bytearray(encode(".png", _photo()))
    data[60:200] = bytes(140)  # smash the compressed stream, keep the chunk structure
    with pytest.raises(
        InpaintError,
        match=r"^.*bad.png: corrupt PNG data \(could not decode it\); re-export or re-download it$",
    ):
        io.read_image(write_bytes(tmp_path / "bad.png", bytes(data)))


def test_empty_file_and_empty_stdin(tmp_path, monkeypatch):
    with pytest.raises(InpaintError, match="empty file"):
        io.read_image(write_bytes(tmp_path / "empty.png", b""))
    monkeypatch.setattr(sys, "stdin", _FakeStream(b""))
    with pytest.raises(InpaintError, match=r"^<stdin>: no data on standard input"):
        io.read_image("-")


def test_float_images_are_refused(tmp_path):
    data = encode(".tiff", np.random.default_rng(2).random((4, 4, 3)).astype(np.float32))
    with pytest.raises(InpaintError, match=r"float32 samples are not supported.*8- or 16-bit"):
        io.read_image(write_bytes(tmp_path / "f.tiff", data))


# -------------------------------------------------------------------------------------------- masks


def _mask_file(tmp_path: Path, pixels: np.ndarray, name: str = "mask.png") -> Path:
    return write_bytes(tmp_path / name, encode(".png", pixels))


def test_mask_white_is_hole_and_threshold_is_half(tmp_path):
    gray = np.array([[0, 127, 128, 255]], np.uint8)
    path = _mask_file(tmp_path, gray)
    hole = masks.read_mask(path)
    assert hole.dtype == bool and hole.shape == (1, 4)
    assert hole.tolist() == [[False, False, True, True]]
    assert masks.read_mask(path, invert=True).tolist() == [[True, True, False, False]]


def test_mask_16_bit_threshold(tmp_path):
    path = _mask_file(tmp_path, np.array([[0, 32767, 32768, 65535]], np.uint16))
    assert masks.read_mask(path).tolist() == [[False, False, True, True]]


def test_mask_drawn_in_red_only(tmp_path):
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[0, 1] = (0, 0, 255)  # red
    bgr[1, 0] = (100, 100, 100)  # dark gray: not a hole
    assert masks.read_mask(_mask_file(tmp_path, bgr)).tolist() == [[False, True], [False, False]]


def test_palette_mask(tmp_path):
    rows = b"".join(b"\x00" + bytes(row) for row in ([0, 1, 0], [1, 0, 0]))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 8, 3, 0, 0, 0))
        + png_chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0]))  # 0 = black, 1 = red
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    hole = masks.read_mask(write_bytes(tmp_path / "pal.png", png))
    assert hole.tolist() == [[False, True, False], [True, False, False]]


def test_rgba_mask_with_flat_colour_uses_alpha(tmp_path):
    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., :3] = (40, 20, 200)  # one colour everywhere (a coloured layer)
    bgra[0, 2, 3] = 255
    bgra[1, 0, 3] = 200
    bgra[1, 1, 3] = 100  # mostly transparent: not a hole
    assert masks.read_mask(_mask_file(tmp_path, bgra)).tolist() == [[False, False, True], [True, False, False]]


def test_rgba_mask_with_drawn_colour_uses_colour(tmp_path):
    bgra = np.zeros((1, 3, 4), np.uint8)
    bgra[0, 1, :3] = 255
    bgra[0, :, 3] = (255, 255, 0)  # alpha varies too, but the colour carries the drawing
    assert masks.read_mask(_mask_file(tmp_path, bgra)).tolist() == [[False, True, False]]


def test_opaque_black_rgba_mask_has_no_hole(tmp_path):
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 3] = 255  # colour and alpha both flat: the colour (black) decides
    assert not masks.read_mask(_mask_file(tmp_path, bgra)).any()


def test_fit_mask_same_size_is_untouched():
    mask = np.zeros((3, 4), bool)
    assert masks.fit_mask(mask, 3, 4, resize=False, mask_name="m.png", image_name="p.png") is mask


def test_fit_mask_mismatch_names_both_files():
    with pytest.raises(InpaintError) as err:
        masks.fit_mask(
            np.zeros((480, 640), bool), 600, 800, resize=False, mask_name="mask.png", image_name="photo.png"
        )
    assert err.value.message == (
        "mask.png: 640x480 does not match photo.png (800x600); pass --resize-mask to scale it (nearest)"
    )
    # Found by reading both files, so a runtime failure (exit 1), not a usage error.
    assert not isinstance(err.value, UsageError) and err.value.exit_code == 1


def test_fit_mask_resize_is_nearest():
    mask = np.array([[True, False], [False, True]])
    out = masks.fit_mask(mask, 4, 6, resize=True, mask_name="m", image_name="i")
    assert out.dtype == bool and out.shape == (4, 6)
    expected = np.kron(mask, np.ones((2, 3), bool))  # each pixel becomes a 2x3 block
    assert np.array_equal(out, expected)


def test_dilate_single_pixel_becomes_disk():
    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    grown = masks.dilate_mask(mask, 2)
    assert grown.dtype == bool and int(grown.sum()) == 13
    assert grown[4, 2] and grown[2, 4] and grown[3, 3] and not grown[2, 3] and not grown[3, 2]
    assert int(masks.dilate_mask(mask, 1).sum()) == 5


def test_dilate_matches_disk_kernel_and_zero_copies():
    rng = np.random.default_rng(3)
    mask = rng.random((30, 40)) > 0.97
    for n in (1, 3, 5):
        yy, xx = np.mgrid[-n : n + 1, -n : n + 1]
        disk = (xx**2 + yy**2 <= n * n).astype(np.uint8)
        expected = cv2.dilate(mask.astype(np.uint8), disk, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
        assert np.array_equal(masks.dilate_mask(mask, n), expected)
    same = masks.dilate_mask(mask, 0)
    assert np.array_equal(same, mask) and same is not mask
    assert not masks.dilate_mask(np.zeros((4, 4), bool), 3).any()
    with pytest.raises(UsageError):
        masks.dilate_mask(mask, -1)


# ---------------------------------------------------------------------------------------- composing


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_compose_output_keeps_known_pixels_exact(dtype, channels):
    rng = np.random.default_rng(channels)
    full = np.iinfo(dtype).max
    pixels = rng.integers(0, full + 1, size=(6, 7, channels), dtype=dtype)
    original = io.Image(pixels.copy(), "p.png")
    mask = rng.random((6, 7)) > 0.5
    fill = rng.random((6, 7, 3)).astype(np.float32)
    out = io.compose_output(original, fill, mask)
    assert out.dtype == dtype and out.shape == pixels.shape
    assert np.array_equal(out[~mask], pixels[~mask])  # every channel of every known pixel
    if channels == 4:
        assert np.array_equal(out[..., 3], pixels[..., 3])  # alpha untouched under the hole too
    if channels == 1:
        luma = fill @ np.array([0.299, 0.587, 0.114], np.float32)
        expected = np.floor(luma * full + 0.5).astype(dtype)
        assert np.array_equal(out[..., 0][mask], expected[mask])
    else:
        expected = np.floor(fill * np.float32(full) + np.float32(0.5)).astype(dtype)
        assert np.array_equal(out[..., :3][mask], expected[mask])
    assert np.array_equal(original.pixels, pixels)  # the input is not modified


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_compose_rounds_half_up_and_clips(dtype):
    full = np.iinfo(dtype).max
    original = io.Image(np.zeros((1, 4, 3), dtype), "p.png")
    fill = np.array([[[0.5] * 3, [-0.3] * 3, [1.7] * 3, [np.nan] * 3]], np.float32)
    out = io.compose_output(original, fill, np.ones((1, 4), bool))
    assert out[0, :, 0].tolist() == [(full + 1) // 2, 0, full, 0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_rgb_then_compose_is_identity(dtype, channels):
    pixels = np.random.default_rng(9).integers(0, np.iinfo(dtype).max + 1, (5, 5, channels), dtype=dtype)
    image = io.Image(pixels, "p.png")
    assert np.array_equal(io.compose_output(image, image.rgb(), np.ones((5, 5), bool)), pixels)


def test_compose_rejects_wrong_shapes():
    image = io.Image(np.zeros((2, 2, 3), np.uint8), "p.png")
    with pytest.raises(ValueError):
        io.compose_output(image, np.zeros((2, 3, 3), np.float32), np.zeros((2, 2), bool))


# ------------------------------------------------------------------------------------------ writing


def _listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_unknown_extension_writes_nothing(tmp_path):
    with pytest.raises(UsageError) as err:
        io.write_image(tmp_path / "out.gif", np.zeros((2, 2, 3), np.uint8))
    assert "'.gif'" in err.value.message and ".png" in err.value.message and ".webp" in err.value.message
    assert err.value.exit_code == 2
    assert _listing(tmp_path) == []


def test_failed_encode_leaves_nothing_and_keeps_old_target(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    monkeypatch.setattr(cv2, "imencode", lambda *a, **k: (False, None))
    with pytest.raises(InpaintError, match="could not encode"):
        io.write_image(target, np.zeros((2, 2, 3), np.uint8))
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]
    new = tmp_path / "new.png"
    with pytest.raises(InpaintError):
        io.write_image(new, np.zeros((2, 2, 3), np.uint8))
    assert not new.exists() and _listing(tmp_path) == ["out.png"]


def test_failed_rename_removes_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        assert Path(src).parent == tmp_path and Path(src).name.startswith(".")  # hidden temp beside target
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(InpaintError, match=r"could not write it \(No space left on device\)"):
        io.write_image(target, np.zeros((2, 2, 3), np.uint8))
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["out.png"]


def test_existing_target_replaced_on_success(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    pixels = np.full((3, 3, 3), 7, np.uint8)
    io.write_image(target, pixels)
    assert np.array_equal(io.read_image(target).pixels, pixels)
    assert _listing(tmp_path) == ["out.png"]
    assert (target.stat().st_mode & 0o777) == 0o640  # permissions of the replaced file are kept


def test_new_file_mode_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        io.write_image(tmp_path / "a.png", np.zeros((1, 1, 3), np.uint8))
    finally:
        os.umask(old)
    assert ((tmp_path / "a.png").stat().st_mode & 0o777) == 0o644


def test_creates_parent_directories(tmp_path):
    target = tmp_path / "a" / "b" / "out.jpg"
    io.write_image(target, np.zeros((4, 4, 3), np.uint8))
    assert io.read_image(target).pixels.shape == (4, 4, 3)


def test_stdout_gets_png(monkeypatch):
    fake = _FakeStream()
    monkeypatch.setattr(sys, "stdout", fake)
    pixels = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    io.write_image("-", pixels, quality=10)
    data = fake.buffer.getvalue()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(decoded[..., ::-1], pixels)


def test_sixteen_bit_to_eight_bit_formats_is_scaled(tmp_path):
    pixels = np.array([[[0, 128, 129], [25700, 65535, 65535]]], np.uint16)
    target = tmp_path / "x.bmp"
    io.write_image(target, pixels)
    back = io.read_image(target)
    assert back.pixels.dtype == np.uint8
    assert back.pixels.tolist() == [[[0, 0, 1], [100, 255, 255]]]


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_dropped_for_jpeg_and_bmp(tmp_path, ext):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[...] = (0, 0, 0, 10)
    io.write_image(tmp_path / f"x{ext}", pixels)
    back = io.read_image(tmp_path / f"x{ext}")
    assert back.channels == 3 and not back.has_alpha


def test_webp_keeps_alpha(tmp_path):
    pixels = np.zeros((4, 4, 4), np.uint8)
    pixels[..., 3] = 255
    pixels[0, 0, 3] = 0
    io.write_image(tmp_path / "x.webp", pixels, quality=100)
    assert io.read_image(tmp_path / "x.webp").alpha()[0, 0] == 0


def test_quality_changes_jpeg_size_and_is_validated(tmp_path):
    pixels = _photo()
    io.write_image(tmp_path / "lo.jpg", pixels, quality=5)
    io.write_image(tmp_path / "hi.jpg", pixels, quality=100)
    assert (tmp_path / "lo.jpg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size
    with pytest.raises(UsageError, match="between 1 and 100"):
        io.write_image(tmp_path / "bad.jpg", pixels, quality=0)
    assert not (tmp_path / "bad.jpg").exists()


def test_gray_written_as_gray(tmp_path):
    pixels = np.arange(6, dtype=np.uint8).reshape(2, 3, 1)
    io.write_image(tmp_path / "g.png", pixels)
    assert cv2.imread(str(tmp_path / "g.png"), cv2.IMREAD_UNCHANGED).ndim == 2
    assert np.array_equal(io.read_image(tmp_path / "g.png").pixels, pixels)


# ------------------------------------------------------------------------------------------ listing


def test_image_files(tmp_path):
    for name in ["b.png", "a.JPG", "c.webp", ".hidden.png", "notes.txt", "d.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()  # a directory with an image-like name is not a file
    assert [p.name for p in io.image_files(tmp_path)] == ["a.JPG", "b.png", "c.webp", "d.tiff"]
    assert all(isinstance(p, Path) for p in io.image_files(str(tmp_path)))
    with pytest.raises(InpaintError, match="no such directory"):
        io.image_files(tmp_path / "missing")


def test_is_image_path():
    assert io.is_image_path("x/photo.JPEG") and io.is_image_path(Path("a.tif"))
    assert not io.is_image_path("notes.txt") and not io.is_image_path("-") and not io.is_image_path("png")
    assert frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}) == io.SUPPORTED_EXTENSIONS
    assert io.DEFAULT_MAX_PIXELS == 120_000_000

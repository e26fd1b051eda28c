"""Decoding at a training scale: images read as RGB with the shorter side scaled to a given size, JPEGs
through libjpeg's cheap reduced decode; the reader training and benchmarks use."""

from __future__ import annotations

import os

import cv2
import numpy as np

from .headers import read_header
from .read import apply_orientation, check_size, decode, quiet_cv2, read_bytes, resolve_max_pixels

__all__ = [
    "read_rgb",
    "scale_short_side",
    "short_side_size",
]

# libjpeg's DCT-domain downscaling, largest first. IGNORE_ORIENTATION: `apply_orientation` turns the image
# afterwards, from io's own EXIF reading, exactly as a full read_image would.
_JPEG_REDUCED_MODES: tuple[tuple[int, int], ...] = (
    (8, cv2.IMREAD_REDUCED_COLOR_8 | cv2.IMREAD_IGNORE_ORIENTATION),
    (4, cv2.IMREAD_REDUCED_COLOR_4 | cv2.IMREAD_IGNORE_ORIENTATION),
    (2, cv2.IMREAD_REDUCED_COLOR_2 | cv2.IMREAD_IGNORE_ORIENTATION),
)
_JPEG_MAGIC = b"\xff\xd8\xff"


def read_rgb(path: str | os.PathLike, *, short_side: int | None = None) -> np.ndarray:
    """The file as (H, W, 3) uint8/uint16 RGB (gray replicated, alpha dropped), decoded once: the training
    and benchmark reader.

    short_side: also scale it (`scale_short_side`). A JPEG at least twice that large is decoded at 1/2, 1/4
    or 1/8 size by libjpeg's DCT scaling (the largest factor that keeps the short side ≥ short_side, so the
    area resize after it only shrinks): much cheaper than a full decode, and within a grey level or so of it.
    EXIF orientation and the size limit apply as in `read_image`."""
    name, data = read_bytes(path)
    if short_side and data.startswith(_JPEG_MAGIC):
        reduced = _decode_jpeg_reduced(name, data, short_side)
        if reduced is not None:
            return reduced
    pixels = decode(name, data, resolve_max_pixels(None))
    pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else np.ascontiguousarray(pixels[:, :, :3])
    return scale_short_side(pixels, short_side) if short_side else pixels


def _decode_jpeg_reduced(name: str, data: bytes, short_side: int) -> np.ndarray | None:
    """The JPEG `data` decoded at 1/f size and area-resized to the size `scale_short_side` gives the full
    image, or None when no f fits (or the header is unusable) and the caller should decode it fully."""
    info = read_header(data)
    if info.size is None or info.truncated:
        return None  # the full decode reports it, or copes with it, as read_image does
    width, height = info.size
    check_size(name, width, height, resolve_max_pixels(None))
    mode = next(((f, flags) for f, flags in _JPEG_REDUCED_MODES if min(width, height) >= short_side * f), None)
    if mode is None:
        return None
    factor, flags = mode
    with quiet_cv2():
        try:
            pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
        except cv2.error:
            pixels = None
    if pixels is None or pixels.size == 0 or pixels.ndim != 3:
        return None  # let the full decode name the problem
    # Resized in the stored frame, before the EXIF turn: only there do the part-filled last reduced pixels
    # sit at the right and bottom edges. The target is symmetric in (height, width), so it is the stored
    # frame's too.
    target = short_side_size(height, width, short_side)
    if width % factor or height % factor:
        pixels = _area_resize(pixels, (width / factor, height / factor), target)
    elif pixels.shape[1::-1] != target:
        pixels = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(apply_orientation(pixels, info.orientation)[:, :, ::-1])


def _area_resize(pixels: np.ndarray, extent: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
    """Area (box-filter) resize of the top-left `extent` (width, height; fractional) of uint8 `pixels` onto
    `size` (width, height). cv2.INTER_AREA only maps whole images; a reduced JPEG decode of a side that is
    not a multiple of f ends in a part-filled pixel (ceil(W/f)), and mapping all of it would stretch the
    image by up to one reduced pixel."""
    out = pixels.astype(np.float64)
    for axis, (length, count) in enumerate(((extent[1], size[1]), (extent[0], size[0]))):
        out = np.moveaxis(out, axis, 0)
        # Exact box averages from the running sum: the integral up to x is linear within a pixel.
        edges = np.arange(count + 1) * (length / count)
        index = np.minimum(edges.astype(np.int64), out.shape[0] - 1)
        within = (edges - index).reshape(-1, *[1] * (out.ndim - 1))
        running = np.concatenate([np.zeros((1, *out.shape[1:])), np.cumsum(out, axis=0)])
        integral = running[index] + within * out[index]
        out = np.moveaxis(np.diff(integral, axis=0) / (length / count), 0, axis)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def scale_short_side(pixels: np.ndarray, short_side: int) -> np.ndarray:
    """Resize (area when shrinking, bicubic when enlarging) so the shorter side is `short_side` pixels:
    the scale `inpaint benchmark --size` fills at, so a model can train on what it will be scored on."""
    height, width = pixels.shape[:2]
    short = min(height, width)
    if short == short_side:
        return pixels
    interpolation = cv2.INTER_AREA if short_side < short else cv2.INTER_CUBIC
    return cv2.resize(pixels, short_side_size(height, width, short_side), interpolation=interpolation)


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(width, height) of an image of that size scaled so its shorter side is `short_side`."""
    scale = short_side / min(height, width)
    return max(short_side, round(width * scale)), max(short_side, round(height * scale))

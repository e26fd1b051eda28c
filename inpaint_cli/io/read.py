"""Reading images: the `Image` layout, raw bytes from a file or stdin, decoding with the codecs silenced,
the pixel-count limit and EXIF orientation.

Everything here works on RGB(A) channel order (cv2's BGR never leaks out) and keeps the source bit depth,
so the tool can write back exactly the pixels it did not fill. Only numpy and cv2 are used (no torch:
the CLI imports it lazily, and reading a mask should not pay for it). What a file's header says (size,
orientation, truncation) comes from `headers`, before anything is decoded.

Layout of `Image.pixels`: (H, W, C) with C = 1 (gray), 3 (RGB) or 4 (RGBA), uint8 or uint16. Gray + alpha
files (PNG/TIFF "LA") come back as RGBA with the gray value replicated, because cv2 expands them that
way and a 2-channel layout would need special cases in every caller; such an image is written back as RGBA.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from .headers import read_header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "STDIN_NAME",
    "STDIO",
    "Image",
    "apply_orientation",
    "check_size",
    "decode",
    "full_scale",
    "quiet_cv2",
    "read_bytes",
    "read_image",
    "resolve_max_pixels",
]

DEFAULT_MAX_PIXELS: int = 120_000_000
MAX_PIXELS_ENV = "INPAINT_MAX_PIXELS"
STDIO = "-"
STDIN_NAME = "<stdin>"
_READ_HINT = "pass a PNG, JPEG, WebP, BMP or TIFF file"
_BROKEN_HINT = "re-export or re-download it"


@dataclass
class Image:
    """Decoded pixels in RGB(A) order, EXIF orientation applied, original bit depth kept."""

    pixels: np.ndarray
    source: str

    def __post_init__(self) -> None:
        # Accept a plain (H, W) gray array so callers need not add the channel axis themselves.
        if self.pixels.ndim == 2:
            self.pixels = self.pixels[:, :, None]
        if self.pixels.ndim != 3 or self.pixels.shape[2] not in (1, 3, 4):
            raise ValueError(f"Image.pixels must be (H, W, 1|3|4), got shape {self.pixels.shape}")
        if self.pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"Image.pixels must be uint8 or uint16, got {self.pixels.dtype}")

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        return self.channels == 4

    @property
    def is_gray(self) -> bool:
        return self.channels == 1

    def rgb(self) -> np.ndarray:
        """float32 (H, W, 3) in [0, 1]; gray is replicated to three channels and alpha is dropped."""
        colour = self.pixels[:, :, :1] if self.is_gray else self.pixels[:, :, :3]
        out = colour.astype(np.float32) / np.float32(full_scale(self.pixels.dtype))
        if self.is_gray:
            out = np.repeat(out, 3, axis=2)
        return np.ascontiguousarray(out)

    def alpha(self) -> np.ndarray | None:
        """The alpha plane (H, W) exactly as stored, or None when the image has none."""
        return self.pixels[:, :, 3] if self.has_alpha else None


def full_scale(dtype: np.dtype) -> int:
    """The largest sample value of uint8 or uint16 pixels: what 1.0 means in float."""
    return 65535 if dtype == np.uint16 else 255


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> Image:
    """Read an image file ("-" = all of stdin) as RGB(A), 8 or 16 bit, with EXIF orientation applied.

    Raises InpaintError (one line naming the file) for missing, truncated, oversized or undecodable input.
    max_pixels: refuse larger images; None = $INPAINT_MAX_PIXELS or DEFAULT_MAX_PIXELS.
    """
    name, data = read_bytes(path)
    pixels = decode(name, data, resolve_max_pixels(max_pixels))
    return Image(pixels=pixels, source=name)


def resolve_max_pixels(max_pixels: int | None) -> int:
    """The pixel-count limit in force: `max_pixels` if given, else $INPAINT_MAX_PIXELS or DEFAULT_MAX_PIXELS."""
    if max_pixels is not None:
        if max_pixels <= 0:
            raise UsageError(f"--max-pixels must be a positive number of pixels (got {max_pixels})")
        return int(max_pixels)
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive whole number; "
            f"unset it or set e.g. {MAX_PIXELS_ENV}=200000000"
        )
    return value


def read_bytes(path: str | os.PathLike) -> tuple[str, bytes]:
    """The display name and raw bytes of `path` ("-" = stdin), with one-line errors for the usual mishaps."""
    text = os.fsdecode(path)
    if text == STDIO:
        stdin = sys.stdin
        if stdin is None or not hasattr(stdin, "buffer"):
            raise InpaintError(f"{STDIN_NAME}: standard input is not available; pass a file path instead of '-'")
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if stdin.isatty():
                raise InpaintError(f"{STDIN_NAME}: standard input is a terminal; pipe an image in (e.g. '< photo.jpg')")
        data = stdin.buffer.read()
        if not data:
            raise InpaintError(f"{STDIN_NAME}: no data on standard input; pipe an image file in or pass a path")
        return STDIN_NAME, data
    try:
        with open(text, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        raise InpaintError(f"{text}: no such file; check the path") from None
    except IsADirectoryError:
        raise InpaintError(f"{text}: is a directory, not an image file; pass an image file") from None
    except PermissionError:
        # Windows reports opening a directory as a permission error.
        if os.path.isdir(text):
            raise InpaintError(f"{text}: is a directory, not an image file; pass an image file") from None
        raise InpaintError(f"{text}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise InpaintError(f"{text}: could not read it ({exc.strerror or exc}); check the file") from None
    if not data:
        raise InpaintError(f"{text}: empty file (0 bytes); {_BROKEN_HINT}")
    return text, data


@contextlib.contextmanager
def quiet_cv2() -> Iterator[None]:
    """Silence the codecs while we work: we report problems ourselves, in one line. cv2's own logging
    (imdecode's and libtiff's errors reach it at ERROR level) is switched off, and libpng and libjpeg,
    which print their complaints to stderr themselves, get /dev/null for the call."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        with _stderr_to_devnull():
            yield
        return
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        with _stderr_to_devnull():
            yield
    finally:
        logging.setLogLevel(previous)


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block. In the main thread only: the descriptor is the
    whole process's, and worker threads (training's data loaders) decode concurrently; what another
    thread writes to stderr meanwhile (a progress-bar frame) is lost, which a redraw makes good."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no stderr descriptor: nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def decode(name: str, data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> (H, W, C) RGB(A) uint8/uint16 array, oriented; all checks that need no decoding come first."""
    info = read_header(data)
    if info.size is not None:
        check_size(name, info.size[0], info.size[1], max_pixels)
    if info.truncated:
        raise InpaintError(f"{name}: truncated image (the file ends before the image data); {_BROKEN_HINT}")
    with quiet_cv2():
        try:
            pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error:
            pixels = None
    if pixels is None or pixels.size == 0:
        if info.kind is None:
            raise InpaintError(f"{name}: not an image (could not decode it); {_READ_HINT}")
        raise InpaintError(f"{name}: corrupt {info.kind} data (could not decode it); {_BROKEN_HINT}")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise InpaintError(
            f"{name}: {pixels.dtype} samples are not supported (only 8- and 16-bit images); "
            "convert it to an 8- or 16-bit PNG or TIFF"
        )
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise InpaintError(
            f"{name}: {pixels.shape[2] if pixels.ndim == 3 else '?'} colour channels are not supported; "
            "convert it to gray, RGB or RGBA"
        )
    # Formats the header scan does not know (or lies about) are checked once decoded.
    check_size(name, pixels.shape[1], pixels.shape[0], max_pixels)
    pixels = apply_orientation(pixels, info.orientation)
    if pixels.shape[2] == 3:
        pixels = pixels[:, :, ::-1]
    elif pixels.shape[2] == 4:
        pixels = pixels[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(pixels)


def check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    """InpaintError when a width x height image is over `max_pixels`."""
    total = int(width) * int(height)
    if total > max_pixels:
        raise InpaintError(
            f"{name}: {width}x{height} is {total:,} pixels, over the limit of {max_pixels:,}; "
            f"if you trust the file, raise the limit with --max-pixels or {MAX_PIXELS_ENV}"
        )


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels into the upright image the EXIF Orientation tag (1-8) describes."""
    if orientation == 2:  # mirrored left-right
        return pixels[:, ::-1]
    if orientation == 3:  # upside down
        return pixels[::-1, ::-1]
    if orientation == 4:  # mirrored top-bottom
        return pixels[::-1]
    if orientation == 5:  # transpose
        return pixels.swapaxes(0, 1)
    if orientation == 6:  # stored rotated left: turn 90° clockwise
        return pixels.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:  # transverse
        return pixels[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:  # stored rotated right: turn 90° counter-clockwise
        return pixels.swapaxes(0, 1)[::-1]
    return pixels

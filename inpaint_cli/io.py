"""Reading and writing images and masks: bit depths, gray/alpha, EXIF orientation, safety checks.

Everything here works on RGB(A) channel order (cv2's BGR never leaks out) and keeps the source bit depth,
so the tool can write back exactly the pixels it did not fill. Only numpy and cv2 are used (no torch:
the CLI imports it lazily, and reading a mask should not pay for it). What a file's header says (size,
orientation, truncation) comes from `inpaint_cli.image_headers`, before anything is decoded.

Layout of `Image.pixels`: (H, W, C) with C = 1 (gray), 3 (RGB) or 4 (RGBA), uint8 or uint16. Gray + alpha
files (PNG/TIFF "LA") come back as RGBA with the gray value replicated, because cv2 expands them that
way and a 2-channel layout would need special cases in every caller; such an image is written back as RGBA.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import InpaintError, UsageError
from .image_headers import read_header

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "compose_output",
    "dilate_mask",
    "fit_mask",
    "image_files",
    "is_image_path",
    "read_image",
    "read_mask",
    "read_rgb",
    "refuse_terminal_stdout",
    "scale_short_side",
    "short_side_size",
    "write_image",
]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS: int = 120_000_000
MAX_PIXELS_ENV = "INPAINT_MAX_PIXELS"
STDIO = "-"
STDIN_NAME = "<stdin>"
DEFAULT_QUALITY = 95

_FORMAT_NAMES = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WebP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
# Formats whose encoders in cv2 only take 8-bit samples / cannot carry an alpha plane.
_EIGHT_BIT_ONLY = frozenset({".jpg", ".jpeg", ".webp", ".bmp"})
_NO_ALPHA = frozenset({".jpg", ".jpeg", ".bmp"})
_READ_HINT = "pass a PNG, JPEG, WebP, BMP or TIFF file"
_BROKEN_HINT = "re-export or re-download it"


# --------------------------------------------------------------------------------------------- Image


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
        out = colour.astype(np.float32) / np.float32(_full_scale(self.pixels.dtype))
        if self.is_gray:
            out = np.repeat(out, 3, axis=2)
        return np.ascontiguousarray(out)

    def alpha(self) -> np.ndarray | None:
        """The alpha plane (H, W) exactly as stored, or None when the image has none."""
        return self.pixels[:, :, 3] if self.has_alpha else None


def _full_scale(dtype: np.dtype) -> int:
    return 65535 if dtype == np.uint16 else 255


# ------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, max_pixels: int | None = None) -> Image:
    """Read an image file ("-" = all of stdin) as RGB(A), 8 or 16 bit, with EXIF orientation applied.

    Raises InpaintError (one line naming the file) for missing, truncated, oversized or undecodable input.
    max_pixels: refuse larger images; None = $INPAINT_MAX_PIXELS or DEFAULT_MAX_PIXELS.
    """
    name, data = _read_bytes(path)
    pixels = _decode(name, data, _resolve_max_pixels(max_pixels))
    return Image(pixels=pixels, source=name)


def read_mask(path: str | os.PathLike, *, invert: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask as bool (H, W), True = hole (white = hole unless `invert`).

    Colour masks use the brightest channel, thresholded at half of full scale, so a hole painted in any
    pure colour counts. An RGBA mask whose colour is the same everywhere (a Photoshop/GIMP layer mask
    exported as a transparent layer) uses its alpha instead: opaque = hole. If the alpha is uniform too,
    the colour decides, so a plain opaque black image still means "no hole".
    """
    name, data = _read_bytes(path)
    pixels = _decode(name, data, _resolve_max_pixels(max_pixels))
    half = _full_scale(pixels.dtype) / 2
    colour = pixels[:, :, :3] if pixels.shape[2] >= 3 else pixels[:, :, :1]
    if pixels.shape[2] == 4 and _is_uniform(colour) and not _is_uniform(pixels[:, :, 3:]):
        hole = pixels[:, :, 3] > half
    else:
        hole = colour.max(axis=2) > half
    if invert:
        hole = ~hole
    return np.ascontiguousarray(hole)


def _is_uniform(planes: np.ndarray) -> bool:
    """True when every pixel has the same value in each plane (per-plane constants may differ)."""
    flat = planes.reshape(-1, planes.shape[-1])
    return bool((flat == flat[:1]).all())


def _resolve_max_pixels(max_pixels: int | None) -> int:
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


def _read_bytes(path: str | os.PathLike) -> tuple[str, bytes]:
    """The display name and raw bytes of `path` ("-" = stdin), with one-line errors for the usual mishaps."""
    text = os.fsdecode(path)
    if text == STDIO:
        stdin = sys.stdin
        if stdin is None or not hasattr(stdin, "buffer"):
            raise InpaintError(
                f"{STDIN_NAME}: standard input is not available; pass a file path instead of '-'"
            )
        with contextlib.suppress(AttributeError, ValueError, OSError):
            if stdin.isatty():
                raise InpaintError(
                    f"{STDIN_NAME}: standard input is a terminal; pipe an image in (e.g. '< photo.jpg')"
                )
        data = stdin.buffer.read()
        if not data:
            raise InpaintError(
                f"{STDIN_NAME}: no data on standard input; pipe an image file in or pass a path"
            )
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
def _quiet_cv2() -> Iterator[None]:
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


def _decode(name: str, data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> (H, W, C) RGB(A) uint8/uint16 array, oriented; all checks that need no decoding come first."""
    info = read_header(data)
    if info.size is not None:
        _check_size(name, info.size[0], info.size[1], max_pixels)
    if info.truncated:
        raise InpaintError(f"{name}: truncated image (the file ends before the image data); {_BROKEN_HINT}")
    with _quiet_cv2():
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
    _check_size(name, pixels.shape[1], pixels.shape[0], max_pixels)
    pixels = _apply_orientation(pixels, info.orientation)
    if pixels.shape[2] == 3:
        pixels = pixels[:, :, ::-1]
    elif pixels.shape[2] == 4:
        pixels = pixels[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(pixels)


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    total = int(width) * int(height)
    if total > max_pixels:
        raise InpaintError(
            f"{name}: {width}x{height} is {total:,} pixels, over the limit of {max_pixels:,}; "
            f"if you trust the file, raise the limit with --max-pixels or {MAX_PIXELS_ENV}"
        )


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
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


# ------------------------------------------------------------------ decoding at a training scale

# libjpeg's DCT-domain downscaling, largest first. IGNORE_ORIENTATION: io's own EXIF reading turns the
# image afterwards, exactly as a full read_image would.
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
    name, data = _read_bytes(path)
    if short_side and data.startswith(_JPEG_MAGIC):
        reduced = _decode_jpeg_reduced(name, data, short_side)
        if reduced is not None:
            return reduced
    pixels = _decode(name, data, _resolve_max_pixels(None))
    pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else np.ascontiguousarray(pixels[:, :, :3])
    return scale_short_side(pixels, short_side) if short_side else pixels


def _decode_jpeg_reduced(name: str, data: bytes, short_side: int) -> np.ndarray | None:
    """The JPEG `data` decoded at 1/f size and area-resized to the size `scale_short_side` gives the full
    image, or None when no f fits (or the header is unusable) and the caller should decode it fully."""
    info = read_header(data)
    if info.size is None or info.truncated:
        return None  # the full decode reports it, or copes with it, as read_image does
    width, height = info.size
    _check_size(name, width, height, _resolve_max_pixels(None))
    mode = next(((f, flags) for f, flags in _JPEG_REDUCED_MODES if min(width, height) >= short_side * f), None)
    if mode is None:
        return None
    factor, flags = mode
    with _quiet_cv2():
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
    return np.ascontiguousarray(_apply_orientation(pixels, info.orientation)[:, :, ::-1])


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


def fit_mask(
    mask: np.ndarray, height: int, width: int, *, resize: bool, mask_name: str, image_name: str
) -> np.ndarray:
    """Return `mask` sized (height, width): unchanged if it already is, else resized (nearest) or refused."""
    if mask.shape[:2] == (height, width):
        return mask
    mask_height, mask_width = mask.shape[:2]
    if not resize:  # a fact about the two files, found once the work started: a runtime failure
        raise InpaintError(
            f"{mask_name}: {mask_width}x{mask_height} does not match {image_name} ({width}x{height}); "
            "pass --resize-mask to scale it (nearest)"
        )
    # NEAREST_EXACT samples pixel centres; plain INTER_NEAREST is shifted by half a pixel.
    interpolation = getattr(cv2, "INTER_NEAREST_EXACT", cv2.INTER_NEAREST)
    resized = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=interpolation)
    return resized > 0


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the hole by `pixels`: every pixel within that Euclidean distance of a hole pixel joins it.

    Same result as dilating with a (2N+1)-wide disk, but through an exact distance transform, whose
    cost does not grow with N (a large disk kernel is slow on big images).
    """
    if pixels < 0:
        raise UsageError(f"mask dilation must be 0 or more pixels (got {pixels})")
    hole = np.asarray(mask, dtype=bool)
    if pixels == 0 or not hole.any():
        return hole.copy()
    known = (~hole).astype(np.uint8)
    distance = cv2.distanceTransform(known, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= pixels


# ------------------------------------------------------------------------------------------- output


def compose_output(original: Image, filled_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image to write: the fill in the holes, the original everywhere else, in the original layout.

    filled_rgb: float32 (H, W, 3) in [0, 1], quantised to the original bit depth (round half up), or, for
    colour originals, already in the original's dtype (the engine fills 8/16-bit RGB in place). It is
    turned back into one channel for gray originals (BT.601 luma), and never touches alpha.
    """
    pixels = original.pixels
    height, width = original.height, original.width
    if filled_rgb.shape != (height, width, 3):
        raise ValueError(f"filled_rgb must be {(height, width, 3)}, got {filled_rgb.shape}")
    if mask.shape != (height, width):
        raise ValueError(f"mask must be {(height, width)}, got {mask.shape}")
    if filled_rgb.dtype == pixels.dtype and not original.is_gray:
        quantised = filled_rgb  # filled in the image's own dtype (the engine does that for 8/16-bit input)
    else:
        fill = np.nan_to_num(np.asarray(filled_rgb, dtype=np.float32), nan=0.0)
        if original.is_gray:
            fill = fill @ np.array([[0.299], [0.587], [0.114]], dtype=np.float32)
        full = _full_scale(pixels.dtype)
        quantised = np.floor(np.clip(fill, 0.0, 1.0) * np.float32(full) + np.float32(0.5))
        quantised = np.clip(quantised, 0, full).astype(pixels.dtype)
    colour_channels = 1 if original.is_gray else 3
    out = pixels.copy()
    out[:, :, :colour_channels] = np.where(mask[:, :, None], quantised, pixels[:, :, :colour_channels])
    return out


def write_image(path: str | os.PathLike, pixels: np.ndarray, *, quality: int | None = None) -> None:
    """Write RGB(A)/gray uint8 or uint16 pixels, format from the extension ("-" = PNG to stdout).

    The file appears complete or not at all: the image is encoded in memory, written to a hidden temp
    file beside the target, fsynced and renamed over it. Missing parent directories are created.
    16-bit data going to JPEG, WebP or BMP is scaled to 8 bit; JPEG and BMP drop alpha.
    quality (1-100, default 95) applies to JPEG and WebP.
    """
    text = os.fsdecode(path)
    to_stdout = text == STDIO
    ext = ".png" if to_stdout else pathlib.Path(text).suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        what = f"unknown image format {ext!r}" if ext else "no file extension"
        raise UsageError(f"{text}: {what}; use one of {', '.join(sorted(SUPPORTED_EXTENSIONS))}")
    if quality is None:
        quality = DEFAULT_QUALITY
    if not 1 <= int(quality) <= 100:
        raise UsageError(f"--quality must be between 1 and 100 (got {quality})")

    encoded = _encode(text, ext, _to_bgr(pixels, ext), int(quality))
    if to_stdout:
        _write_stdout(encoded)
    else:
        write_atomic(text, encoded)


def _to_bgr(pixels: np.ndarray, ext: str) -> np.ndarray:
    """RGB(A)/gray in our layout -> what cv2's encoder for `ext` accepts (BGR(A) or 2-D gray)."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image takes uint8 or uint16 pixels, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)):
        raise ValueError(
            f"write_image takes (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) pixels, got {pixels.shape}"
        )
    if pixels.dtype == np.uint16 and ext in _EIGHT_BIT_ONLY:
        # v * 255 / 65535 == v / 257, rounded half up.
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 4 and ext in _NO_ALPHA:
        pixels = pixels[:, :, :3]
    if pixels.ndim == 3:
        pixels = pixels[:, :, ::-1] if pixels.shape[2] == 3 else pixels[:, :, [2, 1, 0, 3]]
    return np.ascontiguousarray(pixels)


def _encode(name: str, ext: str, pixels: np.ndarray, quality: int) -> bytes:
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    with _quiet_cv2():
        try:
            ok, buffer = cv2.imencode(ext, pixels, params)
        except cv2.error as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "encoder error"
            raise InpaintError(
                f"{name}: could not encode the image as {_FORMAT_NAMES[ext]} ({detail})"
            ) from None
    if not ok:
        raise InpaintError(
            f"{name}: could not encode the image as {_FORMAT_NAMES[ext]}; try another format such as .png"
        )
    return buffer.tobytes()


def refuse_terminal_stdout() -> None:
    """UsageError when standard output is a terminal: image bytes there are noise, never what was meant.
    Checked before any work, for every output that goes to stdout ("-", or stdin's default)."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        if sys.stdout.isatty():
            raise UsageError(
                "<stdout>: standard output is a terminal, and a PNG there is binary noise; "
                "redirect it (> filled.png) or pass --out FILE"
            )


def _write_stdout(encoded: bytes) -> None:
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        raise InpaintError("<stdout>: standard output does not accept binary data; pass an output file")
    try:
        stream.write(encoded)
        stream.flush()
    except BrokenPipeError:
        raise InpaintError(
            "<stdout>: the reading end of the pipe closed before the image was written"
        ) from None


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a temp file beside `path`, fsync, and rename it over `path`: a reader sees the old
    file or the whole new one, never half of it. Used for every file the tool writes."""
    name = os.fspath(path)
    target = pathlib.Path(name)
    parent = target.parent
    if target.is_dir():
        raise InpaintError(f"{name}: is a directory; pass an output file name")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InpaintError(
            f"{name}: could not create the directory {parent} ({exc.strerror or exc})"
        ) from None
    mode = _file_mode(target)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InpaintError(
            f"{name}: could not write in {parent} ({exc.strerror or exc}); check permissions"
        ) from None
    try:
        try:
            # mkstemp makes the file 0600; give it the mode a normally created (or the replaced) file has.
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise InpaintError(
                f"{name}: could not write it ({exc.strerror or exc}); check free space and permissions"
            ) from None
        raise
    _fsync_directory(parent)


def _file_mode(target: pathlib.Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        pass
    # The only portable way to read the umask is to set it and put it back.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: pathlib.Path) -> None:
    """Make the rename itself durable; best effort (not possible on every platform/filesystem)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------------------- listing


def image_files(directory: str | os.PathLike) -> list[pathlib.Path]:
    """Image files (by extension) directly inside `directory`, sorted by name; hidden files are skipped."""
    folder = pathlib.Path(directory)
    if not folder.exists():
        raise InpaintError(f"{folder}: no such directory; check the path")
    if not folder.is_dir():
        raise InpaintError(f"{folder}: not a directory; pass a folder of images")
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        raise InpaintError(
            f"{folder}: could not list it ({exc.strerror or exc}); check permissions"
        ) from None
    found = [p for p in entries if not p.name.startswith(".") and is_image_path(p) and p.is_file()]
    return sorted(found, key=lambda p: p.name)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of SUPPORTED_EXTENSIONS (case-insensitive); content is not checked."""
    return pathlib.Path(os.fsdecode(path)).suffix.lower() in SUPPORTED_EXTENSIONS

"""Writing images: composing the output from the fill and the original, encoding with the codecs silenced,
atomic file writes (temp file, fsync, rename) and the checks for binary data on standard output."""

from __future__ import annotations

import contextlib
import os
import pathlib
import stat
import sys
import tempfile

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from .files import SUPPORTED_EXTENSIONS
from .read import STDIO, Image, full_scale, quiet_cv2

__all__ = [
    "DEFAULT_QUALITY",
    "compose_output",
    "refuse_terminal_stdout",
    "write_atomic",
    "write_image",
]

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
        full = full_scale(pixels.dtype)
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
        raise ValueError(f"write_image takes (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) pixels, got {pixels.shape}")
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
    with quiet_cv2():
        try:
            ok, buffer = cv2.imencode(ext, pixels, params)
        except cv2.error as exc:
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "encoder error"
            raise InpaintError(f"{name}: could not encode the image as {_FORMAT_NAMES[ext]} ({detail})") from None
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
        raise InpaintError("<stdout>: the reading end of the pipe closed before the image was written") from None


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
        raise InpaintError(f"{name}: could not create the directory {parent} ({exc.strerror or exc})") from None
    mode = _file_mode(target)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise InpaintError(f"{name}: could not write in {parent} ({exc.strerror or exc}); check permissions") from None
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

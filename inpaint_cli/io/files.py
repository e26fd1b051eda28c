"""Finding image files: the supported extensions, and the images directly inside a folder."""

from __future__ import annotations

import os
import pathlib

from ..errors import InpaintError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "image_files",
    "is_image_path",
]

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})


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
        raise InpaintError(f"{folder}: could not list it ({exc.strerror or exc}); check permissions") from None
    found = [p for p in entries if not p.name.startswith(".") and is_image_path(p) and p.is_file()]
    return sorted(found, key=lambda p: p.name)


def is_image_path(path: str | os.PathLike) -> bool:
    """True when the file name has one of SUPPORTED_EXTENSIONS (case-insensitive); content is not checked."""
    return pathlib.Path(os.fsdecode(path)).suffix.lower() in SUPPORTED_EXTENSIONS

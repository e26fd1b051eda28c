"""Masks: reading one as a bool hole map, fitting it to an image's size, growing the hole."""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from .read import decode, full_scale, read_bytes, resolve_max_pixels

__all__ = [
    "dilate_mask",
    "fit_mask",
    "read_mask",
]


def read_mask(path: str | os.PathLike, *, invert: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Read a mask as bool (H, W), True = hole (white = hole unless `invert`).

    Colour masks use the brightest channel, thresholded at half of full scale, so a hole painted in any
    pure colour counts. An RGBA mask whose colour is the same everywhere (a Photoshop/GIMP layer mask
    exported as a transparent layer) uses its alpha instead: opaque = hole. If the alpha is uniform too,
    the colour decides, so a plain opaque black image still means "no hole".
    """
    name, data = read_bytes(path)
    pixels = decode(name, data, resolve_max_pixels(max_pixels))
    half = full_scale(pixels.dtype) / 2
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

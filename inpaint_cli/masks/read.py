"""The masks a user gives: a mask file read as a bool hole map, fitted to an image's size, the hole grown, and
the holes given on the command line (`--box`, `--mask-color`)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from ..io.read import decode, full_scale, read_bytes, resolve_max_pixels

__all__ = [
    "Box",
    "box_hole",
    "colour_hole",
    "dilate_mask",
    "fit_mask",
    "parse_box",
    "parse_colour",
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


def fit_mask(mask: np.ndarray, height: int, width: int, *, resize: bool, mask_name: str, image_name: str) -> np.ndarray:
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


# -- holes given on the command line: boxes and a paint colour ---------------------------------------

# A box is (x, y, width, height) in pixels, x and y from the top-left corner.
Box = tuple[int, int, int, int]


def parse_box(text: str) -> Box:
    """`--box X,Y,W,H` -> (x, y, w, h). UsageError for anything else: four whole numbers, W and H above 0.
    X and Y may be negative (a box partly left of or above the image is clipped to it)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        x, y, w, h = (int(part) for part in parts)
    except ValueError:
        raise UsageError(
            f"--box {text}: expected X,Y,W,H in whole pixels (left, top, width, height), e.g. --box 120,80,64,48"
        ) from None
    if w <= 0 or h <= 0:
        raise UsageError(f"--box {text}: width and height must be at least 1 pixel")
    return x, y, w, h


def box_hole(boxes: list[Box] | tuple[Box, ...], height: int, width: int, image_name: str) -> np.ndarray:
    """The union of `boxes` on a (height, width) mask. A box partly outside the image is clipped to it;
    one wholly outside is an InpaintError naming the box and the image size (known only once read)."""
    hole = np.zeros((height, width), bool)
    for x, y, w, h in boxes:
        top, left, bottom, right = max(y, 0), max(x, 0), min(y + h, height), min(x + w, width)
        if top >= bottom or left >= right:
            raise InpaintError(
                f"{image_name}: --box {x},{y},{w},{h} lies wholly outside the {width}x{height} image; "
                "give X,Y,W,H inside it"
            )
        hole[top:bottom, left:right] = True
    return hole


def parse_colour(text: str) -> tuple[int, int, int]:
    """`--mask-color '#ff00ff'` (or 'ff00ff', '#f0f') -> (r, g, b) on the 0-255 scale; else UsageError."""
    digits = text.strip().removeprefix("#")
    if len(digits) == 3:
        digits = "".join(2 * digit for digit in digits)
    if len(digits) != 6 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise UsageError(f"--mask-color {text}: expected a hex colour such as '#ff00ff' (#RRGGBB or #RGB)")
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def colour_hole(pixels: np.ndarray, colour: tuple[int, int, int], tolerance: int = 0) -> np.ndarray:
    """The pixels of `colour` (8-bit RGB) in an RGB(A)/gray uint8 or uint16 image: every channel within
    `tolerance` (0-255 scale) of it. 16-bit images are compared at their own depth (255 -> 65535); a gray
    image matches a gray colour only; alpha is ignored."""
    if not 0 <= tolerance <= 255:
        raise UsageError(f"--color-tolerance {tolerance}: expected 0 to 255 (levels of 8-bit colour)")
    scale = 257 if pixels.dtype == np.uint16 else 1
    channels = pixels[:, :, :1] if pixels.shape[2] == 1 else pixels[:, :, :3]
    wanted = np.array(colour[:1] if pixels.shape[2] == 1 else colour, np.int32) * scale
    if pixels.shape[2] == 1 and len(set(colour)) != 1:
        return np.zeros(pixels.shape[:2], bool)
    return (np.abs(channels.astype(np.int32) - wanted) <= tolerance * scale).all(axis=2)

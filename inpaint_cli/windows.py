"""Where the engine's windows go: holes grouped into windows with context, tight hole regions, reflect
padding, and hole masks resized without losing a hole pixel. numpy and cv2 only."""

from __future__ import annotations

import cv2
import numpy as np


def resize_hole_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """`mask` (H, W) at (height, width), keeping every hole: a pixel is a hole if any source pixel under
    it, or any that bilinear upscaling reads for it, is one. (Nearest-neighbour drops a 1-px line when
    shrinking; the hole's content would then enter the model as known.) Exact, via an integral image."""
    src_h, src_w = mask.shape
    integral = np.zeros((src_h + 1, src_w + 1), np.int32)
    np.cumsum(np.cumsum(mask, axis=0, dtype=np.int32), axis=1, out=integral[1:, 1:])
    y0, y1 = _footprints(src_h, height)
    x0, x1 = _footprints(src_w, width)
    holes = integral[np.ix_(y1, x1)] - integral[np.ix_(y0, x1)] - integral[np.ix_(y1, x0)] + integral[np.ix_(y0, x0)]
    return holes > 0


def _footprints(source: int, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Per target index, the half-open source range [start, stop) it covers (area) or reads (linear)."""
    scale = source / target
    index = np.arange(target)
    start = np.floor(index * scale)
    stop = np.ceil((index + 1) * scale)
    centre = np.floor((index + 0.5) * scale - 0.5)  # the left tap of bilinear interpolation
    start = np.clip(np.minimum(start, centre), 0, source - 1).astype(np.intp)
    stop = np.clip(np.maximum(stop, centre + 2), 1, source).astype(np.intp)
    return start, stop


def pad_bottom_right(rgbs: np.ndarray, masks: np.ndarray, pad_h: int, pad_w: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad a stack (B, H, W, 3) and its masks (B, H, W) by pad_h rows and pad_w columns. The
    masks are reflected too, so a hole that touches the border stays a hole in its mirror image instead
    of leaking its unknown pixels in as known ones."""
    if not pad_h and not pad_w:
        return rgbs, masks
    # numpy's "reflect" is OpenCV's REFLECT_101; it reflects again when a pad is longer than the side.
    padded_rgb = np.pad(rgbs, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
    padded_mask = np.pad(masks, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect")
    return padded_rgb, padded_mask


def hole_windows(mask: np.ndarray, working_size: int | None) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Windows (top, left, bottom, right, region) covering every hole with context around it.

    The context margin is a quarter of the working size (64 px at least): enough surrounding texture for
    the network while keeping a small hole's window small. Holes whose windows would touch share one.
    `region` marks, inside the window, the holes this window pastes (a neighbouring group's holes may also
    fall inside it: they are holes for the model, so none of their unknown pixels leak in, but they are
    pasted by their own window).
    """
    return _hole_groups(mask, max(64, (working_size or 512) // 4), keep_margin=True)


def hole_regions(mask: np.ndarray, merge_distance: int = 8) -> list[tuple[int, int, int, int, np.ndarray]]:
    """Tight bounding boxes (top, left, bottom, right, region) of the holes, holes closer than
    `merge_distance` px grouped together; `region` marks the group's hole pixels inside the box."""
    return _hole_groups(mask, merge_distance, keep_margin=False)


def _hole_groups(mask: np.ndarray, distance: int, *, keep_margin: bool) -> list[tuple[int, int, int, int, np.ndarray]]:
    # Grouping by dilation with a rectangle: separable, so fast even for large distances and images.
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * distance + 1, 2 * distance + 1))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        cv2.dilate(mask.astype(np.uint8), kernel), connectivity=8
    )
    groups = []
    for label in range(1, count):
        left, top, box_w, box_h = (int(v) for v in stats[label, :4])
        bottom, right = top + box_h, left + box_w
        region = (labels[top:bottom, left:right] == label) & mask[top:bottom, left:right]
        if not keep_margin:  # shrink the grown box back to the holes it holds
            rows, cols = np.nonzero(region)
            region = region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            top, left = top + int(rows.min()), left + int(cols.min())
            bottom, right = top + region.shape[0], left + region.shape[1]
        groups.append((top, left, bottom, right, region))
    return groups


def reflect_window(array: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """array[top:top+side, left:left+side], reflect-padded where the window leaves the image."""
    height, width = array.shape[:2]
    pads = (max(0, -top), max(0, top + side - height), max(0, -left), max(0, left + side - width))
    if any(pads):
        # Reflection needs a pad smaller than the image; replicate covers windows far larger than it.
        fits = max(pads[:2]) < height and max(pads[2:]) < width
        array = cv2.copyMakeBorder(array, *pads, cv2.BORDER_REFLECT_101 if fits else cv2.BORDER_REPLICATE)
        top, left = top + pads[0], left + pads[2]
    return array[top : top + side, left : left + side]

"""Hole masks, one concern per module; a mask is a bool array (H, W) with True = hole.

  read.py    the masks a user gives: a mask file read, fitted to the image and grown; `--box` and
             `--mask-color` holes (what `inpaint fill` and `plural` use)
  shapes.py  random hole shapes drawn from a seeded generator: DeepFill's box, DeepFill v2's brush strokes,
             their mix, and the hole ratio (what training draws from)
  sets.py    seeded benchmark mask sets: hole-ratio buckets, `mask_NNNN.png` files with a manifest
             (`inpaint masks generate`, `inpaint benchmark`)

All of it is numpy and cv2 only. The names other modules use are re-exported here.
"""

from .read import Box, box_hole, colour_hole, dilate_mask, fit_mask, parse_box, parse_colour, read_mask
from .sets import (
    MANIFEST_NAME,
    MASK_KINDS,
    MaskSet,
    bucket_masks,
    generate_mask_set,
    load_mask_set,
    parse_ratio,
    parse_size,
    ratio_label,
)
from .shapes import box_mask, brush_stroke_mask, hole_ratio, mixed_mask

__all__ = [
    "MANIFEST_NAME",
    "MASK_KINDS",
    "Box",
    "MaskSet",
    "box_hole",
    "box_mask",
    "brush_stroke_mask",
    "bucket_masks",
    "colour_hole",
    "dilate_mask",
    "fit_mask",
    "generate_mask_set",
    "hole_ratio",
    "load_mask_set",
    "mixed_mask",
    "parse_box",
    "parse_colour",
    "parse_ratio",
    "parse_size",
    "ratio_label",
    "read_mask",
]

"""Reading and writing images and masks: bit depths, gray/alpha, EXIF orientation, safety checks.

One concern per module: `read` (the `Image` layout, decoding with the codecs silenced, the size limit,
EXIF orientation), `headers` (container headers, parsed before decoding), `scale` (decoding at a
training scale), `masks` (reading, fitting and growing masks), `write` (composing and atomically
writing the output, stdout checks) and `files` (supported extensions, finding images in a folder).
All of it is numpy and cv2 only: the CLI imports torch lazily, and reading a mask should not pay for it.
The names other modules use are re-exported here.
"""

from .files import SUPPORTED_EXTENSIONS, image_files, is_image_path
from .masks import Box, box_hole, colour_hole, dilate_mask, fit_mask, parse_box, parse_colour, read_mask
from .read import DEFAULT_MAX_PIXELS, STDIO, Image, read_image
from .scale import read_rgb, scale_short_side, short_side_size
from .write import compose_output, refuse_terminal_stdout, write_atomic, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "STDIO",
    "SUPPORTED_EXTENSIONS",
    "Box",
    "Image",
    "box_hole",
    "colour_hole",
    "compose_output",
    "dilate_mask",
    "fit_mask",
    "image_files",
    "is_image_path",
    "parse_box",
    "parse_colour",
    "read_image",
    "read_mask",
    "read_rgb",
    "refuse_terminal_stdout",
    "scale_short_side",
    "short_side_size",
    "write_atomic",
    "write_image",
]

"""Reading and writing images: bit depths, gray/alpha, EXIF orientation, safety checks.

One concern per module: `read` (the `Image` layout, decoding with the codecs silenced, the size limit,
EXIF orientation), `headers` (container headers, parsed before decoding), `scale` (decoding at a
training scale), `write` (composing and atomically writing the output, stdout checks) and `files`
(supported extensions, finding images in a folder). Masks, read with the same decoder, live in
`inpaint_cli.masks`. All of it is numpy and cv2 only: the CLI imports torch lazily, and reading an image
should not pay for it.
The names other modules use are re-exported here.
"""

from .files import SUPPORTED_EXTENSIONS, image_files, is_image_path
from .read import DEFAULT_MAX_PIXELS, STDIO, Image, read_image
from .scale import read_rgb, scale_short_side, short_side_size
from .write import compose_output, refuse_terminal_stdout, write_atomic, write_image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "STDIO",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "compose_output",
    "image_files",
    "is_image_path",
    "read_image",
    "read_rgb",
    "refuse_terminal_stdout",
    "scale_short_side",
    "short_side_size",
    "write_atomic",
    "write_image",
]

"""Batch filling: pair images with masks, plan output paths, fill each file and write it atomically.

This is the library behind `inpaint fill`; the CLI only parses arguments and reports.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .engine import Inpainter, Strategy
from .errors import InpaintError, UsageError

log = logging.getLogger("inpaint_cli")

STDIO = "-"
ALPHA = "alpha"  # --mask alpha: the image's own transparency is the hole
_EXTENSIONS = ", ".join(sorted(io.SUPPORTED_EXTENSIONS))


@dataclass(frozen=True)
class FillJob:
    image: str  # a path, or "-" for stdin
    mask: str | None  # a path, "-", ALPHA, or None: the alpha if it has transparent pixels, else an error
    output: str  # a path, or "-" for stdout


@dataclass(frozen=True)
class FillOptions:
    invert_mask: bool = False
    resize_mask: bool = False
    dilate: int = 0
    strategy: Strategy = "auto"
    seed: int | None = None
    quality: int | None = None
    max_pixels: int | None = None


@dataclass
class FillOutcome:
    job: FillJob
    seconds: float
    strategy: str
    precision: str
    hole_fraction: float
    height: int
    width: int


def _expand_images(images: list[str]) -> list[str]:
    expanded: list[str] = []
    for item in images:
        if item != STDIO and Path(item).is_dir():
            found = io.image_files(item)
            if not found:
                raise UsageError(f"{item}: no images in this directory ({_EXTENSIONS})")
            expanded.extend(str(path) for path in found)
        else:
            expanded.append(item)
    if STDIO in expanded and len(expanded) > 1:
        raise UsageError("'-' (stdin) can only be the single input image")
    return expanded


def _mask_for(image: str, mask: str | None) -> str | None:
    """A mask directory pairs by file stem (photo.jpg -> masks/photo.png or masks/photo_mask.png)."""
    if mask in (None, ALPHA, STDIO) or not Path(mask).is_dir():
        return mask
    if image == STDIO:
        raise UsageError("with an image from stdin, --mask must be a file, not a directory")
    stem = Path(image).stem
    candidates = [path for path in io.image_files(mask) if path.stem in (stem, f"{stem}_mask")]
    if not candidates:
        raise UsageError(
            f"{image}: no mask named {stem}.* or {stem}_mask.* in {mask}; add one or pass a mask file"
        )
    return str(candidates[0])


def _same_file(a: str, b: str) -> bool:
    if STDIO in (a, b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def plan_jobs(images: list[str], mask: str | None, out: str | None, *, overwrite: bool = False) -> list[FillJob]:
    """Expand directories, pair masks, and decide every output path before any work starts.

    mask: a file, a directory, "-", ALPHA, or None (each image's alpha, when it has transparent pixels).
    out: None writes `<stem>_filled.png` beside each input (stdout for stdin), refusing to replace an
    existing one unless `overwrite`; "-" is stdout (one input only); an existing directory, a path ending
    in a separator, or several inputs mean a directory receiving `<stem>.png`; anything else is the
    output file of the single input.
    """
    inputs = _expand_images(images)
    if mask == STDIO and STDIO in inputs:
        raise UsageError("the image and the mask cannot both come from stdin")
    many = len(inputs) > 1
    out_is_dir = out not in (None, STDIO) and (many or Path(out).is_dir() or out.endswith((os.sep, "/")))
    if out == STDIO and many:
        raise UsageError("--out - (stdout) takes a single input image; give a directory for several")
    if many and out is not None and not Path(out).is_dir() and io.is_image_path(out):
        raise UsageError(f"--out {out}: {len(inputs)} inputs need a directory, not a file; pass --out DIR/")
    jobs = []
    for image in inputs:
        if out is None:
            output = STDIO if image == STDIO else str(Path(image).with_name(f"{Path(image).stem}_filled.png"))
            if output != STDIO and not overwrite and Path(output).exists():
                raise UsageError(f"{output}: already exists; pass --overwrite to replace it, or --out another path")
        elif out_is_dir:
            stem = "stdin" if image == STDIO else Path(image).stem
            output = str(Path(out) / f"{stem}.png")
        else:
            output = out
            if not io.is_image_path(output) and output != STDIO:
                raise UsageError(f"--out {output}: unknown image extension; use one of {_EXTENSIONS}")
        jobs.append(FillJob(image, _mask_for(image, mask), output))
    _check_outputs(jobs)
    return jobs


def _check_outputs(jobs: list[FillJob]) -> None:
    inputs = {path for job in jobs for path in (job.image, job.mask) if path not in (None, ALPHA)}
    seen: dict[str, str] = {}
    for job in jobs:
        if job.output == STDIO:
            continue
        for source in inputs:
            if _same_file(job.output, source):
                raise UsageError(
                    f"{job.output}: this is an input file; choose another --out (inputs are never overwritten)"
                )
        key = os.path.abspath(job.output)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {job.image} would both be written to {job.output}; "
                "give the inputs distinct names"
            )
        seen[key] = job.image


def read_pair(image_path: str, mask_path: str | None, options: FillOptions) -> tuple[io.Image, np.ndarray]:
    """The image and its hole mask as the options say: polarity, resizing, dilation, size limit.
    mask_path ALPHA or None: the image's transparent pixels are the hole (FillJob.mask)."""
    image = io.read_image(image_path, max_pixels=options.max_pixels)
    if mask_path in (None, ALPHA):
        return image, io.dilate_mask(_alpha_hole(image, mask_path), options.dilate)
    mask = io.read_mask(mask_path, invert=options.invert_mask, max_pixels=options.max_pixels)
    mask = io.fit_mask(
        mask, image.height, image.width, resize=options.resize_mask, mask_name=mask_path, image_name=image_path
    )
    return image, io.dilate_mask(mask, options.dilate)


def _alpha_hole(image: io.Image, mask_path: str | None) -> np.ndarray:
    """Pixels under half opacity are the hole; said on stderr, since no mask file was read."""
    alpha = image.alpha()
    hole = np.zeros((image.height, image.width), bool) if alpha is None else alpha < np.iinfo(alpha.dtype).max / 2
    if not hole.any():
        if mask_path == ALPHA:
            raise InpaintError(f"{image.source}: --mask alpha, but the image has no transparent pixels")
        raise InpaintError(
            f"{image.source}: no --mask given, and the image has no transparent pixels to use as the hole; "
            "pass --mask MASK"
        )
    how = "--mask alpha" if mask_path == ALPHA else "no --mask given"
    log.info("%s: %s; the hole is its transparent pixels (%d), filled opaque", image.source, how, hole.sum())
    return hole


def fill_file(inpainter: Inpainter, job: FillJob, options: FillOptions) -> FillOutcome:
    """Read, fill and write one image. Nothing is written unless the whole fill succeeded."""
    image, mask = read_pair(job.image, job.mask, options)
    if not mask.any():
        log.warning(
            "%s: the mask %s has no hole pixels; the image is copied through unchanged", job.image, job.mask
        )
        io.write_image(job.output, image.pixels, quality=options.quality)
        return FillOutcome(job, 0.0, "none", "-", 0.0, image.height, image.width)
    result = inpainter.fill(image.rgb(), mask, strategy=options.strategy, seed=options.seed, source=job.image)
    pixels = io.compose_output(image, result.rgb, mask)
    if job.mask in (None, ALPHA):  # the hole was transparent: a fill nobody could see is no fill
        pixels[:, :, 3][mask] = np.iinfo(pixels.dtype).max
    io.write_image(job.output, pixels, quality=options.quality)
    return FillOutcome(
        job, result.seconds, result.strategy, result.precision, float(mask.mean()), image.height, image.width
    )

"""Planning a fill before any work: the input images (folders expanded), each one's mask (a mask folder
paired by file stem) and output path, and the overwrite rule.

The overwrite rule: a file the user named (`--out FILE`) is replaced; a name the tool derives
(`<stem>_filled.png`, `--out DIR/` -> DIR/<stem>.png) is not, unless `--overwrite`; an input (image or
mask) never is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import io
from .errors import UsageError

STDIO = io.STDIO  # "-": stdin or stdout
ALPHA = "alpha"  # --mask alpha: the image's own transparency is the hole
_EXTENSIONS = ", ".join(sorted(io.SUPPORTED_EXTENSIONS))


@dataclass(frozen=True)
class FillJob:
    image: str  # a path, or "-" for stdin
    mask: str | None  # a path, "-", ALPHA, or None: the alpha if it has transparent pixels, else an error
    output: str  # a path, or "-" for stdout
    # Why this image cannot be filled, found while planning (its mask missing from a mask folder): the
    # image fails when its turn comes, and the others are filled.
    problem: str | None = None


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


def _mask_for(image: str, mask: str | None) -> tuple[str | None, str | None]:
    """(mask, problem): a mask directory pairs by file stem (photo.jpg -> masks/photo.png or
    masks/photo_mask.png); an image without one there has a problem (it fails, the others are filled)."""
    if mask in (None, ALPHA, STDIO) or not Path(mask).is_dir():
        return mask, None
    if image == STDIO:
        raise UsageError("with an image from stdin, --mask must be a file, not a directory")
    stem = Path(image).stem
    candidates = [path for path in io.image_files(mask) if path.stem in (stem, f"{stem}_mask")]
    if not candidates:
        return None, f"{image}: no mask named {stem}.* or {stem}_mask.* in {mask}; add one or pass a mask file"
    return str(candidates[0]), None


def same_file(a: str, b: str) -> bool:
    if STDIO in (a, b):
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def plan_jobs(images: list[str], mask: str | None, out: str | None, *, overwrite: bool = False) -> list[FillJob]:
    """Expand directories, pair masks, and decide every output path before any work starts.

    mask: a file, a directory, "-", ALPHA, or None (each image's alpha, when it has transparent pixels).
    out: None writes `<stem>_filled.png` beside each input (stdout for stdin); "-" is stdout (one input
    only); an existing directory, a path ending in a separator, or several inputs mean a directory
    receiving `<stem>.png`; anything else is the output file of the single input.

    The overwrite rule: a file the user named (`--out FILE`) is replaced; a name the tool derives
    (`<stem>_filled.png`, `DIR/<stem>.png`) is not, unless `overwrite`; an input never is.
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
    derived_outputs: list[str] = []  # named by the tool, not the user: replaced only with --overwrite
    for image in inputs:
        if out is None:
            output = STDIO if image == STDIO else str(Path(image).with_name(f"{Path(image).stem}_filled.png"))
            derived = True
        elif out_is_dir:
            stem = "stdin" if image == STDIO else Path(image).stem
            output = str(Path(out) / f"{stem}.png")
            derived = True
        else:
            output = out
            derived = False
            if not io.is_image_path(output) and output != STDIO:
                raise UsageError(f"--out {output}: unknown image extension; use one of {_EXTENSIONS}")
        job_mask, problem = _mask_for(image, mask)
        jobs.append(FillJob(image, job_mask, output, problem))
        if derived and output != STDIO:
            derived_outputs.append(output)
    _check_outputs(jobs)  # inputs first: they are refused even with --overwrite
    if not overwrite:
        for output in derived_outputs:
            if Path(output).exists():
                raise UsageError(f"{output}: already exists; pass --overwrite to replace it, or --out another path")
    return jobs


def _check_outputs(jobs: list[FillJob]) -> None:
    inputs = {path for job in jobs for path in (job.image, job.mask) if path not in (None, ALPHA)}
    seen: dict[str, str] = {}
    for job in jobs:
        if job.output == STDIO:
            continue
        for source in inputs:
            if same_file(job.output, source):
                raise UsageError(
                    f"{job.output}: this is an input file; choose another --out (inputs are never overwritten)"
                )
        key = os.path.abspath(job.output)
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {job.image} would both be written to {job.output}; give the inputs distinct names"
            )
        seen[key] = job.image

"""Batch filling: pair images with masks, plan output paths, fill the files (same-size images batched,
encoding and writing overlapped with the model) and write each atomically.

This is the library behind `inpaint fill`; the CLI only parses arguments and reports.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .engine import FillResult, Inpainter, Strategy
from .errors import InpaintError, UsageError

log = logging.getLogger("inpaint_cli")

STDIO = io.STDIO  # "-": stdin or stdout
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
        raise UsageError(f"{image}: no mask named {stem}.* or {stem}_mask.* in {mask}; add one or pass a mask file")
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
                f"{seen[key]} and {job.image} would both be written to {job.output}; give the inputs distinct names"
            )
        seen[key] = job.image


def read_pair(image_path: str, mask_path: str | None, options: FillOptions) -> tuple[io.Image, np.ndarray]:
    """The image and its hole mask as the options say: polarity, resizing, dilation, size limit.
    mask_path ALPHA or None: the image's transparent pixels are the hole (FillJob.mask)."""
    image = io.read_image(image_path, max_pixels=options.max_pixels)
    if mask_path in (None, ALPHA):
        return image, io.dilate_mask(_alpha_hole(image, mask_path), options.dilate)
    return image, MaskCache(options).get(mask_path, image.height, image.width, image_path)


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


class MaskCache:
    """Masks as the options say, each decoded, fitted and dilated once per (file, image size): one mask
    file given for a folder of images is read once, not once per image. Not thread-safe; the folder
    pipeline reads on its calling thread."""

    def __init__(self, options: FillOptions) -> None:
        self.options = options
        self._masks: dict[tuple[str, int, int], np.ndarray] = {}
        self._decoded: dict[str, np.ndarray] = {}

    def get(self, mask_path: str, height: int, width: int, image_name: str) -> np.ndarray:
        key = (mask_path, height, width)
        if key in self._masks:
            return self._masks[key]
        options = self.options
        decoded = self._decoded.get(mask_path)
        if decoded is None:
            decoded = io.read_mask(mask_path, invert=options.invert_mask, max_pixels=options.max_pixels)
        fitted = io.fit_mask(
            decoded, height, width, resize=options.resize_mask, mask_name=mask_path, image_name=image_name
        )
        mask = io.dilate_mask(fitted, options.dilate)
        if mask_path != STDIO:  # stdin is read once anyway; a file may serve many images
            self._decoded[mask_path] = decoded
            self._masks[key] = mask
        return mask


@dataclass
class _Loaded:
    job: FillJob
    image: io.Image | None = None
    mask: np.ndarray | None = None
    error: InpaintError | None = None


def _engine_pixels(image: io.Image) -> np.ndarray:
    """What the engine fills: a colour image's RGB planes in their own dtype (a view, no float32 copy of a
    large photo: the engine converts window by window), a gray one as float RGB (its fill is turned
    into luma before quantising, so it must not be quantised per channel first)."""
    return image.rgb() if image.is_gray else image.pixels[:, :, :3]


def _load(job: FillJob, masks: MaskCache) -> _Loaded:
    try:
        image = io.read_image(job.image, max_pixels=masks.options.max_pixels)
        if job.mask in (None, ALPHA):  # the image's own transparent pixels, different for each image
            return _Loaded(job, image, io.dilate_mask(_alpha_hole(image, job.mask), masks.options.dilate))
        return _Loaded(job, image, masks.get(job.mask, image.height, image.width, job.image))
    except InpaintError as error:
        return _Loaded(job, error=error)


def fill_files(
    inpainter: Inpainter, jobs: list[FillJob], options: FillOptions
) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
    """Read, fill and write every job; yields (job, outcome or error) in job order as each completes.

    Same-size images the engine fills whole are batched into one model call (`Inpainter.fill_batch`,
    up to `inpainter.batch_pixels` per call). Images are decoded here, one at a time; a writer thread
    encodes and writes finished ones while the model runs. Nothing is written unless an image's whole fill
    succeeded, and each file appears complete or not at all."""
    masks = MaskCache(options)
    writer = ThreadPoolExecutor(1, thread_name_prefix="inpaint-write")
    # (job, pending write or None, outcome or error), in job order
    results: deque[tuple[FillJob, Future | None, FillOutcome | InpaintError]] = deque()
    group: list[_Loaded] = []

    def flush_group() -> None:
        if not group:
            return
        try:
            filled = inpainter.fill_batch(
                [_engine_pixels(loaded.image) for loaded in group],  # type: ignore[arg-type]
                [loaded.mask for loaded in group],  # type: ignore[misc]
                seed=options.seed,
            )
        except InpaintError:  # find out which image it was, and fill the others
            for loaded in group:
                fill_one(loaded)
        else:
            for loaded, result in zip(group, filled, strict=True):
                write(loaded, result)
        group.clear()

    def fill_one(loaded: _Loaded) -> None:
        image, mask = loaded.image, loaded.mask
        assert image is not None and mask is not None
        try:
            result = inpainter.fill(
                _engine_pixels(image), mask, strategy=options.strategy, seed=options.seed, source=loaded.job.image
            )
        except InpaintError as error:
            results.append((loaded.job, None, error))
        else:
            write(loaded, result)

    def write(loaded: _Loaded, result: FillResult | None) -> None:
        image, mask, job = loaded.image, loaded.mask, loaded.job
        assert image is not None and mask is not None
        if result is None:  # no holes: copied through
            pixels = image.pixels
            outcome = FillOutcome(job, 0.0, "none", "-", 0.0, image.height, image.width)
        else:
            pixels = io.compose_output(image, result.rgb, mask)
            if job.mask in (None, ALPHA):  # the hole was transparent: a fill nobody could see is no fill
                pixels[:, :, 3][mask] = np.iinfo(pixels.dtype).max
            outcome = FillOutcome(
                job, result.seconds, result.strategy, result.precision, float(mask.mean()), image.height, image.width
            )
        results.append((job, writer.submit(io.write_image, job.output, pixels, quality=options.quality), outcome))

    def finished(wait: bool) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
        while results and (wait or results[0][1] is None or results[0][1].done()):
            job, pending, outcome = results.popleft()
            if pending is not None:
                try:
                    pending.result()
                except InpaintError as error:
                    outcome = error
            yield job, outcome

    # Decoding stays on this thread: the codecs are silenced by pointing the process's stderr at /dev/null
    # for each decode (io), which would swallow this thread's own log lines if a reader thread did it.
    try:
        for job in jobs:
            loaded = _load(job, masks)
            image, mask = loaded.image, loaded.mask
            batchable = (
                image is not None
                and mask is not None
                and mask.any()
                and not mask.all()
                and inpainter.batches(image.height, image.width, options.strategy)
            )
            if group and (not batchable or group[0].mask.shape != mask.shape):  # type: ignore[union-attr]
                flush_group()
            if loaded.error is not None:
                results.append((loaded.job, None, loaded.error))
            elif batchable:
                group.append(loaded)
                if len(group) >= max(1, inpainter.batch_pixels // mask.size):  # type: ignore[union-attr]
                    flush_group()
            elif not mask.any():  # type: ignore[union-attr]
                log.warning(
                    "%s: the mask %s has no hole pixels; the image is copied through unchanged",
                    loaded.job.image,
                    loaded.job.mask,
                )
                write(loaded, None)
            else:
                fill_one(loaded)
            yield from finished(wait=False)
        flush_group()
        yield from finished(wait=True)
    finally:
        writer.shutdown(wait=True)

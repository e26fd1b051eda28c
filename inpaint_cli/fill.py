"""Batch filling: the holes of each image (mask file or folder, alpha, --box, --mask-color, --dilate),
then the files filled (same-size images batched, encoding and writing overlapped with the model) and
each written atomically. Planning the jobs and their outputs is `fill_plan`'s.

This is the library behind `inpaint fill`; the CLI only parses arguments and reports.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import io, masks
from .engine import FillResult, Inpainter, Strategy
from .errors import InpaintError
from .fill_plan import ALPHA, STDIO, FillJob, plan_jobs

__all__ = [
    "ALPHA",
    "STDIO",
    "FillJob",
    "FillOptions",
    "FillOutcome",
    "FolderFill",
    "MaskCache",
    "failure_summary",
    "fill_files",
    "hole_mask",
    "plan_jobs",
    "read_pair",
]

log = logging.getLogger("inpaint_cli")


@dataclass(frozen=True)
class FillOptions:
    invert_mask: bool = False
    resize_mask: bool = False
    dilate: int = 0
    strategy: Strategy = "auto"
    seed: int | None = None
    quality: int | None = None
    max_pixels: int | None = None
    boxes: tuple[masks.Box, ...] = ()  # --box: holes (x, y, w, h), united with the mask's
    mask_colour: tuple[int, int, int] | None = None  # --mask-color: pixels of this 8-bit RGB are holes
    colour_tolerance: int = 0  # --color-tolerance: per channel, on the 0-255 scale

    @property
    def has_extra_holes(self) -> bool:
        """Holes given on the command line besides (or instead of) a mask."""
        return bool(self.boxes) or self.mask_colour is not None


@dataclass
class FillOutcome:
    job: FillJob
    fill_seconds: float  # the model's time; an image batched with others has its share of the call
    strategy: str
    precision: str
    hole_fraction: float
    height: int
    width: int
    read_seconds: float = 0.0  # decoding the image (and its mask)
    write_seconds: float = 0.0  # compositing, encoding and writing the output
    batched: int = 1  # images filled in the same model call
    window_sizes: tuple[tuple[int, int], ...] = ()  # (height, width) of each model call (crop windows)

    @property
    def seconds(self) -> float:
        """This image's own time: its read, its fill (its share of a batched call), its write."""
        return self.read_seconds + self.fill_seconds + self.write_seconds


def read_pair(image_path: str, mask_path: str | None, options: FillOptions) -> tuple[io.Image, np.ndarray]:
    """The image and its hole mask as the options say: polarity, resizing, boxes and paint colour,
    dilation, size limit. mask_path ALPHA, or None without boxes or colour: the image's transparent
    pixels are the hole (FillJob.mask)."""
    image = io.read_image(image_path, max_pixels=options.max_pixels)
    return image, hole_mask(image, image_path, mask_path, options, MaskCache(options))


def hole_mask(
    image: io.Image, image_name: str, mask_path: str | None, options: FillOptions, cache: MaskCache
) -> np.ndarray:
    """The union of every hole the options give for this image (the mask file or alpha, `--box`,
    `--mask-color`), grown by `--dilate`."""
    if not options.has_extra_holes:
        if mask_path in (None, ALPHA):
            return masks.dilate_mask(_alpha_hole(image, mask_path), options.dilate)
        return cache.get(mask_path, image.height, image.width, image_name)  # cached, dilated once
    hole = np.zeros((image.height, image.width), bool)
    if mask_path == ALPHA:
        hole |= _alpha_hole(image, mask_path)
    elif mask_path is not None:
        hole |= cache.fitted(mask_path, image.height, image.width, image_name)
    if options.boxes:
        hole |= masks.box_hole(options.boxes, image.height, image.width, image_name)
    if options.mask_colour is not None:
        painted = masks.colour_hole(image.pixels, options.mask_colour, options.colour_tolerance)
        log.info("%s: %d pixels of the --mask-color are holes", image_name, int(painted.sum()))
        hole |= painted
    return masks.dilate_mask(hole, options.dilate)


def _alpha_hole(image: io.Image, mask_path: str | None) -> np.ndarray:
    """Pixels under half opacity are the hole; said on stderr, since no mask file was read."""
    alpha = image.alpha()
    hole = np.zeros((image.height, image.width), bool) if alpha is None else alpha < np.iinfo(alpha.dtype).max / 2
    if not hole.any():
        if mask_path == ALPHA:
            raise InpaintError(f"{image.source}: --mask alpha, but the image has no transparent pixels")
        raise InpaintError(
            f"{image.source}: no --mask given, and the image has no transparent pixels to use as the hole; "
            "pass --mask MASK, --box X,Y,W,H or --mask-color COLOUR"
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
        self._fitted: dict[tuple[str, int, int], np.ndarray] = {}
        self._decoded: dict[str, np.ndarray] = {}

    def fitted(self, mask_path: str, height: int, width: int, image_name: str) -> np.ndarray:
        """The mask file's holes at (height, width), before dilation."""
        key = (mask_path, height, width)
        if key in self._fitted:
            return self._fitted[key]
        options = self.options
        decoded = self._decoded.get(mask_path)
        if decoded is None:
            decoded = masks.read_mask(mask_path, invert=options.invert_mask, max_pixels=options.max_pixels)
        fitted = masks.fit_mask(
            decoded, height, width, resize=options.resize_mask, mask_name=mask_path, image_name=image_name
        )
        if mask_path != STDIO:  # stdin is read once anyway; a file may serve many images
            self._decoded[mask_path] = decoded
            self._fitted[key] = fitted
        return fitted

    def get(self, mask_path: str, height: int, width: int, image_name: str) -> np.ndarray:
        """The mask file's holes at (height, width), dilated as the options say."""
        key = (mask_path, height, width)
        if key in self._masks:
            return self._masks[key]
        mask = masks.dilate_mask(self.fitted(mask_path, height, width, image_name), self.options.dilate)
        if mask_path != STDIO:
            self._masks[key] = mask
        return mask


def _engine_pixels(image: io.Image) -> np.ndarray:
    """What the engine fills: a colour image's RGB planes in their own dtype (a view, no float32 copy of a
    large photo: the engine converts window by window), a gray one as float RGB (its fill is turned
    into luma before quantising, so it must not be quantised per channel first)."""
    return image.rgb() if image.is_gray else image.pixels[:, :, :3]


def _timed_write(path: str, pixels: np.ndarray, quality: int | None) -> float:
    start = time.perf_counter()
    io.write_image(path, pixels, quality=quality)
    return time.perf_counter() - start


def failure_summary(failed: int, total: int) -> str | None:
    """The closing line of a fill of several images where some failed (None for a single image: its own
    error said it all), e.g. "2 of 5 images failed; the other 3 were written"."""
    if total < 2 or failed == 0:
        return None
    head = f"{failed} of {total} images failed"
    written = total - failed
    if written == 0:
        return f"{head}; none was written"
    if written == 1:
        return f"{head}; the other was written"
    return f"{head}; the other {written} were written"


def fill_files(inpainter: Inpainter, jobs: list[FillJob], options: FillOptions) -> FolderFill:
    """Read, fill and write every job; iterating the result yields (job, outcome or error) in job order
    as each completes. See `FolderFill`."""
    return FolderFill(inpainter, jobs, options)


@dataclass
class _ReadJob:
    """A job whose image and hole mask were read."""

    job: FillJob
    image: io.Image
    mask: np.ndarray
    read_seconds: float


@dataclass
class _Done:
    """A job the pipeline is through with, waiting to be yielded in job order: its outcome and the write of
    its file (None: nothing to write), or its error."""

    job: FillJob
    outcome: FillOutcome | InpaintError
    write: Future[float] | None = None


class FolderFill:
    """The fill of a list of jobs. Iterate it once for (job, outcome or error) in job order.

    Each job goes through four steps: `_read` decodes its image and mask (here, one at a time), `_batch`
    collects same-size images the engine fills whole (up to `inpainter.batch_pixels` per model call,
    `Inpainter.fill_batch`), `_fill_batch` / `_fill_one` run the model, and `_write` hands the result to
    a writer thread, which encodes and writes it while the model runs on. Nothing is written unless an
    image's whole fill succeeded, and each file appears complete or not at all.

    After an interruption (Ctrl-C while iterating), `stop` cancels the writes not yet started, waits for
    the one in progress and returns the outcomes of the files written but not yet yielded, so a caller
    can report every file that exists."""

    def __init__(self, inpainter: Inpainter, jobs: list[FillJob], options: FillOptions) -> None:
        self.inpainter = inpainter
        self.jobs = jobs
        self.options = options
        self._cache = MaskCache(options)
        self._batched: list[_ReadJob] = []  # read, same size, waiting for one model call
        self._done: deque[_Done] = deque()  # in job order, not yet yielded
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="inpaint-write")  # its thread starts at the first write
        self._steps: Generator[tuple[FillJob, FillOutcome | InpaintError], None, None] | None = None

    def __iter__(self) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
        if self._steps is None:
            self._steps = self._run()
        return self._steps

    def stop(self) -> list[tuple[FillJob, FillOutcome]]:
        """Stop the fill (the rest is not filled) and return the (job, outcome) of every file written but
        not yet yielded, in job order."""
        if self._steps is not None:
            self._steps.close()
        self._writer.shutdown(wait=True, cancel_futures=True)
        written = []
        for done in self._done:
            write, outcome = done.write, done.outcome
            if write is None or write.cancelled() or write.exception() is not None:
                continue
            assert isinstance(outcome, FillOutcome)  # only an outcome has a write
            outcome.write_seconds += write.result()
            written.append((done.job, outcome))
        self._done.clear()
        return written

    def _run(self) -> Generator[tuple[FillJob, FillOutcome | InpaintError], None, None]:
        # Decoding stays on this thread: the codecs are silenced by pointing the process's stderr at /dev/null
        # for each decode (io), which would swallow this thread's own log lines if a reader thread did it.
        try:
            for job in self.jobs:
                try:
                    read = self._read(job)
                except InpaintError as error:
                    self._fill_batch()  # the jobs before this one are reported first
                    self._done.append(_Done(job, error))
                else:
                    self._batch(read)
                yield from self._finished(wait=False)
            self._fill_batch()
            yield from self._finished(wait=True)
        finally:
            # Normally every write is done by now; after an error or an interrupt, the queued ones are
            # cancelled and the one in progress finishes (a file is complete or absent).
            self._writer.shutdown(wait=True, cancel_futures=True)

    # -- the steps, in order ------------------------------------------------------------------------------

    def _read(self, job: FillJob) -> _ReadJob:
        """Step 1: the job's image and its hole mask (a mask file given for many images is read once)."""
        start = time.perf_counter()
        if job.problem is not None:
            raise InpaintError(job.problem)
        image = io.read_image(job.image, max_pixels=self.options.max_pixels)
        mask = hole_mask(image, job.image, job.mask, self.options, self._cache)
        return _ReadJob(job, image, mask, time.perf_counter() - start)

    def _batch(self, read: _ReadJob) -> None:
        """Step 2: an image the engine fills whole joins the batch of its size (a full batch, or one of
        another size, is filled first); any other is filled alone, or copied through if it has no hole."""
        mask, image = read.mask, read.image
        batchable = (
            mask.any() and not mask.all() and self.inpainter.batches(image.height, image.width, self.options.strategy)
        )
        if self._batched and (not batchable or self._batched[0].mask.shape != mask.shape):
            self._fill_batch()
        if batchable:
            self._batched.append(read)
            if len(self._batched) >= max(1, self.inpainter.batch_pixels // mask.size):
                self._fill_batch()
        elif not mask.any():
            log.warning(
                "%s: the mask %s has no hole pixels; the image is copied through unchanged",
                read.job.image,
                read.job.mask or "given",
            )
            self._write(read, None)
        else:
            self._fill_one(read)

    def _fill_batch(self) -> None:
        """Step 3: one model call for the batch. If it fails, each image is filled alone, so the error is
        reported for the image that caused it and the others are still written."""
        batch, self._batched = self._batched, []
        if not batch:
            return
        try:
            filled = self.inpainter.fill_batch(
                [_engine_pixels(read.image) for read in batch], [read.mask for read in batch], seed=self.options.seed
            )
        except InpaintError:
            for read in batch:
                self._fill_one(read)
        else:
            for read, result in zip(batch, filled, strict=True):
                self._write(read, result, batched=len(batch))

    def _fill_one(self, read: _ReadJob) -> None:
        """Step 3 for an image filled on its own (crop windows, a resize, or a batch that failed)."""
        options = self.options
        try:
            result = self.inpainter.fill(
                _engine_pixels(read.image),
                read.mask,
                strategy=options.strategy,
                seed=options.seed,
                source=read.job.image,
            )
        except InpaintError as error:
            self._done.append(_Done(read.job, error))
        else:
            self._write(read, result)

    def _write(self, read: _ReadJob, result: FillResult | None, batched: int = 1) -> None:
        """Step 4: the output composed here (result None: no hole, the image copied through) and queued for
        the writer thread."""
        image, mask, job = read.image, read.mask, read.job
        start = time.perf_counter()
        if result is None:
            pixels = image.pixels
            outcome = FillOutcome(job, 0.0, "none", "-", 0.0, image.height, image.width)
        else:
            pixels = io.compose_output(image, result.rgb, mask)
            if job.mask == ALPHA or (job.mask is None and not self.options.has_extra_holes):
                # the hole was transparent: a fill nobody could see is no fill
                pixels[:, :, 3][mask] = np.iinfo(pixels.dtype).max
            outcome = FillOutcome(
                job,
                result.seconds,
                result.strategy,
                result.precision,
                float(mask.mean()),
                image.height,
                image.width,
                batched=batched,
                window_sizes=result.window_sizes,
            )
        outcome.read_seconds = read.read_seconds
        outcome.write_seconds = time.perf_counter() - start  # compositing; the writer adds its time
        write = self._writer.submit(_timed_write, job.output, pixels, self.options.quality)
        self._done.append(_Done(job, outcome, write))

    def _finished(self, wait: bool) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
        """The jobs done, in job order, up to the first whose file is still being written (all, if `wait`)."""
        while self._done and (wait or self._done[0].write is None or self._done[0].write.done()):
            done = self._done[0]
            outcome = done.outcome
            if done.write is not None and isinstance(outcome, FillOutcome):
                try:
                    outcome.write_seconds += done.write.result()
                except InpaintError as error:
                    outcome = error
            self._done.popleft()  # after the write's result: an interrupt while waiting leaves it to `stop`
            if isinstance(outcome, FillOutcome):
                _log_outcome(outcome)
            yield done.job, outcome


def _log_outcome(outcome: FillOutcome) -> None:
    """With -v: what happened to one image, stage by stage."""
    sizes = ", ".join(f"{w}x{h}" for h, w in outcome.window_sizes)
    windows = f"{len(outcome.window_sizes)} window(s) {sizes}" if outcome.window_sizes else "no model call"
    batched = f" (batched with {outcome.batched - 1} other image(s), its share)" if outcome.batched > 1 else ""
    log.debug(
        "%s -> %s: %dx%d, strategy %s, %s, precision %s; read %.3f s, fill %.3f s%s, write %.3f s",
        outcome.job.image,
        outcome.job.output,
        outcome.width,
        outcome.height,
        outcome.strategy,
        windows,
        outcome.precision,
        outcome.read_seconds,
        outcome.fill_seconds,
        batched,
        outcome.write_seconds,
    )

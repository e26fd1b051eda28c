"""Batch filling: the holes of each image (mask file or folder, alpha, --box, --mask-color, --dilate),
then the files filled (same-size images batched, encoding and writing overlapped with the model) and
each written atomically. Planning the jobs and their outputs is `fill_plan`'s.

This is the library behind `inpaint fill`; the CLI only parses arguments and reports.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from . import io
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
    boxes: tuple[io.Box, ...] = ()  # --box: holes (x, y, w, h), united with the mask's
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
    image: io.Image, image_name: str, mask_path: str | None, options: FillOptions, masks: MaskCache
) -> np.ndarray:
    """The union of every hole the options give for this image (the mask file or alpha, `--box`,
    `--mask-color`), grown by `--dilate`."""
    if not options.has_extra_holes:
        if mask_path in (None, ALPHA):
            return io.dilate_mask(_alpha_hole(image, mask_path), options.dilate)
        return masks.get(mask_path, image.height, image.width, image_name)  # cached, dilated once
    hole = np.zeros((image.height, image.width), bool)
    if mask_path == ALPHA:
        hole |= _alpha_hole(image, mask_path)
    elif mask_path is not None:
        hole |= masks.fitted(mask_path, image.height, image.width, image_name)
    if options.boxes:
        hole |= io.box_hole(options.boxes, image.height, image.width, image_name)
    if options.mask_colour is not None:
        painted = io.colour_hole(image.pixels, options.mask_colour, options.colour_tolerance)
        log.info("%s: %d pixels of the --mask-color are holes", image_name, int(painted.sum()))
        hole |= painted
    return io.dilate_mask(hole, options.dilate)


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
            decoded = io.read_mask(mask_path, invert=options.invert_mask, max_pixels=options.max_pixels)
        fitted = io.fit_mask(
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
        mask = io.dilate_mask(self.fitted(mask_path, height, width, image_name), self.options.dilate)
        if mask_path != STDIO:
            self._masks[key] = mask
        return mask


@dataclass
class _Loaded:
    job: FillJob
    image: io.Image | None = None
    mask: np.ndarray | None = None
    error: InpaintError | None = None
    read_seconds: float = 0.0


def _engine_pixels(image: io.Image) -> np.ndarray:
    """What the engine fills: a colour image's RGB planes in their own dtype (a view, no float32 copy of a
    large photo: the engine converts window by window), a gray one as float RGB (its fill is turned
    into luma before quantising, so it must not be quantised per channel first)."""
    return image.rgb() if image.is_gray else image.pixels[:, :, :3]


def _load(job: FillJob, masks: MaskCache) -> _Loaded:
    start = time.perf_counter()
    try:
        if job.problem is not None:
            raise InpaintError(job.problem)
        image = io.read_image(job.image, max_pixels=masks.options.max_pixels)
        mask = hole_mask(image, job.image, job.mask, masks.options, masks)
        return _Loaded(job, image, mask, read_seconds=time.perf_counter() - start)
    except InpaintError as error:
        return _Loaded(job, error=error)


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
class FolderFill:
    """The fill of a list of jobs. Iterate it once for (job, outcome or error) in job order.

    Same-size images the engine fills whole are batched into one model call (`Inpainter.fill_batch`,
    up to `inpainter.batch_pixels` per call). Images are decoded here, one at a time; a writer thread
    encodes and writes finished ones while the model runs. Nothing is written unless an image's whole fill
    succeeded, and each file appears complete or not at all.

    After an interruption (Ctrl-C while iterating), `stop` cancels the writes not yet started, waits for
    the one in progress and returns the outcomes of the files written but not yet yielded, so a caller
    can report every file that exists."""

    inpainter: Inpainter
    jobs: list[FillJob]
    options: FillOptions
    # (job, pending write or None, outcome or error), in job order, not yet yielded
    _results: deque = field(default_factory=deque, init=False)
    _writer: ThreadPoolExecutor | None = field(default=None, init=False)
    _iterator: Iterator | None = field(default=None, init=False)

    def __iter__(self) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
        if self._iterator is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="inpaint-write")
            self._iterator = self._run(self._writer)
        return self._iterator

    def stop(self) -> list[tuple[FillJob, FillOutcome]]:
        """Stop the fill (the rest is not filled) and return the (job, outcome) of every file written but
        not yet yielded, in job order."""
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]
        if self._writer is not None:
            self._writer.shutdown(wait=True, cancel_futures=True)
        written = []
        for job, pending, outcome in self._results:
            if pending is None or pending.cancelled() or pending.exception() is not None:
                continue
            outcome.write_seconds += pending.result()
            written.append((job, outcome))
        self._results.clear()
        return written

    def _run(self, writer: ThreadPoolExecutor) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
        inpainter, options, results = self.inpainter, self.options, self._results
        masks = MaskCache(options)
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
                    write(loaded, result, batched=len(group))
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

        def write(loaded: _Loaded, result: FillResult | None, batched: int = 1) -> None:
            image, mask, job = loaded.image, loaded.mask, loaded.job
            assert image is not None and mask is not None
            start = time.perf_counter()
            if result is None:  # no holes: copied through
                pixels = image.pixels
                outcome = FillOutcome(job, 0.0, "none", "-", 0.0, image.height, image.width)
            else:
                pixels = io.compose_output(image, result.rgb, mask)
                if job.mask == ALPHA or (job.mask is None and not options.has_extra_holes):
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
            outcome.read_seconds = loaded.read_seconds
            outcome.write_seconds = time.perf_counter() - start  # compositing; the writer adds its time
            results.append((job, writer.submit(_timed_write, job.output, pixels, options.quality), outcome))

        def finished(wait: bool) -> Iterator[tuple[FillJob, FillOutcome | InpaintError]]:
            while results and (wait or results[0][1] is None or results[0][1].done()):
                job, pending, outcome = results[0]
                if pending is not None:
                    try:
                        outcome.write_seconds += pending.result()
                    except InpaintError as error:
                        outcome = error
                results.popleft()
                if isinstance(outcome, FillOutcome):
                    _log_outcome(outcome)
                yield job, outcome

        # Decoding stays on this thread: the codecs are silenced by pointing the process's stderr at /dev/null
        # for each decode (io), which would swallow this thread's own log lines if a reader thread did it.
        try:
            for job in self.jobs:
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
                        loaded.job.mask or "given",
                    )
                    write(loaded, None)
                else:
                    fill_one(loaded)
                yield from finished(wait=False)
            flush_group()
            yield from finished(wait=True)
        finally:
            # Normally every write is done by now; after an error or an interrupt, the queued ones are
            # cancelled and the one in progress finishes (a file is complete or absent).
            writer.shutdown(wait=True, cancel_futures=True)


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

"""Training data: which files train and which are held out, a folder of images, random crops and flips,
per-sample masks, and a fixed val set.

Determinism (what makes `--resume` exact and DDP sharding free of coordination): nothing here keeps an
iterator or a random state between batches. Sample `i` of the batch of step `s` on rank `r` is a pure
function of (seed, s, r, i):

- Which image: the samples of all ranks form one global sequence, g = (s·world + r)·batch + i, read
  through a permutation of the training files drawn from (seed, epoch) with epoch = g // n_files. So each
  epoch visits every image once, ranks never share an image within an epoch (the sharding), and resuming
  at step s picks up exactly where the sequence was.
- Everything else (crop position, flip, mask) comes from `np.random.default_rng([seed, s, r, i])`.
- With `balance` (`--balance`), the global sequence deals its samples to the top-level folders of the data
  in turn (sample g goes to folder g mod k) and each folder reads its own files through its own
  permutation per epoch, so a folder of 58 photographs is drawn as often as one of 433 textures.
- With `synthetic` = p (`--synthetic`), a share p of the samples (drawn from the sample's stream) is a
  smooth synthetic image instead: a flat colour or a linear gradient between two colours, 8-bit
  quantised (`synthetic_image`). Photographs are full of such regions (sky, walls, skin), and a generator
  that has seen only textures tints them.

The "mask sampler state" of a resumed run therefore needs no saving. The one exception is a sampler that
caches something on first use (the Context Encoder draws a large random pattern once):
`make_mask_sampler` calls it once with a fixed seed before training, so that cache is the same however
the run was started. Masks that come out with no hole or with nothing known are redrawn from the same
stream (brush strokes at a tiny crop size can cover it all).

Unreadable files are skipped, each with one warning (logger "inpaint_cli"), and counted
(`ImageFolder.unreadable_count`); the sample falls through to the next file of the permutation, which is
again deterministic.

Decoding: each file is decoded at most once per process while it fits the cache. Images are cached as
uint8/uint16 (the format they were stored in) up to `cache_bytes`, already scaled to `short_side` when
that is given; beyond that they are decoded again each time they are drawn (once per draw: the
readability check and the crop share the decode). With `short_side`, a JPEG much larger than it is
decoded at 1/2, 1/4 or 1/8 size by libjpeg's DCT scaling (the largest factor that still leaves the short
side at least `short_side`, so the area resize after it only shrinks), which is far cheaper than a full
decode; EXIF orientation and the size limit are applied as `io.read_image` applies them. Other formats
and smaller JPEGs take the full decode.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InpaintError, UsageError
from ..io import SUPPORTED_EXTENSIONS, read_rgb, scale_short_side
from ..masks import shapes as mask_generators

log = logging.getLogger("inpaint_cli")

MASK_KINDS: tuple[str, ...] = ("paper", "freeform", "box", "mixed")
TEST_LIST = "test.txt"  # in --data: the held-out test images, never trained on nor used to select a checkpoint
DEFAULT_CACHE_BYTES = 2 * 1024**3  # per process
# Tags that keep the seed streams of different purposes apart (mixed into the seed tuples).
_EPOCH_STREAM = 0x45504F43
_WARMUP_STREAM = 0x5741524D
VAL_MASK_SEED = 20240607  # fixed, so every run (whatever its --seed) is scored on the same val holes
_MAX_MASK_DRAWS = 20
MaskSampler = Callable[[int, int, np.random.Generator], np.ndarray]


# ------------------------------------------------------------------------------------------- files


def find_images(root: str | os.PathLike[str], *, exclude: Iterable[Path] = ()) -> list[Path]:
    """Image files under `root`, recursively, sorted by relative path; hidden files/folders skipped.

    exclude: files to leave out (compared by resolved path), e.g. the validation images."""
    folder = Path(root)
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise InpaintError(f"{folder} {what}; pass a folder of images to --data")
    excluded = {p.resolve() for p in exclude}
    found = []
    for directory, subdirs, names in os.walk(folder, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            path = Path(directory) / name
            if name.startswith(".") or path.suffix.lower() not in SUPPORTED_EXTENSIONS:
                continue
            if path.resolve() not in excluded:
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_val_list(list_file: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> list[Path]:
    """The files named in `list_file` (one per line, relative to `data_dir`; blank lines and # comments
    ignored). Every one must exist."""
    list_path, data_path = Path(list_file), Path(data_dir)
    try:
        lines = list_path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InpaintError(f"cannot read the val list {list_path}: {e.strerror}; check --val-list") from None
    files = []
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        path = data_path / name
        if not path.is_file():
            raise InpaintError(
                f"{list_path}:{number}: {name} is not a file in {data_path}; names are relative to --data"
            )
        files.append(path)
    if not files:
        raise InpaintError(f"{list_path} names no files; list validation images relative to --data")
    return files


def split_files(
    data_dir: str | os.PathLike[str], *, val: str | None = None, val_list: str | None = None
) -> tuple[list[Path], list[Path], list[Path]]:
    """(training, validation, held-out test) files of a run on `data_dir` with --val or --val-list.

    Nothing held out is trained on: the validation images (a --val folder may sit inside --data) and the
    held-out test images named by DATA/test.txt, which `inpaint benchmark` scores and nothing may select on."""
    data_path = Path(data_dir)
    val_files: list[Path] = []
    if val_list:
        val_files = read_val_list(val_list, data_path)
    elif val:
        val_files = find_images(val)
        if not val_files:
            raise InpaintError(f"{val} holds no images; pass a folder of validation images to --val")
    test_files = read_val_list(data_path / TEST_LIST, data_path) if (data_path / TEST_LIST).is_file() else []
    train_files = find_images(data_path, exclude=[*val_files, *test_files])
    if not train_files:
        raise InpaintError(
            f"{data_path} holds no training images (jpg, png, webp, bmp, tif; searched recursively) once the "
            f"held-out files (validation, {TEST_LIST}) are left out; check --data"
        )
    return train_files, val_files, test_files


# ------------------------------------------------------------------------------------------ images


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8/uint16 (or float) pixels → float32 in [0, 1]."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / np.float32(255.0)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / np.float32(65535.0)
    return np.clip(pixels.astype(np.float32), 0.0, 1.0)


def fit_short_side(pixels: np.ndarray, size: int) -> np.ndarray:
    """Scale up (bicubic) so the shorter side is at least `size`; larger images are left alone."""
    return pixels if min(pixels.shape[:2]) >= size else scale_short_side(pixels, size)


class ImageFolder:
    """Decoded images by index, cached in memory, with unreadable files skipped and counted.

    short_side: if given, every image is first resized so its shorter side has this many pixels (and
    cached at that size)."""

    def __init__(
        self, files: Sequence[Path], *, cache_bytes: int = DEFAULT_CACHE_BYTES, short_side: int | None = None
    ) -> None:
        self.files = list(files)
        self.cache_bytes = cache_bytes
        self.short_side = short_side
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0
        self._unreadable: set[int] = set()
        # Decodes in progress: a loader thread drawing the same image waits for it instead of decoding again.
        self._loading: dict[int, Future[np.ndarray | None]] = {}
        self._lock = threading.Lock()  # loader threads share the cache, the unreadable set and _loading

    def __len__(self) -> int:
        return len(self.files)

    @property
    def unreadable_count(self) -> int:
        return len(self._unreadable)

    def load(self, index: int) -> np.ndarray | None:
        """(H, W, 3) uint8/uint16 RGB (scaled to `short_side`), or None (with a warning the first time) if
        the file cannot be read. Decodes the file unless it is cached (or being decoded by another thread)."""
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                return cached
            if index in self._unreadable:
                return None
            pending = self._loading.get(index)
            if pending is None:
                mine: Future[np.ndarray | None] = Future()
                self._loading[index] = mine
        if pending is not None:
            return pending.result()
        try:
            pixels = self._decode(index)
            mine.set_result(pixels)
        except BaseException as e:
            mine.set_exception(e)  # waiting threads see the same failure
            raise
        finally:
            with self._lock:
                self._loading.pop(index, None)
        return pixels

    def _decode(self, index: int) -> np.ndarray | None:
        try:
            pixels = read_rgb(self.files[index], short_side=self.short_side)
        except InpaintError as e:
            with self._lock:
                self._unreadable.add(index)
            log.warning("skipping unreadable training image: %s", e.message)
            return None
        with self._lock:
            if self._cached_bytes + pixels.nbytes <= self.cache_bytes:
                self._cache[index] = pixels
                self._cached_bytes += pixels.nbytes
        return pixels

    def sample_images(self, count: int) -> list[np.ndarray]:
        """Up to `count` readable images as float32 RGB in [0, 1], evenly spread over the file list
        (for `TrainingRecipe.prepare`)."""
        if not self.files:
            return []
        picks = np.unique(np.linspace(0, len(self.files) - 1, num=min(count, len(self.files))).round().astype(int))
        images = [self.load(int(i)) for i in picks]
        return [to_float(p) for p in images if p is not None]


# ------------------------------------------------------------------------------------------- masks


def make_mask_sampler(kind: str, recipe: Any = None, *, warmup_seed: int = 0) -> MaskSampler:
    """A function (height, width, rng) → bool (H, W) mask, True = hole, for `--masks KIND`.

    paper: `recipe.paper_mask` (the hole the model's paper trains with), called once here
    with a fixed-seed rng so recipes that cache a pattern on first use build it deterministically.
    freeform: DeepFill v2 brush strokes. box: DeepFill's random box. mixed: strokes ∪ box.
    """
    if kind == "paper":
        if recipe is None:
            raise UsageError("--masks paper needs the model's recipe; pass --masks freeform, box or mixed")
        sampler: MaskSampler = recipe.paper_mask
        size = int(getattr(recipe, "image_size", 64))
        sampler(size, size, np.random.default_rng([warmup_seed, _WARMUP_STREAM]))
        return sampler
    if kind == "freeform":
        return mask_generators.brush_stroke_mask
    if kind == "box":
        return lambda height, width, rng: mask_generators.box_mask(height, width, rng)[0]
    if kind == "mixed":
        return mask_generators.mixed_mask
    raise UsageError(f"--masks {kind}: expected one of {', '.join(MASK_KINDS)}")


def draw_mask(sampler: MaskSampler, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size×size mask with at least one hole pixel and at least one known pixel."""
    for _ in range(_MAX_MASK_DRAWS):
        mask = np.asarray(sampler(size, size, rng), dtype=bool)
        if mask.any() and not mask.all():
            return mask
    # Pathological sampler/size: keep the last draw but give it one known and one hole pixel.
    mask = mask.copy()
    mask[0, 0], mask[-1, -1] = False, True
    return mask


# ------------------------------------------------------------------------------------------ batches


def folder_groups(files: Sequence[Path], root: Path) -> list[int]:
    """Each file's group for `balance`: the index of its top-level folder under `root` (files directly in
    `root` form a group of their own), in sorted order of the folder names."""
    tops = [path.relative_to(root).parts[0] if len(path.relative_to(root).parts) > 1 else "" for path in files]
    names = sorted(set(tops))
    return [names.index(top) for top in tops]


def synthetic_image(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth (size, size, 3) uint8 image: half the time a flat colour, else a linear gradient between two
    colours along a random direction; colours uniform in the RGB cube."""
    first = rng.uniform(0, 255, 3)
    if rng.random() < 0.5:
        pixels = np.broadcast_to(first, (size, size, 3))
    else:
        second = rng.uniform(0, 255, 3)
        angle = rng.uniform(0, 2 * np.pi)
        y, x = np.mgrid[0:size, 0:size].astype(np.float64)
        along = x * np.cos(angle) + y * np.sin(angle)
        t = (along - along.min()) / max(float(np.ptp(along)), 1e-9)
        pixels = first + (second - first) * t[..., None]
    return np.ascontiguousarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))


class TrainBatches:
    """Batch `step` of one rank as a pure function of (seed, step, rank): see the module docstring.

    `batch(step)` → images (B, 3, size, size) float32 in [0, 1], masks (B, 1, size, size) float32 (1 = hole).
    """

    def __init__(
        self,
        folder: ImageFolder,
        mask_sampler: MaskSampler,
        *,
        size: int,
        batch: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        groups: Sequence[int] | None = None,
        synthetic: float = 0.0,
    ) -> None:
        if len(folder) == 0:
            raise InpaintError("no training images; check --data")
        if not 0.0 <= synthetic < 1.0:
            raise UsageError(f"--synthetic {synthetic}: a share of the samples, from 0 up to (not including) 1")
        # groups: one index per file of `folder` (`folder_groups`); each group's files, for `balance`.
        self.group_files: list[np.ndarray] | None = None
        if groups is not None and len(set(groups)) > 1:
            group_ids = np.asarray(groups)
            self.group_files = [np.flatnonzero(group_ids == g) for g in sorted(set(groups))]
        self.synthetic = float(synthetic)
        self.folder = folder
        self.mask_sampler = mask_sampler
        self.size = size
        self.batch_size = batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self._orders: dict[tuple[int, int], np.ndarray] = {}
        self._orders_lock = threading.Lock()

    def _order(self, epoch: int, group: int = -1) -> np.ndarray:
        """The permutation of epoch `epoch` over all files (group −1) or over one group's files."""
        with self._orders_lock:  # loader threads
            order = self._orders.get((group, epoch))
            if order is None:
                if group < 0:
                    order = np.random.default_rng([self.seed, _EPOCH_STREAM, epoch]).permutation(len(self.folder))
                else:
                    files = self.group_files[group]  # type: ignore[index]
                    order = files[
                        np.random.default_rng([self.seed, _EPOCH_STREAM, epoch, group]).permutation(len(files))
                    ]
                stale = [key for key in self._orders if key[0] == group and key[1] < epoch - 2]
                for key in stale:  # in-flight batches span a few epochs at most
                    self._orders.pop(key)
                self._orders[(group, epoch)] = order
            return order

    def file_index(self, step: int, i: int) -> int:
        """The folder index of sample i of `step` on this rank, skipping unreadable files."""
        return self._draw(step, i)[0]

    def _draw(self, step: int, i: int) -> tuple[int, np.ndarray]:
        """(folder index, pixels) of sample i of `step`: the pixels of the readability check are the ones
        cropped, so an image that does not fit the cache is still decoded once per draw."""
        position = (step * self.world_size + self.rank) * self.batch_size + i
        if self.group_files is None:
            count = len(self.folder)
            epoch, offset = divmod(position, count)
            order = self._order(epoch)
        else:
            position, group = divmod(position, len(self.group_files))
            count = len(self.group_files[group])
            epoch, offset = divmod(position, count)
            order = self._order(epoch, group)
        for k in range(count):
            index = int(order[(offset + k) % count])
            pixels = self.folder.load(index)
            if pixels is not None:
                return index, pixels
        raise InpaintError(f"none of the {count} training images could be read; check --data")

    def sample(self, step: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image (size, size, 3) float32, mask (size, size) bool) for sample i of `step`."""
        rng = np.random.default_rng([self.seed, step, self.rank, i])
        if self.synthetic and rng.random() < self.synthetic:
            mask = draw_mask(self.mask_sampler, self.size, rng)
            return to_float(synthetic_image(self.size, rng)), mask
        _, pixels = self._draw(step, i)
        pixels = fit_short_side(pixels, self.size)
        height, width = pixels.shape[:2]
        top = int(rng.integers(0, height - self.size + 1))
        left = int(rng.integers(0, width - self.size + 1))
        crop = pixels[top : top + self.size, left : left + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        mask = draw_mask(self.mask_sampler, self.size, rng)
        return to_float(crop), mask

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        samples = [self.sample(step, i) for i in range(self.batch_size)]
        images = np.stack([image for image, _ in samples]).transpose(0, 3, 1, 2)
        holes = np.stack([mask for _, mask in samples])[:, None].astype(np.float32)
        return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(holes)


class BatchLoader:
    """`get(step)` for consecutive steps, optionally prepared ahead by `workers` threads.

    Batches are pure functions of the step, so prefetching cannot change what training sees. Threads (not
    processes) suffice: decoding and resizing run in OpenCV, which releases the GIL.
    """

    def __init__(self, batches: TrainBatches, *, workers: int = 0, last_step: int | None = None) -> None:
        self.batches = batches
        self.workers = max(0, workers)
        self.last_step = last_step
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="inpaint-data") if self.workers else None
        self._pending: dict[int, Future[tuple[torch.Tensor, torch.Tensor]]] = {}

    def get(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._pool is None:
            return self.batches.batch(step)
        for ahead in range(step, step + self.workers + 1):
            if ahead not in self._pending and (self.last_step is None or ahead < self.last_step):
                self._pending[ahead] = self._pool.submit(self.batches.batch, ahead)
        for stale in [s for s in self._pending if s < step]:
            self._pending.pop(stale).cancel()
        future = self._pending.pop(step, None)
        return future.result() if future is not None else self.batches.batch(step)

    def close(self) -> None:
        if self._pool is not None:
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True)
            self._pool = None


# --------------------------------------------------------------------------------------- validation


@dataclass
class ValCase:
    """One fixed validation case: a centre crop and its hole."""

    name: str
    image: np.ndarray  # (size, size, 3) float32 in [0, 1]
    mask: np.ndarray  # (size, size) bool, True = hole


def centre_crop(pixels: np.ndarray, size: int) -> np.ndarray:
    pixels = fit_short_side(pixels, size)
    height, width = pixels.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return pixels[top : top + size, left : left + size]


def make_val_cases(
    files: Sequence[Path], size: int, mask_sampler: MaskSampler, *, count: int, short_side: int | None = None
) -> list[ValCase]:
    """Up to `count` val cases from `files` (evenly spread over the list): centre crops at `size` with masks
    drawn from the fixed `VAL_MASK_SEED`, so every validation pass (and every run) scores the same cases.
    short_side: rescale each image first, as the training images are. Unreadable files are skipped with a
    warning."""
    if count <= 0 or not files:
        return []
    picks = np.unique(np.linspace(0, len(files) - 1, num=min(count, len(files))).round().astype(int))
    cases = []
    for number, index in enumerate(picks):
        path = files[int(index)]
        try:
            pixels = read_rgb(path, short_side=short_side)
        except InpaintError as e:
            log.warning("skipping unreadable validation image: %s", e.message)
            continue
        mask = draw_mask(mask_sampler, size, np.random.default_rng([VAL_MASK_SEED, number]))
        cases.append(ValCase(path.name, to_float(centre_crop(pixels, size)), mask))
    return cases

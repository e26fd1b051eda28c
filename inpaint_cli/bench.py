"""The benchmark runner behind `inpaint benchmark`: fill quality per hole-ratio bucket, and speed.

The CLI command is a thin wrapper: it builds a `BenchmarkConfig`, calls `run_benchmark` (optionally
with `rich_progress()`), prints `render_tables(report)` on stderr and calls the writers.

Quality protocol
    Images: the files listed in `split` (a list file, relative to `data`) when given; else those of
    `data/test.txt`, the report split `training/make_data.sh` writes (left out of training by `inpaint
    train` and never used to pick a checkpoint: `best.safetensors` is selected on `val.txt`); else those of
    `data/val.txt` (a selection split: scores on it flatter a model whose checkpoint was picked on it);
    else every image file directly in `data`. Lists hold one name per line, relative to `data`, blank
    lines and `#` comments ignored as `inpaint train` reads them, and every name must be a file. The list
    used is logged and recorded as `split` in the report's config (None: every image). Sorted by file
    name, the first `n_images` kept. Each is scaled so its short side is `size` (area interpolation when
    shrinking, cubic when enlarging), centre-cropped to size×size and rounded to the 8-bit grid, so the
    ground truth is what an 8-bit file of it would hold.
    Masks: per kind × bucket, one mask per image from `masks.bucket_masks(kind, low, high, n, size, size,
    seed)` (the same masks `inpaint masks generate` writes), or the masks of `masks_dir`.
    Fills: each model fills each (image, mask) case through `Inpainter.fill` with strategy "auto" — the
    engine and defaults of `inpaint fill`, compositing included — in fp32, and the output is rounded to
    8 bits as `inpaint fill` writes it. Models that sample get seed `seed + case·samples + i` for sample i;
    sample 0 is scored, and `samples` samples give the hole diversity (`plural.hole_diversity`).
    Metrics (`inpaint_cli.metrics`): PSNR, SSIM, L1, L2 over the whole image and over the hole, and the
    texture score `gradient_ratio` over the hole. Per model × kind × bucket, per model × kind and per
    model: mean and a t-based 95 % confidence interval, mean ± t(0.975, n−1)·sd/√n (sample sd).
    Same seed ⇒ same masks ⇒ same numbers.

Speed protocol
    Per model, size and precision (fp32, plus bf16 on CPU / fp16 on GPU with `half` for models that have
    parameters), in a fresh Python subprocess (`isolate`, the default): load the model, build a synthetic
    8-bit noise image of size×size and DeepFill-style mixed masks with 15-30 % hole, run `warmup` fills,
    then time `repeats` fills with strategy "full" (so the whole size×size image goes through the network)
    → median and p90 latency. Throughput: one warm-up `fill_batch` call of `batch` images, then
    ceil(repeats / batch) timed calls (about as many images as the latency runs) → images/s.
    Fixed-size models (Context Encoder, 128²) are measured at their own size only: they only ever see
    windows of it. FLOPs: torch's FlopCounterMode around one whole `Inpainter.fill` (n/a for models
    without torch ops, e.g. the OpenCV fills). Reference: a well-shaped 3×3 conv timed in the same run,
    same precision and threads; `fraction_of_reference` = achieved GFLOP/s ÷ reference GFLOP/s.

Memory
    CPU: peak resident set size of the worker process, from /proc/self/status (VmHWM). The high-water
    mark is reset (/proc/self/clear_refs ← 5) after the model and inputs are loaded, so `memory_peak_mb` is
    the peak during the single-image fills and `memory_peak_batch_mb` during the batched ones, both
    including the loaded model (`memory_loaded_mb`). Without /proc (macOS) the peak since process start
    (ru_maxrss) is reported. Only a fresh process gives honest numbers (memory freed earlier would be
    reused unseen), so with `isolate=False` CPU memory is not reported. CUDA:
    torch.cuda.max_memory_allocated after reset_peak_memory_stats.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io as stdio
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from . import metrics
from .errors import InpaintError, UsageError
from .io import fit_mask, image_files, read_image, write_atomic, write_image
from .mask_shapes import hole_ratio
from .masks import MANIFEST_NAME, MASK_KINDS, bucket_masks, load_mask_set, parse_ratio, ratio_label

if TYPE_CHECKING:
    import torch
    from rich.console import Console
    from rich.table import Table

    from .engine import Inpainter

log = logging.getLogger("inpaint_cli")

DEFAULT_BUCKETS: tuple[tuple[float, float], ...] = ((0.05, 0.15), (0.15, 0.30), (0.30, 0.45), (0.45, 0.60))
DEFAULT_KINDS: tuple[str, ...] = ("strokes", "box")
DEFAULT_SPEED_SIZES: tuple[int, ...] = (256, 512, 1024)
REPORT_SPLIT = "test.txt"  # in `data`: scored by default, never used to select a checkpoint
SELECTION_SPLIT = "val.txt"  # in `data`: `inpaint train --val-list` picks checkpoints on it; scored without test.txt
SPLIT_FILES: tuple[str, ...] = (REPORT_SPLIT, SELECTION_SPLIT)  # looked for in this order
ALL = "all"  # the bucket/kind label of pooled rows
# Scored per case; "_hole" = over the hole pixels only. gradient_ratio is always over the hole.
QUALITY_METRICS: tuple[str, ...] = (
    "psnr",
    "psnr_hole",
    "ssim",
    "ssim_hole",
    "l1",
    "l1_hole",
    "l2",
    "l2_hole",
    "gradient_ratio",
)
DIVERSITY = "diversity"
SPEED_MASK_BUCKET = (0.15, 0.30)
CI_METHOD = "t-based 95% CI: mean ± t(0.975, n-1)·sd/√n (sample sd); none for n < 2"

# The block of a hand-written Markdown page that `BenchmarkReport.to_markdown` replaces.
MARKDOWN_BEGIN = "<!-- benchmark results: begin -->"
MARKDOWN_END = "<!-- benchmark results: end -->"

ProgressCallback = Callable[[str, int, int], None]
"""progress(task, completed, total): called as work advances (task e.g. "quality telea")."""


# ------------------------------------------------------------------------------------------- parsing


def parse_buckets(text: str, *, flag: str = "--buckets") -> list[tuple[float, float]]:
    """'5-15,15-30' -> [(0.05, 0.15), (0.15, 0.3)]."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise UsageError(f"{flag} {text!r}: expected comma-separated LOW-HIGH per-cent ranges, e.g. 5-15,15-30")
    buckets = [parse_ratio(item, flag=flag) for item in items]
    if len(set(buckets)) != len(buckets):
        raise UsageError(f"{flag} {text!r}: a bucket is listed twice")
    return buckets


def parse_names(text: str, *, flag: str) -> list[str]:
    """'a,b,c' -> ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    names = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not names:
        raise UsageError(f"{flag} {text!r}: expected a comma-separated list, e.g. {flag} telea,ns")
    return names


def parse_sizes(text: str, *, flag: str = "--speed-sizes") -> list[int]:
    """'256,512' -> [256, 512]."""
    try:
        sizes = [int(item) for item in parse_names(text, flag=flag)]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected comma-separated sizes in pixels, e.g. 256,512,1024") from None
    if any(size < 16 for size in sizes):
        raise UsageError(f"{flag} {text!r}: sizes must be at least 16 px")
    return sizes


# -------------------------------------------------------------------------------------------- config


@dataclass
class BenchmarkConfig:
    """What to benchmark; mirrors the flags of `inpaint benchmark`."""

    models: list[str]  # names or paths `load_model` accepts; "all" = every catalog model that can fill
    data: str | os.PathLike | None = None  # folder of ground-truth images (required for quality)
    # The list of `data`'s images to score, relative to `data`; None = its test.txt, else val.txt, else every
    # image. `run_benchmark` records the list it found here, so the report says what was scored.
    split: str | os.PathLike | None = None
    masks_dir: str | os.PathLike | None = None  # use these masks instead of generating buckets × kinds
    buckets: list[tuple[float, float]] = field(default_factory=lambda: list(DEFAULT_BUCKETS))
    kinds: list[str] = field(default_factory=lambda: list(DEFAULT_KINDS))
    size: int = 256  # quality: images are centre-cropped to size × size
    n_images: int | None = None  # use at most this many images (sorted by name)
    seed: int = 0
    speed_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SPEED_SIZES))
    batch: int = 4  # images per call for the throughput figure
    half: bool = False  # also measure speed in bf16 (CPU) / fp16 (GPU)
    device: str = "auto"
    repeats: int = 5  # timed fills per speed case
    warmup: int = 1  # untimed fills before them
    quality: bool = True
    speed: bool = True
    samples: int = 4  # fills per case for the diversity of models that sample
    threads: int | None = None  # torch intra-op threads for the speed cases; None = torch's default
    isolate: bool = True  # each speed case in a fresh subprocess (needed for honest peak memory)
    reference_seconds: float = 1.5  # how long the reference conv is timed
    grid_rows: int = 8  # contact-sheet rows kept (one case per kind × bucket)
    command: str = ""  # the command line that ran it, shown in the reports (the CLI fills it in)

    def validate(self) -> None:
        """UsageError (naming the flag) for settings that cannot run."""
        if not self.models:
            raise UsageError("--models: name at least one model, e.g. --models telea,ns")
        if not (self.quality or self.speed):
            raise UsageError("nothing to do: both quality and speed are switched off")
        if self.quality and self.data is None:
            raise UsageError("--data: quality needs a folder of ground-truth images (or run speed only)")
        if self.quality and not self.kinds and self.masks_dir is None:
            raise UsageError("--kinds: name at least one mask kind, e.g. --kinds strokes,box")
        unknown = [kind for kind in self.kinds if kind not in MASK_KINDS]
        if unknown:
            raise UsageError(f"--kinds {','.join(unknown)}: expected some of {', '.join(MASK_KINDS)}")
        for low, high in self.buckets:
            if not 0 <= low < high <= 1:
                raise UsageError(f"--buckets {ratio_label(low, high)}: need 0 <= LOW < HIGH <= 100")
        if self.quality and not self.buckets and self.masks_dir is None:
            raise UsageError("--buckets: name at least one bucket, e.g. --buckets 5-15,15-30")
        checks = [
            ("--size", self.size, 16),
            ("--batch", self.batch, 1),
            ("--repeats", self.repeats, 1),
            ("--warmup", self.warmup, 0),
            ("--seed", self.seed, 0),
            ("--samples", self.samples, 2),
        ]
        if self.n_images is not None:
            checks.append(("--n-images", self.n_images, 1))
        if self.threads is not None:
            checks.append(("--threads", self.threads, 1))
        for flag, value, least in checks:
            if value < least:
                raise UsageError(f"{flag} {value}: must be at least {least}")
        if self.speed and (not self.speed_sizes or any(size < 16 for size in self.speed_sizes)):
            raise UsageError("--speed-sizes: give sizes of at least 16 px, e.g. 256,512,1024")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = None if self.data is None else os.fspath(self.data)
        out["split"] = None if self.split is None else os.fspath(self.split)
        out["masks_dir"] = None if self.masks_dir is None else os.fspath(self.masks_dir)
        out["buckets"] = [ratio_label(low, high) for low, high in self.buckets]
        return out


# ------------------------------------------------------------------------------------------- results


@dataclass
class Stat:
    """Mean with the half-width of its 95 % confidence interval (None when n < 2 or not finite)."""

    mean: float | None
    ci95: float | None
    n: int


@dataclass
class QualityRow:
    model: str
    kind: str  # a mask kind, or "all"
    bucket: str  # e.g. "5-15" (per cent of the image that is hole), or "all"
    n: int  # cases pooled
    hole_ratio: float  # mean hole ratio of those cases
    metrics: dict[str, Stat]


@dataclass
class SpeedRow:
    model: str
    size: int
    precision: str  # fp32, bf16 or fp16
    device: str
    threads: int
    median_s: float
    p90_s: float
    batch: int
    throughput: float  # images per second with `batch` images per call
    memory_loaded_mb: float | None
    memory_peak_mb: float | None  # peak during the single-image fills (see the module docstring)
    memory_peak_batch_mb: float | None  # peak during the batched fills
    memory_method: str
    calls_per_image: int  # model calls per fill (more than 1 for fixed-size models' windows)
    gflop_per_image: float | None  # None = n/a (no torch ops: the OpenCV fills)
    achieved_gflops: float | None
    reference_gflops: float | None
    fraction_of_reference: float | None  # achieved / reference: 1.0 = as fast as a well-shaped conv
    note: str = ""


@dataclass
class Failure:
    model: str
    stage: str  # "quality" or "speed"
    error: str


@dataclass
class Case:
    """One (image, mask) pair of the quality run."""

    index: int
    image: str
    image_index: int
    kind: str
    bucket: str
    mask_index: int
    mask: np.ndarray
    hole_ratio: float

    @property
    def label(self) -> str:
        return f"{self.image} ({self.kind} {self.bucket}% #{self.mask_index})"


@dataclass
class GridCase:
    """A case kept for the contact sheet: ground truth, mask and each model's output."""

    case: Case
    truth: np.ndarray
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)  # model -> PSNR over the hole


@dataclass
class BenchmarkReport:
    config: BenchmarkConfig
    environment: dict[str, Any]
    quality: list[QualityRow] = field(default_factory=list)
    speed: list[SpeedRow] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    case_scores: list[dict[str, Any]] = field(default_factory=list)  # one per model × case
    grid: list[GridCase] = field(default_factory=list)
    quality_models: list[str] = field(default_factory=list)  # models that completed the quality run

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "format": "inpaint-benchmark/1",
                "config": self.config.to_dict(),
                "environment": self.environment,
                "protocol": {
                    "ci": CI_METHOD,
                    "metrics": "inpaint_cli.metrics; *_hole over the hole pixels; gradient_ratio over the hole",
                    "memory": self.environment.get("memory_method", ""),
                },
                "quality": [asdict(row) for row in self.quality],
                "speed": [asdict(row) for row in self.speed],
                "failures": [asdict(failure) for failure in self.failures],
                "cases": self.case_scores,
            }
        )

    def to_json(self, path: str | os.PathLike) -> None:
        """Everything, per-case scores included; non-finite numbers (PSNR of a perfect fill) are null."""
        _write_text(path, json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")

    def to_csv(self, path: str | os.PathLike) -> None:
        """Long ("tidy") format, one number per line, quality and speed together:
        section, model, kind, bucket, size, precision, n, metric, value, ci95."""
        buffer = stdio.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["section", "model", "kind", "bucket", "size", "precision", "n", "metric", "value", "ci95"])
        for row in self.quality:
            writer.writerow(
                [
                    "quality",
                    row.model,
                    row.kind,
                    row.bucket,
                    self.config.size,
                    "fp32",
                    row.n,
                    "hole_ratio",
                    _csv_number(row.hole_ratio),
                    "",
                ]
            )
            for name, stat in row.metrics.items():
                writer.writerow(
                    [
                        "quality",
                        row.model,
                        row.kind,
                        row.bucket,
                        self.config.size,
                        "fp32",
                        stat.n,
                        name,
                        _csv_number(stat.mean),
                        _csv_number(stat.ci95),
                    ]
                )
        speed_fields = (
            "median_s",
            "p90_s",
            "throughput",
            "memory_loaded_mb",
            "memory_peak_mb",
            "memory_peak_batch_mb",
            "gflop_per_image",
            "achieved_gflops",
            "reference_gflops",
            "fraction_of_reference",
        )
        for row in self.speed:
            for name in speed_fields:
                writer.writerow(
                    [
                        "speed",
                        row.model,
                        "",
                        "",
                        row.size,
                        row.precision,
                        self.config.repeats,
                        name,
                        _csv_number(getattr(row, name)),
                        "",
                    ]
                )
        for failure in self.failures:
            writer.writerow(["failure", failure.model, "", "", "", "", "", failure.stage, "", failure.error])
        _write_text(path, buffer.getvalue())

    def to_markdown(self, path: str | os.PathLike) -> None:
        """The Markdown report. If `path` exists and holds the lines MARKDOWN_BEGIN and MARKDOWN_END, only
        what lies between them is replaced, so a hand-written page (benchmarks/README.md) keeps its text
        around the numbers of the latest run."""
        text = markdown_report(self)
        target = Path(path)
        if os.fspath(path) != "-" and target.is_file():
            current = target.read_text(encoding="utf-8")
            begin, end = current.find(MARKDOWN_BEGIN), current.find(MARKDOWN_END)
            if 0 <= begin < end:
                text = markdown_report(self, level=2, title="Latest run")
                text = current[: begin + len(MARKDOWN_BEGIN)] + "\n" + text + current[end:]
        _write_text(path, text)


# ------------------------------------------------------------------------------------------- running


def run_benchmark(config: BenchmarkConfig, progress: ProgressCallback | None = None) -> BenchmarkReport:
    """Run the quality and/or speed benchmark of `config.models`. A model that fails (cannot be loaded,
    raises while filling) is recorded in `report.failures` and the others still run."""
    config = dataclasses.replace(config, models=expand_models(config.models))
    config.validate()
    if config.quality and config.split is None:
        found = split_file(config.data)  # type: ignore[arg-type]
        config = dataclasses.replace(config, split=None if found is None else found.name)
    from .devices import pick_device

    device = pick_device(config.device)
    report = BenchmarkReport(config, _environment(device, config))
    broken: set[str] = set()  # models that could not even be loaded: not retried for speed
    if config.quality:
        _run_quality(config, device, report, broken, progress)
    if config.speed:
        _run_speed(config, device, report, broken, progress)
    return report


def expand_models(names: list[str]) -> list[str]:
    """Model names with "all" replaced by every catalog entry that can fill — weightless ones (telea, ns)
    and checkpoints that are on disk or downloadable — in catalog order; duplicates dropped."""
    if ALL not in names:
        return list(dict.fromkeys(names))
    from .registry import get_arch
    from .weights import load_catalog, local_path

    available = []
    for entry in load_catalog().find("*"):
        if entry.source is None:
            usable = not get_arch(entry.arch).contract.needs_weights
        else:
            usable = entry.kind == "hf" or local_path(entry) is not None
        if usable:
            available.append(entry.name)
    expanded = [item for name in names for item in (available if name == ALL else [name])]
    return list(dict.fromkeys(expanded))


def _failure_message(error: BaseException) -> str:
    if isinstance(error, InpaintError):
        return error.message
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def _load(name: str) -> Any:
    from .weights import load_model

    return load_model(name)


# -- quality ----------------------------------------------------------------------------------------


def split_file(data: str | os.PathLike, split: str | os.PathLike | None = None) -> Path | None:
    """The list file whose images the quality run scores: `data/split` when `split` is given (an absolute
    `split` is used as is; UsageError when it is not a file), else `data/test.txt`, else `data/val.txt`;
    None when there is neither (every image in `data` is scored)."""
    folder = Path(data)
    if split is not None:
        path = folder / split
        if not path.is_file():
            raise UsageError(f"--split {os.fspath(split)}: {path} is not a file; name a list of images inside --data")
        return path
    return next((folder / name for name in SPLIT_FILES if (folder / name).is_file()), None)


def read_split(path: str | os.PathLike, data: str | os.PathLike) -> list[Path]:
    """The files `path` lists (one per line, relative to `data`; blank lines and # comments ignored, as
    `inpaint train` reads its lists), duplicates dropped. InpaintError naming the first one that is not a
    file, or the list when it names none."""
    path, folder = Path(path), Path(data)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error.strerror or str(error)
        raise InpaintError(f"{path}: cannot read it ({reason}); pass a list of image names, one per line") from None
    files: dict[Path, None] = {}
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not (folder / name).is_file():
            raise InpaintError(f"{path}:{number}: lists {name}, which is not in {folder}; fix the list or the folder")
        files[folder / name] = None
    if not files:
        raise InpaintError(f"{path}: lists no images; name one image per line, relative to {folder}")
    return list(files)


def benchmark_images(
    data: str | os.PathLike, size: int, limit: int | None = None, split: str | os.PathLike | None = None
) -> list[tuple[str, np.ndarray]]:
    """(file name, float32 (size, size, 3) on the 8-bit grid) for the quality run: the images of
    `split_file(data, split)`, or every image in `data` (see the protocol)."""
    folder = Path(data)
    files = image_files(folder)  # InpaintError for a missing directory
    listed = split_file(folder, split)
    if listed is not None:
        files = sorted(read_split(listed, folder), key=lambda path: path.name)
        automatic_val = split is None and listed.name == SELECTION_SPLIT
        note = f" (a checkpoint-selection split: there is no {REPORT_SPLIT})" if automatic_val else ""
        log.info("scoring the %d images listed in %s%s", len(files), listed, note)
    elif files:
        log.info("scoring every image in %s (there is no %s)", folder, " or ".join(SPLIT_FILES))
    if not files:
        raise InpaintError(f"{folder}: no images in it; pass --data a folder of photos (PNG, JPEG, ...)")
    files = files[:limit] if limit is not None else files
    return [(path.name, square_crop(read_image(path).rgb(), size)) for path in files]


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Scale the short side to `size`, take the centre size × size, round to the 8-bit grid."""
    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation) if scale != 1 else rgb
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return quantize(resized[top : top + size, left : left + size])


def quantize(rgb: np.ndarray) -> np.ndarray:
    """Round to the 8-bit grid (half up, as `io.compose_output` writes files), as float32 in [0, 1]."""
    return (np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5) / 255.0).astype(np.float32)


def benchmark_cases(config: BenchmarkConfig, n_images: int) -> list[Case]:
    """The (image, mask) cases: kinds × buckets generated from the seed, or the masks of masks_dir."""
    groups: list[tuple[str, str, list[np.ndarray]]] = []
    if config.masks_dir is None:
        for kind in config.kinds:
            for low, high in config.buckets:
                masks = bucket_masks(kind, low, high, n_images, config.size, config.size, config.seed)
                groups.append((kind, ratio_label(low, high), masks))
    else:
        groups = _loaded_mask_groups(config)
    cases = []
    for kind, bucket, masks in groups:
        # Mask i goes with image i (images cycle when a loaded set has more masks than there are images).
        for mask_index, mask in enumerate(masks):
            image_index = mask_index % n_images
            cases.append(Case(len(cases), "", image_index, kind, bucket, mask_index, mask, hole_ratio(mask)))
    return cases


def _loaded_mask_groups(config: BenchmarkConfig) -> list[tuple[str, str, list[np.ndarray]]]:
    """masks_dir holds one mask set (with or without manifest.json) or several, one per subfolder."""
    root = Path(config.masks_dir)  # type: ignore[arg-type]
    if not root.is_dir():
        raise UsageError(f"--masks {root}: not a directory; pass a folder written by `inpaint masks generate`")
    subfolders = sorted(path for path in root.iterdir() if path.is_dir() and (path / MANIFEST_NAME).is_file())
    folders = [root] if (root / MANIFEST_NAME).is_file() or not subfolders else subfolders
    groups: dict[tuple[str, str], list[np.ndarray]] = {}
    for folder in folders:
        mask_set = load_mask_set(folder)
        for name, mask in zip(mask_set.names, mask_set.masks, strict=True):
            mask = fit_mask(mask, config.size, config.size, resize=True, mask_name=str(folder / name), image_name="")
            if not mask.any() or mask.all():
                raise InpaintError(
                    f"{folder / name}: at {config.size}x{config.size} the mask has no hole or no known pixel; "
                    "use masks with both"
                )
            bucket = mask_set.bucket or _bucket_of(hole_ratio(mask), config.buckets)
            groups.setdefault((mask_set.kind, bucket), []).append(mask)
    return [(kind, bucket, masks) for (kind, bucket), masks in groups.items()]


def _bucket_of(ratio: float, buckets: list[tuple[float, float]]) -> str:
    for low, high in buckets:
        if low <= ratio < high:
            return ratio_label(low, high)
    return "other"


def score_fill(output: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """QUALITY_METRICS of one fill against its ground truth."""
    return {
        "psnr": metrics.psnr(output, truth),
        "psnr_hole": metrics.psnr(output, truth, mask),
        "ssim": metrics.ssim(output, truth),
        "ssim_hole": metrics.ssim(output, truth, mask),
        "l1": metrics.l1(output, truth),
        "l1_hole": metrics.l1(output, truth, mask),
        "l2": metrics.l2(output, truth),
        "l2_hole": metrics.l2(output, truth, mask),
        "gradient_ratio": metrics.gradient_ratio(output, truth, mask),
    }


def _grid_case_indices(cases: list[Case], limit: int, n_images: int) -> list[int]:
    """One case per kind × bucket (up to `limit`); the k-th group shows image k (cycling), so rows differ."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.kind, case.bucket), []).append(case)
    chosen = []
    for ordinal, members in enumerate(list(groups.values())[:limit]):
        wanted = ordinal % n_images
        chosen.append(next((c for c in members if c.image_index == wanted), members[0]).index)
    return chosen


def _run_quality(
    config: BenchmarkConfig,
    device: str,
    report: BenchmarkReport,
    broken: set[str],
    progress: ProgressCallback | None,
) -> None:
    from .engine import Inpainter
    from .plural import hole_diversity

    images = benchmark_images(config.data, config.size, config.n_images, config.split)  # type: ignore[arg-type]
    cases = benchmark_cases(config, len(images))
    for case in cases:
        case.image = images[case.image_index][0]
    grid_indices = _grid_case_indices(cases, config.grid_rows, len(images))
    report.grid = [GridCase(cases[i], images[cases[i].image_index][1]) for i in grid_indices]
    grid_by_case = {grid.case.index: grid for grid in report.grid}
    report.environment["images"] = len(images)
    report.environment["cases"] = len(cases)

    with _torch_threads(config.threads):
        for name in config.models:
            task = f"quality {name}"
            if progress:
                progress(task, 0, len(cases))
            try:
                inpainter = Inpainter(_load(name), device=device)
            except Exception as error:
                broken.add(name)
                _record_failure(report, name, "quality", error)
                continue
            sampling = inpainter.contract.can_sample
            scores: list[dict[str, Any]] = []
            outputs: dict[int, np.ndarray] = {}
            try:
                for case in cases:
                    truth = images[case.image_index][1]
                    first_seed = config.seed + case.index * config.samples
                    output = _fill(inpainter, truth, case, first_seed)
                    record = score_fill(output, truth, case.mask)
                    if sampling:
                        others = [_fill(inpainter, truth, case, first_seed + i) for i in range(1, config.samples)]
                        record[DIVERSITY] = hole_diversity([output, *others], case.mask)
                    scores.append(record)
                    if case.index in grid_by_case:
                        outputs[case.index] = output
                    if progress:
                        progress(task, len(scores), len(cases))
            except Exception as error:
                _record_failure(report, name, "quality", error)
                continue
            finally:
                del inpainter
            report.quality_models.append(name)
            for case, record in zip(cases, scores, strict=True):
                report.case_scores.append(
                    {
                        "model": name,
                        "case": case.index,
                        "image": case.image,
                        "kind": case.kind,
                        "bucket": case.bucket,
                        "mask_index": case.mask_index,
                        "hole_ratio": round(case.hole_ratio, 6),
                        **record,
                    }
                )
            for index, output in outputs.items():
                grid_by_case[index].outputs[name] = output
                grid_by_case[index].scores[name] = scores[index]["psnr_hole"]
            report.quality.extend(_quality_rows(name, cases, scores))


def _fill(inpainter: Inpainter, truth: np.ndarray, case: Case, seed: int) -> np.ndarray:
    return quantize(inpainter.fill(truth, case.mask, strategy="auto", seed=seed, source=case.label).rgb)


def _record_failure(report: BenchmarkReport, name: str, stage: str, error: BaseException) -> None:
    message = _failure_message(error)
    log.warning("%s failed (%s): %s", name, stage, message)
    report.failures.append(Failure(name, stage, message))


def _quality_rows(model: str, cases: list[Case], scores: list[dict[str, float]]) -> list[QualityRow]:
    """Rows per kind × bucket, per kind (bucket "all", when it has several buckets) and overall (kind
    and bucket "all")."""
    groups: dict[tuple[str, str], list[int]] = {}
    buckets_of: dict[str, set[str]] = {}
    for position, case in enumerate(cases):
        groups.setdefault((case.kind, case.bucket), []).append(position)
        buckets_of.setdefault(case.kind, set()).add(case.bucket)
    for position, case in enumerate(cases):
        if len(buckets_of[case.kind]) > 1:  # with one bucket the kind's pooled row would repeat it
            groups.setdefault((case.kind, ALL), []).append(position)
        groups.setdefault((ALL, ALL), []).append(position)
    rows = []
    for (kind, bucket), positions in groups.items():
        names = [name for name in (*QUALITY_METRICS, DIVERSITY) if name in scores[positions[0]]]
        rows.append(
            QualityRow(
                model=model,
                kind=kind,
                bucket=bucket,
                n=len(positions),
                hole_ratio=float(np.mean([cases[p].hole_ratio for p in positions])),
                metrics={name: summarize([scores[p][name] for p in positions]) for name in names},
            )
        )
    # Buckets in the order given, then the per-kind and overall rows.
    return sorted(rows, key=lambda row: (row.kind == ALL, row.bucket == ALL))


# 97.5 % quantiles of Student's t for 1-30 degrees of freedom; beyond, a Cornish-Fisher expansion
# around the normal quantile is within 0.001 of the exact value.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """The two-sided 95 % critical value of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def summarize(values: list[float]) -> Stat:
    """Mean and t-based 95 % CI half-width (CI_METHOD); a non-finite value (inf PSNR) gives mean inf, no CI."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return Stat(None, None, 0)
    mean = float(array.mean())
    if array.size < 2 or not np.all(np.isfinite(array)):
        return Stat(mean, None, int(array.size))
    half_width = t_quantile_975(array.size - 1) * float(array.std(ddof=1)) / math.sqrt(array.size)
    return Stat(mean, half_width, int(array.size))


# -- speed ------------------------------------------------------------------------------------------


def _run_speed(
    config: BenchmarkConfig,
    device: str,
    report: BenchmarkReport,
    broken: set[str],
    progress: ProgressCallback | None,
) -> None:
    from .devices import cpu_has_native_bf16, half_dtype

    references: dict[str, float] = {}
    for name in config.models:
        if name in broken:
            continue
        task = f"speed {name}"
        try:
            model = _load(name)
        except Exception as error:
            _record_failure(report, name, "speed", error)
            continue
        contract = model.contract
        has_parameters = any(True for _ in model.parameters())
        del model
        sizes = [contract.fixed_size] if contract.fixed_size else list(config.speed_sizes)
        halves = [False, True] if config.half and has_parameters else [False]
        notes = []
        if contract.fixed_size:
            notes.append(f"fixed {contract.fixed_size}² input: measured at that size only")
        if config.half and not has_parameters:
            notes.append("no parameters: fp32 only")
        specs = [
            {
                "model": name,
                "size": size,
                "half": half,
                "device": device,
                "repeats": config.repeats,
                "warmup": config.warmup,
                "batch": config.batch,
                "seed": config.seed,
                "threads": config.threads,
                "measure_memory": config.isolate or device.startswith("cuda"),
            }
            for size in sizes
            for half in halves
        ]
        if progress:
            progress(task, 0, len(specs))
        for done, spec in enumerate(specs, start=1):
            try:
                result = _run_isolated(spec) if config.isolate else measure_speed(spec)
            except Exception as error:
                _record_failure(report, name, "speed", InpaintError(f"{spec['size']}px: {_failure_message(error)}"))
                continue
            finally:
                if progress:
                    progress(task, done, len(specs))
            note = list(notes)
            if spec["half"] and device == "cpu" and cpu_has_native_bf16() is False:
                note.append("bf16 emulated (no AVX512-BF16/AMX)")
            flops = result["flops"]
            reference = None
            if flops:
                precision = result["precision"]
                if precision not in references:
                    import torch

                    dtype = half_dtype(device) if precision != "fp32" else torch.float32
                    with _torch_threads(config.threads):
                        references[precision] = reference_conv_gflops(device, dtype, config.reference_seconds)
                reference = references[precision]
            report.speed.append(_speed_row(name, spec, result, reference, "; ".join(note)))
    report.environment["reference_conv_gflops"] = references


def _speed_row(name: str, spec: dict[str, Any], result: dict[str, Any], reference: float | None, note: str) -> SpeedRow:
    flops = result["flops"] or None
    gflop = flops / 1e9 if flops else None
    achieved = gflop / result["median_s"] if gflop else None
    return SpeedRow(
        model=name,
        size=spec["size"],
        precision=result["precision"],
        device=spec["device"],
        threads=result["threads"],
        median_s=result["median_s"],
        p90_s=result["p90_s"],
        batch=spec["batch"],
        throughput=result["throughput"],
        memory_loaded_mb=result["memory_loaded_mb"],
        memory_peak_mb=result["memory_peak_mb"],
        memory_peak_batch_mb=result["memory_peak_batch_mb"],
        memory_method=result["memory_method"],
        calls_per_image=result["calls"],
        gflop_per_image=gflop,
        achieved_gflops=achieved,
        reference_gflops=reference if gflop else None,
        fraction_of_reference=achieved / reference if achieved and reference else None,
        note=note,
    )


def measure_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """One speed case (model, size, precision) in this process: latency, throughput, memory, FLOPs.

    Run in a fresh process (`_run_isolated`) for honest memory figures; see the module docstring."""
    import torch

    from .engine import Inpainter

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device, size = spec["device"], int(spec["size"])
    inpainter = Inpainter(_load(spec["model"]), device=device, half=bool(spec["half"]))
    rng = np.random.default_rng(spec["seed"])
    rgb = quantize(rng.random((size, size, 3), dtype=np.float32))
    masks = bucket_masks("mixed", *SPEED_MASK_BUCKET, max(1, spec["batch"]), size, size, spec["seed"])
    memory = _MemoryProbe(device, enabled=bool(spec["measure_memory"]))
    loaded = memory.current_mb()

    memory.reset_peak()
    result = None
    for _ in range(spec["warmup"]):
        inpainter.fill(rgb, masks[0], strategy="full")  # allocator, oneDNN kernel selection
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        result = inpainter.fill(rgb, masks[0], strategy="full")
        sync_device(device)
        times.append(time.perf_counter() - start)
    peak = memory.peak_mb()

    memory.reset_peak()
    batch_rgbs = [rgb] * spec["batch"]
    inpainter.fill_batch(batch_rgbs, masks)  # warm-up at the batch shape
    calls = max(1, math.ceil(spec["repeats"] / spec["batch"]))
    start = time.perf_counter()
    for _ in range(calls):
        inpainter.fill_batch(batch_rgbs, masks)
    sync_device(device)
    throughput = calls * spec["batch"] / (time.perf_counter() - start)
    peak_batch = memory.peak_mb()

    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        inpainter.fill(rgb, masks[0], strategy="full")
    assert result is not None
    return {
        "median_s": statistics.median(times),
        "p90_s": float(np.percentile(times, 90)),
        "throughput": throughput,
        "precision": result.precision,
        "calls": result.windows,
        "threads": torch.get_num_threads(),
        "flops": int(counter.get_total_flops()),
        "memory_loaded_mb": loaded,
        "memory_peak_mb": peak,
        "memory_peak_batch_mb": peak_batch,
        "memory_method": memory.method,
    }


class _MemoryProbe:
    """Peak memory of this process: VmHWM with a resettable high-water mark on Linux, ru_maxrss
    elsewhere (not resettable: the peak since the process started), max_memory_allocated on CUDA."""

    def __init__(self, device: str, *, enabled: bool) -> None:
        self.device = device
        self.enabled = enabled
        self.cuda = device.startswith("cuda")
        self.proc = Path("/proc/self/status").is_file() and os.access("/proc/self/clear_refs", os.W_OK)
        if not enabled:
            self.method = "not measured (in-process run; use isolate)"
        elif self.cuda:
            self.method = "torch.cuda.max_memory_allocated"
        elif self.proc:
            self.method = "peak RSS (VmHWM, reset after loading), fresh process"
        else:
            self.method = "peak RSS since process start (ru_maxrss), fresh process"

    def current_mb(self) -> float | None:
        if not self.enabled:
            return None
        if self.cuda:
            import torch

            return torch.cuda.memory_allocated(self.device) / 2**20
        if self.proc:
            return _proc_status_kb("VmRSS") / 1024
        return _ru_maxrss_mb()

    def reset_peak(self) -> None:
        if not self.enabled:
            return
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.proc:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # "5" resets the peak RSS to the current RSS (Linux >= 4.0)

    def peak_mb(self) -> float | None:
        if not self.enabled:
            return None
        if self.cuda:
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.proc:
            return _proc_status_kb("VmHWM") / 1024
        return _ru_maxrss_mb()


def _proc_status_kb(key: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    raise InpaintError(f"/proc/self/status has no {key} line")


def _ru_maxrss_mb() -> float:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def _run_isolated(spec: dict[str, Any]) -> dict[str, Any]:
    """measure_speed(spec) in a fresh Python process (JSON in on stdin, out on stdout)."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    command = [sys.executable, "-c", "from inpaint_cli.bench import _worker_main; _worker_main()"]
    completed = subprocess.run(command, input=json.dumps(spec), capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.strip().splitlines() if line.strip()]
        raise InpaintError(lines[-1] if lines else f"the speed worker exited with code {completed.returncode}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _worker_main() -> None:
    """Entry point of the speed subprocess: an error becomes its last stderr line and exit code 1."""
    spec = json.loads(sys.stdin.read())
    try:
        result = measure_speed(spec)
    except Exception as error:
        print(_failure_message(error), file=sys.stderr)
        raise SystemExit(1) from None
    print(json.dumps(result))


def reference_conv_gflops(device: str, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """GFLOP/s of a large 3×3 conv (96→96 channels at 128², batch 4, channels-last, no autograd): the
    rate a well-shaped conv reaches here, to read a model's speed as a fraction of what the machine does."""
    import torch

    conv = torch.nn.Conv2d(96, 96, 3, padding=1).to(device, dtype).to(memory_format=torch.channels_last)
    x = torch.randn(4, 96, 128, 128, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * 4 * 96 * 96 * 9 * 128 * 128
    with torch.inference_mode():
        for _ in range(3):
            conv(x)
        sync_device(device)
        runs, start = 0, time.perf_counter()
        while runs == 0 or time.perf_counter() - start < seconds:
            conv(x)
            runs += 1
        sync_device(device)
    return flops * runs / (time.perf_counter() - start) / 1e9


def model_flops(model: torch.nn.Module, size: int, device: str, dtype: torch.dtype) -> int:
    """FLOPs of one `model.inpaint` call on a size × size image (torch's FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    image = torch.rand(1, 3, size, size, device=device, dtype=dtype)
    mask = torch.zeros(1, 1, size, size, device=device, dtype=dtype)
    mask[..., size // 4 : size // 2, size // 4 : size // 2] = 1
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model.inpaint(image, mask)
    return int(counter.get_total_flops())


def sync_device(device: str) -> None:
    """Wait for queued GPU work, so a timer stops when the work is done (a no-op on CPU)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Temporarily use `threads` intra-op threads (None: leave torch's setting alone)."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _environment(device: str, config: BenchmarkConfig) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), cpu)
    if device.startswith("cuda"):
        cpu = f"{cpu}; GPU {torch.cuda.get_device_name(device)}"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": config.threads or torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "memory_method": _MemoryProbe(device, enabled=config.isolate or device.startswith("cuda")).method,
    }


# ------------------------------------------------------------------------------------------- writers


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: replace them with None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _csv_number(value: float | None) -> str:
    if value is None:
        return ""
    return repr(float(value)) if math.isfinite(value) else str(value)


def _write_text(path: str | os.PathLike, text: str) -> None:
    """Write atomically; "-" writes to stdout."""
    if os.fspath(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(path, text.encode("utf-8"))


_FORMATS = {"psnr": ".2f", "ssim": ".4f", "l1": ".4f", "l2": ".5f", "gradient_ratio": ".3f", DIVERSITY: ".4f"}
_HEADERS = {
    "psnr": "PSNR",
    "psnr_hole": "PSNR hole",
    "ssim": "SSIM",
    "ssim_hole": "SSIM hole",
    "l1": "L1",
    "l1_hole": "L1 hole",
    "l2": "L2",
    "l2_hole": "L2 hole",
    "gradient_ratio": "texture",
    DIVERSITY: "diversity",
}


def format_stat(name: str, stat: Stat | None) -> str:
    """'27.31 ± 0.42'; '-' when absent."""
    if stat is None or stat.mean is None:
        return "-"
    spec = _FORMATS[name.removesuffix("_hole")]
    if not math.isfinite(stat.mean):
        return str(stat.mean)
    text = format(stat.mean, spec)
    return f"{text} ± {format(stat.ci95, spec)}" if stat.ci95 is not None else text


def _quality_columns(report: BenchmarkReport, *, compact: bool) -> list[str]:
    names = [name for name in QUALITY_METRICS if not (compact and name in ("l1", "l2"))]
    if any(DIVERSITY in row.metrics for row in report.quality):
        names.append(DIVERSITY)
    return names


def _quality_sections(report: BenchmarkReport) -> list[tuple[str, list[QualityRow]]]:
    """(title, rows): one section per mask kind, then the pooled rows of every kind."""
    kinds = list(dict.fromkeys(row.kind for row in report.quality if row.kind != ALL))
    sections = [
        (f"Quality: {kind} masks, {report.config.size}²", [r for r in report.quality if r.kind == kind])
        for kind in kinds
    ]
    overall = [row for row in report.quality if row.kind == ALL]
    if overall:
        sections.append((f"Quality: all masks, {report.config.size}²", overall))
    for _title, rows in sections:
        # Bucket by bucket, models side by side inside each bucket.
        order = {bucket: i for i, bucket in enumerate(dict.fromkeys(row.bucket for row in rows))}
        rows.sort(key=lambda row: order[row.bucket])
    return sections


def _speed_cells(row: SpeedRow) -> list[str]:
    def maybe(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    memory = "-"
    if row.memory_peak_mb is not None:
        memory = f"{row.memory_peak_mb:.0f} / {row.memory_peak_batch_mb:.0f}"
        if row.memory_loaded_mb is not None:
            memory = f"{row.memory_loaded_mb:.0f} → {memory}"
    return [
        row.model,
        str(row.size),
        row.precision,
        f"{row.median_s * 1000:.1f}",
        f"{row.p90_s * 1000:.1f}",
        f"{row.throughput:.2f}",
        memory,
        maybe(row.gflop_per_image, ".2f"),
        maybe(row.achieved_gflops, ".1f"),
        maybe(row.reference_gflops, ".1f"),
        "n/a" if row.fraction_of_reference is None else f"{row.fraction_of_reference:.0%}",
        row.note,
    ]


def _speed_headers(report: BenchmarkReport) -> list[str]:
    batch = report.config.batch
    return [
        "model",
        "size",
        "precision",
        "median ms",
        "p90 ms",
        f"img/s (batch {batch})",
        f"MB loaded → peak (1 / {batch} img)",
        "GFLOP/img",
        "GFLOP/s",
        "ref conv GFLOP/s",
        "of ref",
        "note",
    ]


def markdown_report(report: BenchmarkReport, *, level: int = 1, title: str = "inpaint benchmark") -> str:
    """The whole report as Markdown: run details, a quality table per mask kind, speed, failures.
    `level`: the title's heading level (sections are one deeper), for embedding in another page."""
    env, config = report.environment, report.config
    section = "#" * (level + 1)
    lines = [f"{'#' * level} {title}", ""]
    lines.append(
        f"{env.get('date', '')} · {env.get('machine', '')} · {env.get('logical_cpus', '?')} logical CPUs · "
        f"torch {env.get('torch', '')} ({env.get('torch_threads', '?')} threads) · device {env.get('device', '')}"
    )
    lines.append("")
    if config.command:
        lines += [f"Command: `{config.command}`", ""]
    if report.quality:
        listed = "" if config.split is None else f" (those listed in `{config.to_dict()['split']}`)"
        lines.append(
            f"Quality: {env.get('images', '?')} images from `{config.to_dict()['data']}`{listed} at {config.size}², "
            f"{env.get('cases', '?')} (image, mask) cases, seed {config.seed}. Cells are mean ± 95 % CI "
            "(t-based). *hole* = over the hole pixels; texture = mean gradient magnitude in the hole, fill over "
            "ground truth (1 = as detailed as the original, ≪ 1 = blurred)."
        )
        lines.append("")
    for heading, rows in _quality_sections(report):
        columns = _quality_columns(report, compact=False)
        lines += [f"{section} {heading}", ""]
        lines.append("| bucket (% hole) | model | n | " + " | ".join(_HEADERS[c] for c in columns) + " |")
        lines.append("|" + " --- |" * (3 + len(columns)))
        for row in rows:
            cells = [row.bucket, row.model, str(row.n)] + [format_stat(c, row.metrics.get(c)) for c in columns]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if report.speed:
        lines += [f"{section} Speed", ""]
        lines.append(
            f"Latency per image after {config.warmup} warm-up fill(s), {config.repeats} timed fills (strategy full); "
            f"throughput with {config.batch} images per call; memory: {env.get('memory_method', '')}. "
            "*of ref* = achieved GFLOP/s as a fraction of a 3×3 reference conv timed in the same run."
        )
        lines.append("")
        headers = _speed_headers(report)
        lines.append("| " + " | ".join(headers) + " |")
        lines.append("|" + " --- |" * len(headers))
        for row in report.speed:
            lines.append("| " + " | ".join(_speed_cells(row)) + " |")
        lines.append("")
    if report.failures:
        lines += [f"{section} Failures", ""]
        lines += [f"- **{f.model}** ({f.stage}): {f.error}" for f in report.failures]
        lines.append("")
    return "\n".join(lines)


def render_tables(report: BenchmarkReport) -> list[Table]:
    """rich tables for stderr: quality per mask kind (whole-image L1/L2 left to the files), speed, failures."""
    from rich.table import Table

    tables = []
    for title, rows in _quality_sections(report):
        columns = _quality_columns(report, compact=True)
        table = Table(title=title, title_justify="left")
        for header in ["bucket %", "model", "n"] + [_HEADERS[c] for c in columns]:
            table.add_column(header, justify="left" if header in ("bucket %", "model") else "right")
        previous = None
        for row in rows:
            if previous is not None and row.bucket != previous:
                table.add_section()
            previous = row.bucket
            table.add_row(row.bucket, row.model, str(row.n), *[format_stat(c, row.metrics.get(c)) for c in columns])
        tables.append(table)
    if report.speed:
        table = Table(title=f"Speed ({report.environment.get('device', '')})", title_justify="left")
        for header in _speed_headers(report):
            table.add_column(header, justify="left" if header in ("model", "precision", "note") else "right")
        for row in report.speed:
            table.add_row(*_speed_cells(row))
        tables.append(table)
    if report.failures:
        table = Table(title="Failures", title_justify="left")
        for header in ("model", "stage", "error"):
            table.add_column(header)
        for failure in report.failures:
            table.add_row(failure.model, failure.stage, failure.error)
        tables.append(table)
    return tables


def grid_image(report: BenchmarkReport, cell: int = 192) -> np.ndarray:
    """The contact sheet (uint8 RGB): one row per kept case; columns ground truth, masked input, then
    each model that completed the quality run (captioned with its PSNR over the hole)."""
    from .grid import contact_sheet, masked_input

    if not report.grid or not report.quality_models:
        raise InpaintError("--grid: no quality results to show (every model failed, or quality was not run)")
    rows, captions = [], []
    for grid in report.grid:
        case = grid.case
        rows.append(
            [grid.truth, masked_input(grid.truth, case.mask), *[grid.outputs[m] for m in report.quality_models]]
        )
        captions.append(
            [f"{case.kind} {case.bucket}%", f"{case.hole_ratio:.0%} hole"]
            + [f"hole {grid.scores[m]:.1f} dB" for m in report.quality_models]
        )
    return contact_sheet(rows, ["ground truth", "masked input", *report.quality_models], captions, cell=cell)


def write_grid(report: BenchmarkReport, path: str | os.PathLike, cell: int = 192) -> None:
    """Write `grid_image(report)` (atomic; format from the extension)."""
    write_image(path, grid_image(report, cell))


@contextlib.contextmanager
def rich_progress(console: Console | None = None) -> Iterator[ProgressCallback]:
    """Progress bars on stderr for `run_benchmark`: one bar per task ("quality telea", "speed ns", ...)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def update(task: str, completed: int, total: int) -> None:
        if task not in tasks:
            tasks[task] = bars.add_task(task, total=total)
        bars.update(tasks[task], completed=completed, total=total)

    with bars:
        yield update

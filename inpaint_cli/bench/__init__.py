"""The benchmark runner behind `inpaint benchmark`: fill quality per hole-ratio bucket, and speed.

The CLI command is a thin wrapper: it builds a `BenchmarkConfig` (`BenchmarkConfig.from_flags`), calls
`run_benchmark` (optionally with `rich_progress()`), prints `render_tables(report)` on stderr and writes
the files with `write_reports`.

The modules, in the order a run uses them:
    config    `BenchmarkConfig`, the parsing of the list flags, `expand_models` ("all")
    runner    `run_benchmark`: the quality part, then the speed part
    cases     the quality run's images (splits, centre crops) and masks, paired into `Case`s
    quality   the quality run: fill every case with every model, score, pool into rows
    stats     what is scored per case, and the mean ± t-based 95 % CI of a group
    speed     the speed run: latency, throughput, FLOPs, reference conv, the subprocess worker
    machine   the run's environment, torch threads, device sync, the memory probe
    results   `BenchmarkReport` and its rows; the JSON, CSV and Markdown files
    report    Markdown and rich tables, the contact sheet
    progress  the progress callback and its rich bars
Each module's docstring holds its part of the protocol (images and masks: cases; fills and metrics:
quality; speed: speed; memory: machine).
"""

from .cases import Case, benchmark_cases, benchmark_images, quantize, read_split, split_file, square_crop
from .config import (
    ALL,
    DEFAULT_BUCKETS,
    DEFAULT_KINDS,
    DEFAULT_SPEED_SIZES,
    REPORT_SPLIT,
    SELECTION_SPLIT,
    SPLIT_FILES,
    BenchmarkConfig,
    expand_models,
    parse_buckets,
    parse_names,
    parse_sizes,
)
from .machine import MemoryProbe, environment, sync_device, torch_threads
from .progress import ProgressCallback, rich_progress
from .report import format_stat, grid_image, markdown_report, render_tables, write_grid
from .results import (
    MARKDOWN_BEGIN,
    MARKDOWN_END,
    BenchmarkReport,
    Failure,
    GridCase,
    QualityRow,
    SpeedRow,
    failure_message,
    write_reports,
)
from .runner import run_benchmark
from .speed import SPEED_MASK_BUCKET, measure_speed, model_flops, reference_conv_gflops, speed_specs
from .stats import CI_METHOD, DIVERSITY, QUALITY_METRICS, Stat, score_fill, summarize, t_quantile_975

__all__ = [
    "ALL",
    "CI_METHOD",
    "DEFAULT_BUCKETS",
    "DEFAULT_KINDS",
    "DEFAULT_SPEED_SIZES",
    "DIVERSITY",
    "MARKDOWN_BEGIN",
    "MARKDOWN_END",
    "QUALITY_METRICS",
    "REPORT_SPLIT",
    "SELECTION_SPLIT",
    "SPEED_MASK_BUCKET",
    "SPLIT_FILES",
    "BenchmarkConfig",
    "BenchmarkReport",
    "Case",
    "Failure",
    "GridCase",
    "MemoryProbe",
    "ProgressCallback",
    "QualityRow",
    "SpeedRow",
    "Stat",
    "benchmark_cases",
    "benchmark_images",
    "environment",
    "expand_models",
    "failure_message",
    "format_stat",
    "grid_image",
    "markdown_report",
    "measure_speed",
    "model_flops",
    "parse_buckets",
    "parse_names",
    "parse_sizes",
    "quantize",
    "read_split",
    "reference_conv_gflops",
    "render_tables",
    "rich_progress",
    "run_benchmark",
    "score_fill",
    "speed_specs",
    "split_file",
    "square_crop",
    "summarize",
    "sync_device",
    "t_quantile_975",
    "torch_threads",
    "write_grid",
    "write_reports",
]

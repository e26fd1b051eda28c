"""The result model of a benchmark run (`BenchmarkReport` and its rows) and the files it writes: JSON
(everything), CSV (one number per line) and Markdown (rendered by `report.markdown_report`)."""

from __future__ import annotations

import csv
import io as stdio
import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InpaintError
from ..io import write_atomic
from .cases import Case
from .config import BenchmarkConfig
from .report import markdown_report, write_grid
from .stats import CI_METHOD, Stat

log = logging.getLogger("inpaint_cli")

# The block of a hand-written Markdown page that `BenchmarkReport.to_markdown` replaces.
MARKDOWN_BEGIN = "<!-- benchmark results: begin -->"
MARKDOWN_END = "<!-- benchmark results: end -->"


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
    memory_peak_mb: float | None  # peak during the single-image fills (see machine.py)
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


def failure_message(error: BaseException) -> str:
    """The one line a failure is reported with: an InpaintError's message, else the type and first line."""
    if isinstance(error, InpaintError):
        return error.message
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


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

    def add_failure(self, model: str, stage: str, error: BaseException) -> None:
        """Record (and log) that `model` failed at `stage`; the run goes on with the other models."""
        message = failure_message(error)
        log.warning("%s failed (%s): %s", model, stage, message)
        self.failures.append(Failure(model, stage, message))

    def to_dict(self) -> dict[str, Any]:
        return _finite(
            {
                "format": "inpaint-benchmark/1",
                "config": self.config.to_dict(),
                "environment": self.environment,
                "protocol": {
                    "ci": CI_METHOD,
                    "metrics": (
                        "inpaint_cli.metrics; *_hole over the hole pixels; gradient_ratio, texture_distance "
                        "and seam_step about the hole"
                    ),
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
            where = ["quality", row.model, row.kind, row.bucket, self.config.size, "fp32"]
            writer.writerow([*where, row.n, "hole_ratio", _csv_number(row.hole_ratio), ""])
            for name, stat in row.metrics.items():
                writer.writerow([*where, stat.n, name, _csv_number(stat.mean), _csv_number(stat.ci95)])
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


def write_reports(
    report: BenchmarkReport,
    *,
    json_path: str | os.PathLike | None = None,
    csv_path: str | os.PathLike | None = None,
    markdown_path: str | os.PathLike | None = None,
    grid_path: str | os.PathLike | None = None,
) -> None:
    """Write the files `inpaint benchmark` was asked for (None = not wanted; "-" = stdout for the text
    formats), in this order: JSON, CSV, Markdown, contact sheet."""
    writers = ((json_path, report.to_json), (csv_path, report.to_csv), (markdown_path, report.to_markdown))
    for path, write in writers:
        if path is not None:
            write(path)
    if grid_path is not None:
        write_grid(report, grid_path)


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

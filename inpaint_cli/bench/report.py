"""The report for people: Markdown tables (`markdown_report`, which `BenchmarkReport.to_markdown` writes),
rich tables for the terminal (`render_tables`), and the contact sheet of fills (`grid_image`). The
Markdown and rich tables share their sections, columns and cells, so both show the same numbers."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InpaintError
from ..io import write_image
from .config import ALL
from .stats import DIVERSITY, QUALITY_METRICS, SAMPLE_METRICS, Stat

if TYPE_CHECKING:
    from rich.table import Table

    from .results import BenchmarkReport, QualityRow, SpeedRow

# -------------------------------------------------------------------------------------------- cells


_FORMATS = {
    "psnr": ".2f",
    "ssim": ".4f",
    "l1": ".4f",
    "l2": ".5f",
    "gradient_ratio": ".3f",
    "texture_distance": ".0f",
    "seam_step": ".2f",
    "grid_artefact": ".2f",
    DIVERSITY: ".4f",
    "samples_psnr": ".2f",
    "samples_texture_distance": ".0f",
}
_HEADERS = {
    "psnr": "PSNR",
    "psnr_hole": "PSNR hole",
    "ssim": "SSIM",
    "ssim_hole": "SSIM hole",
    "l1": "L1",
    "l1_hole": "L1 hole",
    "l2": "L2",
    "l2_hole": "L2 hole",
    "gradient_ratio": "detail",
    "texture_distance": "texture",
    "seam_step": "seam",
    "grid_artefact": "grid",
    DIVERSITY: "diversity",
    "samples_psnr_hole": "samples' PSNR hole",
    "samples_texture_distance": "samples' texture",
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
        names += [DIVERSITY, *SAMPLE_METRICS]
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


# ------------------------------------------------------------------------------------------- tables


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
            "(t-based). *hole* = over the hole pixels; detail = mean gradient magnitude in the hole, fill over "
            "ground truth (1 = as detailed as the original, ≪ 1 = blurred); texture = patch sliced-Wasserstein "
            "distance to the ground truth's texture in the hole (×1000, lower is better: blur and noise score "
            "high); seam = how much more the fill steps across the hole's border than the ground truth, in 8-bit "
            "levels (0 = none). For models that sample, diversity = mean pairwise L1 of the samples in the hole, "
            "beside the samples' mean hole PSNR and texture."
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


# ------------------------------------------------------------------------------------ contact sheet


def grid_image(report: BenchmarkReport, cell: int = 192) -> np.ndarray:
    """The contact sheet (uint8 RGB): one row per kept case; columns ground truth, masked input, then
    each model that completed the quality run (captioned with its PSNR over the hole)."""
    from ..grid import contact_sheet, masked_input

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


# JPEG quality of contact sheets: photographs and anti-aliased text stay legible at a fifth of the PNG's
# size (benchmarks/README.md: the 16-case sheet of the 256² run, 8.9 MB as PNG, is 1.6 MB at 90).
GRID_QUALITY = 90


def write_grid(report: BenchmarkReport, path: str | os.PathLike, cell: int = 192) -> None:
    """Write `grid_image(report)` (atomic; format from the extension: .jpg for a sheet that is light to
    keep and share, JPEG quality `GRID_QUALITY`; .png lossless)."""
    write_image(path, grid_image(report, cell), quality=GRID_QUALITY)

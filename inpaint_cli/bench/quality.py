"""The quality part of a benchmark run: every model fills every case (`cases.py` says which images and
masks), each fill is scored, and the scores pool into rows per model × kind × bucket.

Fills
    Each model fills each (image, mask) case through `Inpainter.fill` with strategy "auto" — the engine
    and defaults of `inpaint fill`, compositing included — in fp32, and the output is rounded to 8 bits
    as `inpaint fill` writes it. Models that sample get seed `seed + case·samples + i` for sample i;
    sample 0 is scored, and `samples` samples give the hole diversity (`plural.hole_diversity`).
Metrics
    `stats.score_fill` (`inpaint_cli.metrics`): PSNR, SSIM, L1, L2 over the whole image and over the
    hole; over the hole the detail score `gradient_ratio`, the patch-statistics `texture_distance` and the
    border's `seam_step`. Models that sample also get `stats.score_samples`: every sample's hole PSNR
    and texture distance, averaged, beside the samples' diversity. Per model × kind × bucket, per model ×
    kind and per model: mean and a t-based 95 % confidence interval, mean ± t(0.975, n−1)·sd/√n (sample
    sd). Same seed ⇒ same masks ⇒ same numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .cases import Case, benchmark_cases, benchmark_images, grid_case_indices, quantize
from .config import ALL, BenchmarkConfig
from .machine import torch_threads
from .results import BenchmarkReport, GridCase, QualityRow
from .stats import DIVERSITY, QUALITY_METRICS, SAMPLE_METRICS, score_fill, score_samples, summarize

if TYPE_CHECKING:
    from ..engine import Inpainter
    from .progress import ProgressCallback


def run_quality(
    config: BenchmarkConfig,
    device: str,
    report: BenchmarkReport,
    broken: set[str],
    progress: ProgressCallback | None,
) -> None:
    """Score every model of `config` into `report`. A model that cannot be loaded is added to `broken`
    (the speed part skips it); one that raises while filling is recorded as a failure."""
    from ..engine import Inpainter
    from ..weights import load_model

    images = benchmark_images(config.data, config.size, config.n_images, config.split)  # type: ignore[arg-type]
    cases = _prepare_cases(config, images, report)
    with torch_threads(config.threads):
        for name in config.models:
            task = f"quality {name}"
            if progress:
                progress(task, 0, len(cases))
            try:
                inpainter = Inpainter(load_model(name), device=device, blend=config.blend)
            except Exception as error:
                broken.add(name)
                report.add_failure(name, "quality", error)
                continue
            try:
                scores, outputs = _fill_and_score(inpainter, images, cases, report, config, task, progress)
            except Exception as error:
                report.add_failure(name, "quality", error)
                continue
            finally:
                del inpainter  # free the model before the next one loads
            _add_model_results(report, name, cases, scores, outputs)


def _prepare_cases(
    config: BenchmarkConfig, images: list[tuple[str, np.ndarray]], report: BenchmarkReport
) -> list[Case]:
    """The cases of `images`, named after their image; the report gets the contact sheet's cases and the
    image and case counts."""
    cases = benchmark_cases(config, len(images))
    for case in cases:
        case.image = images[case.image_index][0]
    grid_indices = grid_case_indices(cases, config.grid_rows, len(images))
    report.grid = [GridCase(cases[i], images[cases[i].image_index][1]) for i in grid_indices]
    report.environment["images"] = len(images)
    report.environment["cases"] = len(cases)
    return cases


def _fill_and_score(
    inpainter: Inpainter,
    images: list[tuple[str, np.ndarray]],
    cases: list[Case],
    report: BenchmarkReport,
    config: BenchmarkConfig,
    task: str,
    progress: ProgressCallback | None,
) -> tuple[list[dict[str, Any]], dict[int, np.ndarray]]:
    """One model's scores, one record per case, and its outputs of the contact sheet's cases."""
    from ..plural import hole_diversity

    sampling = inpainter.contract.can_sample
    shown = {grid.case.index for grid in report.grid}
    scores: list[dict[str, Any]] = []
    outputs: dict[int, np.ndarray] = {}
    for case in cases:
        truth = images[case.image_index][1]
        first_seed = config.seed + case.index * config.samples
        output = _fill(inpainter, truth, case, first_seed)
        record = score_fill(output, truth, case.mask)
        if sampling and config.samples > 1:  # diversity needs two samples
            others = [_fill(inpainter, truth, case, first_seed + i) for i in range(1, config.samples)]
            record[DIVERSITY] = hole_diversity([output, *others], case.mask)
            record.update(score_samples(record, others, truth, case.mask))
        scores.append(record)
        if case.index in shown:
            outputs[case.index] = output
        if progress:
            progress(task, len(scores), len(cases))
    return scores, outputs


def _fill(inpainter: Inpainter, truth: np.ndarray, case: Case, seed: int) -> np.ndarray:
    return quantize(inpainter.fill(truth, case.mask, strategy="auto", seed=seed, source=case.label).rgb)


def _add_model_results(
    report: BenchmarkReport,
    name: str,
    cases: list[Case],
    scores: list[dict[str, Any]],
    outputs: dict[int, np.ndarray],
) -> None:
    """A model that completed the run: its per-case scores, its contact-sheet cells and its rows."""
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
    grid_by_case = {grid.case.index: grid for grid in report.grid}
    for index, output in outputs.items():
        grid_by_case[index].outputs[name] = output
        grid_by_case[index].scores[name] = scores[index]["psnr_hole"]
    report.quality.extend(_quality_rows(name, cases, scores))


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
        names = [name for name in (*QUALITY_METRICS, DIVERSITY, *SAMPLE_METRICS) if name in scores[positions[0]]]
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

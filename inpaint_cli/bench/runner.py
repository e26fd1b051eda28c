"""`run_benchmark`: one benchmark run, from a `BenchmarkConfig` to a `BenchmarkReport` (quality, then speed)."""

from __future__ import annotations

import dataclasses

from .cases import split_file
from .config import BenchmarkConfig, expand_models
from .machine import environment
from .progress import ProgressCallback
from .quality import run_quality
from .results import BenchmarkReport
from .speed import run_speed


def run_benchmark(config: BenchmarkConfig, progress: ProgressCallback | None = None) -> BenchmarkReport:
    """Run the quality and/or speed benchmark of `config.models`. A model that fails (cannot be loaded,
    raises while filling) is recorded in `report.failures` and the others still run."""
    config = dataclasses.replace(config, models=expand_models(config.models))
    config.validate()
    if config.quality and config.split is None:
        found = split_file(config.data)  # type: ignore[arg-type]
        config = dataclasses.replace(config, split=None if found is None else found.name)
    from ..devices import pick_device

    device = pick_device(config.device)
    report = BenchmarkReport(config, environment(device, config))
    broken: set[str] = set()  # models that could not even be loaded: not retried for speed
    if config.quality:
        run_quality(config, device, report, broken, progress)
    if config.speed:
        run_speed(config, device, report, broken, progress)
    return report

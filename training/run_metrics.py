"""Reading a training run's metrics.jsonl: validation curves, the Telea baseline, training time and rate.

Shared by `curves.py` (tables), `plot_curves.py` (PNGs) and `train_gpu.py` (step budgets). A run is either
a run directory (`runs/NAME`, holding metrics.jsonl and config.toml) or a committed copy of one
(`training/campaign/NAME.metrics.jsonl`, its config beside it as NAME.config.toml).

Training time comes from the "train" lines: each holds the steps/second of its logging window, so a window
took (step − previous logged step) / it_per_s seconds. A window's clock runs from the previous "train" line,
so it includes the validation and checkpoint writes that followed that line; it does not include process
start-up. Steps of a crashed or interrupted run that were never logged (between its last "train" line and
the step it resumed from) are charged at the next window's rate.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from pathlib import Path
from typing import Any

from inpaint_cli.errors import InpaintError

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.toml"
COPY_SUFFIX = ".metrics.jsonl"  # training/campaign/NAME.metrics.jsonl


def metrics_path(run: Path) -> Path:
    """The metrics file of a run directory, or `run` itself when it is a metrics file."""
    return run / METRICS_FILE if run.is_dir() else run


def config_path(run: Path) -> Path:
    """Where the run's resolved config is: RUN/config.toml, or NAME.config.toml beside NAME.metrics.jsonl."""
    if run.is_dir():
        return run / CONFIG_FILE
    return run.with_name(run.name.removesuffix(COPY_SUFFIX).removesuffix(".jsonl") + ".config.toml")


def run_name(run: Path) -> str:
    """runs/campaign_v2 → campaign_v2; training/campaign/glcic.metrics.jsonl → glcic."""
    return run.name if run.is_dir() else run.name.removesuffix(COPY_SUFFIX).removesuffix(".jsonl")


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """Every record of the run's metrics.jsonl, in file order; an InpaintError names a missing file or a bad line."""
    path = metrics_path(run)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InpaintError(
            f"{path}: cannot read it ({e.strerror or e}); pass a run directory or a NAME.metrics.jsonl file"
        ) from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InpaintError(
                f"{path}:{number}: not a JSON line ({e.msg}); is this an inpaint metrics.jsonl?"
            ) from None
        if not isinstance(record, dict) or "kind" not in record:
            raise InpaintError(f"{path}:{number}: a record without a 'kind'; is this an inpaint metrics.jsonl?")
        records.append(record)
    return records


def read_config(run: Path) -> dict[str, Any]:
    """The run's resolved config as written by `inpaint train` (flag names as keys), or {} if it has none."""
    from inpaint_cli.weights import read_toml

    path = config_path(run)
    return read_toml(path, "the run config", "; pass the run directory") if path.is_file() else {}


def curve(records: list[dict[str, Any]], metric: str) -> dict[int, float]:
    """step → `metric` of every "val" record that has it (psnr is the shipped generator's: the EMA with `ema`)."""
    return {r["step"]: r[metric] for r in records if r.get("kind") == "val" and metric in r}


def baseline(records: list[dict[str, Any]]) -> dict[str, float]:
    """The first "baseline" record (Telea on the same val cases: telea_psnr, telea_ssim, telea_l1), or {}."""
    return next((r for r in records if r.get("kind") == "baseline"), {})


def best_step(records: list[dict[str, Any]], metric: str = "psnr") -> int | None:
    """The step whose validation scored highest (the first such step): what best.safetensors holds."""
    values = curve(records, metric)
    return max(values, key=lambda step: (values[step], -step)) if values else None


def _windows(records: list[dict[str, Any]]) -> list[tuple[int, int, float]]:
    """(first step, last step, seconds) of each logging window with a rate, in step order."""
    windows, previous = [], 0
    for record in records:
        if record.get("kind") != "train" or not record.get("it_per_s"):
            continue
        step = record["step"]
        if step <= previous:
            raise InpaintError(
                f"train record at step {step} follows step {previous}; the metrics are not in step order "
                f"(two runs in one file?)"
            )
        windows.append((previous, step, (step - previous) / record["it_per_s"]))
        previous = step
    return windows


def train_seconds(records: list[dict[str, Any]]) -> float:
    """Seconds of training implied by the logged it/s of each logging window."""
    return sum(seconds for _, _, seconds in _windows(records))


def cumulative_seconds(records: list[dict[str, Any]]) -> tuple[list[int], list[float]]:
    """(steps, seconds): the training time at step 0 and at every logged "train" step, increasing."""
    steps, seconds = [0], [0.0]
    for _, last, took in _windows(records):
        steps.append(last)
        seconds.append(seconds[-1] + took)
    return steps, seconds


def seconds_at(steps: list[int], seconds: list[float], step: float) -> float:
    """Training time at `step`, linear between the logged steps of `cumulative_seconds` (clamped at its ends)."""
    if step <= steps[0]:
        return seconds[0]
    if step >= steps[-1]:
        return seconds[-1]
    index = bisect_left(steps, step)
    low, high = steps[index - 1], steps[index]
    return seconds[index - 1] + (seconds[index] - seconds[index - 1]) * (step - low) / (high - low)


def core_hours(records: list[dict[str, Any]], steps: list[int], *, threads: int = 1) -> list[float]:
    """Core-hours spent up to each of `steps`: training seconds × the run's threads / 3600."""
    if threads < 1:
        raise InpaintError(f"threads must be at least 1 (got {threads})")
    logged, seconds = cumulative_seconds(records)
    return [seconds_at(logged, seconds, step) * threads / 3600.0 for step in steps]


def steady_rate(records: list[dict[str, Any]], *, skip: int = 1) -> float | None:
    """Steps per second over the logging windows after the first `skip` (start-up: cudnn autotuning, cold
    caches), or over all of them when there are no more; None when no window has a rate."""
    windows = _windows(records)
    if len(windows) > skip:
        windows = windows[skip:]
    steps = sum(last - first for first, last, _ in windows)
    seconds = sum(took for _, _, took in windows)
    return steps / seconds if seconds > 0 else None


def lr_drops(records: list[dict[str, Any]], key: str = "lr_generator") -> list[tuple[int, float, float]]:
    """(step, old, new) wherever the logged learning rate fell: `--resume --lr` decays. Rises (warm-up) are
    left out. `step` is the first "train" line logged at the new rate; across a join ("init", join_runs) it is
    the join's step, and the new run's rate is the one its warm-up (if any) rose to."""
    drops: list[tuple[int, float, float]] = []
    previous: float | None = None
    carried: float | None = None  # the rate before a join, until the new run's warm-up has levelled off
    joined_at = 0
    for record in records:
        if record.get("kind") == "init":
            carried, previous, joined_at = previous, None, record["step"]
            continue
        if record.get("kind") != "train" or key not in record:
            continue
        rate = record[key]
        if carried is not None:
            if previous is None or rate > previous * (1 + 1e-9):
                previous = rate  # the new run is still warming up
                continue
            if previous < carried * (1 - 1e-9):
                drops.append((joined_at, carried, previous))
            carried = None
        if previous is not None and rate < previous * (1 - 1e-9):
            drops.append((record["step"], previous, rate))
        previous = rate
    return drops


def join_runs(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One lineage from two runs, where `second` was started with `--init` from `first`'s best checkpoint (what
    its best.safetensors held): first's records up to its best step, then second's with their steps shifted by
    it, so steps count every update the final weights had and the time axis runs on. First's steps after its
    best did not shape the weights and are left out."""
    at_step = best_step(first)
    if at_step is None:
        raise InpaintError("the first run has no validation, so there is no best step to continue from")
    joined = [r for r in first if r.get("step", 0) <= at_step]
    joined.append({"kind": "init", "step": at_step})
    for record in second:
        if record.get("kind") == "baseline":
            continue  # the same val cases: the first run's baseline stands
        joined.append({**record, "step": record["step"] + at_step} if "step" in record else dict(record))
    return joined

"""Validation curves of training runs side by side, as a Markdown table (val hole PSNR by step, Telea beside).

    python training/curves.py runs/probe_paper runs/probe_small [--every 100] [--metric psnr]
    python training/curves.py training/campaign/*.metrics.jsonl

Reads each run's metrics.jsonl ("val" lines; "baseline" for Telea on the same cases) through run_metrics.py;
a run is its directory or a NAME.metrics.jsonl copy. With `ema` set, the run's "psnr" is the averaged
generator's and "raw_psnr" the raw one's: `--metric raw_psnr` shows it. The last column is the wall time of
each run's steps (from its training log's it/s). `plot_curves.py` draws the same curves against core-hours.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from run_metrics import baseline, curve, read_metrics, run_name, train_seconds

from inpaint_cli.errors import InpaintError


def table(runs: list[Path], *, every: int, metric: str) -> str:
    """The Markdown table: one row per run, a column per step that is a multiple of `every`."""
    metrics = {run: read_metrics(run) for run in runs}
    curves = {run: curve(records, metric) for run, records in metrics.items()}
    steps = sorted({s for c in curves.values() for s in c if s % every == 0})
    lines = [
        f"| run | Telea | {' | '.join(str(s) for s in steps)} | best (step) | train time |",
        f"|---|---|{'---|' * len(steps)}---|---|",
    ]
    for run, values in curves.items():
        telea = baseline(metrics[run]).get(f"telea_{metric.removeprefix('raw_')}")
        cells = [f"{values[s]:.2f}" if s in values else "" for s in steps]
        best_step = max(values, key=values.get) if values else None
        best = f"{values[best_step]:.2f} ({best_step})" if best_step is not None else ""
        minutes = train_seconds(metrics[run]) / 60
        telea_cell = f"{telea:.2f}" if telea is not None else ""
        lines.append(f"| {run_name(run)} | {telea_cell} | {' | '.join(cells)} | {best} | {minutes:.0f} min |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or NAME.metrics.jsonl files")
    parser.add_argument("--every", type=int, default=100, help="show steps that are multiples of this")
    parser.add_argument("--metric", default="psnr", help="psnr, ssim, l1, raw_psnr, ...")
    args = parser.parse_args(argv)
    try:
        print(table(args.runs, every=args.every, metric=args.metric))
    except InpaintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

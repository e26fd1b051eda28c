"""Validation curves of training runs side by side, as a Markdown table (val hole PSNR by step, Telea beside).

    python training/curves.py runs/probe_paper runs/probe_small [--every 100] [--metric psnr]

Reads each run's metrics.jsonl ("val" lines; "baseline" for Telea on the same cases). With `ema` set, the
run's "psnr" is the averaged generator's and "raw_psnr" the raw one's: `--metric raw_psnr` shows it.
The last column is the wall time of each run's last step (from its training log's it/s).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def curve(records: list[dict], metric: str) -> dict[int, float]:
    return {r["step"]: r[metric] for r in records if r.get("kind") == "val" and metric in r}


def train_seconds(records: list[dict]) -> float:
    """Seconds of training implied by the logged it/s of each logging window."""
    seconds, previous = 0.0, 0
    for record in records:
        if record.get("kind") == "train" and record.get("it_per_s"):
            seconds += (record["step"] - previous) / record["it_per_s"]
            previous = record["step"]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--every", type=int, default=100, help="show steps that are multiples of this")
    parser.add_argument("--metric", default="psnr", help="psnr, ssim, l1, raw_psnr, ...")
    args = parser.parse_args()
    metrics = {run: read_metrics(run) for run in args.runs}
    curves = {run: curve(records, args.metric) for run, records in metrics.items()}
    steps = sorted({s for c in curves.values() for s in c if s % args.every == 0})
    print(f"| run | Telea | {' | '.join(str(s) for s in steps)} | best (step) | train time |")
    print(f"|---|---|{'---|' * len(steps)}---|---|")
    for run, values in curves.items():
        baseline = next((r for r in metrics[run] if r.get("kind") == "baseline"), {})
        telea = baseline.get(f"telea_{args.metric.removeprefix('raw_')}")
        cells = [f"{values[s]:.2f}" if s in values else "" for s in steps]
        best_step = max(values, key=values.get) if values else None
        best = f"{values[best_step]:.2f} ({best_step})" if best_step is not None else ""
        minutes = train_seconds(metrics[run]) / 60
        telea_cell = f"{telea:.2f}" if telea is not None else ""
        print(f"| {run.name} | {telea_cell} | {' | '.join(cells)} | {best} | {minutes:.0f} min |")


if __name__ == "__main__":
    main()

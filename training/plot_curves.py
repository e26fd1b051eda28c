"""Validation curves as PNGs: val hole PSNR (and texture distance) against core-hours, Telea's line, the
shipped step marked.

    python training/plot_curves.py training/campaign/*.metrics.jsonl --out docs/curves [--threads 1]
    python training/plot_curves.py runs/campaign_v2 --out docs/curves

One PNG per run (OUT/NAME.png, written atomically). x: core-hours, the cumulative training time from the logged it/s
of each window (see run_metrics.py) times the threads the run used (`--threads`; 1 for every run behind the bundled
checkpoints, which ran with OMP_NUM_THREADS=1); the top axis shows the steps. y: the validation hole PSNR of the
shipped generator (the EMA when the run set `ema`; the raw generator's thinner, when logged). The dashed line is
Telea on the same validation cases (the run's "baseline" record); the star is the shipped step, the val-best step
that best.safetensors holds; dotted verticals mark where `--resume --lr` lowered the rate. The title comes from the
run's config (architecture, width settings, crop, batch). Runs that logged the hole's texture distance
(`metrics.texture_distance`, lower is better) get a second panel with it under the PSNR, on the same core-hour axis,
with Telea's texture dashed: an adversarial phase should move it down while PSNR holds.

Needs matplotlib (`pip install matplotlib`, or the `plot` extra).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path
from typing import Any

from run_metrics import (
    baseline,
    best_step,
    core_hours,
    cumulative_seconds,
    curve,
    lr_drops,
    read_config,
    read_metrics,
    run_name,
)

from inpaint_cli.errors import InpaintError

FIGSIZE = (8.0, 4.8)  # inches
DPI = 100  # FIGSIZE x DPI = 800 x 480 px
ARCH_NAMES = {
    "context_encoder": "Context Encoder",
    "glcic": "GLCIC",
    "deepfill_v1": "DeepFill v1",
    "deepfill_v2": "DeepFill v2",
    "piigan": "PiiGAN",
}


def title_of(name: str, config: dict[str, Any]) -> str:
    """'DeepFill v2, cnum 32 (campaign_v2): 128² crops, batch 8' from the run's config; the name alone without one."""
    arch = config.get("model")
    if not arch:
        return name
    widths = ", ".join(f"{key} {value}" for key, value in (config.get("model_config") or {}).items())
    head = f"{ARCH_NAMES.get(arch, arch)}, {widths or 'paper width'} ({name})"
    size, batch = config.get("size"), config.get("batch")
    return f"{head}: {size}² crops, batch {batch}" if size and batch else head


def step_axis(axes: Any, records: list[dict[str, Any]], threads: int) -> None:
    """The steps along the top axis, through the same step ↔ core-hour mapping (linear past the last logged
    step at the last window's rate, so the ticks keep their spacing in the margin)."""
    import numpy as np

    logged, seconds = cumulative_seconds(records)
    if len(logged) < 2:
        return
    hours = [s * threads / 3600.0 for s in seconds]
    slope = (logged[-1] - logged[-2]) / (hours[-1] - hours[-2])  # steps per core-hour at the end
    far = 10.0 * hours[-1] + 1.0
    hours_ext = np.array([*hours, hours[-1] + far])
    steps_ext = np.array([*logged, logged[-1] + far * slope], dtype=float)
    top = axes.secondary_xaxis(
        "top", functions=(lambda x: np.interp(x, hours_ext, steps_ext), lambda x: np.interp(x, steps_ext, hours_ext))
    )
    top.set_xlabel("step", fontsize=9)
    top.tick_params(labelsize=8)


def plot_run(run: Path, out_dir: Path, *, threads: int = 1) -> Path:
    """Draw one run's curve into OUT_DIR/NAME.png (atomically); returns the path."""
    from matplotlib.figure import Figure

    from inpaint_cli.io import write_atomic

    records = read_metrics(run)
    name = run_name(run)
    ema = curve(records, "psnr")
    if not ema:
        raise InpaintError(f"{run}: no validation records; train with --val-list (or --val) and --val-every")

    texture = curve(records, "texture")
    figure = Figure(figsize=(FIGSIZE[0], FIGSIZE[1] * (1.6 if texture else 1.0)), dpi=DPI)
    if texture:
        axes, texture_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        axes, texture_axes = figure.subplots(), None
    plot_metric(axes, records, "psnr", threads, color="tab:blue", label="val hole PSNR (shipped generator)",
                raw_label="raw generator (before averaging)",
                telea_label="Telea, same val cases: {:.2f} dB")  # fmt: skip
    for step, old, new in lr_drops(records):
        (at,) = core_hours(records, [step], threads=threads)
        axes.axvline(at, color="tab:green", linestyle=":", linewidth=1.0)
        axes.annotate(f"lr {old:g} → {new:g}", (at, 0.04), xycoords=("data", "axes fraction"), xytext=(-3, 0),
                      textcoords="offset points", rotation=90, ha="right", va="bottom", fontsize=8,
                      color="tab:green")  # fmt: skip
    shipped = best_step(records)
    (shipped_hours,) = core_hours(records, [shipped], threads=threads)
    axes.plot([shipped_hours], [ema[shipped]], marker="*", markersize=13, color="tab:orange", linestyle="none",
              label=f"shipped: step {shipped}, {ema[shipped]:.2f} dB")  # fmt: skip

    xlabel = f"core-hours (training time from the logged it/s × {threads} thread{'s' * (threads > 1)})"
    if texture_axes is not None:
        plot_texture(texture_axes, records, texture, shipped, threads)
        texture_axes.set_xlabel(xlabel)
    else:
        axes.set_xlabel(xlabel)
    axes.set_ylabel("validation hole PSNR (dB)")
    axes.set_title(title_of(name, read_config(run)), fontsize=11)
    axes.grid(True, alpha=0.3)
    axes.set_xlim(left=0.0)
    axes.legend(loc="best", fontsize=8)
    step_axis(axes, records, threads)
    figure.tight_layout()

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    path = out_dir / f"{name}.png"
    write_atomic(path, buffer.getvalue())
    return path


def plot_metric(
    axes: Any,
    records: list[dict[str, Any]],
    metric: str,
    threads: int,
    *,
    color: str,
    label: str,
    raw_label: str,
    telea_label: str,
) -> None:
    """One validation metric against core-hours: the shipped generator's curve, the raw generator's
    (`raw_METRIC`) thinner, Telea's (`telea_METRIC` of the baseline record) dashed, labelled with
    `telea_label` formatted with its value."""
    values = curve(records, metric)
    steps = sorted(values)
    axes.plot(core_hours(records, steps, threads=threads), [values[s] for s in steps], marker="o", markersize=2.5,
              linewidth=1.6, color=color, label=label)  # fmt: skip
    raw = curve(records, f"raw_{metric}")
    if raw:
        raw_steps = sorted(raw)
        axes.plot(core_hours(records, raw_steps, threads=threads), [raw[s] for s in raw_steps], linewidth=0.8,
                  color="tab:gray", alpha=0.7, label=raw_label)  # fmt: skip
    telea = baseline(records).get(f"telea_{metric}")
    if telea is not None:
        axes.axhline(telea, color="tab:red", linestyle="--", linewidth=1.2, label=telea_label.format(telea))


def plot_texture(
    axes: Any, records: list[dict[str, Any]], texture: dict[int, float], shipped: int, threads: int
) -> None:
    """The texture-distance panel: the shipped generator's, the raw one's thinner, Telea's dashed."""
    plot_metric(axes, records, "texture", threads, color="tab:purple",
                label="val hole texture distance (shipped generator)", raw_label="raw generator",
                telea_label="Telea: {:.0f}")  # fmt: skip
    if shipped in texture:
        (at,) = core_hours(records, [shipped], threads=threads)
        axes.plot([at], [texture[shipped]], marker="*", markersize=13, color="tab:orange", linestyle="none")
    axes.set_ylabel("texture distance (lower = better)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories or NAME.metrics.jsonl files")
    parser.add_argument("--out", type=Path, default=Path("docs/curves"), help="folder for the PNGs")
    parser.add_argument("--threads", type=int, default=1, help="threads each run trained with (OMP_NUM_THREADS)")
    args = parser.parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("error: plot_curves.py needs matplotlib: pip install matplotlib (or the 'plot' extra)", file=sys.stderr)
        return 1
    try:
        for run in args.runs:
            print(plot_run(run, args.out, threads=args.threads))
    except InpaintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`inpaint train`, `inpaint benchmark` and `inpaint masks generate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ..errors import InpaintError
from .fill import parse_settings
from .output import emit, err, fail, labelled
from .root import app, masks_app

# -- train --------------------------------------------------------------------------------------------


@app.command()
def train(
    model: Annotated[str | None, typer.Option(help="Architecture to train (inpaint models list: train yes).")] = None,
    data: Annotated[str | None, typer.Option(help="Folder of training images (searched recursively).")] = None,
    out: Annotated[str | None, typer.Option("--out", help="Run directory: checkpoints, metrics, previews.")] = None,
    val: Annotated[str | None, typer.Option(help="Folder of validation images.")] = None,
    val_list: Annotated[
        str | None, typer.Option("--val-list", help="File naming validation images in --data (not trained on).")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Square crop size (default: the recipe's).")] = None,
    short_side: Annotated[
        int | None,
        typer.Option("--short-side", help="Resize images to this short side (px) before cropping."),
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size per process (default: the recipe's).")] = None,
    steps: Annotated[int | None, typer.Option(help="Training steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default: the paper's).")] = None,
    masks: Annotated[str | None, typer.Option(help="paper, freeform, box or mixed.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = None,
    amp: Annotated[bool | None, typer.Option("--amp/--no-amp", help="bf16 autocast.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: data order, masks and initial weights.")] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loading threads (0 = in process).")] = None,
    init: Annotated[str | None, typer.Option(help="Generator checkpoint to fine-tune from.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out exactly.")] = False,
    val_every: Annotated[int | None, typer.Option("--val-every", help="Validate every N steps.")] = None,
    save_every: Annotated[int | None, typer.Option("--save-every", help="Checkpoint every N steps.")] = None,
    log_every: Annotated[int | None, typer.Option("--log-every", help="Log losses every N steps.")] = None,
    preview_every: Annotated[
        int | None, typer.Option("--preview-every", help="Write a preview grid every N steps (at validation).")
    ] = None,
    val_count: Annotated[int | None, typer.Option("--val-count", help="Validation cases (default 16).")] = None,
    balance: Annotated[
        bool | None,
        typer.Option("--balance/--no-balance", help="Draw each top-level folder of --data equally often."),
    ] = None,
    synthetic: Annotated[
        float | None,
        typer.Option(help="Share of samples that are synthetic flat colours and gradients (default 0)."),
    ] = None,
    snapshot_every: Annotated[
        int | None,
        typer.Option("--snapshot-every", help="Keep the generator of every Nth-step validation in snapshots/."),
    ] = None,
    model_config: Annotated[
        list[str] | None, typer.Option("--set", help="Architecture config KEY=VALUE, e.g. cnum=32 (repeatable).")
    ] = None,
    recipe_config: Annotated[
        list[str] | None,
        typer.Option(
            "--recipe",
            help="Training recipe setting KEY=VALUE, e.g. gan_weight=0.1, recon_steps=500, hole_weight=6, "
            "ema=0.999, warmup_steps=200 (repeatable).",
        ),
    ] = None,
    config: Annotated[str | None, typer.Option("--config", help="TOML file whose keys mirror these flags.")] = None,
    progress: Annotated[bool, typer.Option(help="Progress bar on stderr.")] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run summary as JSON on stdout (one line per process).")
    ] = False,
) -> None:
    """Train a model with its paper's recipe; under torchrun, on several processes or machines.

    torchrun --nproc-per-node 2 -m inpaint_cli train --model deepfill_v2 --data photos/ --out runs/v2
    """
    from ..train import train as run_training
    from ..train.config import config_from_sources

    flags = {
        "model": model, "data": data, "out": out, "val": val, "val_list": val_list, "size": size,
        "short_side": short_side, "batch": batch, "steps": steps, "lr": lr, "masks": masks, "device": device,
        "amp": amp, "seed": seed,
        "workers": workers, "init": init, "val_every": val_every, "save_every": save_every,
        "log_every": log_every, "preview_every": preview_every, "val_count": val_count,
        "balance": balance, "synthetic": synthetic, "snapshot_every": snapshot_every,
        "resume": resume or None,  # a switch without --no-resume: off means "not given"
    }  # fmt: skip
    try:
        flags["model_config"] = parse_settings(model_config)
        flags["recipe_config"] = parse_settings(recipe_config, flag="--recipe")
        summary = run_training(config_from_sources(config, flags), progress=progress)
    except InpaintError as error:
        raise fail(error) from None
    if as_json:  # every rank: the hashes prove the processes ended with the same weights
        # One write per line: under torchrun every rank shares this stdout, and print's separate write of
        # the newline let two ranks' lines interleave.
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        sys.stdout.flush()
    elif summary.get("rank", 0) == 0:
        print(summary["paths"].get("best", summary["paths"]["last"]), flush=True)
    if summary.get("rank", 0) == 0:
        err.print(next_steps_hint(summary), highlight=False, markup=False)


def next_steps_hint(summary: dict) -> str:
    """What a finished run can do next: export the checkpoint, or train on."""
    import shlex

    run = summary["paths"]["run"]
    checkpoint = summary["paths"].get("best", summary["paths"]["last"])
    copy = f"{Path(run).name}.safetensors"
    return (
        f"next: `inpaint models export {shlex.quote(checkpoint)} --out {shlex.quote(copy)}` writes a small copy "
        f"and its catalog entry; `inpaint train --out {shlex.quote(run)} --resume --steps {2 * summary['steps']}` "
        f"trains on"
    )


# -- benchmark and masks ------------------------------------------------------------------------------


@masks_app.command("generate")
def masks_generate(
    out_dir: Annotated[str, typer.Argument(help="Folder for mask_NNNN.png files and manifest.json.")],
    kind: Annotated[str, typer.Option(help="strokes (DeepFill v2 brush strokes), box or mixed.")] = "strokes",
    ratio: Annotated[str, typer.Option(help="Hole share of the image, per cent LOW-HIGH.")] = "15-30",
    n: Annotated[int, typer.Option("--n", min=1, help="Number of masks.")] = 100,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "256x256",
    seed: Annotated[int, typer.Option(help="The same seed writes byte-identical masks.")] = 0,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the mask set in OUT_DIR (default: refuse a non-empty one).")
    ] = False,
) -> None:
    """Write N masks whose hole ratio lies in a bucket (rejection-sampled), with a manifest."""
    from ..masks import generate_mask_set, parse_ratio, parse_size

    try:
        low, high = parse_ratio(ratio)
        width, height = parse_size(size)
        records = generate_mask_set(out_dir, kind, low, high, n, width, height, seed, overwrite=overwrite)
    except InpaintError as error:
        raise fail(error) from None
    mean = sum(record["hole_ratio"] for record in records) / len(records)
    err.print(f"{len(records)} {kind} masks, mean hole {mean:.1%}", highlight=False, markup=False)
    emit(out_dir)


@app.command()
def benchmark(
    models: Annotated[str, typer.Option(help="Comma-separated names, paths or 'all' (every model that can fill).")],
    data: Annotated[
        str | None, typer.Option(help="Folder of ground-truth images (its test.txt, else val.txt, is scored).")
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="List of images in --data to score (default: test.txt, else val.txt).")
    ] = None,
    masks: Annotated[str | None, typer.Option("--masks", help="Use this mask set instead of buckets × kinds.")] = None,
    buckets: Annotated[str, typer.Option(help="Hole-ratio buckets, per cent.")] = "5-15,15-30,30-45,45-60",
    kinds: Annotated[str, typer.Option(help="Mask kinds: strokes, box, mixed.")] = "strokes,box",
    size: Annotated[int, typer.Option(min=16, help="Quality: images are centre-cropped to SIZE².")] = 256,
    n_images: Annotated[int | None, typer.Option("--n-images", min=1, help="Use at most N images.")] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same masks and same quality numbers.")] = 0,
    speed_sizes: Annotated[str, typer.Option(help="Square sizes for the speed part.")] = "256,512,1024",
    batch: Annotated[int, typer.Option(min=1, help="Images per call for throughput.")] = 4,
    half: Annotated[bool, typer.Option("--half", help="Also time fp16 (GPU) / bf16 (CPU).")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    repeats: Annotated[int, typer.Option(min=1, help="Timed fills per speed case.")] = 5,
    quality: Annotated[bool, typer.Option(help="Run the quality part.")] = True,
    speed: Annotated[bool, typer.Option(help="Run the speed part.")] = True,
    json_out: Annotated[str | None, typer.Option("--json", help="Write everything as JSON ('-' = stdout).")] = None,
    csv_out: Annotated[str | None, typer.Option("--csv", help="Write one number per row as CSV.")] = None,
    markdown_out: Annotated[str | None, typer.Option("--markdown", help="Write Markdown tables.")] = None,
    grid: Annotated[str | None, typer.Option("--grid", help="Contact sheet: cases × (truth, input, models).")] = None,
) -> None:
    """Quality per hole-size bucket and speed of several models, side by side, in one run."""
    import shlex

    from ..bench import BenchmarkConfig, render_tables, rich_progress, run_benchmark, write_reports
    from ..host_memory import keep_freed_memory

    keep_freed_memory()  # as `inpaint fill` does (the speed workers too)
    try:
        config = BenchmarkConfig.from_flags(
            models=models,
            data=data,
            split=split,
            masks_dir=masks,
            buckets=buckets,
            kinds=kinds,
            size=size,
            n_images=n_images,
            seed=seed,
            speed_sizes=speed_sizes,
            batch=batch,
            half=half,
            device=device,
            repeats=repeats,
            quality=quality,
            speed=speed,
            command=shlex.join(["inpaint", *sys.argv[1:]]),
        )
        with rich_progress(err) as progress:
            report = run_benchmark(config, progress)
        tables_to = err if err.is_terminal else Console(stderr=True, width=220)  # logs: keep rows whole
        for table in render_tables(report):
            tables_to.print(table)
        write_reports(report, json_path=json_out, csv_path=csv_out, markdown_path=markdown_out, grid_path=grid)
    except InpaintError as error:
        raise fail(error) from None
    for failure in report.failures:
        err.print(labelled("failed:", "red", f"{failure.model} ({failure.stage}): {failure.error}"), highlight=False)
    if report.failures:
        raise typer.Exit(1)

"""`inpaint train`: run a training recipe, print the checkpoint it wrote and what to do next."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import InpaintError
from .options import parse_settings
from .output import err, fail
from .root import app


@app.command()
def train(
    ctx: typer.Context,
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

    try:
        flags = train_flags(ctx.params)
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


# The options of `train` that say how to run it; every other option is a TrainConfig field of the same name.
_RUN_OPTIONS = frozenset({"config", "progress", "as_json"})


def train_flags(params: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig values given on the command line (None: not given), from `train`'s parsed options:
    the --set / --recipe tables parsed, a --resume not given as None."""
    from ..train.config import FLAG_NAMES, TABLE_FIELDS

    flags = {name: value for name, value in params.items() if name not in _RUN_OPTIONS}
    for name in TABLE_FIELDS:
        flags[name] = parse_settings(flags[name], flag=f"--{FLAG_NAMES[name]}")
    flags["resume"] = flags["resume"] or None  # a switch without --no-resume: off means "not given"
    return flags


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

"""The `inpaint` command line: parse arguments, call the library, print.

stdout carries data (output paths, tables, --json lines, PNG bytes for `-`); stderr carries progress,
warnings and errors for humans. torch is imported only inside commands that run a model, so `--help`
stays instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Annotated

import typer
from rich.console import Console

from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, InpaintError, UsageError

app = typer.Typer(
    name="inpaint",
    help="Fill holes in images with the classic inpainting GANs and OpenCV's fills; train and benchmark them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion, as Typer provides them
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, inspect, download, verify and export checkpoints.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console(soft_wrap=True)  # data
err = Console(stderr=True, soft_wrap=True)  # humans; soft_wrap keeps each error on one line

log = logging.getLogger("inpaint_cli")


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelname.lower()
        err.print(f"[yellow]{level}:[/] {record.getMessage()}", highlight=False, markup=True)


def _setup_logging(verbose: bool = False) -> None:
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def _fail(error: InpaintError) -> typer.Exit:
    _report(error)
    return typer.Exit(error.exit_code)


def _report(error: InpaintError) -> None:
    err.print(f"[red]error:[/] {error.message}", highlight=False)


def _emit(line: str) -> None:
    """One line of data on stdout. When its reader has gone (`| head -3`) the rest of the data is dropped
    quietly and the work goes on: a closed stdout is neither an error nor a reason to stop filling."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


def _emit_rich(renderable) -> None:
    """A rich table (or markup text) on stdout, rendered here and written by `_emit` (rich's own handling
    of a closed pipe would exit 1 without a word)."""
    # Data on stdout is never wrapped or cut: a pipe gets the table at its natural width.
    console = out if out.is_terminal else Console(width=1000)
    with console.capture() as captured:
        console.print(renderable, highlight=False)
    _emit(captured.get().rstrip("\n"))


def _drop_stdout() -> None:
    """Send whatever is still written to stdout (and Python's flush at exit) to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (in-process capture): nothing to do
        pass


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"inpaint {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _setup_logging(verbose)


# -- fill ---------------------------------------------------------------------------------------------


@app.command()
def fill(
    images: Annotated[list[str], typer.Argument(help="Image files or directories; '-' reads one image from stdin.")],
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask",
            "-m",
            help="Mask file (used for every image) or directory (paired by file stem). White = hole. 'alpha': "
            "the image's transparent pixels (the default for an image that has some).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file, directory, or '-' (PNG on stdout). Default: <stem>_filled.png beside each input "
            "(stdout for stdin).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing <stem>_filled.png (default: refuse).")
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Checkpoint name, architecture, .safetensors path or hf:// URL (default: weights.toml's).",
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Model config KEY=VALUE, e.g. postprocess=poisson for glcic (repeatable)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    half: Annotated[
        bool, typer.Option("--half", help="fp16 on GPUs, bf16 on CPUs (falls back to fp32 on NaN/Inf).")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for models that sample.")] = None,
    strategy: Annotated[
        str, typer.Option(help="auto, full, crop (around each hole) or resize (large images).")
    ] = "auto",
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Black = hole instead of white.")] = False,
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Resize a mask of another size to the image (nearest).")
    ] = False,
    dilate: Annotated[int, typer.Option(min=0, help="Grow the hole by N pixels.")] = 0,
    quality: Annotated[int | None, typer.Option(min=1, max=100, help="JPEG/WebP quality (default 95).")] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(min=1, help="Refuse larger images (decompression-bomb guard; default 120 MP)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per output on stdout.")] = False,
) -> None:
    """Fill the masked holes of one or more images."""
    from .engine import check_strategy
    from .fill import STDIO, FillOptions, plan_jobs
    from .io import refuse_terminal_stdout

    try:
        jobs = plan_jobs(images, mask, output, overwrite=overwrite)
        if any(job.output == STDIO for job in jobs):
            if as_json:
                raise UsageError("--json and PNG on stdout would mix; give --out a file or directory")
            refuse_terminal_stdout()
        options = FillOptions(
            invert_mask=invert_mask,
            resize_mask=resize_mask,
            dilate=dilate,
            strategy=check_strategy(strategy),
            seed=seed,
            quality=quality,
            max_pixels=max_pixels,
        )
        inpainter, model_name = _make_inpainter(model, device, half, settings)
    except InpaintError as error:
        raise _fail(error) from None
    failures = _run_fill_jobs(jobs, inpainter, model_name, options, as_json)
    if failures:
        if len(jobs) > 1:
            err.print(
                f"[red]{len(failures)} of {len(jobs)} image(s) failed[/]; the others were written",
                highlight=False,
            )
        raise typer.Exit(EXIT_FAILURE)  # the work had started: whatever went wrong is a runtime failure


def _parse_settings(settings: list[str] | None, flag: str = "--set") -> dict:
    """KEY=VALUE pairs; values are JSON when they parse as JSON (numbers, true, lists), else text."""
    parsed = {}
    for item in settings or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {item}: expected KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def _make_inpainter(model: str | None, device: str, half: bool, settings: list[str] | None = None):
    from .convert.licence import warn_if_non_commercial
    from .devices import pick_device
    from .engine import Inpainter
    from .weights import load_model

    target = pick_device(device)
    loaded = load_model(model, device=target, overrides=_parse_settings(settings))
    warn_if_non_commercial(model, loaded.checkpoint_name)
    return Inpainter(loaded, device=target, half=half), loaded.checkpoint_name


def _run_fill_jobs(jobs, inpainter, model_name: str, options, as_json: bool) -> list[InpaintError]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .fill import STDIO, fill_files

    failures: list[InpaintError] = []
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=len(jobs) < 2 or not err.is_terminal,  # a bar is for people, not for logs
    )
    with progress:
        task = progress.add_task("filling", total=len(jobs))
        for job, outcome in fill_files(inpainter, jobs, options):
            if isinstance(outcome, InpaintError):
                failures.append(outcome)
                err.print(f"[red]error:[/] {outcome.message}", highlight=False)
            else:
                if as_json:
                    record = {
                        "input": job.image,
                        "mask": job.mask or "alpha",  # None: the alpha was the mask
                        "output": job.output,
                        "model": model_name,
                        "seconds": round(outcome.seconds, 4),
                        "strategy": outcome.strategy,
                        "precision": outcome.precision,
                        "hole_fraction": round(outcome.hole_fraction, 6),
                        "width": outcome.width,
                        "height": outcome.height,
                    }
                    _emit(json.dumps(record))
                elif job.output != STDIO:
                    _emit(job.output)
            progress.advance(task)
    return failures


# -- plural -------------------------------------------------------------------------------------------


@app.command()
def plural(
    image: Annotated[str, typer.Argument(help="Image file, or '-' for stdin.")],
    mask: Annotated[str, typer.Option("--mask", "-m", help="Mask file (white = hole).")],
    n: Annotated[int, typer.Option("--n", min=1, max=256, help="Number of samples.")] = 8,
    seed: Annotated[int | None, typer.Option(help="Sample i uses seed + i (default: a random seed, reported).")] = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--out-dir", help="Write <stem>_<seed>.png per sample (default: <stem>_samples/)."),
    ] = None,
    grid: Annotated[
        str | None, typer.Option("--grid", help="Contact sheet (input, mask, samples); '-' = stdout.")
    ] = None,
    model: Annotated[str, typer.Option("--model", help="A model that can sample.")] = "piigan",
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Model config KEY=VALUE, e.g. postprocess=poisson for glcic (repeatable)."),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    half: Annotated[bool, typer.Option("--half", help="fp16 on GPUs, bf16 on CPUs.")] = False,
    strategy: Annotated[str, typer.Option(help="auto, full, crop or resize.")] = "auto",
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Black = hole instead of white.")] = False,
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Resize a mask of another size (nearest).")
    ] = False,
    dilate: Annotated[int, typer.Option(min=0, help="Grow the hole by N pixels.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per sample, then one with the diversity.")
    ] = False,
) -> None:
    """Draw N different fills of the same hole from a model that samples (PiiGAN)."""
    from .engine import check_strategy
    from .fill import STDIO, FillOptions
    from .io import refuse_terminal_stdout
    from .plural import check_can_sample, default_samples_dir, draw_seed, plural_files

    try:
        options = FillOptions(
            invert_mask=invert_mask, resize_mask=resize_mask, dilate=dilate, strategy=check_strategy(strategy)
        )
        if grid == STDIO and as_json:
            raise UsageError("--json and a grid on stdout would mix; give --grid a file")
        if grid == STDIO:
            refuse_terminal_stdout()
        inpainter, model_name = _make_inpainter(model, device, half, settings)
        check_can_sample(inpainter, model_name)
        if seed is None:
            seed = draw_seed()
            err.print(f"seed {seed} (pass --seed {seed} to reproduce)", highlight=False)
        if out_dir is None:
            out_dir = default_samples_dir(image, grid)
        outcome = plural_files(inpainter, image, mask, n=n, seed=seed, options=options, out_dir=out_dir, grid=grid)
    except InpaintError as error:
        raise _fail(error) from None
    for index, (output, result) in enumerate(zip(outcome.outputs, outcome.results, strict=True)):
        if as_json:
            record = {"sample": index, "seed": seed + index, "output": output, "model": model_name}
            _emit(json.dumps({**record, "seconds": round(result.seconds, 4)}))
        elif output is not None:
            _emit(output)
    if as_json:
        diversity = None if outcome.diversity is None else round(outcome.diversity, 6)
        _emit(json.dumps({"diversity": diversity, "n": n, "seed": seed, "grid": grid}))
    else:
        if grid not in (None, STDIO):
            _emit(grid)
        shown = "n/a (one sample)" if outcome.diversity is None else f"{outcome.diversity:.4f}"
        err.print(f"diversity (mean pairwise L1 over the hole, 0-1 scale): {shown}", highlight=False)


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
    from .train import train as run_training
    from .train.config import config_from_sources

    flags = {
        "model": model, "data": data, "out": out, "val": val, "val_list": val_list, "size": size,
        "short_side": short_side, "batch": batch, "steps": steps, "lr": lr, "masks": masks, "device": device,
        "amp": amp, "seed": seed,
        "workers": workers, "init": init, "val_every": val_every, "save_every": save_every,
        "log_every": log_every, "preview_every": preview_every, "val_count": val_count,
        "resume": resume or None,  # a switch without --no-resume: off means "not given"
    }  # fmt: skip
    try:
        flags["model_config"] = _parse_settings(model_config)
        flags["recipe_config"] = _parse_settings(recipe_config, flag="--recipe")
        summary = run_training(config_from_sources(config, flags), progress=progress)
    except InpaintError as error:
        raise _fail(error) from None
    if as_json:  # every rank: the hashes prove the processes ended with the same weights
        # One write per line: under torchrun every rank shares this stdout, and print's separate write of
        # the newline let two ranks' lines interleave.
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        sys.stdout.flush()
    elif summary.get("rank", 0) == 0:
        print(summary["paths"].get("best", summary["paths"]["last"]), flush=True)


# -- benchmark and masks ------------------------------------------------------------------------------

masks_app = typer.Typer(help="Seeded hole masks for benchmarks and experiments.", no_args_is_help=True)
app.add_typer(masks_app, name="masks")


@masks_app.command("generate")
def masks_generate(
    out_dir: Annotated[str, typer.Argument(help="Folder for mask_NNNN.png files and manifest.json.")],
    kind: Annotated[str, typer.Option(help="strokes (DeepFill v2 brush strokes), box or mixed.")] = "strokes",
    ratio: Annotated[str, typer.Option(help="Hole share of the image, per cent LOW-HIGH.")] = "15-30",
    n: Annotated[int, typer.Option("--n", min=1, help="Number of masks.")] = 100,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "256x256",
    seed: Annotated[int, typer.Option(help="The same seed writes byte-identical masks.")] = 0,
) -> None:
    """Write N masks whose hole ratio lies in a bucket (rejection-sampled), with a manifest."""
    from .masks import generate_mask_set, parse_ratio, parse_size

    try:
        low, high = parse_ratio(ratio)
        width, height = parse_size(size)
        records = generate_mask_set(out_dir, kind, low, high, n, width, height, seed)
    except InpaintError as error:
        raise _fail(error) from None
    mean = sum(record["hole_ratio"] for record in records) / len(records)
    err.print(f"{len(records)} {kind} masks, mean hole {mean:.1%}", highlight=False)
    _emit(out_dir)


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

    from .bench import BenchmarkConfig, render_tables, rich_progress, run_benchmark, write_reports

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
        raise _fail(error) from None
    for failure in report.failures:
        err.print(f"[red]failed:[/] {failure.model} ({failure.stage}): {failure.error}", highlight=False)
    if report.failures:
        raise typer.Exit(1)


# -- models -------------------------------------------------------------------------------------------


@models_app.command("list")
def models_list(
    pattern: Annotated[str, typer.Argument(help="Wildcard on names, e.g. 'deepfill*', or a part of one.")] = "*",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List checkpoints and architectures (with their capabilities)."""
    from .catalog_view import model_rows

    try:
        rows = model_rows(pattern)
        if not rows:
            raise InpaintError(f"no model matches {pattern!r}; `inpaint models list` shows them all")
    except InpaintError as error:
        raise _fail(error) from None
    if as_json:
        for row in rows:
            _emit(json.dumps(row))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "arch", "default", "status", "size", "input", "sample", "train"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        size_rule = f"{row['fixed_size']}²" if row["fixed_size"] else f"×{row['pad_multiple']}"
        table.add_row(
            row["name"],
            row["arch"],
            "global" if row["global_default"] else "*" if row["default"] else "",
            row["status"],
            _human_size(row["size"]),
            size_rule,
            "yes" if row["can_sample"] else "",
            "yes" if row["trainable"] else "",
        )
    _emit_rich(table)


_MODEL_NAMES_HELP = "Checkpoint names, architectures (their default checkpoint) or globs such as 'deepfill*'."


def _select_models(names: list[str]) -> list:
    """Every catalog entry the NAME arguments select (`Catalog.select`), each once, in the order named.
    Resolved before any work, so an unknown name is a usage error and nothing has been done."""
    from .weights import load_catalog

    catalog = load_catalog()
    chosen = {entry.name: entry for name in names for entry in catalog.select(name)}
    return list(chosen.values())


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Checkpoint name, architecture (its default) or glob.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """Everything known about a checkpoint: source, checksum, licence, data, metrics, capabilities."""
    from .catalog_view import model_infos

    try:
        infos = model_infos(name)
    except InpaintError as error:
        raise _fail(error) from None
    for index, info in enumerate(infos):
        if as_json:
            _emit(json.dumps(info))
            continue
        if index:
            _emit("")
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            _emit_rich(f"[bold]{key:>16}[/]  {value}")


@models_app.command("download")
def models_download(
    names: Annotated[list[str], typer.Argument(help=_MODEL_NAMES_HELP)],
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
) -> None:
    """Download checkpoints into the Hugging Face cache and verify their sha256; print their paths.
    Models without weights (telea, ns) are skipped."""
    from .weights import fetch

    try:
        entries = _select_models(names)
    except InpaintError as error:
        raise _fail(error) from None
    failed = 0
    for entry in entries:
        if entry.kind == "none":
            err.print(f"{entry.name}: no weights to download (built in)", highlight=False)
            continue
        try:
            path = fetch(entry, force=force)
        except InpaintError as error:
            failed += 1
            _report(error)
        else:
            _emit(str(path))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


@models_app.command("verify")
def models_verify(
    names: Annotated[list[str] | None, typer.Argument(help=f"{_MODEL_NAMES_HELP} Default: all.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check the sha256 of checkpoints that are present (never downloads). Exit 1 on a mismatch, or
    when a checkpoint named explicitly is missing."""
    from .weights import verify

    try:
        entries = _select_models(names or ["*"])
    except InpaintError as error:
        raise _fail(error) from None
    bad = 0
    for entry in entries:
        result = verify(entry)
        if result.status == "mismatch" or (names and result.status == "missing"):
            bad += 1
        if as_json:
            _emit(
                json.dumps(
                    {
                        "name": entry.name,
                        "status": result.status,
                        "path": str(result.path or ""),
                        "expected_sha256": entry.sha256,
                        "actual_sha256": result.actual_sha256,
                    }
                )
            )
        else:
            colour = {"ok": "green", "mismatch": "red", "missing": "yellow"}.get(result.status, "dim")
            _emit_rich(f"[{colour}]{result.status:>10}[/]  {entry.name}  {result.path or ''}")
    if bad:
        raise typer.Exit(EXIT_FAILURE)


@models_app.command("export")
def models_export(
    src: Annotated[str, typer.Argument(help="Checkpoint written by `inpaint train`, e.g. runs/x/best.safetensors.")],
    dst: Annotated[str, typer.Option("--out", "-o", help="The new .safetensors file (never SRC itself).")],
    name: Annotated[
        str | None, typer.Option("--name", help="Catalog name ARCH.TAG (default: TAG = the --out file's stem).")
    ] = None,
    dtype: Annotated[str, typer.Option("--dtype", help="fp16, bf16 or fp32 (floating tensors only).")] = "fp16",
    as_json: Annotated[bool, typer.Option("--json", help="Print the entry as one JSON object.")] = False,
) -> None:
    """Write a smaller copy of a trained checkpoint (fp16 by default) with its config and provenance, and
    print its weights.toml entry (sha256, size, resolution, steps, wall time, validation scores, data)."""
    from .weights import entry_to_toml, export_checkpoint

    try:
        entry = export_checkpoint(src, dst, dtype=dtype, name=name)
    except InpaintError as error:
        raise _fail(error) from None
    err.print(f"wrote {dst} ({dtype}, {_human_size(entry['size'])})", highlight=False)
    if as_json:
        _emit(json.dumps(entry))
    else:
        _emit(entry_to_toml(entry).rstrip("\n"))


@models_app.command("convert")
def models_convert(
    src: Annotated[str, typer.Argument(help="The released checkpoint: a TF checkpoint directory or prefix, a .t7, "
                                            "or a PyTorch state dict.")],
    arch: Annotated[str, typer.Option("--arch", help="deepfill_v2 (from tf) or glcic (from state-dict).")],
    dst: Annotated[str, typer.Option("--out", "-o", help="The new .safetensors file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="tf, t7 or state-dict (default: from the file).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Catalog name ARCH.TAG (default: TAG = the --out file's stem).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entry as one JSON object.")] = False,
) -> None:
    """Convert the authors' released weights (DeepFill v2 TensorFlow, otenim's GLCIC state dict) into an
    inpaint checkpoint, and print its weights.toml entry. Needs `pip install 'inpaint-cli[convert]'` for TF."""
    from .convert import convert_checkpoint
    from .weights import entry_to_toml

    try:
        entry = convert_checkpoint(src, arch=arch, out=dst, fmt=fmt, name=name)
    except InpaintError as error:
        raise _fail(error) from None
    err.print(f"wrote {dst} ({_human_size(entry['size'])}; licence: {entry['licence']})", highlight=False)
    if as_json:
        print(json.dumps(entry), flush=True)
    else:
        print(entry_to_toml(entry), end="", flush=True)


# -- doctor -------------------------------------------------------------------------------------------


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Versions, devices, threads, cache paths, and whether each default checkpoint is present."""
    from .doctor import report

    info = report()
    if as_json:
        _emit(json.dumps(info))
        return
    for section, values in info.items():
        _emit_rich(f"[bold]{section}[/]")
        for key, value in values.items():
            _emit_rich(f"  {key:<22} {value}")


def _human_size(size: int | None) -> str:
    if not size:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Every command's exit code follows the rule in `inpaint_cli.errors`: 0 ok (also
    when stdout's reader left early), 1 runtime failure, 2 usage error, 130 interrupted."""
    args = _hoist_verbose(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args)  # standalone: click's own usage errors exit 2, Ctrl-C exits 130
    except SystemExit as done:
        if done.code == EXIT_INTERRUPTED:
            err.print("interrupted")
        raise
    except InpaintError as error:
        _report(error)
        sys.exit(error.exit_code)


_VERBOSE_FLAGS = ("-v", "--verbose")


def _hoist_verbose(args: list[str]) -> list[str]:
    """`-v` / `--verbose` anywhere on the command line (before `--`) means the root option: click alone only
    takes it before the subcommand. A token that is the value of an option (`--out -v`) stays where it is."""
    if not any(token in _VERBOSE_FLAGS for token in args[1:]):
        return args
    command = typer.main.get_command(app)
    hoisted: list[str] = []
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            kept.extend([token, *tokens])
            break
        if token in _VERBOSE_FLAGS:
            hoisted.append("--verbose")
            continue
        kept.append(token)
        if token in getattr(command, "commands", {}):  # a group's subcommand
            command = command.commands[token]
        elif token.startswith("-") and "=" not in token and _takes_value(command, token):
            value = next(tokens, None)  # the option's value, whatever it looks like
            if value is not None:
                kept.append(value)
    return hoisted + kept


def _takes_value(command, option: str) -> bool:
    """Whether `option` of the click `command` is followed by a value (not a flag)."""
    for param in command.params:
        if option in (*param.opts, *param.secondary_opts):
            return not getattr(param, "is_flag", False) and not getattr(param, "count", False)
    return False

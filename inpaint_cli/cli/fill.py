"""`inpaint fill` and `inpaint plural`: load a model, fill images, print what was written."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..errors import EXIT_FAILURE, InpaintError, UsageError
from .output import emit, err, fail
from .root import app

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
    from ..engine import check_strategy
    from ..fill import STDIO, FillOptions, plan_jobs
    from ..io import refuse_terminal_stdout

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
        raise fail(error) from None
    failures = _run_fill_jobs(jobs, inpainter, model_name, options, as_json)
    if failures:
        if len(jobs) > 1:
            err.print(
                f"[red]{len(failures)} of {len(jobs)} image(s) failed[/]; the others were written",
                highlight=False,
            )
        raise typer.Exit(EXIT_FAILURE)  # the work had started: whatever went wrong is a runtime failure


def parse_settings(settings: list[str] | None, flag: str = "--set") -> dict:
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
    from ..convert.licence import warn_if_non_commercial
    from ..devices import pick_device
    from ..engine import Inpainter
    from ..host_memory import keep_freed_memory
    from ..weights import load_model

    keep_freed_memory()  # this process fills and exits: keep freed feature maps for the next ones
    target = pick_device(device)
    loaded = load_model(model, device=target, overrides=parse_settings(settings))
    warn_if_non_commercial(model, loaded.checkpoint_name)
    return Inpainter(loaded, device=target, half=half), loaded.checkpoint_name


def _run_fill_jobs(jobs, inpainter, model_name: str, options, as_json: bool) -> list[InpaintError]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..fill import STDIO, fill_files

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
                    emit(json.dumps(record))
                elif job.output != STDIO:
                    emit(job.output)
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
    from ..engine import check_strategy
    from ..fill import STDIO, FillOptions
    from ..io import refuse_terminal_stdout
    from ..plural import check_can_sample, default_samples_dir, draw_seed, plural_files

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
        raise fail(error) from None
    for index, (output, result) in enumerate(zip(outcome.outputs, outcome.results, strict=True)):
        if as_json:
            record = {"sample": index, "seed": seed + index, "output": output, "model": model_name}
            emit(json.dumps({**record, "seconds": round(result.seconds, 4)}))
        elif output is not None:
            emit(output)
    if as_json:
        diversity = None if outcome.diversity is None else round(outcome.diversity, 6)
        emit(json.dumps({"diversity": diversity, "n": n, "seed": seed, "grid": grid}))
    else:
        if grid not in (None, STDIO):
            emit(grid)
        shown = "n/a (one sample)" if outcome.diversity is None else f"{outcome.diversity:.4f}"
        err.print(f"diversity (mean pairwise L1 over the hole, 0-1 scale): {shown}", highlight=False)

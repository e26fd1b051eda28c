"""`inpaint fill`: load a model, fill images, print what was written."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..errors import EXIT_FAILURE, EXIT_INTERRUPTED, InpaintError, UsageError
from .options import BLEND_HELP, fill_options, make_inpainter
from .output import emit, err, fail, labelled
from .root import app


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
        bool,
        typer.Option(
            "--overwrite",
            help="Replace existing outputs whose names the tool derives (<stem>_filled.png, --out DIR/<stem>.png); "
            "an --out FILE you name is always replaced, an input never.",
        ),
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
    blend: Annotated[str | None, typer.Option(help=BLEND_HELP, show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for models that sample.")] = None,
    strategy: Annotated[
        str, typer.Option(help="auto, full, crop (around each hole) or resize (large images).")
    ] = "auto",
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Black = hole instead of white.")] = False,
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Resize a mask of another size to the image (nearest).")
    ] = False,
    boxes: Annotated[
        list[str] | None,
        typer.Option(
            "--box", help="A hole X,Y,W,H in pixels from the top-left corner (repeatable; with --mask: the union)."
        ),
    ] = None,
    mask_color: Annotated[
        str | None,
        typer.Option(
            "--mask-color", help="The hole is the image's pixels of this colour, e.g. '#ff00ff' (paint over it)."
        ),
    ] = None,
    color_tolerance: Annotated[
        int,
        typer.Option(
            min=0,
            max=255,
            help="--mask-color matches channels within N levels of 255 (default 0: exact; ~40 for JPEG).",
        ),
    ] = 0,
    dilate: Annotated[int, typer.Option(min=0, help="Grow the hole by N pixels.")] = 0,
    quality: Annotated[int | None, typer.Option(min=1, max=100, help="JPEG/WebP quality (default 95).")] = None,
    max_pixels: Annotated[
        int | None,
        typer.Option(min=1, help="Refuse larger images (decompression-bomb guard; default 120 MP)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per output on stdout.")] = False,
) -> None:
    """Fill the masked holes of one or more images."""
    import dataclasses

    from ..fill import STDIO, failure_summary, plan_jobs
    from ..io import refuse_terminal_stdout
    from ..plural import draw_seed

    try:
        options = fill_options(
            invert_mask, resize_mask, dilate, strategy, boxes, mask_color, color_tolerance, seed=seed
        )
        options = dataclasses.replace(options, quality=quality, max_pixels=max_pixels)
        jobs = plan_jobs(images, mask, output, overwrite=overwrite)
        if any(job.output == STDIO for job in jobs):
            if as_json:
                raise UsageError("--json and PNG on stdout would mix; give --out a file or directory")
            refuse_terminal_stdout()
        inpainter, model_name = make_inpainter(model, device, half, settings, blend)
    except InpaintError as error:
        raise fail(error) from None
    if inpainter.contract.can_sample and options.seed is None:
        # A sampling model draws a different fill every run: say which, so this one can be had again.
        options = dataclasses.replace(options, seed=draw_seed())
        err.print(f"seed {options.seed} (pass --seed {options.seed} to reproduce)", highlight=False)
    reported_seed = options.seed if inpainter.contract.can_sample else None
    failures = _run_fill_jobs(jobs, inpainter, model_name, options, as_json, reported_seed)
    if failures:
        summary = failure_summary(len(failures), len(jobs))
        if summary is not None:
            err.print(summary, highlight=False, markup=False, style="red")
        # The work had started: whatever went wrong is a runtime failure, except a usage error found for
        # the one image there was (--strategy full that cannot fit in memory).
        raise typer.Exit(failures[0].exit_code if len(jobs) == 1 else EXIT_FAILURE)


def _run_fill_jobs(
    jobs, inpainter, model_name: str, options, as_json: bool, seed: int | None = None
) -> list[InpaintError]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .. import fill as fill_module
    from ..fill import STDIO

    failures: list[InpaintError] = []
    written = 0

    def report(job, outcome) -> None:
        nonlocal written
        if isinstance(outcome, InpaintError):
            failures.append(outcome)
            err.print(labelled("error:", "red", outcome.message), highlight=False)
            return
        written += 1
        if as_json:
            record = {
                "input": job.image,
                "mask": job.mask or ("alpha" if not options.has_extra_holes else None),  # None: the alpha
                "output": job.output,
                "model": model_name,
                "seconds": round(outcome.seconds, 4),  # this image's read + fill (its share) + write
                "strategy": outcome.strategy,
                "precision": outcome.precision,
                "hole_fraction": round(outcome.hole_fraction, 6),
                "width": outcome.width,
                "height": outcome.height,
                "seed": seed,
            }
            emit(json.dumps(record))
        elif job.output != STDIO:
            emit(job.output)

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=len(jobs) < 2 or not err.is_terminal,  # a bar is for people, not for logs
    )
    run = None
    try:
        with progress:
            task = progress.add_task("filling", total=len(jobs))
            run = fill_module.fill_files(inpainter, jobs, options)
            for job, outcome in run:
                report(job, outcome)
                progress.advance(task)
    except KeyboardInterrupt:
        # Files finished by the writer but not yet reported exist: print them too, then say how far it got.
        for job, outcome in run.stop() if run is not None else []:
            report(job, outcome)
        noun = "image" if len(jobs) == 1 else "images"
        err.print(f"{written} of {len(jobs)} {noun} written before the interrupt", highlight=False, markup=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    return failures

"""`inpaint plural`: draw N fills of one hole from a model that samples, print what was written."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..errors import InpaintError, UsageError
from .options import BLEND_HELP, fill_options, make_inpainter
from .output import emit, err, fail
from .root import app


@app.command()
def plural(
    image: Annotated[str, typer.Argument(help="Image file, or '-' for stdin.")],
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask", "-m", help="Mask file (white = hole), or 'alpha' (the default when no --box/--mask-color)."
        ),
    ] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=256, help="Number of samples.")] = 8,
    blend: Annotated[str | None, typer.Option(help=BLEND_HELP, show_default=False)] = None,
    seed: Annotated[int | None, typer.Option(help="Sample i uses seed + i (default: a random seed, reported).")] = None,
    out_dir: Annotated[
        str | None,
        typer.Option("--out-dir", help="Write <stem>_<seed>.png per sample (default: <stem>_samples/)."),
    ] = None,
    grid: Annotated[
        str | None,
        typer.Option("--grid", help="Contact sheet (input, mask, samples), replaced if it exists; '-' = stdout."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace existing sample files (an input never).")
    ] = False,
    model: Annotated[str, typer.Option("--model", help="A model that can sample.")] = "piigan",
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Model config KEY=VALUE (repeatable): the architecture's options, e.g. cnum=32 for piigan "
            "(a checkpoint fixes most of them).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    half: Annotated[bool, typer.Option("--half", help="fp16 on GPUs, bf16 on CPUs.")] = False,
    strategy: Annotated[str, typer.Option(help="auto, full, crop or resize.")] = "auto",
    invert_mask: Annotated[bool, typer.Option("--invert-mask", help="Black = hole instead of white.")] = False,
    resize_mask: Annotated[
        bool, typer.Option("--resize-mask", help="Resize a mask of another size (nearest).")
    ] = False,
    boxes: Annotated[
        list[str] | None,
        typer.Option("--box", help="A hole X,Y,W,H in pixels (repeatable; with --mask: the union)."),
    ] = None,
    mask_color: Annotated[
        str | None, typer.Option("--mask-color", help="The hole is the image's pixels of this colour, e.g. '#ff00ff'.")
    ] = None,
    color_tolerance: Annotated[
        int, typer.Option(min=0, max=255, help="--mask-color per-channel tolerance in 8-bit levels (default 0).")
    ] = 0,
    dilate: Annotated[int, typer.Option(min=0, help="Grow the hole by N pixels.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per sample, then one with the diversity.")
    ] = False,
) -> None:
    """Draw N different fills of the same hole from a model that samples (PiiGAN)."""
    from ..fill import STDIO
    from ..io import refuse_terminal_stdout
    from ..plural import check_can_sample, default_samples_dir, draw_seed, plan_outputs, plural_files

    try:
        options = fill_options(invert_mask, resize_mask, dilate, strategy, boxes, mask_color, color_tolerance)
        if grid == STDIO and as_json:
            raise UsageError("--json and a grid on stdout would mix; give --grid a file")
        if grid == STDIO:
            refuse_terminal_stdout()
        drawn = seed is None
        if seed is None:
            seed = draw_seed()  # before planning: the sample files are named by their seeds
        if out_dir is None:
            out_dir = default_samples_dir(image, grid)
        outputs = plan_outputs(image, mask, n=n, seed=seed, out_dir=out_dir, grid=grid, overwrite=overwrite)
        inpainter, model_name = make_inpainter(model, device, half, settings, blend)
        check_can_sample(inpainter, model_name)
        if drawn:
            err.print(f"seed {seed} (pass --seed {seed} to reproduce)", highlight=False)
        outcome = plural_files(
            inpainter, image, mask, n=n, seed=seed, options=options, out_dir=out_dir, grid=grid, outputs=outputs
        )
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

"""`inpaint masks generate`: write a seeded set of hole masks and its manifest."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import InpaintError
from .output import emit, err, fail
from .root import masks_app


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

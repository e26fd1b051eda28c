"""`inpaint benchmark`: quality and speed of several models side by side; tables on stderr, reports to files."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from ..errors import InpaintError
from .options import BLEND_HELP
from .output import err, fail, labelled
from .root import app


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
    blend: Annotated[str | None, typer.Option(help=BLEND_HELP, show_default=False)] = None,
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
            blend=blend,
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

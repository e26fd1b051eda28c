"""`inpaint models list|info|download|verify|export|convert`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from ..convert.sources import FORMATS as CONVERT_FORMATS
from ..convert.sources import arch_help
from ..errors import EXIT_FAILURE, InpaintError
from .output import emit, emit_rich, err, fail, human_size, report
from .root import models_app


@models_app.command("list")
def models_list(
    pattern: Annotated[str, typer.Argument(help="Wildcard on names, e.g. 'deepfill*', or a part of one.")] = "*",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List checkpoints and architectures (with their capabilities)."""
    from ..catalog_view import model_rows

    try:
        rows = model_rows(pattern)
        if not rows:
            raise InpaintError(f"no model matches {pattern!r}; `inpaint models list` shows them all")
    except InpaintError as error:
        raise fail(error) from None
    if as_json:
        for row in rows:
            emit(json.dumps(row))
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in ("name", "arch", "default", "status", "size", "input", "sample", "train"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        size_rule = f"{row['fixed_size']}²" if row["fixed_size"] else f"×{row['pad_multiple']}"
        table.add_row(
            Text(row["name"]),  # a user catalog's name is text, not markup
            row["arch"],
            "global" if row["global_default"] else "*" if row["default"] else "",
            row["status"],
            human_size(row["size"]),
            size_rule,
            "yes" if row["can_sample"] else "",
            "yes" if row["trainable"] else "",
        )
    emit_rich(table)


_MODEL_NAMES_HELP = "Checkpoint names, architectures (their default checkpoint) or globs such as 'deepfill*'."


def _select_models(names: list[str]) -> list:
    """Every catalog entry the NAME arguments select (`Catalog.select`), each once, in the order named.
    Resolved before any work, so an unknown name is a usage error and nothing has been done."""
    from ..weights import load_catalog

    catalog = load_catalog()
    chosen = {entry.name: entry for name in names for entry in catalog.select(name)}
    return list(chosen.values())


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="Checkpoint name, architecture (its default) or glob.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per model.")] = False,
) -> None:
    """Everything known about a checkpoint: source, checksum, licence, data, metrics, capabilities."""
    from ..catalog_view import model_infos

    try:
        infos = model_infos(name)
    except InpaintError as error:
        raise fail(error) from None
    for index, info in enumerate(infos):
        if as_json:
            emit(json.dumps(info))
            continue
        if index:
            emit("")
        for key, value in info.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items())
            emit_rich(f"[bold]{key:>16}[/]  {escape(str(value))}")


@models_app.command("download")
def models_download(
    names: Annotated[list[str], typer.Argument(help=_MODEL_NAMES_HELP)],
    force: Annotated[bool, typer.Option("--force", help="Download again even if cached.")] = False,
) -> None:
    """Download checkpoints into the Hugging Face cache and verify their sha256; print their paths.
    Models without weights (telea, ns) are skipped."""
    from ..weights import fetch

    try:
        entries = _select_models(names)
    except InpaintError as error:
        raise fail(error) from None
    failed = 0
    for entry in entries:
        if entry.kind == "none":
            err.print(f"{entry.name}: no weights to download (built in)", highlight=False, markup=False)
            continue
        try:
            path = fetch(entry, force=force)
        except InpaintError as error:
            failed += 1
            report(error)
        else:
            emit(str(path))
    if failed:
        raise typer.Exit(EXIT_FAILURE)


@models_app.command("verify")
def models_verify(
    names: Annotated[list[str] | None, typer.Argument(help=f"{_MODEL_NAMES_HELP} Default: all.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per checkpoint.")] = False,
) -> None:
    """Check the sha256 of checkpoints that are present (never downloads). Exit 1 on a mismatch, or
    when a checkpoint named explicitly is missing."""
    from ..weights import verify

    try:
        entries = _select_models(names or ["*"])
    except InpaintError as error:
        raise fail(error) from None
    bad = 0
    for entry in entries:
        result = verify(entry)
        if result.status == "mismatch" or (names and result.status == "missing"):
            bad += 1
        if as_json:
            emit(
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
            emit_rich(f"[{colour}]{result.status:>10}[/]  {escape(entry.name)}  {escape(str(result.path or ''))}")
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
    from ..weights import entry_to_toml, export_checkpoint

    try:
        entry = export_checkpoint(src, dst, dtype=dtype, name=name)
    except InpaintError as error:
        raise fail(error) from None
    err.print(f"wrote {dst} ({dtype}, {human_size(entry['size'])})", highlight=False, markup=False)
    if as_json:
        emit(json.dumps(entry))
    else:
        emit(entry_to_toml(entry).rstrip("\n"))


@models_app.command("convert")
def models_convert(
    src: Annotated[
        str,
        typer.Argument(
            help="The released checkpoint: a TF checkpoint directory or prefix, a .t7, or a PyTorch state dict."
        ),
    ],
    arch: Annotated[
        str, typer.Option("--arch", help=f"The architecture, with the formats it is read from: {arch_help()}.")
    ],
    dst: Annotated[str, typer.Option("--out", "-o", help="The new .safetensors file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"{', '.join(CONVERT_FORMATS)} (default: from the file).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Catalog name ARCH.TAG (default: the release's, e.g. deepfill_v2.places2, when the file is one of "
            "the authors' releases; else TAG = the --out file's stem).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the entry as one JSON object.")] = False,
) -> None:
    """Convert the authors' released weights (DeepFill v1 and v2 TensorFlow, GLCIC and Context Encoder Lua
    Torch .t7, otenim's GLCIC state dict) into an inpaint checkpoint, and print its weights.toml entry. Needs
    `pip install 'inpaint-cli[convert]'` for TF and .t7 files.

    The authors' DeepFill releases are recognised by the sha256 of their files: the entry and the file's
    provenance then name the release, its dataset and licence; stderr says when a file is none of them."""
    from ..convert import convert_checkpoint
    from ..weights import entry_to_toml

    try:
        entry = convert_checkpoint(src, arch=arch, out=dst, fmt=fmt, name=name)
    except InpaintError as error:
        raise fail(error) from None
    err.print(f"wrote {dst} ({human_size(entry['size'])}; licence: {entry['licence']})", highlight=False, markup=False)
    if as_json:
        print(json.dumps(entry), flush=True)
    else:
        print(entry_to_toml(entry), end="", flush=True)

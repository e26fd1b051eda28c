"""`inpaint doctor`: versions, devices, threads, cache paths and checkpoints, as a report or one JSON object."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from .output import emit, emit_rich
from .root import app


@app.command()
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Everything as one JSON object.")] = False) -> None:
    """Versions, devices, threads, cache paths, and whether each default checkpoint is present."""
    from ..doctor import report as doctor_report  # not output's `report`, which prints an error

    info = doctor_report()
    if as_json:
        emit(json.dumps(info))
        return
    for section, values in info.items():
        emit_rich(f"[bold]{section}[/]")
        for key, value in values.items():
            emit_rich(f"  {key:<22} {escape(str(value))}")

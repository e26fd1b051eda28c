"""What the commands print: data lines and tables on stdout, errors and log records on stderr."""

from __future__ import annotations

import logging
import os
import sys

import typer
from rich.console import Console
from rich.text import Text

from ..errors import InpaintError

out = Console(soft_wrap=True)  # data
err = Console(stderr=True, soft_wrap=True)  # humans; soft_wrap keeps each error on one line

log = logging.getLogger("inpaint_cli")


def labelled(label: str, style: str, message: str) -> Text:
    """`label: message` with only the label styled: the message (file names, values the user typed, text
    from libraries) is never read as rich markup, so `photo[draft].png` or a `[/x]` prints as written."""
    return Text.assemble((label, style), " ", message)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: logging's own report
            self.handleError(record)
            return
        # Rendered here, written through sys.stderr: while a progress bar is drawn, rich puts sys.stderr's
        # lines above it (`err` itself writes past it, onto the bar's line).
        with err.capture() as captured:
            err.print(labelled(f"{record.levelname.lower()}:", "yellow", message), highlight=False)
        sys.stderr.write(captured.get())
        sys.stderr.flush()


def setup_logging(verbose: bool = False) -> None:
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def fail(error: InpaintError) -> typer.Exit:
    report(error)
    return typer.Exit(error.exit_code)


def report(error: InpaintError) -> None:
    err.print(labelled("error:", "red", error.message), highlight=False)


def emit(line: str) -> None:
    """One line of data on stdout. When its reader has gone (`| head -3`) the rest of the data is dropped
    quietly and the work goes on: a closed stdout is neither an error nor a reason to stop filling."""
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()


def emit_rich(renderable) -> None:
    """A rich table (or markup text) on stdout, rendered here and written by `emit` (rich's own handling
    of a closed pipe would exit 1 without a word)."""
    # Data on stdout is never wrapped or cut: a pipe gets the table at its natural width.
    console = out if out.is_terminal else Console(width=1000)
    with console.capture() as captured:
        console.print(renderable, highlight=False)
    emit(captured.get().rstrip("\n"))


def _drop_stdout() -> None:
    """Send whatever is still written to stdout (and Python's flush at exit) to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (in-process capture): nothing to do
        pass


def human_size(size: int | None) -> str:
    if not size:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""

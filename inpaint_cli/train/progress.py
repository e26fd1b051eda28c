"""The terminal side of a training run: the progress bar on stderr and what Ctrl-C does.

First Ctrl-C: the loop stops after the current step, saves and raises KeyboardInterrupt (exit code 130
from the CLI). Second Ctrl-C: KeyboardInterrupt at once, and nothing is saved.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger("inpaint_cli")


class StopRequest:
    """First Ctrl-C: stop after the current step (then save). Second: KeyboardInterrupt right away."""

    def __init__(self) -> None:
        self.requested = False
        self.aborted = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            self.aborted = True
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving (press again to abort without saving)")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Handle SIGINT as above while the block runs (from the main thread; elsewhere, as before)."""
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class ProgressBar:
    """Rich progress on stderr: step/total, it/s, ETA and the main losses."""

    MAIN_LOSSES = ("g", "d", "ae", "mse", "l2", "l1")

    def __init__(self, arch: str, *, total: int, completed: int, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self.task = self.progress.add_task(f"train {arch}", total=total, completed=completed, speed="", losses="")
        self.started = time.perf_counter()
        self.count = 0

    def advance(self, losses: dict[str, float]) -> None:
        self.count += 1
        speed = self.count / max(time.perf_counter() - self.started, 1e-9)
        shown = " ".join(f"{k} {float(v):.4g}" for k, v in losses.items() if k in self.MAIN_LOSSES)
        self.progress.update(self.task, advance=1, speed=f"{speed:.2f} it/s", losses=shown)


@contextlib.contextmanager
def progress_bar(arch: str, *, total: int, completed: int, enabled: bool) -> Iterator[ProgressBar]:
    """A `ProgressBar` shown while the block runs (a disabled one draws nothing)."""
    bar = ProgressBar(arch, total=total, completed=completed, enabled=enabled)
    with bar.progress:
        yield bar

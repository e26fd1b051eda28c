"""The terminal side of a training run: the progress bar on stderr and what Ctrl-C does.

First Ctrl-C: the loop stops after the current step, saves and raises KeyboardInterrupt (exit code 130
from the CLI). Second Ctrl-C: KeyboardInterrupt at once, and nothing is saved.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import signal
import sys
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


PLAIN_INTERVAL_S = 30.0  # without a terminal: at most one progress line this often (plus the first and last)


class ProgressBar:
    """Progress on stderr: step/total, it/s, elapsed time, ETA and the main losses.

    On a terminal, a rich bar redrawn in place. Otherwise (a log file, a pipe, a batch job) a redrawn bar is
    cut to 80 columns and written once at the end; there, whole plain lines are written instead: after the
    first step, then at most every `interval` seconds, and after the last step."""

    MAIN_LOSSES = ("g", "d", "ae", "mse", "l2", "l1")

    def __init__(
        self,
        arch: str,
        *,
        total: int,
        completed: int,
        enabled: bool,
        terminal: bool | None = None,
        interval: float = PLAIN_INTERVAL_S,
    ) -> None:
        from rich.console import Console

        console = Console(stderr=True)
        self.terminal = console.is_terminal if terminal is None else terminal
        self.enabled = enabled
        self.label = f"train {arch}"
        self.total, self.completed = total, completed
        self.interval = interval
        self.started = time.perf_counter()
        self.last_line: float | None = None
        self.count = 0
        self.progress = self._rich_progress(console) if enabled and self.terminal else None

    def _rich_progress(self, console: Any) -> Any:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=console,
        )
        self.task = progress.add_task(self.label, total=self.total, completed=self.completed, speed="", losses="")
        return progress

    def advance(self, losses: dict[str, float]) -> None:
        self.count += 1
        self.completed += 1
        now = time.perf_counter()
        speed = self.count / max(now - self.started, 1e-9)
        shown = " ".join(f"{k} {float(v):.4g}" for k, v in losses.items() if k in self.MAIN_LOSSES)
        if self.progress is not None:
            self.progress.update(self.task, advance=1, speed=f"{speed:.2f} it/s", losses=shown)
        elif self.enabled:
            due = self.last_line is None or now - self.last_line >= self.interval or self.completed >= self.total
            if due:
                self.last_line = now
                self._write_line(speed, now - self.started, shown)

    def _write_line(self, speed: float, elapsed: float, losses: str) -> None:
        """One whole line: `train glcic 120/300 2.31 it/s 0:00:52 eta 0:01:18 g 0.123 d 0.456`."""
        eta = (self.total - self.completed) / speed if speed > 0 else 0.0
        line = f"{self.label} {self.completed}/{self.total} {speed:.2f} it/s {_clock(elapsed)} eta {_clock(eta)}"
        sys.stderr.write(f"{line} {losses}".rstrip() + "\n")
        sys.stderr.flush()

    def __enter__(self) -> ProgressBar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _clock(seconds: float) -> str:
    """0:00:52, as rich's time columns write it."""
    return str(datetime.timedelta(seconds=max(0, round(seconds))))


@contextlib.contextmanager
def progress_bar(
    arch: str, *, total: int, completed: int, enabled: bool, terminal: bool | None = None
) -> Iterator[ProgressBar]:
    """A `ProgressBar` shown while the block runs (a disabled one draws nothing)."""
    with ProgressBar(arch, total=total, completed=completed, enabled=enabled, terminal=terminal) as bar:
        yield bar

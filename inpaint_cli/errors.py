"""Errors the tool reports to users: one line, naming the file and the fix, with an exit code.

The exit codes of every command, decided here and applied once, in `inpaint_cli.cli.main`:

- 0 (EXIT_OK): success. Also when the reader of stdout goes away early (`inpaint ... | head`): the
  work is finished, and the data nobody reads is dropped quietly.
- 2 (EXIT_USAGE): the command line is wrong, found before any work starts, without reading an input:
  an unknown option, value, model name or architecture, conflicting options, an output that would
  overwrite an input or an existing result. Nothing has been written.
- 1 (EXIT_FAILURE): anything that goes wrong once the work has started: a file that is missing,
  unreadable or corrupt (images, masks and .safetensors files alike), a mask of another size than its
  image, a failed download or checksum, a folder fill where some image failed (the others are written).
- 130 (EXIT_INTERRUPTED): Ctrl-C.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class InpaintError(Exception):
    """A failure to report as one line on stderr; exits EXIT_FAILURE (a runtime failure)."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class UsageError(InpaintError):
    """The command line itself is wrong (conflicting options, unknown model name, ...): EXIT_USAGE.
    Raise it only for what can be known before reading any input file."""

    exit_code = EXIT_USAGE


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for a one-line error."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]

"""Errors the tool reports to users: one line, naming the file and the fix, with an exit code."""

from __future__ import annotations


class InpaintError(Exception):
    """A failure to report as one line on stderr. `exit_code` follows the CLI's convention:
    1 = runtime failure (bad file, failed download, checksum mismatch), 2 = usage error."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0])


class UsageError(InpaintError):
    """The command line itself is wrong (conflicting options, unknown model name, ...)."""

    exit_code = 2


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (at most 200 characters), for a one-line error."""
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]

"""The `inpaint` command line: parse arguments, call the library, print.

stdout carries data (output paths, tables, --json lines, PNG bytes for `-`); stderr carries progress,
warnings and errors for humans. torch is imported only inside commands that run a model, so `--help`
stays instant.

`root` holds the Typer apps and `main`; `output` the stdout/stderr helpers; `fill`, `train` and `models`
the commands, which register themselves on the apps when imported.
"""

# Importing a command module registers its commands on `app`, and `inpaint --help` lists them in the order
# they were registered: fill, plural, train, benchmark, doctor. Hence this order, not the alphabetical one.
from . import fill, train, models  # noqa: I001, F401
from .root import app, main

__all__ = ["app", "main"]

"""The `inpaint` command line: parse arguments, call the library, print.

stdout carries data (output paths, tables, --json lines, PNG bytes for `-`); stderr carries progress,
warnings and errors for humans. torch is imported only inside commands that run a model, so `--help`
stays instant.

`root` holds the Typer apps and `main`; `output` the stdout/stderr helpers; `options` the parsing that several
commands share; one module per command or group (`fill`, `plural`, `train`, `benchmark`, `doctor`, `models`,
`masks`), which registers its commands on the apps when imported.
"""

# Importing a command module registers its commands on `app`, and `inpaint --help` lists them in the order
# they were registered: fill, plural, train, benchmark, doctor (then the groups, models and masks, in the order
# root adds them). Hence this order, not the alphabetical one.
from . import fill, plural, train, benchmark, doctor, models, masks  # noqa: I001, F401
from .root import app, main

__all__ = ["app", "main"]

"""The Typer apps, the root options (--verbose, --version), and `main`, which applies the exit codes."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import EXIT_INTERRUPTED, InpaintError
from .help import plain_help, plain_params
from .output import err, out, report, setup_logging


class _Root(TyperGroup):
    """The root command: built by Typer with every subcommand, then given plain help (`plain_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)

    def get_params(self, ctx: Any) -> list[Any]:
        return plain_params(super().get_params(ctx), markup=False)  # the completion options: Typer's own text


app = typer.Typer(
    name="inpaint",
    cls=_Root,
    help="Fill holes in images with the classic inpainting GANs and OpenCV's fills; train and benchmark them.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion, as Typer provides them
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",  # stated, not left to Typer's default: help texts are escaped for it (help.py)
)
models_app = typer.Typer(
    help="List, inspect, download, verify, export and convert checkpoints.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(models_app, name="models")
masks_app = typer.Typer(
    help="Seeded hole masks for benchmarks and experiments.", no_args_is_help=True, rich_markup_mode="rich"
)
app.add_typer(masks_app, name="masks")


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"inpaint {__version__}", highlight=False)
        raise typer.Exit()


_READS_IMAGES = frozenset({"fill", "plural", "train", "benchmark"})  # the commands $INPAINT_MAX_PIXELS limits


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(verbose)


def _check_environment(args: list[str]) -> None:
    """A bad $INPAINT_MAX_PIXELS is a usage error before a command that reads images starts (checked per
    image, it failed every image: exit 1). Help is still shown."""
    command = next((token for token in args if not token.startswith("-")), None)
    if command in _READS_IMAGES and "--help" not in args and os.environ.get("INPAINT_MAX_PIXELS", "").strip():
        from ..io.read import resolve_max_pixels

        resolve_max_pixels(None)


def main(argv: list[str] | None = None) -> None:
    """Console entry point. Every command's exit code follows the rule in `inpaint_cli.errors`: 0 ok (also
    when stdout's reader left early), 1 runtime failure, 2 usage error, 130 interrupted."""
    args = _hoist_verbose(list(sys.argv[1:] if argv is None else argv))
    try:
        _check_environment(args)
        app(args=args)  # standalone: click's own usage errors exit 2, Ctrl-C exits 130
    except SystemExit as done:
        if done.code == EXIT_INTERRUPTED:
            err.print("interrupted")
        raise
    except InpaintError as error:
        report(error)
        sys.exit(error.exit_code)


_VERBOSE_FLAGS = ("-v", "--verbose")


def _hoist_verbose(args: list[str]) -> list[str]:
    """`-v` / `--verbose` anywhere on the command line (before `--`) means the root option: click alone only
    takes it before the subcommand. A token that is the value of an option (`--out -v`) stays where it is."""
    if not any(token in _VERBOSE_FLAGS for token in args[1:]):
        return args
    command = typer.main.get_command(app)
    hoisted: list[str] = []
    kept: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            kept.extend([token, *tokens])
            break
        if token in _VERBOSE_FLAGS:
            hoisted.append("--verbose")
            continue
        kept.append(token)
        if token in getattr(command, "commands", {}):  # a group's subcommand
            command = command.commands[token]
        elif token.startswith("-") and "=" not in token and _takes_value(command, token):
            value = next(tokens, None)  # the option's value, whatever it looks like
            if value is not None:
                kept.append(value)
    return hoisted + kept


def _takes_value(command, option: str) -> bool:
    """Whether `option` of the click `command` is followed by a value (not a flag)."""
    for param in command.params:
        if option in (*param.opts, *param.secondary_opts):
            return not getattr(param, "is_flag", False) and not getattr(param, "count", False)
    return False

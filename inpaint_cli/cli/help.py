"""`--help` as written, whichever Typer renders it.

Two things are fixed on the click commands Typer builds, once, when the root group is built (`plain_help`):

- Typer renders help texts as rich markup, so `pip install 'inpaint-cli[convert]'` lost its `[convert]`:
  every help text is escaped (our help uses no markup).
- Typer 0.2x labels every parameter with its Python type (`<bool>`, `<str>`, `<list[str]>`) and writes a
  required argument `{images}...`: options get click's value names (TEXT, INTEGER, FLOAT; a switch
  none) and arguments click's usage form (IMAGES..., [PATTERN]), as Typer 0.12-0.16 showed them.
"""

from __future__ import annotations

import typing
from typing import Any

from rich.markup import escape

_VALUE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", bool: "BOOLEAN"}


def plain_help(command: Any) -> None:
    """Escape the help texts of `command`, its parameters and its subcommands, and give every parameter
    a click-style value name. Once per command: some Typer versions build the subgroups with the root's
    class too, and a second escape would show its backslashes."""
    if getattr(command, "_inpaint_plain_help", False):
        return
    command._inpaint_plain_help = True
    markup = getattr(command, "rich_markup_mode", None) == "rich"  # else Typer prints the texts as they are
    for attribute in ("help", "short_help", "epilog"):
        text = getattr(command, attribute, None)
        if isinstance(text, str) and markup:
            setattr(command, attribute, escape(text))
    plain_params(command.params, markup=markup)
    _plain_help_option(command)
    for subcommand in (getattr(command, "commands", None) or {}).values():
        plain_help(subcommand)


def plain_params(params: list[Any], *, markup: bool = True) -> list[Any]:
    """`params` with plain help, each made plain once (Typer adds the completion options to the root after
    building it, so the root makes its own when asked for them). markup: Typer reads their help as rich
    markup (the apps ask for it: `rich_markup_mode="rich"`)."""
    for param in params:
        if not getattr(param, "_inpaint_plain_help", False):
            _plain_param(param, markup)
            param._inpaint_plain_help = True
    return params


def _plain_param(param: Any, markup: bool) -> None:
    if isinstance(getattr(param, "help", None), str) and markup:
        param.help = escape(param.help)
    if param.metavar is not None:
        return  # named in the source: as written
    if getattr(param, "param_type_name", "") == "argument":
        name = param.name.upper()
        usage = name if param.required else f"[{name}]"
        param.metavar = usage + ("..." if param.nargs != 1 else "")
        # Typer 0.2x writes the usage line itself ({images}...) and a type column beside the name.
        param.get_usage_pieces = lambda ctx, usage=param.metavar: [usage]
        param.display_type_rich = lambda ctx: None
        return
    param.metavar = "" if getattr(param, "is_flag", False) else _value_name(param)


def _value_name(param: Any) -> str:
    """TEXT, INTEGER or FLOAT: from the annotation (Typer 0.2x) or the click type (before)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        annotation = descriptor.annotation
        if typing.get_origin(annotation) in (list, tuple):
            annotation = (typing.get_args(annotation) or (str,))[0]
        return _VALUE_NAMES.get(annotation, getattr(annotation, "__name__", "VALUE").upper())
    click_type = getattr(param, "type", None)
    name = getattr(click_type, "name", "") or "value"
    return name.split()[0].upper()  # "integer range" -> INTEGER; the range is shown beside it


def _plain_help_option(command: Any) -> None:
    """The --help switch is made on demand (`get_help_option`): give it no value name either."""
    make = getattr(command, "get_help_option", None)
    if make is None:
        return

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        return option if option is None else plain_params([option], markup=False)[0]  # click's own text

    command.get_help_option = get_help_option

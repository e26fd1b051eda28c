"""KEY=VALUE settings from the command line (`--set` for an architecture, `--recipe` for a training recipe)
checked against the constructor they configure, before any work: an unknown key, or a value of the wrong
type, is a one-line UsageError naming the flag, the key, the value and what the key takes.

The constructor's signature is the schema (its annotations, else the type of its default), as everywhere in
the registry; no type is imported from the models, so checking costs nothing. What the types cannot say (a
width that must be a multiple of 4) the constructor itself raises; `building` turns that into the same kind
of one-line error.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .errors import UsageError, first_line


class SettingError(UsageError):
    """A `--set` / `--recipe` setting is wrong (the command line, not a checkpoint's own config)."""


def shown(value: Any) -> str:
    """A setting's value as the user typed it: text as is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def setting_text(flag: str, settings: Mapping[str, Any]) -> str:
    """`--set cnum=abc` (several settings side by side: `--set a=1 b=2`)."""
    return f"{flag} " + " ".join(f"{key}={shown(value)}" for key, value in settings.items())


def constructor_hints(cls: type) -> dict[str, Any]:
    """The annotated types of the keyword arguments of `cls.__init__` and its bases' (name → type), with
    string annotations evaluated in their module; a name that cannot be evaluated is left out."""
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        init = vars(klass).get("__init__")
        if init is None or klass is object:
            continue
        try:
            hints.update(typing.get_type_hints(init))
        except Exception:  # an annotation naming what only a type checker sees: judge by the default
            continue
    hints.pop("return", None)
    return hints


def check_settings(
    settings: Mapping[str, Any], known: Mapping[str, Any], hints: Mapping[str, Any], *, flag: str, owner: str
) -> dict[str, Any]:
    """`settings` checked against `known` (name → default, in the order the error lists them) and `hints`
    (name → type); returns them unchanged. SettingError, e.g.
    `--set cnum=abc: cnum of deepfill_v2 takes an integer (default 48)`."""
    for key, value in settings.items():
        where = f"{setting_text(flag, {key: value})}:"
        if key not in known:
            raise SettingError(f"{where} not a setting of {owner}; known: {', '.join(known) or 'none'}")
        expected = hints.get(key)
        if expected is None and known[key] is not None:
            expected = type(known[key])
        if expected is not None and not _conform(value, expected):
            raise SettingError(f"{where} {key} of {owner} takes {_describe(expected)} (default {shown(known[key])})")
    return dict(settings)


@contextmanager
def building(settings: Mapping[str, Any], *, flag: str, owner: str) -> Iterator[None]:
    """Around the constructor call that takes `settings`: what it refuses (ValueError, TypeError, or a
    failure deeper in, such as a negative width) becomes a SettingError naming the settings. The setting
    the message names comes first; with none named, all of them are."""
    try:
        yield
    except UsageError:
        raise
    except (ValueError, TypeError, ArithmeticError, RuntimeError) as error:
        if not settings:
            raise
        message = first_line(error)
        named = {key: value for key, value in settings.items() if key in message} or dict(settings)
        raise SettingError(f"{setting_text(flag, named)}: {owner} refuses it: {message}") from None


# -- types ----------------------------------------------------------------------------------------------

_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def _conform(value: Any, expected: Any) -> bool:
    """Whether `value` (parsed from JSON) is an `expected`; an int passes for a float, a list for a tuple."""
    origin = typing.get_origin(expected)
    if expected is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conform(value, member) for member in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(expected)
    if origin in (tuple, list) or expected in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        args = typing.get_args(expected)
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[int, int]: exactly these
            return len(args) == len(value) and all(map(_conform, value, args))
        return all(_conform(item, args[0]) for item in value) if args else True
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True  # a type this check does not know: the constructor judges


def _describe(expected: Any) -> str:
    """`expected` in words: "an integer", "one of 'elu', 'relu'", "a list of 3 numbers, or null"."""
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(expected) if member is not type(None)]
        words = " or ".join(_describe(member) for member in members)
        return f"{words}, or null" if len(members) < len(typing.get_args(expected)) else words
    if origin is typing.Literal:
        return "one of " + ", ".join(shown(choice) for choice in typing.get_args(expected))
    if origin in (tuple, list) or expected in (tuple, list):
        args = typing.get_args(expected)
        if not args:
            return "a list"
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(set(args)) == 1:
                return f"a list of {len(args)} {_plural(args[0])}"
            return "a list of " + ", ".join(_describe(arg) for arg in args)
        return f"a list of {_plural(args[0])}"
    return _WORDS.get(expected, getattr(expected, "__name__", str(expected)))


def _plural(expected: Any) -> str:
    return {int: "integers", float: "numbers", bool: "booleans", str: "texts"}.get(expected, _describe(expected))

"""TOML reading and writing shared by the model catalog (weights.toml) and `inpaint train`'s config.

read_toml turns unreadable or invalid files into one-line errors that name the file; toml_value and
toml_key write values that read_toml reads back (the standard library only reads TOML).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import InpaintError


def read_toml(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A TOML file as a dict; unreadable or invalid files are one-line InpaintErrors naming it.
    what: "the catalog", "the config"...; fix: what the user should do when it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InpaintError(f"cannot read {what} {path}: {e.strerror}{fix}") from None
    except tomllib.TOMLDecodeError as e:
        raise InpaintError(f"{path}: invalid TOML ({e}); fix the file") from None


def toml_value(value: Any) -> str:
    """`value` (bool, int, float, str, list, dict) as a TOML value: what `read_toml` reads back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) and math.isfinite(value) else str(value).lower()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise InpaintError(f"cannot write {value!r} ({type(value).__name__}) to TOML")


def toml_key(key: str) -> str:
    """A TOML key: bare when it can be, quoted otherwise."""
    bare = key.replace("_", "").replace("-", "").isalnum() and key.isascii()
    return key if bare else json.dumps(key)

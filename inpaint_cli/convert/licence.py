"""The licence of the weights in use, and the one warning `fill` gives for non-commercial ones.

A catalog entry's `licence` wins; a checkpoint file given by path carries the licence `inpaint models
convert` recorded in its provenance. The released DeepFill and GLCIC (Lua) weights are CC BY-NC(-SA).
"""

from __future__ import annotations

import json
import logging
import os
import re

_NON_COMMERCIAL = re.compile(r"\bNC\b|non-?commercial", re.IGNORECASE)
_warned: set[str] = set()


def is_non_commercial(licence: str) -> bool:
    """CC BY-NC 4.0, CC BY-NC-SA 4.0, "non-commercial use only", ... -> True."""
    return bool(_NON_COMMERCIAL.search(licence))


def licence_of(model: str | os.PathLike[str] | None) -> str:
    """The licence of what `--model` names: its catalog entry's, else the checkpoint's provenance's, else ""."""
    from ..errors import InpaintError
    from ..weights import read_checkpoint_metadata, resolve

    try:
        resolved = resolve(model, download=False)
        if resolved.entry is not None and resolved.entry.licence:
            return resolved.entry.licence
        if resolved.path is None:
            return ""
        provenance = json.loads(read_checkpoint_metadata(resolved.path).get("provenance", "{}"))
    except (InpaintError, json.JSONDecodeError):
        return ""
    licence = provenance.get("licence", "") if isinstance(provenance, dict) else ""
    return licence if isinstance(licence, str) else ""


def warn_if_non_commercial(model: str | os.PathLike[str] | None, name: str) -> None:
    """One warning on stderr (through the `inpaint_cli` logger) per model and process."""
    licence = licence_of(model)
    if name in _warned or not is_non_commercial(licence):
        return
    _warned.add(name)
    logging.getLogger("inpaint_cli").warning("%s: the weights are licensed %s (non-commercial use only)", name, licence)

"""inpaint: the classic image-inpainting GANs in one registry, with a CLI.

Library use::

    from inpaint_cli import Inpainter, load_model, read_image, read_mask

    model = load_model("deepfill_v2")          # a weights.toml name, an arch, a path or hf:// URL
    image, mask = read_image("photo.png"), read_mask("mask.png")
    result = Inpainter(model).fill(image.rgb(), mask)

Everything is imported lazily, so importing the package (and `inpaint --help`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"  # the package version; pyproject.toml reads it from here

_EXPORTS = {
    "load_model": "weights",
    "load_catalog": "weights",
    "resolve": "weights",
    "save_checkpoint": "weights",
    "read_checkpoint": "weights",
    "Inpainter": "engine",
    "FillResult": "engine",
    "read_image": "io",
    "read_mask": "masks",
    "write_image": "io",
    "compose_output": "io",
    "register": "registry",
    "create_model": "registry",
    "list_archs": "registry",
    "get_arch": "registry",
    "InputContract": "registry",
    "InpaintError": "errors",
    "UsageError": "errors",
}

__all__ = [*sorted(_EXPORTS), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""From `--model`, `--device`, `--half` and `--set` to an `Inpainter`, as `fill` and `plural` need it.

The classical fills (`telea`, `ns`, `patchmatch`) are built from `classical_fill` without the registry, whose model
modules import torch: a classical fill never imports it (1.6 s of a 2 s fill of a 256² image).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .engine import Inpainter

log = logging.getLogger("inpaint_cli")


def load_inpainter(
    model: str | None,
    *,
    device: str = "auto",
    half: bool = False,
    overrides: dict[str, Any] | None = None,
    blend: str | None = None,
) -> tuple[Inpainter, str]:
    """The Inpainter for what `--model` names (None: the catalog's default) and the name to report;
    `blend` as `Inpainter` takes it (None: the model's default)."""
    from .classical_fill import CLASSICAL_CONFIGS, ClassicalFill
    from .convert.licence import warn_if_non_commercial
    from .host_memory import keep_freed_memory
    from .weights import resolve

    start = time.perf_counter()
    overrides = overrides or {}
    resolved = resolve(model, download=False)  # no download, and no torch for a catalog name
    if resolved.entry is not None and resolved.entry.kind == "none" and resolved.arch in CLASSICAL_CONFIGS:
        inpainter = Inpainter(ClassicalFill(resolved.arch, **overrides), device=device, half=half, blend=blend)
        name, weights = resolved.name, "no weights"
    else:
        from .devices import pick_device
        from .weights import load_model

        keep_freed_memory()  # this process fills and exits: keep freed feature maps for the next ones
        target = pick_device(device)
        loaded = load_model(model, device=target, overrides=overrides)
        warn_if_non_commercial(model, loaded.checkpoint_name)
        inpainter = Inpainter(loaded, device=target, half=half, blend=blend)
        name = loaded.checkpoint_name
        path = resolve(model, download=False).path
        weights = f"checkpoint {path}" if path is not None else "no weights"
    arch = getattr(inpainter.model, "arch_name", resolved.arch or "?")
    log.debug(
        "model %s (arch %s, %s) on %s, precision %s; loaded in %.3f s",
        name,
        arch,
        weights,
        inpainter.device,
        inpainter.precision,
        time.perf_counter() - start,
    )
    return inpainter, name

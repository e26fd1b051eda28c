"""What `inpaint models list/info` show: checkpoints joined with their architecture's capabilities.

Architectures come from `registry.arch_infos`, which does not import the models (nor torch), so both
commands answer at once."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from .registry import ArchInfo, arch_info, arch_infos
from .weights import Catalog, WeightEntry, load_catalog, local_path


def _capabilities(spec: ArchInfo) -> dict[str, Any]:
    contract = spec.contract
    return {
        "pad_multiple": contract.pad_multiple,
        "fixed_size": contract.fixed_size,
        "comfortable_size": contract.comfortable_size,
        "can_sample": contract.can_sample,
        "trainable": contract.trainable,
        "needs_weights": contract.needs_weights,
    }


def _status(entry: WeightEntry) -> str:
    if entry.source is None:
        return "builtin"
    if local_path(entry) is not None:
        return entry.kind if entry.kind != "hf" else "cached"
    return "remote" if entry.kind == "hf" else "missing"


def _is_arch_default(entry: WeightEntry, catalog: Catalog) -> bool:
    """Whether `entry` is what its architecture's name means (`--model ARCH`): marked `default`, or the
    architecture's only entry (telea, ns)."""
    return catalog.default_for(entry.arch) == entry


def name_pattern(text: str) -> str:
    """A glob as given ('deepfill*'); plain text matches as a substring ('v2' → '*v2*')."""
    return text if any(c in text for c in "*?[") else f"*{text}*"


def model_rows(pattern: str = "*") -> list[dict[str, Any]]:
    """One row per checkpoint matching `pattern` (a glob, or plain text matched as a substring), then one
    per architecture that has no checkpoint yet (so every registered model is visible, with its
    capabilities)."""
    pattern = name_pattern(pattern)
    catalog = load_catalog()
    rows: list[dict[str, Any]] = []
    archs_with_entries: set[str] = set()
    for entry in catalog.find("*"):
        archs_with_entries.add(entry.arch)
        if not fnmatch.fnmatchcase(entry.name, pattern):
            continue
        rows.append(
            {
                "name": entry.name,
                "arch": entry.arch,
                "default": _is_arch_default(entry, catalog),
                "global_default": entry.name == catalog.global_default,
                "status": _status(entry),
                "size": entry.size,
                "licence": entry.licence,
                "source": entry.source,
                **_capabilities(arch_info(entry.arch)),
            }
        )
    for spec in arch_infos(pattern):
        if spec.name not in archs_with_entries:
            rows.append(
                {
                    "name": spec.name,
                    "arch": spec.name,
                    "default": False,
                    "global_default": False,
                    "status": "no checkpoint",
                    "size": None,
                    "licence": "",
                    "source": None,
                    **_capabilities(spec),
                }
            )
    return rows


def checkpoint_file_info(path: Path) -> dict[str, Any]:
    """What a checkpoint file says of itself: arch, config, and the licence, origin and source sha256s that
    `inpaint models convert` recorded."""
    import json

    from .weights import read_checkpoint_metadata, sha256_file

    metadata = read_checkpoint_metadata(path)
    spec = arch_info(metadata.get("arch", ""))
    provenance = json.loads(metadata.get("provenance", "{}") or "{}")
    converted = provenance.get("converted_from") or {}
    return {
        "name": str(path),
        "arch": spec.name,
        "summary": spec.summary,
        "path": str(path),
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "licence": provenance.get("licence", ""),
        "data": provenance.get("data", ""),
        "config": json.loads(metadata.get("config", "{}") or "{}"),
        **({"origin": converted.get("origin", ""), "source_files": converted.get("files", {})} if converted else {}),
        **_capabilities(spec),
    }


def model_infos(name: str) -> list[dict[str, Any]]:
    """Everything known about the models `name` selects (`Catalog.select`: an entry, an architecture's
    default checkpoint, or every entry a glob matches); an architecture without any entry is described
    from the registry alone."""
    if name.endswith(".safetensors") and Path(name).expanduser().is_file():
        return [checkpoint_file_info(Path(name).expanduser())]
    catalog = load_catalog()
    has_entry = name in catalog.entries or any(e.arch == name for e in catalog.entries.values())
    if not has_entry and name in {spec.name for spec in arch_infos()}:
        spec = arch_info(name)
        return [
            {
                "name": name,
                "arch": name,
                "summary": spec.summary,
                "paper": spec.paper,
                "status": "no checkpoint",
                "config": spec.default_config,
                **_capabilities(spec),
            }
        ]
    return [_entry_info(entry, catalog) for entry in catalog.select(name)]


def _entry_info(entry: WeightEntry, catalog: Catalog) -> dict[str, Any]:
    spec = arch_info(entry.arch)
    path = local_path(entry)
    return {
        "name": entry.name,
        "arch": entry.arch,
        "summary": spec.summary,
        "paper": spec.paper,
        "default": _is_arch_default(entry, catalog),
        "global_default": entry.name == catalog.global_default,
        "source": entry.source,
        "status": _status(entry),
        "path": str(path) if path else None,
        "sha256": entry.sha256,
        "size": entry.size,
        "licence": entry.licence,
        "data": entry.data,
        "resolution": entry.resolution,
        "notes": entry.notes,
        "catalog": str(entry.catalog),
        **entry.extra,
        **_capabilities(spec),
    }

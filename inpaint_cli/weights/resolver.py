"""From what the user typed to a model: resolve a name, path or hf:// URL to a catalog entry and a file,
fetch (download and verify) that file, verify files without downloading, and load_model.

The registry is imported inside the functions that need it; nothing here imports torch at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_values import SettingError
from ..errors import InpaintError, UsageError, first_line
from . import hub
from .catalog import WeightEntry, declared_path, did_you_mean, is_glob, load_catalog
from .checkpoint import CHECKPOINT_SUFFIXES, load_state_strict, read_checkpoint, read_checkpoint_metadata
from .hashes import remember_sha256, sha256_cached, sha256_file


@dataclass
class Resolved:
    """What `resolve` found: the name to report, the arch, the catalog entry (None for a plain file or a
    weightless arch) and the file (None when there is none, or it is not available locally)."""

    name: str
    arch: str  # "" while unknown (an ad-hoc hf:// file that is not downloaded yet)
    entry: WeightEntry | None
    path: Path | None


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(CHECKPOINT_SUFFIXES) or "/" in text or os.sep in text or text.startswith("~")


def resolve(name_or_path: str | os.PathLike[str] | None, *, download: bool = True) -> Resolved:
    """Turn what the user typed into an entry and a file.

    None -> the catalog's global default. Then: "hf://..." (ad-hoc, unverified); a file path (anything
    with a checkpoint suffix or a slash must exist); what `Catalog.select` takes (an entry name, an arch
    for its default checkpoint, or a glob that must match exactly one entry); a bare arch with no entry
    (no weights for weightless archs). download=False never touches the network (path is
    None when the file is not available locally).
    """
    catalog = load_catalog()
    text = catalog.global_default if name_or_path is None else os.fspath(name_or_path)

    if text.startswith("hf://"):
        hub.parse_hf_source(text)  # UsageError when malformed
        entry = WeightEntry(name=text, arch="", source=text)
        path = fetch(entry) if download else local_path(entry)
        arch = read_checkpoint_metadata(path).get("arch", "") if path else ""
        return Resolved(text, arch, entry, path)

    as_path = Path(text).expanduser()
    # Catalog names win over a same-named file in the working directory unless it looks like a path.
    if _looks_like_path(text) or (text not in catalog.entries and as_path.is_file()):
        arch = read_checkpoint_metadata(as_path).get("arch", "")  # also the "does not exist" error
        return Resolved(str(as_path), arch, None, as_path)

    entry = None
    if text in catalog.entries or catalog.default_for(text) is not None or is_glob(text):
        matches = catalog.select(text)
        if len(matches) > 1:
            names = ", ".join(e.name for e in matches)
            raise UsageError(f"{text!r} matches {len(matches)} models ({names}); name one")
        entry = matches[0]
    if entry is not None:
        path = None
        if entry.kind != "none":
            path = fetch(entry) if download else local_path(entry)
        return Resolved(entry.name, entry.arch, entry, path)

    from ..registry import list_archs

    archs = {spec.name: spec for spec in list_archs()}
    if text in archs:
        if not archs[text].contract.needs_weights:
            return Resolved(text, text, None, None)
        raise InpaintError(
            f"{text} needs weights and no catalog has a default checkpoint for it; add one to weights.toml "
            f"or pass a .safetensors file"
        )
    raise UsageError(f"unknown model {text!r}{did_you_mean(text, [*catalog.entries, *archs])}")


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Resolve, download if needed, verify, and build the InpaintModel in eval mode on `device`.

    overrides: config values replacing the checkpoint's (e.g. GLCIC's {"postprocess": "poisson"});
    ones that change the network's shape fail the strict load with the names of the tensors."""
    from .. import registry

    overrides = overrides or {}
    resolved = resolve(name_or_path)
    entry = resolved.entry
    if resolved.path is None:
        spec = arch_spec(resolved.arch, entry.catalog if entry else None, resolved.name)
        if spec.contract.needs_weights:
            where = f"; add source and sha256 to it in {entry.catalog}" if entry else ""
            raise InpaintError(
                f"{resolved.name}: arch {resolved.arch} needs weights but has no source{where}"
            )
        model = registry.create_configured(resolved.arch, {}, overrides)
        model.checkpoint_name = resolved.name
        return model.to(device).eval()

    expected = entry.arch if entry is not None and entry.arch else None
    if expected:
        arch_spec(expected, entry.catalog if entry else None, resolved.name)
    ckpt = read_checkpoint(resolved.path, expected_arch=expected)
    arch_spec(ckpt.arch, None, str(resolved.path))
    try:
        model = registry.create_configured(ckpt.arch, ckpt.config, overrides)
    except SettingError:
        raise
    except UsageError as e:  # the file's config, not the command line, is wrong
        raise InpaintError(f"{resolved.path}: {e.message}") from None
    except (ValueError, TypeError) as e:
        raise InpaintError(f"{resolved.path}: its config does not build a {ckpt.arch}: {first_line(e)}") from None
    load_state_strict(model, ckpt.state_dict, source=str(resolved.path))
    model.checkpoint_name = resolved.name  # what --json and benchmarks report as "model"
    return model.to(device).eval()


def arch_spec(arch: str, catalog: Path | None, name: str) -> Any:
    """The registry's ArchSpec for `arch`; an unknown arch is an InpaintError naming `name` and the fix
    (the `arch` key in `catalog`, or an upgrade when the name came from a file's metadata)."""
    from .. import registry

    try:
        return registry.get_arch(arch)
    except UsageError as e:
        fix = f"fix `arch` in {catalog}" if catalog else "upgrade inpaint-cli"
        raise InpaintError(f"{name}: {e.message}; {fix}") from None


def local_path(entry: WeightEntry) -> Path | None:
    """Where the entry's file is if it is available without network access, else None."""
    if entry.kind == "none":
        return None
    if entry.kind == "hf":
        assert entry.source is not None
        return hub.cached_copy(entry.source)
    path = declared_path(entry)
    return path if path.is_file() else None


def fetch(entry: WeightEntry, *, force: bool = False) -> Path:
    """The entry's file on disk, downloading it if needed, verified against the catalog's sha256."""
    if entry.kind == "none":
        raise InpaintError(f"{entry.name} has no weights (arch {entry.arch} needs none); nothing to fetch")
    if entry.kind in ("bundled", "local"):
        path = declared_path(entry)
        if not path.is_file():
            fix = (
                "reinstall inpaint-cli"
                if entry.kind == "bundled"
                else f"restore it or fix the source in {entry.catalog}"
            )
            raise InpaintError(f"{entry.name}: {path} does not exist; {fix}")
        if entry.sha256 and sha256_cached(path) != entry.sha256:
            raise InpaintError(
                f"{entry.name}: sha256 mismatch for {path} (expected {entry.sha256[:12]}..., got "
                f"{sha256_cached(path)[:12]}...); restore the file or fix weights.toml"
            )
        return path

    assert entry.source is not None
    stale = False
    if not force and entry.sha256:
        # With a pinned sha256 a verified cached copy is the right file: no need to ask the Hub again.
        cached = hub.cached_copy(entry.source)
        if cached is not None:
            if sha256_cached(cached) == entry.sha256:
                return cached
            stale = True
    if hub.is_offline():
        if force:
            raise InpaintError(
                f"{entry.name}: cannot re-download while HF_HUB_OFFLINE is set; unset it and retry"
            )
        if stale:
            raise InpaintError(
                f"{entry.name}: the cached copy fails sha256 verification and HF_HUB_OFFLINE is set; "
                f"unset it and run `inpaint models download {entry.name}`"
            )
        if entry.sha256 is None and (cached := hub.cached_copy(entry.source)) is not None:
            return cached
        raise InpaintError(hub.offline_message(entry))

    path = hub.download(entry, force=force or stale)
    if entry.sha256:
        actual = sha256_file(path)  # freshly downloaded: always hash, never trust a cached hash
        if actual != entry.sha256:
            hub.remove_cached(path)
            raise InpaintError(
                f"{entry.name}: sha256 mismatch (expected {entry.sha256[:12]}..., got {actual[:12]}...); "
                f"the download was removed, try again or fix weights.toml"
            )
        remember_sha256(path, actual)
    return path


@dataclass
class VerifyResult:
    """`verify`'s answer for one entry."""

    entry: WeightEntry
    status: str  # "ok" | "mismatch" | "missing" | "no-weights"
    path: Path | None
    actual_sha256: str | None


def verify(entry: WeightEntry) -> VerifyResult:
    """Check the entry's file against its sha256 without downloading anything."""
    if entry.kind == "none":
        return VerifyResult(entry, "no-weights", None, None)
    path = local_path(entry)
    if path is None:
        return VerifyResult(entry, "missing", None, None)
    actual = sha256_cached(path)
    status = "ok" if entry.sha256 in (None, actual) else "mismatch"
    return VerifyResult(entry, status, path, actual)

"""The model catalog: weights.toml entries (WeightEntry), the package catalog merged with the user's
(Catalog, load_catalog), and where a bundled or local entry's file is (declared_path).

The package catalog is weights.toml at the top of a checkout, or its copy in inpaint_cli/bundled/ in an
installed wheel; the user's is $INPAINT_WEIGHTS or $XDG_CONFIG_HOME/inpaint/weights.toml. Bundled
checkpoints (`source = "bundled:FILE"`) are the files in inpaint_cli/bundled/.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InpaintError, UsageError
from .hub import parse_hf_source
from .toml_io import read_toml, toml_key, toml_value

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # inpaint_cli/
# The data folder the wheel ships: the bundled checkpoints, and the wheel's copy of weights.toml.
BUNDLED_DIR = PACKAGE_DIR / "bundled"
# What a catalog name may look like: "arch" or "arch.tag".
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class WeightEntry:
    """One checkpoint (or one weightless model) declared in a weights.toml."""

    name: str
    arch: str
    source: str | None = None
    sha256: str | None = None
    size: int | None = None
    default: bool = False
    licence: str = ""
    data: str = ""
    resolution: int | None = None
    notes: str = ""
    catalog: Path = Path("<command line>")
    # Excluded from the hash so entries stay usable as dict keys; equality still compares it.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def kind(self) -> str:
        """One of: none (weightless), bundled (shipped in the wheel), local (a path), hf (the Hub)."""
        if self.source is None:
            return "none"
        if self.source.startswith("hf://"):
            return "hf"
        if self.source.startswith("bundled:"):
            return "bundled"
        return "local"


# Keys with a WeightEntry field; any other key of an entry is kept in `extra`.
_KNOWN_KEYS = {f.name for f in fields(WeightEntry)} - {"name", "catalog", "extra"} | {"license"}


@dataclass
class Catalog:
    """Every entry by name (package entries, then the user's added or replacing them), and the files read."""

    entries: dict[str, WeightEntry]
    global_default: str
    files: list[Path] = field(default_factory=list)

    def get(self, name: str) -> WeightEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise UsageError(f"unknown model {name!r}{did_you_mean(name, self.entries)}") from None

    def default_for(self, arch: str) -> WeightEntry | None:
        """The entry marked `default = true` for `arch`, else its only entry, else None."""
        mine = [e for e in self.entries.values() if e.arch == arch]
        marked = [e for e in mine if e.default]
        if marked:
            return marked[0]
        return mine[0] if len(mine) == 1 else None

    def find(self, pattern: str = "*") -> list[WeightEntry]:
        return [e for name, e in sorted(self.entries.items()) if fnmatch.fnmatchcase(name, pattern)]

    def select(self, name: str) -> list[WeightEntry]:
        """What a model NAME means in every command: an entry's name; an architecture (its default
        checkpoint); or a glob such as 'deepfill*' (every entry whose name matches, in name order).
        UsageError when nothing matches, or for an architecture with several checkpoints and no default."""
        if name in self.entries:
            return [self.entries[name]]
        if is_glob(name):
            found = self.find(name)
            if not found:
                raise UsageError(f"no model matches {name!r}; `inpaint models list` shows them all")
            return found
        default = self.default_for(name)
        if default is not None:
            return [default]
        of_arch = sorted(e.name for e in self.entries.values() if e.arch == name)
        if of_arch:
            raise UsageError(f"{name} has no default checkpoint; name one of {', '.join(of_arch)}")
        raise UsageError(f"unknown model {name!r}{did_you_mean(name, self.entries)}")


def is_glob(text: str) -> bool:
    """Whether a model name is a wildcard pattern (fnmatch's *, ? or [...])."""
    return any(c in text for c in "*?[")


def did_you_mean(name: str, known: Any) -> str:
    """The end of an "unknown model" message: close matches among `known`, and where to see every name."""
    # dict.fromkeys: an arch and its catalog entry can share a name (ns), and it is suggested once.
    close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{hint} (`inpaint models list` shows every model)"


def package_catalog_path() -> Path:
    """The catalog shipped with the tool: in inpaint_cli/bundled/ in a wheel, at the repo top in a checkout."""
    inside = BUNDLED_DIR / "weights.toml"
    return inside if inside.is_file() else PACKAGE_DIR.parent / "weights.toml"


def user_catalog_path() -> Path | None:
    """$INPAINT_WEIGHTS if set (it must exist), else $XDG_CONFIG_HOME/inpaint/weights.toml if it exists."""
    explicit = os.environ.get("INPAINT_WEIGHTS")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise InpaintError(f"INPAINT_WEIGHTS points to {path}, which does not exist; fix or unset it")
        return path
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    path = Path(config).expanduser() / "inpaint" / "weights.toml"
    return path if path.is_file() else None


def entry_to_toml(entry: dict[str, Any]) -> str:
    """A catalog entry dict ("name" plus keys) as a ready-to-paste `[models."NAME"]` table; None is omitted."""
    lines = [f"[models.{json.dumps(entry['name'])}]"]
    lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in entry.items() if k != "name" and v is not None)
    return "\n".join(lines) + "\n"


def _parse_catalog_file(path: Path) -> tuple[dict[str, WeightEntry], str | None]:
    data = read_toml(path, "the catalog", "")

    unknown = set(data) - {"default", "models"}
    if unknown:
        raise InpaintError(
            f"{path}: unknown top-level keys {sorted(unknown)}; a catalog has `default = ...` and "
            f'[models."NAME"] tables'
        )
    global_default = data.get("default")
    if global_default is not None and not isinstance(global_default, str):
        raise InpaintError(f'{path}: `default` must be a model name string like "telea"')
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise InpaintError(f'{path}: `models` must be tables like [models."deepfill_v2.places"]')

    entries: dict[str, WeightEntry] = {}
    defaults: dict[str, str] = {}
    for name, table in models.items():
        entry = _parse_entry(path, name, table)
        if entry.default:
            if entry.arch in defaults:
                raise InpaintError(
                    f"{path}: both {defaults[entry.arch]!r} and {name!r} say `default = true` for arch "
                    f"{entry.arch}; keep one"
                )
            defaults[entry.arch] = name
        entries[name] = entry
    return entries, global_default


def _parse_entry(path: Path, name: str, table: Any) -> WeightEntry:
    where = f'{path}: [models."{name}"]'
    if not isinstance(table, dict):
        raise InpaintError(f"{where} must be a table")
    if not NAME_RE.fullmatch(name):
        raise InpaintError(f"{where}: bad name; use letters, digits, '_', '-' and '.' (e.g. arch.tag)")

    def typed(key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = table.get(key, default)
        # bool is an int subclass; `size = true` is a mistake, not 1 byte.
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if value is not default and wrong:
            raise InpaintError(f"{where}: `{key}` has the wrong type ({type(value).__name__})")
        return value

    arch = typed("arch", str, None)
    if not arch:
        raise InpaintError(f'{where} has no `arch`; add e.g. arch = "{name.split(".")[0]}"')
    if name != arch and not name.startswith(arch + "."):
        raise InpaintError(f'{where}: names are "ARCH.TAG"; rename it to "{arch}.{name}" or fix `arch`')

    source = typed("source", str, None)
    sha = typed("sha256", str, None)
    if source is not None:
        if not sha:
            raise InpaintError(f'{where} has a source but no sha256; add sha256 = "<sha256sum of the file>"')
        sha = sha.strip().lower()
        if not _SHA256_RE.fullmatch(sha):
            raise InpaintError(f"{where}: sha256 must be 64 hex digits (the output of sha256sum)")
        if source.startswith("hf://"):
            try:
                parse_hf_source(source)
            except UsageError as e:
                raise InpaintError(f"{where}: {e.message}") from None
        elif source.startswith("bundled:"):
            file = source[len("bundled:") :]
            if not file or "/" in file or "\\" in file or file in (".", ".."):
                raise InpaintError(
                    f"{where}: a bundled source names a file in inpaint_cli/bundled/ (bundled:x.safetensors)"
                )
        elif not source:
            raise InpaintError(f"{where}: empty source; remove it or give a path, bundled: or hf:// source")

    licence = typed("licence", str, None)
    if licence is None:
        licence = typed("license", str, "")
    size = typed("size", int, None)
    resolution = typed("resolution", int, None)
    return WeightEntry(
        name=name,
        arch=arch,
        source=source,
        sha256=sha,
        size=size,
        default=typed("default", bool, False),
        licence=licence,
        data=typed("data", str, ""),
        resolution=resolution,
        notes=typed("notes", str, ""),
        catalog=path,
        extra={k: v for k, v in table.items() if k not in _KNOWN_KEYS},
    )


def _stamp(path: Path | None) -> tuple[str, int] | None:
    if path is None:
        return None
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError:
        return str(path), -1


def load_catalog() -> Catalog:
    """The package catalog merged with the user's (user entries add to or replace package ones).

    Cached per (file, mtime): changing INPAINT_WEIGHTS/XDG_CONFIG_HOME or editing a file is picked up.
    """
    return _load_catalog(_stamp(package_catalog_path()), _stamp(user_catalog_path()))


@functools.lru_cache(maxsize=8)
def _load_catalog(package: tuple[str, int], user: tuple[str, int] | None) -> Catalog:
    pkg_path = Path(package[0])
    if not pkg_path.is_file():
        raise InpaintError(f"the model catalog {pkg_path} is missing; reinstall inpaint-cli")
    entries, global_default = _parse_catalog_file(pkg_path)
    files = [pkg_path]
    if user is not None:
        user_path = Path(user[0])
        user_entries, user_default = _parse_catalog_file(user_path)
        files.append(user_path)
        # A user default for an arch replaces the package's default for it.
        user_default_archs = {e.arch for e in user_entries.values() if e.default}
        entries = {
            n: dataclasses.replace(e, default=False) if e.default and e.arch in user_default_archs else e
            for n, e in entries.items()
        }
        entries.update(user_entries)
        global_default = user_default or global_default
    if not global_default:
        raise InpaintError(f'{pkg_path}: no global `default = "..."`; add one (e.g. default = "telea")')
    return Catalog(entries=entries, global_default=global_default, files=files)


load_catalog.cache_clear = _load_catalog.cache_clear  # type: ignore[attr-defined]


def declared_path(entry: WeightEntry) -> Path:
    """Where a bundled or local entry's file should be (it may not exist): a bundled:FILE is in
    BUNDLED_DIR, a relative local path is relative to the directory of the catalog that declares it."""
    assert entry.source is not None
    if entry.kind == "bundled":
        return BUNDLED_DIR / entry.source[len("bundled:") :]
    path = Path(os.path.expandvars(entry.source)).expanduser()
    return path if path.is_absolute() else entry.catalog.parent / path

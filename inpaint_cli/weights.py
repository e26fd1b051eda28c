"""Checkpoints: the weights.toml catalog, resolving a model name to a file, downloads, verification,
and the safetensors checkpoint format that `load_model` reads.

A checkpoint is a safetensors file whose metadata carries everything needed to rebuild the network:
"format" ("inpaint-cli/1"), "arch", "config" (JSON of the model's arch_config) and "provenance" (JSON,
free-form). Pickles are never loaded: a .pt/.pth/.ckpt file can run arbitrary code when unpickled.

torch, safetensors.torch and huggingface_hub are imported inside the functions that need them, so that
listing the catalog (`inpaint models list`, `--help`) stays fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import InpaintError, UsageError

CHECKPOINT_FORMAT = "inpaint-cli/1"
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "weights"
# Suffixes that almost always mean a pickle; they are refused unless the bytes are really safetensors.
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".ckpt", ".bin")

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]*")
# A safetensors header larger than this is certainly not one (the format itself caps it at 100 MB).
_MAX_HEADER = 100_000_000


# --------------------------------------------------------------------------------------------- catalog


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
    entries: dict[str, WeightEntry]
    global_default: str
    files: list[Path] = field(default_factory=list)

    def get(self, name: str) -> WeightEntry:
        try:
            return self.entries[name]
        except KeyError:
            raise UsageError(f"unknown model {name!r}{_suggest(name, self.entries)}") from None

    def default_for(self, arch: str) -> WeightEntry | None:
        """The entry marked `default = true` for `arch`, else its only entry, else None."""
        mine = [e for e in self.entries.values() if e.arch == arch]
        marked = [e for e in mine if e.default]
        if marked:
            return marked[0]
        return mine[0] if len(mine) == 1 else None

    def find(self, pattern: str = "*") -> list[WeightEntry]:
        return [e for name, e in sorted(self.entries.items()) if fnmatch.fnmatchcase(name, pattern)]


def _suggest(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"{hint} (`inpaint models list` shows every model)"


def package_catalog_path() -> Path:
    """The catalog shipped with the tool: inside the package in a wheel, at the repo top in a checkout."""
    inside = PACKAGE_DIR / "weights.toml"
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


def parse_hf_source(source: str) -> tuple[str, str, str]:
    """Split hf://org/repo/dir/file.safetensors@rev into ("org/repo", "dir/file.safetensors", "rev").

    The revision (branch, tag or commit) is optional and defaults to "main".
    """
    bad = UsageError(
        f"malformed Hub source {source!r}; expected hf://org/repo/path/to/file.safetensors[@revision]"
    )
    if not source.startswith("hf://"):
        raise bad
    rest, revision = source[len("hf://") :], "main"
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    parts = rest.split("/")
    if len(parts) < 3 or any(p in ("", ".", "..") for p in parts) or not revision:
        raise bad
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:]), revision


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
    if not _NAME_RE.fullmatch(name):
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
                    f"{where}: a bundled source names a file in inpaint_cli/weights/ (bundled:x.safetensors)"
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


# ------------------------------------------------------------------------------------- files and hashes


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


_HASHES: dict[tuple[str, int, int], str] = {}


def _sha256_cached(path: Path) -> str:
    """sha256 of a file, remembered per (real path, mtime, size) so repeated fills don't rehash."""
    real = os.path.realpath(path)
    st = os.stat(real)
    key = (real, st.st_mtime_ns, st.st_size)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(Path(real))
    return _HASHES[key]


def _declared_path(entry: WeightEntry) -> Path:
    """Where a bundled or local entry's file should be (it may not exist)."""
    assert entry.source is not None
    if entry.kind == "bundled":
        return BUNDLED_DIR / entry.source[len("bundled:") :]
    path = Path(os.path.expandvars(entry.source)).expanduser()
    return path if path.is_absolute() else entry.catalog.parent / path


# ------------------------------------------------------------------------------------------------ Hub


_TRUE = {"1", "ON", "YES", "TRUE"}


def _offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub saw it at import, or as the environment says now."""
    from huggingface_hub import constants

    return constants.is_offline_mode() or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _hf_options() -> dict[str, Any]:
    """Endpoint and cache read from the environment at call time.

    huggingface_hub reads HF_ENDPOINT / HF_HOME / HF_HUB_CACHE once, at import; passing them explicitly
    makes a later change (a library user setting os.environ, the test suite) take effect too. Unset
    variables fall back to huggingface_hub's own defaults.
    """
    options: dict[str, Any] = {"library_name": "inpaint-cli"}
    endpoint = os.environ.get("HF_ENDPOINT")
    if endpoint:
        options["endpoint"] = endpoint.rstrip("/")
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            options["cache_dir"] = os.path.expanduser(os.path.expandvars(os.environ[var]))
            break
    else:
        if os.environ.get("HF_HOME"):
            home = os.path.expanduser(os.path.expandvars(os.environ["HF_HOME"]))
            options["cache_dir"] = os.path.join(home, "hub")
    return options


def hub_settings() -> dict[str, Any]:
    """The Hub endpoint, cache directory and offline flag that downloads will use now."""
    from huggingface_hub import constants

    options = _hf_options()
    return {
        "endpoint": options.get("endpoint", constants.ENDPOINT),
        "cache": options.get("cache_dir", constants.HF_HUB_CACHE),
        "offline": _offline(),
    }


def _hf_url(source: str) -> str:
    from huggingface_hub import constants, hf_hub_url

    repo_id, filename, revision = parse_hf_source(source)
    endpoint = _hf_options().get("endpoint", constants.ENDPOINT)
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)


def _hf_cached(source: str) -> Path | None:
    """The cached copy of a Hub file, found by looking at the cache only, or None.

    try_to_load_from_cache rather than hf_hub_download(local_files_only=True): the latter still builds
    request headers, and huggingface-hub 2.x's agent detection in there may GET /api/agent-harnesses.
    """
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename, revision = parse_hf_source(source)
    cache_dir = _hf_options().get("cache_dir")
    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    return Path(found) if isinstance(found, str) else None


def _remove_from_hf_cache(pointer: Path) -> None:
    """Delete a cached Hub file: the blob the snapshot symlink points to, then the symlink itself."""
    blob = Path(os.path.realpath(pointer))
    for path in (blob, pointer):
        path.unlink(missing_ok=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:200]


def _download_hf(entry: WeightEntry, *, force: bool) -> Path:
    from huggingface_hub import errors as hf_errors
    from huggingface_hub import hf_hub_download

    assert entry.source is not None
    repo_id, filename, revision = parse_hf_source(entry.source)
    url = _hf_url(entry.source)
    try:
        return Path(
            hf_hub_download(repo_id, filename, revision=revision, force_download=force, **_hf_options())
        )
    except hf_errors.GatedRepoError:
        raise InpaintError(
            f"{entry.name}: {repo_id} is gated; accept its terms on the Hub and set HF_TOKEN"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise InpaintError(
            f"{entry.name}: repository {repo_id} not found at {url} (or it is private: set HF_TOKEN); "
            f"fix the source in {entry.catalog}"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise InpaintError(
            f"{entry.name}: revision {revision!r} of {repo_id} not found ({url}); "
            f"fix the source in {entry.catalog}"
        ) from None
    except hf_errors.RemoteEntryNotFoundError:
        raise InpaintError(
            f"{entry.name}: {filename} not found in {repo_id}@{revision} ({url}); "
            f"fix the source in {entry.catalog}"
        ) from None
    except hf_errors.OfflineModeIsEnabled:
        raise InpaintError(_offline_message(entry)) from None
    except Exception as e:  # connection refused, DNS, timeouts, HTTP 5xx, disk full: one line for all
        cause = e.__cause__ or e  # huggingface_hub wraps the real reason (e.g. connection refused)
        raise InpaintError(
            f"{entry.name}: could not download {url} ({_first_line(cause)}); check the network and "
            f"HF_ENDPOINT, or copy the file and use a local source"
        ) from None


def _offline_message(entry: WeightEntry) -> str:
    return (
        f"{entry.name} is not in the cache and HF_HUB_OFFLINE is set; run `inpaint models download "
        f"{entry.name}` on a machine with network or copy the file and use a local source"
    )


# ------------------------------------------------------------------------------- local_path / fetch / verify


def local_path(entry: WeightEntry) -> Path | None:
    """Where the entry's file is if it is available without network access, else None."""
    if entry.kind == "none":
        return None
    if entry.kind == "hf":
        assert entry.source is not None
        return _hf_cached(entry.source)
    path = _declared_path(entry)
    return path if path.is_file() else None


def fetch(entry: WeightEntry, *, force: bool = False) -> Path:
    """The entry's file on disk, downloading it if needed, verified against the catalog's sha256."""
    if entry.kind == "none":
        raise InpaintError(f"{entry.name} has no weights (arch {entry.arch} needs none); nothing to fetch")
    if entry.kind in ("bundled", "local"):
        path = _declared_path(entry)
        if not path.is_file():
            fix = (
                "reinstall inpaint-cli"
                if entry.kind == "bundled"
                else f"restore it or fix the source in {entry.catalog}"
            )
            raise InpaintError(f"{entry.name}: {path} does not exist; {fix}")
        if entry.sha256 and _sha256_cached(path) != entry.sha256:
            raise InpaintError(
                f"{entry.name}: sha256 mismatch for {path} (expected {entry.sha256[:12]}..., got "
                f"{_sha256_cached(path)[:12]}...); restore the file or fix weights.toml"
            )
        return path

    assert entry.source is not None
    stale = False
    if not force and entry.sha256:
        # With a pinned sha256 a verified cached copy is the right file: no need to ask the Hub again.
        cached = _hf_cached(entry.source)
        if cached is not None:
            if _sha256_cached(cached) == entry.sha256:
                return cached
            stale = True
    if _offline():
        if force:
            raise InpaintError(
                f"{entry.name}: cannot re-download while HF_HUB_OFFLINE is set; unset it and retry"
            )
        if stale:
            raise InpaintError(
                f"{entry.name}: the cached copy fails sha256 verification and HF_HUB_OFFLINE is set; "
                f"unset it and run `inpaint models download {entry.name}`"
            )
        if entry.sha256 is None and (cached := _hf_cached(entry.source)) is not None:
            return cached
        raise InpaintError(_offline_message(entry))

    path = _download_hf(entry, force=force or stale)
    if entry.sha256:
        actual = sha256_file(path)  # freshly downloaded: always hash, never trust a cached hash
        if actual != entry.sha256:
            _remove_from_hf_cache(path)
            raise InpaintError(
                f"{entry.name}: sha256 mismatch (expected {entry.sha256[:12]}..., got {actual[:12]}...); "
                f"the download was removed, try again or fix weights.toml"
            )
        real = os.path.realpath(path)
        st = os.stat(real)
        _HASHES[(real, st.st_mtime_ns, st.st_size)] = actual
    return path


@dataclass
class VerifyResult:
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
    actual = _sha256_cached(path)
    status = "ok" if entry.sha256 in (None, actual) else "mismatch"
    return VerifyResult(entry, status, path, actual)


# ---------------------------------------------------------------------------------- checkpoint files


@dataclass
class Checkpoint:
    path: Path
    arch: str
    config: dict[str, Any]
    state_dict: dict[str, Any]
    metadata: dict[str, str]
    provenance: dict[str, Any]
    # Tensors saved beside the model's (EMA copies, optimiser-free extras); never fed to load_state_strict.
    extra_tensors: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Any,
    *,
    provenance: dict[str, Any] | None = None,
    dtype: Any = None,
    extra_tensors: dict[str, Any] | None = None,
) -> None:
    """Write `model` (an InpaintModel, or a Checkpoint from `read_checkpoint`) as an inpaint safetensors
    checkpoint, atomically.

    dtype (e.g. torch.float16) casts floating tensors only, to ship smaller files.
    """
    from safetensors.torch import save

    path = Path(path)
    extra_tensors = dict(extra_tensors or {})
    if isinstance(model, Checkpoint):
        arch, config, state = model.arch, model.config, dict(model.state_dict)
    else:
        arch, config, state = model.arch_name, model.arch_config, dict(model.state_dict())
    clash = sorted(set(state) & set(extra_tensors))
    if clash:
        raise InpaintError(
            f"{path}: extra tensor names {clash[:5]} clash with the model's parameters; rename them"
        )

    tensors: dict[str, Any] = {}
    seen: set[int] = set()
    for name, tensor in {**state, **extra_tensors}.items():
        t = tensor.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        # safetensors refuses tensors sharing storage (tied weights, views): give each its own copy.
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or t.numel() * t.element_size() != t.untyped_storage().nbytes():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[name] = t.contiguous()

    try:
        metadata = {
            "format": CHECKPOINT_FORMAT,
            "arch": arch,
            "config": json.dumps(config, sort_keys=True),
            "provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
        }
    except TypeError as e:
        raise InpaintError(f"{path}: the {arch} config is not JSON-serialisable ({e})") from None
    if extra_tensors:
        metadata["extra_tensors"] = json.dumps(sorted(extra_tensors))

    from .io import write_atomic

    # Serialised in memory and written by io.write_atomic: safetensors' save_file would create a 0600
    # file in place, and checkpoints are meant to be shared and never seen half-written.
    write_atomic(path, save(tensors, metadata=metadata))


def _pickle_message(path: Path) -> str:
    return (
        f"{path} is a pickled PyTorch checkpoint; inpaint loads only safetensors (pickles can run code). "
        f"Convert it with a trusted script: torch.load + safetensors.torch.save_file"
    )


def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The safetensors header's metadata, read without torch (and without unpickling anything)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a checkpoint file" if path.is_dir() else "does not exist"
        raise InpaintError(f"{path} {what}; check the path or pick a model from `inpaint models list`")
    # The safetensors header is parsed first: its first 8 bytes are a little-endian length, so about one
    # real file in 256 starts with 0x80 (or "PK") and must not be taken for a pickle by its signature.
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = path.stat().st_size
            header = None
            if len(head) == 8:
                (n,) = struct.unpack("<Q", head)
                if 1 < n <= min(size - 8, _MAX_HEADER):
                    header = f.read(n)
    except OSError as e:
        raise InpaintError(f"cannot read {path}: {e.strerror}") from None

    parsed: Any = None
    if header is not None and header.startswith(b"{"):
        try:
            parsed = json.loads(header)
        except (UnicodeDecodeError, json.JSONDecodeError):
            parsed = None
    if not isinstance(parsed, dict):
        # Not safetensors: only now do the pickle / zip (torch.save) signatures pick the message.
        if head.startswith((b"\x80", b"PK")) or path.suffix.lower() in PICKLE_SUFFIXES:
            raise InpaintError(_pickle_message(path))
        raise InpaintError(
            f"{path} is not a safetensors file; pass a .safetensors checkpoint written by inpaint"
        )
    metadata = parsed.get("__metadata__") or {}
    if not isinstance(metadata, dict):
        raise InpaintError(f"{path} has a malformed safetensors header; re-save or re-download it")
    return {str(k): str(v) for k, v in metadata.items()}


def read_checkpoint(path: str | os.PathLike[str], *, expected_arch: str | None = None) -> Checkpoint:
    """Read and validate an inpaint checkpoint (state dict + arch/config/provenance)."""
    path = Path(path)
    metadata = read_checkpoint_metadata(path)
    arch = metadata.get("arch")
    if not arch:
        raise InpaintError(
            f"{path} has no arch metadata; it was not written by inpaint (load its tensors into a model "
            f"built with registry.create_model and re-save it with inpaint_cli.weights.save_checkpoint)"
        )
    fmt = metadata.get("format", CHECKPOINT_FORMAT)
    if fmt != CHECKPOINT_FORMAT:
        raise InpaintError(
            f"{path} has checkpoint format {fmt!r}; this inpaint reads {CHECKPOINT_FORMAT}, upgrade it"
        )
    if expected_arch is not None and arch != expected_arch:
        raise InpaintError(
            f"{path} is a {arch} checkpoint, not {expected_arch}; pick a {expected_arch} checkpoint "
            f"or use --model {arch}"
        )

    def json_field(key: str, kind: type) -> Any:
        try:
            value = json.loads(metadata.get(key, "{}" if kind is dict else "[]"))
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, kind):
            raise InpaintError(
                f"{path}: metadata {key!r} is not a JSON {kind.__name__}; re-save the checkpoint"
            )
        return value

    config = json_field("config", dict)
    provenance = json_field("provenance", dict)
    extra_names = json_field("extra_tensors", list)

    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise InpaintError(
            f"{path} is a damaged safetensors file ({_first_line(e)}); re-download or re-save it"
        ) from None
    extra = {name: tensors.pop(name) for name in extra_names if name in tensors}
    return Checkpoint(path, arch, config, tensors, metadata, provenance, extra)


EXPORT_DTYPES = ("fp16", "bf16", "fp32")


def export_checkpoint(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    dtype: str = "fp16",
    name: str | None = None,
) -> dict[str, Any]:
    """Write a copy of the checkpoint `src` (e.g. a run's best.safetensors) to `dst` with its floating
    tensors cast to `dtype` (fp16, bf16 or fp32; integer and bool tensors are kept), keeping its arch,
    config and training provenance (plus an "export" record: dtype and the source's sha256).

    Returns the weights.toml entry for `dst` (see `entry_to_toml`): name (default ARCH.<dst stem>), arch,
    source (`dst` as given), sha256, size, and what the provenance knows: resolution, steps, wall_time,
    val_hole_* scores and data.
    """
    import torch

    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if dtype not in dtypes:
        raise UsageError(f"--dtype {dtype}: not one of {', '.join(EXPORT_DTYPES)}")
    src_path, dst_path = Path(src), Path(dst)
    if dst_path.suffix.lower() != ".safetensors":
        raise UsageError(f"{dst_path}: checkpoints are .safetensors files; name the output *.safetensors")
    if _same_file(src_path, dst_path):
        raise UsageError(f"{dst_path} is the source checkpoint itself; pass another --out (the input is kept)")

    ckpt = read_checkpoint(src_path)  # the one-line errors for pickles, other files and damaged ones
    _arch_or_error(ckpt.arch, None, str(src_path))
    given = name
    name = name or f"{ckpt.arch}.{dst_path.stem}"
    if not _NAME_RE.fullmatch(name) or not name.startswith(ckpt.arch + "."):
        what = f"--name {given}" if given else f"{dst_path}: its stem gives the name {name!r}, which"
        raise UsageError(
            f"{what} is not a catalog name {ckpt.arch}.TAG (letters, digits, '_', '-', '.'); "
            f"pass --name {ckpt.arch}.TAG"
        )

    provenance = {**ckpt.provenance, "export": {"dtype": dtype, "source_sha256": sha256_file(src_path)}}
    save_checkpoint(dst_path, ckpt, provenance=provenance, dtype=dtypes[dtype], extra_tensors=ckpt.extra_tensors)
    return _export_entry(name, ckpt.arch, os.fspath(dst), dst_path, ckpt.provenance)


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:  # one of them does not exist
        return False


def _export_entry(name: str, arch: str, source: str, path: Path, provenance: dict[str, Any]) -> dict[str, Any]:
    """The catalog entry of an exported file; keys the provenance cannot fill are left out."""
    entry: dict[str, Any] = {
        "name": name,
        "arch": arch,
        "source": source,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
    }
    config = provenance.get("config")
    size = config.get("size") if isinstance(config, dict) else None
    if isinstance(size, int) and not isinstance(size, bool):
        entry["resolution"] = size
    steps = provenance.get("steps")
    if isinstance(steps, int) and not isinstance(steps, bool):
        entry["steps"] = steps
    wall = provenance.get("wall_seconds")
    if isinstance(wall, (int, float)) and not isinstance(wall, bool) and math.isfinite(wall):
        entry["wall_time"] = format_duration(wall)
    val = provenance.get("val") if isinstance(provenance.get("val"), dict) else {}
    order = ["psnr", "ssim", "l1"]  # the order weights.toml lists them in; any other score after
    for key, value in sorted(val.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 3, kv[0])):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            # PSNR in dB to 0.01; SSIM, L1 (0-1 scales) to three significant digits.
            entry[f"val_hole_{key}"] = round(value, 2) if key == "psnr" else float(f"{value:.3g}")
    data, images = provenance.get("data"), provenance.get("images")
    if data:
        entry["data"] = f"{data} ({images} images)" if isinstance(images, int) else str(data)
    return entry


def format_duration(seconds: float) -> str:
    """A wall time for humans: "45 s", "12 min", "1 h 52 min"."""
    if seconds < 59.5:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _some(names: list[str], limit: int = 4) -> str:
    shown = ", ".join(names[:limit])
    return f"{len(names)} ({shown}{', ...' if len(names) > limit else ''})"


def load_state_strict(model: Any, state_dict: dict[str, Any], *, source: str) -> None:
    """Load every tensor, exactly: missing/unexpected keys or wrong shapes are a one-line InpaintError."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k} {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(own[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing {_some(missing)}")
    if unexpected:
        problems.append(f"unexpected {_some(unexpected)}")
    if shapes:
        problems.append(f"shape mismatch (file vs model) {_some(shapes, 2)}")
    if problems:
        arch = getattr(model, "arch_name", type(model).__name__)
        raise InpaintError(
            f"{source} does not fit the {arch} model: {'; '.join(problems)}; "
            f"it was saved from a different architecture or config"
        )
    # fp16 files load into fp32 models (and back): match each tensor to the model's own dtype.
    cast = {
        k: v.to(own[k].dtype) if v.is_floating_point() and own[k].is_floating_point() else v
        for k, v in state_dict.items()
    }
    model.load_state_dict(cast, strict=True)


# ------------------------------------------------------------------------------------ resolve / load


@dataclass
class Resolved:
    name: str
    arch: str  # "" while unknown (an ad-hoc hf:// file that is not downloaded yet)
    entry: WeightEntry | None
    path: Path | None


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith(CHECKPOINT_SUFFIXES) or "/" in text or os.sep in text or text.startswith("~")


def resolve(name_or_path: str | os.PathLike[str] | None, *, download: bool = True) -> Resolved:
    """Turn what the user typed into an entry and a file.

    None -> the catalog's global default. Then: "hf://..." (ad-hoc, unverified); a file path (anything
    with a checkpoint suffix or a slash must exist); a catalog entry name; a bare arch name (its default
    checkpoint, or no weights for weightless archs). download=False never touches the network (path is
    None when the file is not available locally).
    """
    catalog = load_catalog()
    text = catalog.global_default if name_or_path is None else os.fspath(name_or_path)

    if text.startswith("hf://"):
        parse_hf_source(text)  # UsageError when malformed
        entry = WeightEntry(name=text, arch="", source=text)
        path = fetch(entry) if download else local_path(entry)
        arch = read_checkpoint_metadata(path).get("arch", "") if path else ""
        return Resolved(text, arch, entry, path)

    as_path = Path(text).expanduser()
    # Catalog names win over a same-named file in the working directory unless it looks like a path.
    if _looks_like_path(text) or (text not in catalog.entries and as_path.is_file()):
        arch = read_checkpoint_metadata(as_path).get("arch", "")  # also the "does not exist" error
        return Resolved(str(as_path), arch, None, as_path)

    entry = catalog.entries.get(text) or catalog.default_for(text)
    if entry is not None:
        path = None
        if entry.kind != "none":
            path = fetch(entry) if download else local_path(entry)
        return Resolved(entry.name, entry.arch, entry, path)

    from .registry import list_archs

    archs = {spec.name: spec for spec in list_archs()}
    if text in archs:
        if not archs[text].contract.needs_weights:
            return Resolved(text, text, None, None)
        raise InpaintError(
            f"{text} needs weights and no catalog has a default checkpoint for it; add one to weights.toml "
            f"or pass a .safetensors file"
        )
    raise UsageError(f"unknown model {text!r}{_suggest(text, [*catalog.entries, *archs])}")


def load_model(
    name_or_path: str | os.PathLike[str] | None = None,
    *,
    device: str = "cpu",
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Resolve, download if needed, verify, and build the InpaintModel in eval mode on `device`.

    overrides: config values replacing the checkpoint's (e.g. GLCIC's {"postprocess": "poisson"});
    ones that change the network's shape fail the strict load with the names of the tensors."""
    from . import registry

    overrides = overrides or {}
    resolved = resolve(name_or_path)
    entry = resolved.entry
    if resolved.path is None:
        spec = _arch_or_error(resolved.arch, entry.catalog if entry else None, resolved.name)
        if spec.contract.needs_weights:
            where = f"; add source and sha256 to it in {entry.catalog}" if entry else ""
            raise InpaintError(
                f"{resolved.name}: arch {resolved.arch} needs weights but has no source{where}"
            )
        model = registry.create_model(resolved.arch, **overrides)
        model.checkpoint_name = resolved.name
        return model.to(device).eval()

    expected = entry.arch if entry is not None and entry.arch else None
    if expected:
        _arch_or_error(expected, entry.catalog if entry else None, resolved.name)
    ckpt = read_checkpoint(resolved.path, expected_arch=expected)
    _arch_or_error(ckpt.arch, None, str(resolved.path))
    unknown = set(overrides) - set(registry.get_arch(ckpt.arch).default_config)
    if unknown:
        raise UsageError(f"--set {', '.join(sorted(unknown))}: not a config key of {ckpt.arch}")
    try:
        model = registry.create_model(ckpt.arch, **{**ckpt.config, **overrides})
    except UsageError as e:  # the file's config, not the command line, is wrong
        raise InpaintError(f"{resolved.path}: {e.message}") from None
    load_state_strict(model, ckpt.state_dict, source=str(resolved.path))
    model.checkpoint_name = resolved.name  # what --json and benchmarks report as "model"
    return model.to(device).eval()


def _arch_or_error(arch: str, catalog: Path | None, name: str) -> Any:
    from . import registry

    try:
        return registry.get_arch(arch)
    except UsageError as e:
        fix = f"fix `arch` in {catalog}" if catalog else "upgrade inpaint-cli"
        raise InpaintError(f"{name}: {e.message}; {fix}") from None

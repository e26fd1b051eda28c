"""The Hugging Face Hub: hf:// sources, downloads into the Hub cache, the cache, and offline mode.

huggingface_hub is imported inside the functions that need it, so listing the catalog stays fast.
HF_ENDPOINT, HF_HOME, HF_HUB_CACHE and HF_HUB_OFFLINE are read at call time, not only at import.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InpaintError, UsageError, first_line

if TYPE_CHECKING:
    from .catalog import WeightEntry

_TRUE = {"1", "ON", "YES", "TRUE"}


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


def is_offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub saw it at import, or as the environment says now."""
    from huggingface_hub import constants

    # is_offline_mode() from huggingface-hub 1.5 on; before, the flag read at import.
    seen = getattr(constants, "is_offline_mode", None)
    seen_offline = seen() if seen is not None else bool(getattr(constants, "HF_HUB_OFFLINE", False))
    return seen_offline or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _hub_error(name: str, *fallbacks: str) -> type[BaseException]:
    """huggingface_hub's exception class `name`, wherever this version keeps it: `huggingface_hub.errors`
    (0.26 on; RemoteEntryNotFoundError from 1.0) or `huggingface_hub.utils` (before), else the first of
    `fallbacks` found (EntryNotFoundError before RemoteEntryNotFoundError existed)."""
    import huggingface_hub.utils as hf_utils

    try:
        import huggingface_hub.errors as hf_errors
    except ImportError:  # pragma: no cover - before 0.23
        hf_errors = hf_utils
    for candidate in (name, *fallbacks):
        for module in (hf_errors, hf_utils):
            found = getattr(module, candidate, None)
            if isinstance(found, type) and issubclass(found, BaseException):
                return found
    raise ImportError(f"huggingface_hub has no {name}; upgrade huggingface-hub")


CONNECT_TIMEOUT_S = 3.0  # a reachable Hub (or proxy) answers a TCP connect in well under this


def unreachable(url: str) -> str | None:
    """Why the host serving `url` (or the proxy in between) cannot be reached, or None when a TCP connection
    to it opens within CONNECT_TIMEOUT_S. huggingface_hub retries a refused or unresolvable endpoint with
    backoff for about 25 s; asking once first lets an offline machine fail in a moment instead."""
    import socket
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxied = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxied.hostname or "", proxied.port or (443 if proxied.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except socket.gaierror as e:
        return f"cannot resolve {host} ({e.strerror or e})"
    except TimeoutError:
        return f"no answer from {host}:{port} within {CONNECT_TIMEOUT_S:g} s"
    except OSError as e:
        return f"cannot connect to {host}:{port} ({e.strerror or e})"


def unreachable_message(entry: WeightEntry, url: str, reason: str) -> str:
    """What to say when the Hub cannot be reached for an entry that is not in the cache."""
    return (
        f"{entry.name}: could not download {url}: {reason}; if this machine is offline, set HF_HUB_OFFLINE=1 "
        f"(cached files only), else check the network, HF_ENDPOINT and any proxy"
    )


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
        "offline": is_offline(),
    }


def _hf_url(source: str) -> str:
    from huggingface_hub import constants, hf_hub_url

    repo_id, filename, revision = parse_hf_source(source)
    endpoint = _hf_options().get("endpoint", constants.ENDPOINT)
    return hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)


def cached_copy(source: str) -> Path | None:
    """The cached copy of a Hub file, found by looking at the cache only, or None.

    try_to_load_from_cache rather than hf_hub_download(local_files_only=True): the latter still builds
    request headers, and huggingface-hub 2.x's agent detection in there may GET /api/agent-harnesses.
    """
    from huggingface_hub import try_to_load_from_cache

    repo_id, filename, revision = parse_hf_source(source)
    cache_dir = _hf_options().get("cache_dir")
    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir, revision=revision)
    return Path(found) if isinstance(found, str) else None


def remove_cached(pointer: Path) -> None:
    """Delete a cached Hub file: the blob the snapshot symlink points to, then the symlink itself."""
    blob = Path(os.path.realpath(pointer))
    for path in (blob, pointer):
        path.unlink(missing_ok=True)


def download(entry: WeightEntry, *, force: bool) -> Path:
    """Download an hf:// entry's file into the Hub cache (not verified here); Hub errors become one line."""
    from huggingface_hub import hf_hub_download

    assert entry.source is not None
    repo_id, filename, revision = parse_hf_source(entry.source)
    url = _hf_url(entry.source)
    reason = unreachable(url)
    if reason is not None:
        cached = None if force else cached_copy(entry.source)
        if cached is not None:  # what huggingface_hub itself falls back to, once its retries are spent
            logging.getLogger("inpaint_cli").warning("%s: %s; using the cached copy", entry.name, reason)
            return cached
        raise InpaintError(unreachable_message(entry, url, reason))
    try:
        return Path(
            hf_hub_download(repo_id, filename, revision=revision, force_download=force, **_hf_options())
        )
    except _hub_error("OfflineModeIsEnabled"):
        raise InpaintError(offline_message(entry)) from None
    except _hub_error("LocalEntryNotFoundError") as e:  # the connection failed and nothing is cached
        raise InpaintError(unreachable_message(entry, url, first_line(e.__cause__ or e))) from None
    except _hub_error("GatedRepoError"):
        raise InpaintError(
            f"{entry.name}: {repo_id} is gated; accept its terms on the Hub and set HF_TOKEN"
        ) from None
    except _hub_error("RepositoryNotFoundError"):
        raise InpaintError(
            f"{entry.name}: repository {repo_id} not found at {url} (or it is private: set HF_TOKEN); "
            f"fix the source in {entry.catalog}"
        ) from None
    except _hub_error("RevisionNotFoundError"):
        raise InpaintError(
            f"{entry.name}: revision {revision!r} of {repo_id} not found ({url}); "
            f"fix the source in {entry.catalog}"
        ) from None
    except _hub_error("RemoteEntryNotFoundError", "EntryNotFoundError"):
        raise InpaintError(
            f"{entry.name}: {filename} not found in {repo_id}@{revision} ({url}); "
            f"fix the source in {entry.catalog}"
        ) from None
    except Exception as e:  # connection refused, DNS, timeouts, HTTP 5xx, disk full: one line for all
        cause = e.__cause__ or e  # huggingface_hub wraps the real reason (e.g. connection refused)
        raise InpaintError(
            f"{entry.name}: could not download {url} ({first_line(cause)}); check the network and "
            f"HF_ENDPOINT, or copy the file and use a local source"
        ) from None


def offline_message(entry: WeightEntry) -> str:
    """What to say when an hf:// entry is needed, is not cached, and HF_HUB_OFFLINE forbids a download."""
    return (
        f"{entry.name} is not in the cache and HF_HUB_OFFLINE is set; run `inpaint models download "
        f"{entry.name}` on a machine with network or copy the file and use a local source"
    )

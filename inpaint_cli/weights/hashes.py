"""sha256 of checkpoint files, remembered per (real path, mtime, size) so repeated fills don't rehash."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_HASHES: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _key(path: Path) -> tuple[str, int, int]:
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_mtime_ns, st.st_size


def sha256_cached(path: Path) -> str:
    """sha256 of a file, hashed once per (real path, mtime, size)."""
    key = _key(path)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(Path(key[0]))
    return _HASHES[key]


def remember_sha256(path: Path, digest: str) -> None:
    """Record a digest just computed elsewhere (a fresh download), so the next sha256_cached is free."""
    _HASHES[_key(path)] = digest

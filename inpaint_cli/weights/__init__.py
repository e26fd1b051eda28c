"""Checkpoints and where they come from, one concern per module:

- catalog: weights.toml entries (WeightEntry), the package catalog merged with the user's (load_catalog),
  and where a bundled or local entry's file is (declared_path).
- toml_io: reading TOML with one-line errors, and writing values back (also the training config's).
- hub: hf:// sources, downloads into the Hugging Face cache, offline mode.
- hashes: sha256 of files, remembered per (path, mtime, size).
- checkpoint: the safetensors checkpoint format (save/read, metadata, pickle refusal, strict loading).
- export: `inpaint models export`, a smaller copy of a checkpoint and its catalog entry.
- resolver: resolve (a name, path or hf:// URL to an entry and a file), fetch, verify, load_model.

The bundled checkpoints are data, in inpaint_cli/bundled/. This package re-exports the public names,
so `from inpaint_cli.weights import load_model` is the way in. torch, safetensors.torch and
huggingface_hub are imported inside the functions that need them, so listing the catalog (`inpaint
models list`, `--help`) stays fast.
"""

from __future__ import annotations

from .catalog import (
    BUNDLED_DIR,
    Catalog,
    WeightEntry,
    declared_path,
    entry_to_toml,
    load_catalog,
    package_catalog_path,
    user_catalog_path,
)
from .checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    load_state_strict,
    read_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
)
from .export import EXPORT_DTYPES, export_checkpoint, format_duration
from .hashes import sha256_file
from .hub import hub_settings, parse_hf_source
from .resolver import Resolved, VerifyResult, fetch, load_model, local_path, resolve, verify
from .toml_io import read_toml, toml_key, toml_value

__all__ = [
    "BUNDLED_DIR",
    "CHECKPOINT_FORMAT",
    "EXPORT_DTYPES",
    "Catalog",
    "Checkpoint",
    "Resolved",
    "VerifyResult",
    "WeightEntry",
    "declared_path",
    "entry_to_toml",
    "export_checkpoint",
    "fetch",
    "format_duration",
    "hub_settings",
    "load_catalog",
    "load_model",
    "load_state_strict",
    "local_path",
    "package_catalog_path",
    "parse_hf_source",
    "read_checkpoint",
    "read_checkpoint_metadata",
    "read_toml",
    "resolve",
    "save_checkpoint",
    "sha256_file",
    "toml_key",
    "toml_value",
    "user_catalog_path",
    "verify",
]

"""`inpaint models convert`: turn the papers' own released weights into inpaint checkpoints.

One module per architecture: `deepfill` (DeepFill v1 and v2, TensorFlow 1 checkpoints), `glcic` (the
authors' Lua Torch .t7 and otenim's PyTorch state dict), `context_encoder` (the authors' Lua Torch .t7),
with the file readers they share in `readers` and the Lua `nn` layer mapping in `torch7`. Each
converter returns the model's config (what the released graph does differently from our defaults, e.g.
TF padding, BGR input) and a state dict that `weights.load_state_strict` must accept; `convert_checkpoint`
builds the model, loads it strictly and writes it with `weights.save_checkpoint`, recording the source's
licence, origin and sha256 in the provenance. TensorFlow and torchfile are optional (`inpaint-cli[convert]`)
and imported only here, never by `fill`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InpaintError, UsageError

FORMATS = ("tf", "t7", "state-dict")


@dataclass(frozen=True)
class Source:
    """A released checkpoint family: how to read it and what its authors allow."""

    arch: str
    format: str
    licence: str
    origin: str
    data: str
    # (path of the source) -> (config, state dict of torch tensors, source files that were read)
    convert: Callable[[Path], tuple[dict[str, Any], dict[str, Any], list[Path]]]


def _sources() -> dict[tuple[str, str], Source]:
    from . import context_encoder, deepfill, glcic

    return {(s.arch, s.format): s for s in (*deepfill.SOURCES, *glcic.SOURCES, *context_encoder.SOURCES)}


def detect_format(src: Path) -> str:
    """tf for a TF1 checkpoint (a directory with a `checkpoint` file, or a prefix with a .index beside it),
    t7 for a .t7 file, state-dict for a torch.save file (zip or pickle signature)."""
    if src.is_dir() or Path(f"{src}.index").is_file() or src.suffix in (".index", ".meta") or ".data-" in src.name:
        return "tf"
    if src.suffix.lower() == ".t7":
        return "t7"
    if src.is_file():
        with open(src, "rb") as f:
            head = f.read(4)
        if head.startswith((b"PK", b"\x80")):
            return "state-dict"
    raise UsageError(f"{src}: cannot tell its format; pass --format ({', '.join(FORMATS)})")


def convert_checkpoint(
    src: str | os.PathLike[str],
    *,
    arch: str,
    out: str | os.PathLike[str],
    fmt: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Convert the released checkpoint `src` of `arch` into the inpaint checkpoint `out` (.safetensors).

    Returns its weights.toml entry (name ARCH.TAG, default TAG = the --out stem; arch, source, sha256,
    size, licence, data, notes). The written file loads strictly with `fill --model OUT`.
    """
    from .. import registry
    from ..weights import load_state_strict, save_checkpoint, sha256_file

    src_path, out_path = Path(src).expanduser(), Path(out).expanduser()
    if out_path.suffix.lower() != ".safetensors":
        raise UsageError(f"{out_path}: checkpoints are .safetensors files; name the output *.safetensors")
    if not src_path.exists() and not Path(f"{src_path}.index").is_file():
        raise UsageError(f"{src_path} does not exist")
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    fmt = fmt or detect_format(src_path)
    sources = _sources()
    if (arch, fmt) not in sources:
        known = ", ".join(f"{a} ({f})" for a, f in sorted(sources))
        raise UsageError(f"no converter for {arch} from {fmt}; known: {known}")
    source = sources[(arch, fmt)]
    tag_name = name or f"{arch}.{out_path.stem}"
    if not tag_name.startswith(arch + ".") or len(tag_name) == len(arch) + 1:
        raise UsageError(f"--name {tag_name}: a catalog name is {arch}.TAG")

    config, state, files = source.convert(src_path)
    model = registry.create_model(arch, **config)
    load_state_strict(model, state, source=str(src_path))
    provenance = {
        "converted_from": {
            "format": fmt,
            "origin": source.origin,
            "files": {f.name: sha256_file(f) for f in files},
        },
        "licence": source.licence,
        "data": source.data,
    }
    save_checkpoint(out_path, model, provenance=provenance)
    return {
        "name": tag_name,
        "arch": arch,
        "source": os.fspath(out),
        "sha256": sha256_file(out_path),
        "size": out_path.stat().st_size,
        "licence": source.licence,
        "data": source.data,
        "notes": f"converted by `inpaint models convert` from {source.origin}",
    }


def optional_import(module: str) -> Any:
    """Import an optional dependency of the converters, or fail with how to install it."""
    import importlib

    if module == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up chatter on stderr
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InpaintError(
            f"converting this format needs {module}; install it with: pip install 'inpaint-cli[convert]'"
        ) from None

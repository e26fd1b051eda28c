"""`inpaint models convert`: turn the papers' own released weights into inpaint checkpoints.

One module per architecture: `deepfill` (DeepFill v1 and v2, TensorFlow 1 checkpoints), `glcic` (the
authors' Lua Torch .t7 and otenim's PyTorch state dict), `context_encoder` (the authors' Lua Torch .t7),
with the file readers they share in `readers` and the Lua `nn` layer mapping in `torch7`. Each
converter returns the model's config (what the released graph does differently from our defaults, e.g.
TF padding, BGR input) and a state dict that `weights.load_state_strict` must accept; `convert_checkpoint`
builds the model, loads it strictly and writes it with `weights.save_checkpoint`, recording the source's
licence, origin and sha256 in the provenance. The families it takes are the table in `sources` (plain data,
so the CLI's help lists them without importing the converters); `releases` recognises the authors' released
files by their sha256. TensorFlow and torchfile are optional (`inpaint-cli[convert]`) and imported only here,
never by `fill`.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import InpaintError, UsageError
from .sources import FORMATS, SOURCES, Source, arch_help, converter_archs, sources

__all__ = ["FORMATS", "SOURCES", "Source", "arch_help", "convert_checkpoint", "detect_format", "optional_import"]

log = logging.getLogger("inpaint_cli")


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


def _source_files(src: Path, fmt: str) -> list[Path]:
    """The files a conversion of `src` reads, known before reading them (for `releases.recognise`)."""
    if fmt != "tf":
        return [src]
    from .readers import tf_checkpoint_files, tf_checkpoint_prefix

    return [f for f in tf_checkpoint_files(tf_checkpoint_prefix(src)) if f.is_file()]


def _check_usage(src: Path, out: Path, arch: str, fmt: str | None, name: str | None) -> None:
    """The usage errors that need no file read (exit 2, before any work)."""
    if out.suffix.lower() != ".safetensors":
        raise UsageError(f"{out}: checkpoints are .safetensors files; name the output *.safetensors")
    if arch not in converter_archs():
        raise UsageError(f"--arch {arch}: no converter for it; known: {arch_help()}")
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format {fmt}: not one of {', '.join(FORMATS)}")
    if name is not None and (not name.startswith(arch + ".") or len(name) == len(arch) + 1):
        raise UsageError(f"--name {name}: a catalog name is {arch}.TAG")
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise UsageError(f"{out}: that is the checkpoint to convert; name another --out file")


def convert_checkpoint(
    src: str | os.PathLike[str],
    *,
    arch: str,
    out: str | os.PathLike[str],
    fmt: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Convert the released checkpoint `src` of `arch` into the inpaint checkpoint `out` (.safetensors).

    Returns its weights.toml entry (name ARCH.TAG, arch, source, sha256, size, licence, data, notes, and the
    release when the files are one of the authors' `releases.RELEASES`). The default TAG is the release's
    (e.g. deepfill_v2.places2), else the --out stem. Says on stderr (the `inpaint_cli` logger) which release
    it recognised, or that the files are none of the listed ones. The written file loads strictly with
    `fill --model OUT`.
    """
    from .. import registry
    from ..weights import load_state_strict, save_checkpoint, sha256_file
    from .releases import recognise

    src_path, out_path = Path(src).expanduser(), Path(out).expanduser()
    _check_usage(src_path, out_path, arch, fmt, name)
    if not src_path.exists() and not Path(f"{src_path}.index").is_file():
        raise InpaintError(f"{src_path}: no such file or directory (the checkpoint to convert)")
    fmt = fmt or detect_format(src_path)
    if (arch, fmt) not in sources():
        raise UsageError(f"no converter for {arch} from {fmt}; known: {arch_help()}")
    source = sources()[(arch, fmt)]

    hashed = functools.cache(sha256_file)  # the 120 MB data file once, for the release and the provenance
    recognition = recognise(arch, fmt, _source_files(src_path, fmt), hashed)
    release = recognition.release if recognition else None
    if recognition is not None:
        (log.info if release else log.warning)("%s", recognition.message)

    config, state, files = source.convert(src_path)
    model = registry.create_model(arch, **config)
    load_state_strict(model, state, source=str(src_path))
    licence = release.licence if release else source.licence
    data = f"{release.dataset} ({release.title})" if release else source.data
    provenance: dict[str, Any] = {
        "converted_from": {
            "format": fmt,
            "origin": source.origin,
            "files": {f.name: hashed(f) for f in files},
        },
        "licence": licence,
        "data": data,
    }
    if release:
        provenance["release"] = {
            "name": release.name,
            "title": release.title,
            "dataset": release.dataset,
            "licence": release.licence,
        }
    save_checkpoint(out_path, model, provenance=provenance)
    return {
        "name": name or (release.name if release else f"{arch}.{out_path.stem}"),
        "arch": arch,
        "source": os.fspath(out),
        "sha256": sha256_file(out_path),
        "size": out_path.stat().st_size,
        "licence": licence,
        "data": data,
        "release": release.title if release else None,  # None: left out of the printed entry
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

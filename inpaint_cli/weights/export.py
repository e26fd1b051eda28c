"""`inpaint models export`: a smaller copy of a trained checkpoint, and its weights.toml entry.

The copy keeps the source's arch, config and training provenance; the entry is what the provenance
knows (resolution, steps, wall time, validation scores, data) plus the new file's sha256 and size.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .catalog import NAME_RE
from .checkpoint import read_checkpoint, save_checkpoint
from .hashes import sha256_file
from .resolver import arch_spec

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
    source (`dst` as an absolute path), sha256, size, and what the provenance knows: resolution, steps, wall_time,
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
    arch_spec(ckpt.arch, None, str(src_path))
    given = name
    name = name or f"{ckpt.arch}.{dst_path.stem}"
    if not NAME_RE.fullmatch(name) or not name.startswith(ckpt.arch + "."):
        what = f"--name {given}" if given else f"{dst_path}: its stem gives the name {name!r}, which"
        raise UsageError(
            f"{what} is not a catalog name {ckpt.arch}.TAG (letters, digits, '_', '-', '.'); "
            f"pass --name {ckpt.arch}.TAG"
        )

    provenance = {**ckpt.provenance, "export": {"dtype": dtype, "source_sha256": sha256_file(src_path)}}
    save_checkpoint(dst_path, ckpt, provenance=provenance, dtype=dtypes[dtype], extra_tensors=ckpt.extra_tensors)
    # Absolute: a catalog resolves a relative source against its own folder, not the one export ran in.
    source = os.path.abspath(os.path.expanduser(os.fspath(dst)))
    return _export_entry(name, ckpt.arch, source, dst_path, ckpt.provenance)


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

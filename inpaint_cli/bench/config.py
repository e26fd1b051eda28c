"""What a benchmark run does: `BenchmarkConfig`, the parsing of `inpaint benchmark`'s list flags, and the
names and defaults the other modules of the package share."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..border_blend import check_blend_flag
from ..errors import UsageError
from ..masks import MASK_KINDS, parse_ratio, ratio_label

DEFAULT_BUCKETS: tuple[tuple[float, float], ...] = ((0.05, 0.15), (0.15, 0.30), (0.30, 0.45), (0.45, 0.60))
DEFAULT_KINDS: tuple[str, ...] = ("strokes", "box")
DEFAULT_SPEED_SIZES: tuple[int, ...] = (256, 512, 1024)
REPORT_SPLIT = "test.txt"  # in `data`: scored by default, never used to select a checkpoint
SELECTION_SPLIT = "val.txt"  # in `data`: `inpaint train --val-list` picks checkpoints on it; scored without test.txt
SPLIT_FILES: tuple[str, ...] = (REPORT_SPLIT, SELECTION_SPLIT)  # looked for in this order
ALL = "all"  # the bucket/kind label of pooled rows, and the --models name of every model that can fill


# ------------------------------------------------------------------------------------------- parsing


def parse_buckets(text: str, *, flag: str = "--buckets") -> list[tuple[float, float]]:
    """'5-15,15-30' -> [(0.05, 0.15), (0.15, 0.3)]."""
    items = [item for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise UsageError(f"{flag} {text!r}: expected comma-separated LOW-HIGH per-cent ranges, e.g. 5-15,15-30")
    buckets = [parse_ratio(item, flag=flag) for item in items]
    if len(set(buckets)) != len(buckets):
        raise UsageError(f"{flag} {text!r}: a bucket is listed twice")
    return buckets


def parse_names(text: str, *, flag: str) -> list[str]:
    """'a,b,c' -> ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    names = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not names:
        raise UsageError(f"{flag} {text!r}: expected a comma-separated list, e.g. {flag} telea,ns")
    return names


def parse_sizes(text: str, *, flag: str = "--speed-sizes") -> list[int]:
    """'256,512' -> [256, 512]."""
    try:
        sizes = [int(item) for item in parse_names(text, flag=flag)]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected comma-separated sizes in pixels, e.g. 256,512,1024") from None
    if any(size < 16 for size in sizes):
        raise UsageError(f"{flag} {text!r}: sizes must be at least 16 px")
    return sizes


# -------------------------------------------------------------------------------------------- config


@dataclass
class BenchmarkConfig:
    """What to benchmark; mirrors the flags of `inpaint benchmark`."""

    models: list[str]  # names or paths `load_model` accepts; "all" = every catalog model that can fill
    data: str | os.PathLike | None = None  # folder of ground-truth images (required for quality)
    # The list of `data`'s images to score, relative to `data`; None = its test.txt, else val.txt, else every
    # image. `run_benchmark` records the list it found here, so the report says what was scored.
    split: str | os.PathLike | None = None
    masks_dir: str | os.PathLike | None = None  # use these masks instead of generating buckets × kinds
    buckets: list[tuple[float, float]] = field(default_factory=lambda: list(DEFAULT_BUCKETS))
    kinds: list[str] = field(default_factory=lambda: list(DEFAULT_KINDS))
    size: int = 256  # quality: images are centre-cropped to size × size
    n_images: int | None = None  # use at most this many images (sorted by name)
    seed: int = 0
    speed_sizes: list[int] = field(default_factory=lambda: list(DEFAULT_SPEED_SIZES))
    batch: int = 4  # images per call for the throughput figure
    half: bool = False  # also measure speed in bf16 (CPU) / fp16 (GPU)
    device: str = "auto"
    blend: str | None = None  # `Inpainter`'s blend for every model; None = each model's default
    repeats: int = 5  # timed fills per speed case
    warmup: int = 1  # untimed fills before them
    quality: bool = True
    speed: bool = True
    samples: int = 4  # fills per case for the diversity of models that sample
    threads: int | None = None  # torch intra-op threads for the speed cases; None = torch's default
    isolate: bool = True  # each speed case in a fresh subprocess (needed for honest peak memory)
    reference_seconds: float = 1.5  # how long the reference conv is timed
    grid_rows: int = 16  # contact-sheet rows kept (the kind × bucket groups take turns)
    command: str = ""  # the command line that ran it, shown in the reports (the CLI fills it in)

    @classmethod
    def from_flags(cls, *, models: str, buckets: str, kinds: str, speed_sizes: str, **settings: Any) -> BenchmarkConfig:
        """The config of `inpaint benchmark`'s flags: the comma-separated lists parsed, the other settings
        (fields of this class) taken as given. UsageError naming the flag for a list that does not parse,
        or for a quality run without --data, and for an unknown model name."""
        if settings.get("quality", True) and settings.get("data") is None:
            raise UsageError("--data is required for the quality part (or pass --no-quality)")
        names = parse_names(models, flag="--models")
        check_model_names([name for name in names if name != ALL])  # before the progress bars start
        return cls(
            models=names,
            buckets=parse_buckets(buckets),
            kinds=parse_names(kinds, flag="--kinds"),
            speed_sizes=parse_sizes(speed_sizes),
            **settings,
        )

    def validate(self) -> None:
        """UsageError (naming the flag) for settings that cannot run."""
        if not self.models:
            raise UsageError("--models: name at least one model, e.g. --models telea,ns")
        if not (self.quality or self.speed):
            raise UsageError("nothing to do: both quality and speed are switched off")
        if self.quality and self.data is None:
            raise UsageError("--data: quality needs a folder of ground-truth images (or run speed only)")
        if self.quality and not self.kinds and self.masks_dir is None:
            raise UsageError("--kinds: name at least one mask kind, e.g. --kinds strokes,box")
        unknown = [kind for kind in self.kinds if kind not in MASK_KINDS]
        if unknown:
            raise UsageError(f"--kinds {','.join(unknown)}: expected some of {', '.join(MASK_KINDS)}")
        check_blend_flag(self.blend)
        for low, high in self.buckets:
            if not 0 <= low < high <= 1:
                raise UsageError(f"--buckets {ratio_label(low, high)}: need 0 <= LOW < HIGH <= 100")
        if self.quality and not self.buckets and self.masks_dir is None:
            raise UsageError("--buckets: name at least one bucket, e.g. --buckets 5-15,15-30")
        checks = [
            ("--size", self.size, 16),
            ("--batch", self.batch, 1),
            ("--repeats", self.repeats, 1),
            ("--warmup", self.warmup, 0),
            ("--seed", self.seed, 0),
            ("--samples", self.samples, 2),
        ]
        if self.n_images is not None:
            checks.append(("--n-images", self.n_images, 1))
        if self.threads is not None:
            checks.append(("--threads", self.threads, 1))
        for flag, value, least in checks:
            if value < least:
                raise UsageError(f"{flag} {value}: must be at least {least}")
        if self.speed and (not self.speed_sizes or any(size < 16 for size in self.speed_sizes)):
            raise UsageError("--speed-sizes: give sizes of at least 16 px, e.g. 256,512,1024")
        check_model_names(self.models)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = None if self.data is None else os.fspath(self.data)
        out["split"] = None if self.split is None else os.fspath(self.split)
        out["masks_dir"] = None if self.masks_dir is None else os.fspath(self.masks_dir)
        out["buckets"] = [ratio_label(low, high) for low, high in self.buckets]
        return out


def check_model_names(names: list[str]) -> None:
    """UsageError for a name no model answers to (or a malformed hf:// URL, or a glob matching several),
    before any model runs; nothing is downloaded. A file that is named but cannot be read is not judged
    here: it fails as that model's failure, and the others still run."""
    from ..errors import InpaintError
    from ..weights import resolve

    for name in names:
        try:
            resolve(name, download=False)
        except UsageError as error:
            raise UsageError(f"--models {name}: {error.message}") from None
        except InpaintError:
            continue


def expand_models(names: list[str]) -> list[str]:
    """Model names with "all" replaced by every catalog entry that can fill — weightless ones (telea, ns)
    and checkpoints that are on disk or downloadable — in catalog order; duplicates dropped."""
    if ALL not in names:
        return list(dict.fromkeys(names))
    from ..registry import get_arch
    from ..weights import load_catalog, local_path

    available = []
    for entry in load_catalog().find("*"):
        if entry.source is None:
            usable = not get_arch(entry.arch).contract.needs_weights
        else:
            usable = entry.kind == "hf" or local_path(entry) is not None
        if usable:
            available.append(entry.name)
    expanded = [item for name in names for item in (available if name == ALL else [name])]
    return list(dict.fromkeys(expanded))

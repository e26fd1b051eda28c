"""What the quality run scores: its images and masks, paired into `Case`s.

Images
    The files listed in `split` (a list file, relative to `data`) when given; else those of
    `data/test.txt`, the held-out test images `training/make_data.sh` lists (left out of training by `inpaint
    train` and never used to pick a checkpoint: `best.safetensors` is selected on `val.txt`); else those of
    `data/val.txt` (a selection split: scores on it flatter a model whose checkpoint was picked on it);
    else every image file directly in `data`. Lists hold one name per line, relative to `data`, blank
    lines and `#` comments ignored as `inpaint train` reads them, and every name must be a file. The list
    used is logged and recorded as `split` in the report's config (None: every image). Sorted by file
    name, the first `n_images` kept. Each is scaled so its short side is `size` (area interpolation when
    shrinking, cubic when enlarging), centre-cropped to size×size and rounded to the 8-bit grid, so the
    ground truth is what an 8-bit file of it would hold.
Masks
    Per kind × bucket, one mask per image from `masks.bucket_masks(kind, low, high, n, size, size, seed)`
    (the same masks `inpaint masks generate` writes), or the masks of `masks_dir`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from ..io import image_files, read_image
from ..masks import MANIFEST_NAME, bucket_masks, fit_mask, hole_ratio, load_mask_set, ratio_label
from .config import REPORT_SPLIT, SELECTION_SPLIT, SPLIT_FILES, BenchmarkConfig

log = logging.getLogger("inpaint_cli")


@dataclass
class Case:
    """One (image, mask) pair of the quality run."""

    index: int
    image: str
    image_index: int
    kind: str
    bucket: str
    mask_index: int
    mask: np.ndarray
    hole_ratio: float

    @property
    def label(self) -> str:
        return f"{self.image} ({self.kind} {self.bucket}% #{self.mask_index})"


# -------------------------------------------------------------------------------------------- images


def split_file(data: str | os.PathLike, split: str | os.PathLike | None = None) -> Path | None:
    """The list file whose images the quality run scores: `data/split` when `split` is given (an absolute
    `split` is used as is; UsageError when it is not a file), else `data/test.txt`, else `data/val.txt`;
    None when there is neither (every image in `data` is scored)."""
    folder = Path(data)
    if split is not None:
        path = folder / split
        if not path.is_file():
            raise UsageError(f"--split {os.fspath(split)}: {path} is not a file; name a list of images inside --data")
        return path
    return next((folder / name for name in SPLIT_FILES if (folder / name).is_file()), None)


def read_split(path: str | os.PathLike, data: str | os.PathLike) -> list[Path]:
    """The files `path` lists (one per line, relative to `data`; blank lines and # comments ignored, as
    `inpaint train` reads its lists), duplicates dropped. InpaintError naming the first one that is not a
    file, or the list when it names none."""
    path, folder = Path(path), Path(data)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        reason = "not UTF-8 text" if isinstance(error, UnicodeDecodeError) else error.strerror or str(error)
        raise InpaintError(f"{path}: cannot read it ({reason}); pass a list of image names, one per line") from None
    files: dict[Path, None] = {}
    for number, line in enumerate(lines, 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not (folder / name).is_file():
            raise InpaintError(f"{path}:{number}: lists {name}, which is not in {folder}; fix the list or the folder")
        files[folder / name] = None
    if not files:
        raise InpaintError(f"{path}: lists no images; name one image per line, relative to {folder}")
    return list(files)


def benchmark_images(
    data: str | os.PathLike, size: int, limit: int | None = None, split: str | os.PathLike | None = None
) -> list[tuple[str, np.ndarray]]:
    """(file name, float32 (size, size, 3) on the 8-bit grid) for the quality run: the images of
    `split_file(data, split)`, or every image in `data` (see the module docstring)."""
    folder = Path(data)
    files = image_files(folder)  # InpaintError for a missing directory
    listed = split_file(folder, split)
    if listed is not None:
        files = sorted(read_split(listed, folder), key=lambda path: path.name)
        automatic_val = split is None and listed.name == SELECTION_SPLIT
        note = f" (a checkpoint-selection split: there is no {REPORT_SPLIT})" if automatic_val else ""
        log.info("scoring the %d images listed in %s%s", len(files), listed, note)
    elif files:
        log.info("scoring every image in %s (there is no %s)", folder, " or ".join(SPLIT_FILES))
    if not files:
        raise InpaintError(f"{folder}: no images in it; pass --data a folder of photos (PNG, JPEG, ...)")
    files = files[:limit] if limit is not None else files
    return [(path.name, square_crop(read_image(path).rgb(), size)) for path in files]


def square_crop(rgb: np.ndarray, size: int) -> np.ndarray:
    """Scale the short side to `size`, take the centre size × size, round to the 8-bit grid."""
    height, width = rgb.shape[:2]
    scale = size / min(height, width)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation) if scale != 1 else rgb
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return quantize(resized[top : top + size, left : left + size])


def quantize(rgb: np.ndarray) -> np.ndarray:
    """Round to the 8-bit grid (half up, as `io.compose_output` writes files), as float32 in [0, 1]."""
    return (np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5) / 255.0).astype(np.float32)


# --------------------------------------------------------------------------------------------- masks


def benchmark_cases(config: BenchmarkConfig, n_images: int) -> list[Case]:
    """The (image, mask) cases: kinds × buckets generated from the seed, or the masks of masks_dir."""
    groups: list[tuple[str, str, list[np.ndarray]]] = []
    if config.masks_dir is None:
        for kind in config.kinds:
            for low, high in config.buckets:
                masks = bucket_masks(kind, low, high, n_images, config.size, config.size, config.seed)
                groups.append((kind, ratio_label(low, high), masks))
    else:
        groups = _loaded_mask_groups(config)
    cases = []
    for kind, bucket, masks in groups:
        # Mask i goes with image i (images cycle when a loaded set has more masks than there are images).
        for mask_index, mask in enumerate(masks):
            image_index = mask_index % n_images
            cases.append(Case(len(cases), "", image_index, kind, bucket, mask_index, mask, hole_ratio(mask)))
    return cases


def _loaded_mask_groups(config: BenchmarkConfig) -> list[tuple[str, str, list[np.ndarray]]]:
    """masks_dir holds one mask set (with or without manifest.json) or several, one per subfolder."""
    root = Path(config.masks_dir)  # type: ignore[arg-type]
    if not root.is_dir():
        raise UsageError(f"--masks {root}: not a directory; pass a folder written by `inpaint masks generate`")
    subfolders = sorted(path for path in root.iterdir() if path.is_dir() and (path / MANIFEST_NAME).is_file())
    folders = [root] if (root / MANIFEST_NAME).is_file() or not subfolders else subfolders
    groups: dict[tuple[str, str], list[np.ndarray]] = {}
    for folder in folders:
        mask_set = load_mask_set(folder)
        for name, mask in zip(mask_set.names, mask_set.masks, strict=True):
            mask = fit_mask(mask, config.size, config.size, resize=True, mask_name=str(folder / name), image_name="")
            if not mask.any() or mask.all():
                raise InpaintError(
                    f"{folder / name}: at {config.size}x{config.size} the mask has no hole or no known pixel; "
                    "use masks with both"
                )
            bucket = mask_set.bucket or _bucket_of(hole_ratio(mask), config.buckets)
            groups.setdefault((mask_set.kind, bucket), []).append(mask)
    return [(kind, bucket, masks) for (kind, bucket), masks in groups.items()]


def _bucket_of(ratio: float, buckets: list[tuple[float, float]]) -> str:
    for low, high in buckets:
        if low <= ratio < high:
            return ratio_label(low, high)
    return "other"


def grid_case_indices(cases: list[Case], limit: int, n_images: int) -> list[int]:
    """The cases the contact sheet shows, up to `limit`: the groups (kind × bucket) take turns, so every
    group shows about limit / groups cases; in turn j group g shows image g + j·groups (cycling), or its
    next unshown case, so rows differ. Rows are ordered by group."""
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        groups.setdefault((case.kind, case.bucket), []).append(case)
    members = list(groups.values())
    chosen: list[list[int]] = [[] for _ in members]
    taken = 0
    for turn in range(max((len(m) for m in members), default=0)):
        for ordinal, group in enumerate(members):
            if taken == limit:
                break
            unshown = [c for c in group if c.index not in chosen[ordinal]]
            if not unshown:
                continue
            wanted = (ordinal + turn * len(members)) % n_images
            chosen[ordinal].append(next((c for c in unshown if c.image_index == wanted), unshown[0]).index)
            taken += 1
    return [index for group in chosen for index in group]

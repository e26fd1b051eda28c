"""Pluralistic filling: several plausible fills of one hole from a model that samples (PiiGAN)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import io
from .engine import FillResult, Inpainter, Strategy
from .errors import InpaintError, UsageError
from .fill import ALPHA, STDIO, FillOptions, read_pair
from .fill_plan import same_file
from .grid import contact_sheet, masked_input


def check_can_sample(inpainter: Inpainter, name: str) -> None:
    if not inpainter.contract.can_sample:
        raise UsageError(
            f"{name} gives one answer per hole and cannot sample; use a model with sample=yes in "
            "`inpaint models list` (piigan)"
        )


def sample_fills(
    inpainter: Inpainter, rgb: np.ndarray, mask: np.ndarray, n: int, seed: int, strategy: Strategy = "auto"
) -> list[FillResult]:
    """n fills; sample i is drawn with seed + i, so any one of them can be reproduced alone. All n run
    through each window together, in batches that fit `inpainter.batch_pixels`."""
    return inpainter.fill_samples(rgb, mask, [seed + i for i in range(n)], strategy=strategy)


def hole_diversity(samples: list[np.ndarray], mask: np.ndarray) -> float | None:
    """Mean pairwise L1 distance between samples over the hole pixels, on the [0, 1] scale
    (0 = identical answers; the mean absolute difference of two unrelated images is about 0.2-0.3).
    None (not applicable) for fewer than two samples: one answer is not "no diversity"."""
    if len(samples) < 2:
        return None
    if not mask.any():
        return 0.0
    holes = [sample[mask] for sample in samples]
    return float(np.mean([np.abs(a - b).mean() for a, b in itertools.combinations(holes, 2)]))


def plural_sheet(rgb: np.ndarray, mask: np.ndarray, samples: list[np.ndarray], seed: int) -> np.ndarray:
    """Input, mask and masked input, then the samples (captioned with their seeds), eight per row."""
    per_row = 8
    rows: list[list[np.ndarray]] = [[rgb, mask, masked_input(rgb, mask)]]
    captions: list[list[str]] = [["input", "mask", "masked input"]]
    for start in range(0, len(samples), per_row):
        rows.append(samples[start : start + per_row])
        captions.append([f"seed {seed + i}" for i in range(start, min(start + per_row, len(samples)))])
    return contact_sheet(rows, captions=captions)


def draw_seed() -> int:
    """A fresh seed for a run given none (below 2**31, so it is short enough to retype as --seed); the
    caller reports it, so the run can be reproduced."""
    return secrets.randbelow(2**31)


def default_samples_dir(image_path: str, grid: str | None) -> str | None:
    """Where the samples go without an explicit directory: `<stem>_samples/` beside the image
    (`stdin_samples/` for stdin), or nowhere (None) when the contact sheet goes to stdout instead."""
    if grid == STDIO:
        return None
    if image_path == STDIO:
        return "stdin_samples"
    return str(Path(image_path).with_name(f"{Path(image_path).stem}_samples"))


def plan_outputs(
    image_path: str,
    mask_path: str | None,
    *,
    n: int,
    seed: int,
    out_dir: str | None,
    grid: str | None,
    overwrite: bool = False,
) -> list[str | None]:
    """Every sample's file (`out_dir/<stem>_<seed + i>.png`, None without `out_dir`), checked before any
    work against the overwrite rule: the grid is a file the user named, so it is replaced; sample files
    have derived names, replaced only with `overwrite`; neither may be an input (image or mask), even with
    `overwrite`, and no two may be the same file."""
    stem = "stdin" if image_path == STDIO else Path(image_path).stem
    samples = [None if out_dir is None else str(Path(out_dir) / f"{stem}_{seed + i}.png") for i in range(n)]
    if grid not in (None, STDIO) and not io.is_image_path(grid):
        raise UsageError(f"--grid {grid}: unknown image extension; use a .png (or .jpg, .webp, ...) file")
    inputs = [path for path in (image_path, mask_path) if path not in (None, STDIO, ALPHA)]
    outputs = [path for path in (*samples, grid) if path not in (None, STDIO)]
    for output in outputs:
        for source in inputs:
            if same_file(output, source):
                option = "--grid" if output == grid else "--out-dir"
                raise UsageError(
                    f"{output}: this is an input file; choose another {option} (inputs are never overwritten)"
                )
    if grid not in (None, STDIO) and any(same_file(grid, sample) for sample in samples if sample is not None):
        raise UsageError(f"--grid {grid}: a sample is written there too; give the grid another name")
    if not overwrite:
        for sample in samples:
            if sample is not None and Path(sample).exists():
                raise UsageError(f"{sample}: already exists; pass --overwrite to replace it, or another --out-dir")
    return samples


@dataclass
class PluralOutcome:
    seed: int
    results: list[FillResult]
    outputs: list[str | None]  # one file per sample, or None without an output directory
    diversity: float | None  # None for a single sample


def plural_files(
    inpainter: Inpainter,
    image_path: str,
    mask_path: str | None,
    *,
    n: int,
    seed: int,
    options: FillOptions,
    out_dir: str | None,
    grid: str | None,
    outputs: list[str | None] | None = None,
) -> PluralOutcome:
    """Sample n fills of one image: `out_dir/<stem>_<seed>.png` per sample (sample i has seed + i, so a
    file's name says how to reproduce it alone) and/or a contact sheet at `grid` ("-" = stdout). Every
    file is complete or absent (atomic writes). `outputs`: the sample files `plan_outputs` checked
    (planned here, replacing existing samples, when not given)."""
    if outputs is None:
        outputs = plan_outputs(image_path, mask_path, n=n, seed=seed, out_dir=out_dir, grid=grid, overwrite=True)
    image, mask = read_pair(image_path, mask_path, options)
    if not mask.any():
        raise InpaintError(f"{mask_path or image_path}: the mask has no hole pixels, so there is nothing to sample")
    results = sample_fills(inpainter, image.rgb(), mask, n, seed, options.strategy)
    for output, result in zip(outputs, results, strict=True):
        if output is not None:
            io.write_image(output, io.compose_output(image, result.rgb, mask))
    samples = [result.rgb for result in results]
    if grid is not None:
        io.write_image(grid, plural_sheet(image.rgb(), mask, samples, seed))
    return PluralOutcome(seed, results, outputs, hole_diversity(samples, mask))

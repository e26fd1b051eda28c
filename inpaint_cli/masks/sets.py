"""Benchmark mask sets (MODELS.md §6): hole-ratio buckets, seeded sets of masks, their files and manifests.

The shapes themselves (boxes, brush strokes, their mix) come from `masks.shapes`; this module
steers them into a hole-ratio bucket, writes a set as `mask_NNNN.png` + `manifest.json`, and reads
a set back. Masks are bool arrays (H, W) with True = hole.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InpaintError, UsageError
from ..io import image_files, write_atomic, write_image
from .read import read_mask
from .shapes import box_mask, brush_stroke_mask, hole_ratio

# ------------------------------------------------------------------------------ benchmark mask sets
#
# Benchmarks compare models per hole-ratio bucket ("5-15 %" of the image is hole, ...), so masks are
# rejection-sampled into a bucket: draw a mask, keep it if its hole ratio is in [low, high), else draw
# again. Plain rejection would almost never produce large holes, so each kind steers its draws:
#
# - box: one rectangle whose *area* is drawn uniformly from the bucket's area range (aspect ratio
#   log-uniform in [1/2, 2], clipped to the canvas), at a uniform position. Only rounding can leave the
#   bucket, so nearly every draw is accepted, even for 45-60 %.
# - strokes: DeepFill v2 brush-stroke masks (1-3 strokes each) are united one after another until the
#   ratio reaches `low`; the draw is rejected if the last one overshot `high`. The paper's stroke widths
#   (12-40 px) are absolute and tuned for 256² crops: on a smaller canvas one stroke covers half of it,
#   so canvases with a short side under 256 px are drawn at 256 and shrunk (area-averaged, > 0.5 = hole).
# - mixed: DeepFill v2's training mask (strokes united with a box), scaled to the bucket: a target ratio
#   is drawn in [low, high), a box takes 30-70 % of it, and stroke masks are added as for `strokes`.
#
# Each mask of a set has its own random stream, seeded by (seed, kind, bucket, index): mask i does not
# depend on how many masks are generated, and buckets or kinds with the same seed are not correlated.

MASK_KINDS: tuple[str, ...] = ("strokes", "box", "mixed")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "inpaint-masks/1"
STROKE_REFERENCE_SIDE = 256  # DeepFill v2's training crop: the canvas its stroke widths are meant for
_MAX_STROKE_LAYERS = 12  # stroke masks united per draw before giving up on reaching `low`


def parse_ratio(text: str, *, flag: str = "--ratio") -> tuple[float, float]:
    """'5-15' (per cent of the image that is hole) -> (0.05, 0.15). `flag` names the option in errors."""
    parts = text.strip().rstrip("%").split("-")
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = float(parts[0].strip().rstrip("%")), float(parts[1].strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected LOW-HIGH in per cent of the image, e.g. 5-15") from None
    if not 0 <= low < high <= 100:
        raise UsageError(f"{flag} {text!r}: need 0 <= LOW < HIGH <= 100 (per cent of the image), e.g. 30-45")
    return low / 100, high / 100


def ratio_label(low: float, high: float) -> str:
    """(0.05, 0.15) -> '5-15': the inverse of parse_ratio, used to name buckets in reports."""
    return f"{_percent(low)}-{_percent(high)}"


def _percent(value: float) -> str:
    text = f"{value * 100:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_size(text: str, *, flag: str = "--size") -> tuple[int, int]:
    """'320x256' -> (320, 256) as (width, height); a single number means a square."""
    parts = text.lower().strip().split("x")
    try:
        if len(parts) not in (1, 2):
            raise ValueError
        width, height = int(parts[0]), int(parts[-1])
    except ValueError:
        raise UsageError(f"{flag} {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 256x256") from None
    if width < 8 or height < 8:
        raise UsageError(f"{flag} {text!r}: masks need at least 8x8 pixels")
    return width, height


def sample_in_bucket(
    kind: str,
    height: int,
    width: int,
    low: float,
    high: float,
    rng: np.random.Generator,
    max_tries: int = 2000,
) -> np.ndarray:
    """A `kind` mask (strokes, box or mixed) whose hole ratio is in [low, high), by steered rejection
    sampling (scheme above). Every mask has at least one hole and one known pixel.

    Raises InpaintError when `max_tries` draws all missed the bucket (e.g. a bucket narrower than one
    pixel row of a box on a tiny canvas)."""
    if kind not in MASK_KINDS:
        raise UsageError(f"--kind {kind}: expected one of {', '.join(MASK_KINDS)}")
    if not 0 <= low < high <= 1:
        raise UsageError(f"hole-ratio bucket [{low}, {high}) must satisfy 0 <= low < high <= 1")
    draw = {"box": _draw_box, "strokes": _draw_strokes, "mixed": _draw_mixed}[kind]
    for _ in range(max_tries):
        mask = draw(height, width, low, high, rng)
        ratio = hole_ratio(mask)
        if low <= ratio < high and 0 < ratio < 1:
            return mask
    raise InpaintError(
        f"could not draw a {kind} mask of {width}x{height} with {ratio_label(low, high)} % hole in "
        f"{max_tries} tries; widen the bucket or use a larger --size"
    )


def _draw_box(height: int, width: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    return _box_of_area(height, width, rng.uniform(low, high) * height * width, rng)


def _box_of_area(height: int, width: int, area: float, rng: np.random.Generator) -> np.ndarray:
    """A rectangle of about `area` pixels (aspect log-uniform in [1/2, 2]) at a uniform position."""
    aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))  # box height / box width
    box_h = min(height, max(1, round(math.sqrt(area * aspect))))
    box_w = min(width, max(1, round(area / box_h)))
    box_h = min(height, max(1, round(area / box_w)))  # give back what clipping the width took
    mask, _ = box_mask(height, width, rng, box=(box_h, box_w), max_delta=(0, 0))
    return mask


def _stroke_layer(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One DeepFill v2 brush-stroke mask, drawn at >= 256 px on the short side and shrunk to fit."""
    scale = max(1.0, STROKE_REFERENCE_SIDE / min(height, width))
    if scale == 1.0:
        return brush_stroke_mask(height, width, rng)
    big = brush_stroke_mask(round(height * scale), round(width * scale), rng)
    small = cv2.resize(big.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
    return small > 0.5


def _add_strokes(mask: np.ndarray, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    height, width = mask.shape
    for _ in range(_MAX_STROKE_LAYERS):
        if hole_ratio(mask) >= low and mask.any():
            break
        mask = mask | _stroke_layer(height, width, rng)
        if hole_ratio(mask) >= high:
            break  # overshot: the caller rejects this draw
    return mask


def _draw_strokes(height: int, width: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    return _add_strokes(np.zeros((height, width), bool), low, high, rng)


def _draw_mixed(height: int, width: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    box_area = rng.uniform(0.3, 0.7) * rng.uniform(low, high) * height * width
    return _add_strokes(_box_of_area(height, width, box_area, rng), low, high, rng)


def bucket_masks(kind: str, low: float, high: float, n: int, width: int, height: int, seed: int) -> list[np.ndarray]:
    """The n masks `generate_mask_set` writes, in memory (the benchmark uses this directly)."""
    if seed < 0:
        raise UsageError(f"--seed {seed}: use a seed of 0 or more")
    kind_code = MASK_KINDS.index(kind) if kind in MASK_KINDS else -1
    bucket_code = (round(low * 10_000), round(high * 10_000))
    masks = []
    for index in range(n):
        rng = np.random.default_rng([seed, kind_code, *bucket_code, index])
        masks.append(sample_in_bucket(kind, height, width, low, high, rng))
    return masks


def previous_set_files(folder: Path) -> list[Path]:
    """The files of the mask set `folder` holds (the masks its manifest lists that exist, then the manifest),
    [] for a missing or empty folder. UsageError when the folder holds anything else: a set's folder is the
    set's alone, and files the tool did not write are never replaced or deleted."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file; masks generate writes a folder, choose another path")
    present = sorted(folder.iterdir()) if folder.is_dir() else []
    if not present:
        return []
    owned: set[str] = set()
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest.get("format") == MANIFEST_FORMAT:
                owned = {MANIFEST_NAME, *(str(record["file"]) for record in manifest["masks"])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            owned = set()
    foreign = [path.name for path in present if path.name not in owned or not path.is_file()]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UsageError(
            f"{folder} holds files that are not a mask set written by `inpaint masks generate` ({shown}); "
            f"choose an empty or new folder"
        )
    return [path for path in present if path.name != MANIFEST_NAME] + [manifest_path]


def generate_mask_set(
    out_dir: str | os.PathLike,
    kind: str,
    low: float,
    high: float,
    n: int,
    width: int,
    height: int,
    seed: int,
    *,
    overwrite: bool = False,
) -> list[dict]:
    """Write `mask_0000.png` ... (8-bit gray, white = hole) and `manifest.json` into `out_dir`.

    `out_dir` must be missing, empty, or hold a set this function wrote before: with `overwrite` that set's
    files are deleted first (so no stale mask outlives a smaller set), without it that is a UsageError, as
    is any other file there. The same arguments give byte-identical files (nothing time- or
    machine-dependent is written). Returns the manifest's per-file records: file, hole_ratio, sha256."""
    if n < 1:
        raise UsageError(f"--n {n}: generate at least one mask")
    folder = Path(out_dir)
    previous = previous_set_files(folder)
    if previous and not overwrite:
        raise UsageError(
            f"{folder} already holds a mask set ({len(previous) - 1} masks and {MANIFEST_NAME}); pass "
            f"--overwrite to replace it, or choose another folder"
        )
    masks = bucket_masks(kind, low, high, n, width, height, seed)  # checks kind and seed before anything goes
    for path in previous:
        path.unlink(missing_ok=True)
    records = []
    for index, mask in enumerate(masks):
        name = f"mask_{index:04d}.png"
        write_image(folder / name, mask.astype(np.uint8) * 255)
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        records.append({"file": name, "hole_ratio": round(hole_ratio(mask), 6), "sha256": digest})
    manifest = {
        "format": MANIFEST_FORMAT,
        "kind": kind,
        "bucket": ratio_label(low, high),
        "low": low,
        "high": high,
        "seed": seed,
        "size": f"{width}x{height}",
        "width": width,
        "height": height,
        "n": n,
        "masks": records,
    }
    write_atomic(folder / MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return records


@dataclass
class MaskSet:
    """Masks read back from a directory: `kind` and `bucket` from its manifest, when it has one."""

    directory: Path
    kind: str
    bucket: str | None
    names: list[str]
    masks: list[np.ndarray]


def load_mask_set(directory: str | os.PathLike) -> MaskSet:
    """Read the masks of one directory (white = hole): the files its manifest.json lists, in order,
    or every image file in it (sorted by name) when there is no manifest (kind "file", bucket None)."""
    folder = Path(directory)
    manifest_path = folder / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            names = [record["file"] for record in manifest["masks"]]
            kind, bucket = str(manifest["kind"]), str(manifest["bucket"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InpaintError(
                f"{manifest_path}: not a mask manifest ({exc}); regenerate it with `inpaint masks generate`"
            ) from None
    else:
        names = [path.name for path in image_files(folder)]
        kind, bucket = "file", None
    if not names:
        raise InpaintError(f"{folder}: no mask images in it; generate some with `inpaint masks generate`")
    return MaskSet(folder, kind, bucket, names, [read_mask(folder / name) for name in names])

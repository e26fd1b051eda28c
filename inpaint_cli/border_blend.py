"""Border matching: shift a network's fill so it meets the known pixels at the hole's border.

A network trained on few images fills a flat sky a few levels too purple, and a box hole in a photo shows
as a square with a faint step at its edge. Both are a smooth offset between the fill and its surroundings,
which Poisson image editing (Pérez, Gangnet & Blake, SIGGRAPH 2003) removes: the blended fill f keeps the
prediction's gradients between hole pixels, and across the hole's border it is asked for no step at all:

    for each hole pixel p:  Σ_q∈N(p) (f_p − f_q) = Σ_q∈N(p)∩hole (pred_p − pred_q),   f_q = image_q off the hole.

With f = pred + r, the correction r is harmonic in the hole (the discrete Laplace equation) with, at each
border edge (p inside, q outside), the step image_q − pred_p as its boundary value; it is solved by
conjugate gradients on the hole's pixels. Texture, edges and everything else of the fill's detail stay as
predicted; only the low frequencies the border pins down move. Unlike GLCIC's `poisson_blend` (OpenCV's
seamlessClone of the raw prediction over the dilated hole, which keeps the prediction's own step at the
border), no known pixel changes and the result stays in float.

The solver is conjugate gradients preconditioned by one multigrid V-cycle (2×2 blocks, a coarse pixel is
hole where any of its four is; damped Jacobi smoothing), so a hole of any size converges in a few dozen
iterations.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import UsageError

BLEND_MODES = ("harmonic", "none")
# Iterations stop when the residual is this small against the border steps' norm: about a hundredth of a
# grey level at worst on a 512² window (checked against a direct solve in the tests).
RELATIVE_TOLERANCE = 1e-4
MAX_ITERATIONS = 200
COARSEST_SIDE = 8  # a V-cycle stops halving at this side (or when no known pixel would be left)
SMOOTHING_SWEEPS = 2  # damped Jacobi sweeps before and after each coarse correction
JACOBI_DAMPING = 0.8
TINY = float(np.finfo(np.float32).tiny)  # guards the divisions of a channel that is already solved


def check_blend(mode: str) -> str:
    if mode not in BLEND_MODES:
        raise ValueError(f"blend must be one of {', '.join(BLEND_MODES)} (got {mode!r})")
    return mode


def check_blend_flag(mode: str | None) -> str | None:
    """`--blend` (None = each model's default) checked before any work: a UsageError naming the flag."""
    try:
        return None if mode is None else check_blend(mode)
    except ValueError as error:
        raise UsageError(f"--blend {mode}: {error}") from None


# The 4-neighbour cross; cv2.filter2D applies it in one SIMD pass (5× numpy's four shifted adds at 512²).
_CROSS = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], np.float32)
# The Laplacian degree·v − Σ neighbours in one pass: with the border replicated, a neighbour past the
# image's edge equals the pixel itself and cancels, which is the degree of an edge pixel.
_LAPLACIAN = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], np.float32)


def _neighbour_sum(values: np.ndarray) -> np.ndarray:
    """Sum of each pixel's 4 neighbours (H, W, C) float32; pixels past the image edge count as absent."""
    total = cv2.filter2D(values, -1, _CROSS, borderType=cv2.BORDER_CONSTANT)
    return total.reshape(values.shape)  # OpenCV drops a single channel's axis


def _hole_window(hole: np.ndarray) -> tuple[slice, slice]:
    """The hole's bounding box grown by the 1-px ring of known pixels its border equations read."""
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    height, width = hole.shape
    return (
        slice(max(rows[0] - 1, 0), min(rows[-1] + 2, height)),
        slice(max(cols[0] - 1, 0), min(cols[-1] + 2, width)),
    )


def match_border(image: np.ndarray, prediction: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The prediction (H, W, 3) in [0, 1] with its hole pixels blended as the module docstring says;
    pixels off the hole are returned unchanged. A hole covering the whole image has no border to match
    and is returned as predicted."""
    if not hole.any() or hole.all():
        return prediction
    window = _hole_window(hole)
    inside = hole[window][..., None].astype(np.float32)
    known = 1.0 - inside
    pred = prediction[window].astype(np.float32)
    # Every hole pixel's equation sits inside the window: the ring around the hole is in it, and a hole
    # pixel on the window's edge is on the image's edge, where a missing neighbour is no equation.
    border_steps = inside * (_neighbour_sum(image[window].astype(np.float32) * known) - _neighbour_sum(known) * pred)
    correction = _solve(_levels(inside), border_steps)
    out = prediction.copy()
    blended = np.clip(pred + correction, 0.0, 1.0).astype(prediction.dtype)
    out[window] = np.where(inside > 0, blended, prediction[window])
    return out


class _Level:
    """One grid of the V-cycle: which pixels are unknown, and how many in-image neighbours each has.
    Every vector the solver handles is zero off the unknown pixels, which `apply` relies on."""

    def __init__(self, inside: np.ndarray) -> None:
        self.inside = inside
        self.damped_inverse = JACOBI_DAMPING * inside / _neighbour_sum(np.ones_like(inside))

    def apply(self, values: np.ndarray) -> np.ndarray:
        """The Laplacian on the unknown pixels (known ones held at 0) of a vector that is 0 off them."""
        laplacian = cv2.filter2D(values, -1, _LAPLACIAN, borderType=cv2.BORDER_REPLICATE)
        return self.inside * laplacian.reshape(values.shape)

    def smooth(self, values: np.ndarray, rhs: np.ndarray, sweeps: int) -> np.ndarray:
        for _ in range(sweeps):
            values = values + self.damped_inverse * (rhs - self.apply(values))
        return values


def _levels(inside: np.ndarray) -> list[_Level]:
    levels = [_Level(inside)]
    while min(inside.shape[:2]) >= 2 * COARSEST_SIDE:
        inside = _restrict(inside, "any")
        if inside.all():  # no known pixel left: the coarse problem would have no unique solution
            break
        levels.append(_Level(inside))
    return levels


def _restrict(values: np.ndarray, reduce: str = "sum") -> np.ndarray:
    """2×2 blocks reduced to one pixel ("sum", or "any" for a 0/1 map); an odd last row or column is
    zero-padded to a block of its own. OpenCV's area resize is the block mean, in one pass."""
    height, width, channels = values.shape
    if height % 2 or width % 2:
        values = cv2.copyMakeBorder(values, 0, height % 2, 0, width % 2, cv2.BORDER_CONSTANT, value=0)
    size = (values.shape[1] // 2, values.shape[0] // 2)
    mean = cv2.resize(values, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], channels)
    return (mean > 0).astype(values.dtype) if reduce == "any" else 4.0 * mean


def _v_cycle(levels: list[_Level], rhs: np.ndarray) -> np.ndarray:
    """An approximate inverse of levels[0]'s Laplacian applied to rhs: smooth, correct from the half-size
    grid (block sums down, repeated back up: each other's transposes, so the cycle stays symmetric, as
    conjugate gradients needs), smooth again."""
    level = levels[0]
    if len(levels) == 1:
        return level.smooth(np.zeros_like(rhs), rhs, 8 * SMOOTHING_SWEEPS)
    values = level.smooth(np.zeros_like(rhs), rhs, SMOOTHING_SWEEPS)
    coarse = _v_cycle(levels[1:], _restrict(level.inside * (rhs - level.apply(values))))
    height, width = rhs.shape[:2]
    values = values + level.inside * coarse.repeat(2, axis=0).repeat(2, axis=1)[:height, :width]
    return level.smooth(values, rhs, SMOOTHING_SWEEPS)


def _solve(levels: list[_Level], rhs: np.ndarray) -> np.ndarray:
    """Preconditioned conjugate gradients for levels[0]'s Laplacian r = rhs, each channel its own system."""
    level = levels[0]
    solution = np.zeros_like(rhs)
    residual = rhs.copy()
    stop = RELATIVE_TOLERANCE**2 * np.maximum(np.einsum("hwc,hwc->c", rhs, rhs), TINY)
    preconditioned = _v_cycle(levels, residual)
    direction = preconditioned.copy()
    product = np.einsum("hwc,hwc->c", residual, preconditioned)
    for _ in range(MAX_ITERATIONS):
        if (np.einsum("hwc,hwc->c", residual, residual) <= stop).all():
            break
        applied = level.apply(direction)
        step = product / np.maximum(np.einsum("hwc,hwc->c", direction, applied), TINY)
        solution += step * direction
        residual -= step * applied
        preconditioned = _v_cycle(levels, residual)
        new_product = np.einsum("hwc,hwc->c", residual, preconditioned)
        direction = preconditioned + (new_product / np.maximum(product, TINY)) * direction
        product = new_product
    return solution * level.inside

"""The numbers of the quality run: what is scored per case (`score_fill`, `QUALITY_METRICS`), and how the
cases of a group pool into a mean with a t-based 95 % confidence interval (`summarize`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import metrics

# Scored per case; "_hole" = over the hole pixels only. gradient_ratio, texture_distance, seam_step and
# grid_artefact are always about the hole (its pixels, or the pairs across its border).
QUALITY_METRICS: tuple[str, ...] = (
    "psnr",
    "psnr_hole",
    "ssim",
    "ssim_hole",
    "l1",
    "l1_hole",
    "l2",
    "l2_hole",
    "gradient_ratio",
    "texture_distance",
    "seam_step",
    "grid_artefact",
)
DIVERSITY = "diversity"  # scored besides QUALITY_METRICS for models that sample (`plural.hole_diversity`)
# Also for models that sample: the mean over all the case's samples of these, so that diversity bought
# with noise or with worse fills shows beside it (sample 0 alone is what QUALITY_METRICS score).
SAMPLE_METRICS: dict[str, str] = {"samples_psnr_hole": "psnr_hole", "samples_texture_distance": "texture_distance"}
CI_METHOD = "t-based 95% CI: mean ± t(0.975, n-1)·sd/√n (sample sd); none for n < 2"


def score_fill(output: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """QUALITY_METRICS of one fill against its ground truth."""
    return {
        "psnr": metrics.psnr(output, truth),
        "psnr_hole": metrics.psnr(output, truth, mask),
        "ssim": metrics.ssim(output, truth),
        "ssim_hole": metrics.ssim(output, truth, mask),
        "l1": metrics.l1(output, truth),
        "l1_hole": metrics.l1(output, truth, mask),
        "l2": metrics.l2(output, truth),
        "l2_hole": metrics.l2(output, truth, mask),
        "gradient_ratio": metrics.gradient_ratio(output, truth, mask),
        "texture_distance": metrics.texture_distance(output, truth, mask),
        "seam_step": metrics.seam_step(output, truth, mask),
        "grid_artefact": metrics.grid_artefact(output, truth, mask),
    }


def score_samples(
    first: dict[str, float], others: list[np.ndarray], truth: np.ndarray, mask: np.ndarray
) -> dict[str, float]:
    """SAMPLE_METRICS of a case: each sample's hole PSNR and texture distance, averaged over its samples.
    first: sample 0's `score_fill` record (its metrics are not computed again); others: the other samples."""
    scored = [first] + [
        {
            "psnr_hole": metrics.psnr(sample, truth, mask),
            "texture_distance": metrics.texture_distance(sample, truth, mask),
        }
        for sample in others
    ]
    return {name: float(np.mean([scores[metric] for scores in scored])) for name, metric in SAMPLE_METRICS.items()}


@dataclass
class Stat:
    """Mean with the half-width of its 95 % confidence interval (None when n < 2 or not finite)."""

    mean: float | None
    ci95: float | None
    n: int


# 97.5 % quantiles of Student's t for 1-30 degrees of freedom; beyond, a Cornish-Fisher expansion
# around the normal quantile is within 0.001 of the exact value.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t_quantile_975(df: int) -> float:
    """The two-sided 95 % critical value of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def summarize(values: list[float]) -> Stat:
    """Mean and t-based 95 % CI half-width (CI_METHOD); a non-finite value (inf PSNR) gives mean inf, no CI."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return Stat(None, None, 0)
    mean = float(array.mean())
    if array.size < 2 or not np.all(np.isfinite(array)):
        return Stat(mean, None, int(array.size))
    half_width = t_quantile_975(array.size - 1) * float(array.std(ddof=1)) / math.sqrt(array.size)
    return Stat(mean, half_width, int(array.size))

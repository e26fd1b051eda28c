"""Image-quality metrics for validation during training and for benchmarks.

Every function takes float arrays (H, W, 3) in [0, 1] (any channel count works) and an optional bool mask
(H, W) whose True pixels are scored — for inpainting, the hole. Computation is in float64. Only numpy and
OpenCV are used, so benchmarks can import this without torch.

- `psnr`: 10·log10(range² / MSE) over the selected pixels (all channels); identical → inf.
- `ssim`: Wang et al. 2004 — Gaussian window 11×11, σ 1.5, K1 0.01, K2 0.03, local statistics with
  population (not sample) variances, per channel over the whole image (reflected borders); the SSIM map
  is averaged over channels, then over the mask pixels, or without a mask over the "valid" region (pixels
  at least 5 px from the border, as Wang's MATLAB code, falling back to the whole map for tiny images).
  Scoring a hole with the map of the whole image is the point: windows straddling the hole's border see
  whether the fill continues the context.
- `l1`, `l2`: mean absolute / squared error over the selected pixels.
- `gradient_ratio`: how much detail a fill has compared with the truth (blurry fills score ≪ 1).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
# Added to both mean gradient magnitudes of `gradient_ratio` (intensity units per pixel; an 8-bit step
# gives Sobel ≈ 4/255 ≈ 0.016): a flat target and a flat fill give 1, never 0/0.
GRADIENT_EPSILON = 1e-3
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as cv2.cvtColor's RGB2GRAY


def _pair(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    prediction = np.asarray(prediction, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    if prediction.ndim == 2:  # gray (H, W): treat as one channel
        prediction, target = prediction[..., None], target[..., None]
    if prediction.ndim != 3:
        raise ValueError(f"expected (H, W, C) images, got shape {prediction.shape}")
    if mask is not None:
        _check_mask(mask, prediction.shape[:2])
    return prediction, target


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> None:
    if mask.shape != shape:
        raise ValueError(f"mask {mask.shape} does not match the image {shape}")
    if not np.any(mask):
        raise ValueError("the mask selects no pixels; there is nothing to score")


def _selected(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """values (H, W, ...) → the entries at the mask's pixels (every entry without a mask)."""
    return values if mask is None else values[np.asarray(mask, dtype=bool)]


def l1(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over the selected pixels and all channels."""
    prediction, target = _pair(prediction, target, mask)
    return float(np.mean(np.abs(_selected(prediction - target, mask))))


def l2(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the selected pixels and all channels."""
    prediction, target = _pair(prediction, target, mask)
    return float(np.mean(np.square(_selected(prediction - target, mask))))


def psnr(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over the selected pixels; `float("inf")` when they are identical."""
    mse = l2(prediction, target, mask)
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(data_range * data_range / mse)


def ssim_map(prediction: np.ndarray, target: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """The SSIM map (H, W), averaged over channels (see the module docstring for the definition)."""
    prediction, target = _pair(prediction, target, None)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def local_mean(values: np.ndarray) -> np.ndarray:
        # BORDER_REFLECT (abc|cba) keeps statistics near the border from mixing in zeros.
        blurred = cv2.GaussianBlur(
            values, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, sigmaY=SSIM_SIGMA, borderType=cv2.BORDER_REFLECT
        )
        return blurred.reshape(values.shape)  # cv2 drops a trailing axis of length 1

    mu_x, mu_y = local_mean(prediction), local_mean(target)
    var_x = local_mean(prediction * prediction) - mu_x * mu_x
    var_y = local_mean(target * target) - mu_y * mu_y
    covariance = local_mean(prediction * target) - mu_x * mu_y
    numerator = (2.0 * mu_x * mu_y + c1) * (2.0 * covariance + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(axis=2)


def ssim(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0) -> float:
    """Structural similarity (Wang et al. 2004) averaged over the mask pixels, or the valid region."""
    prediction, target = _pair(prediction, target, mask)
    values = ssim_map(prediction, target, data_range)
    if mask is not None:
        return float(values[np.asarray(mask, dtype=bool)].mean())
    border = SSIM_WINDOW // 2
    if values.shape[0] > 2 * border and values.shape[1] > 2 * border:
        values = values[border:-border, border:-border]
    return float(values.mean())


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel (3×3) gradient magnitude (H, W) of the BT.601 luminance of an RGB (or gray) image."""
    image = np.asarray(image, dtype=np.float64)
    luminance = image if image.ndim == 2 else (image @ _LUMA if image.shape[2] == 3 else image.mean(axis=2))
    luminance = np.ascontiguousarray(luminance)
    dx = cv2.Sobel(luminance, cv2.CV_64F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    dy = cv2.Sobel(luminance, cv2.CV_64F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return np.sqrt(dx * dx + dy * dy)


def gradient_ratio(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray | None) -> float:
    """Mean gradient magnitude of the prediction inside the mask over that of the target.

    1 = as much detail as the truth, ≪ 1 = blurred, > 1 = noisier. Both means get `GRADIENT_EPSILON`
    added, so a flat target cannot divide by zero (flat vs flat is 1). mask None scores the whole image.
    """
    prediction, target = _pair(prediction, target, mask)
    detail_prediction = _selected(gradient_magnitude(prediction), mask).mean()
    detail_target = _selected(gradient_magnitude(target), mask).mean()
    return float((detail_prediction + GRADIENT_EPSILON) / (detail_target + GRADIENT_EPSILON))

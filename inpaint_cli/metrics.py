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
- `texture_distance`: how unlike the truth's texture the hole's texture is, by patch statistics and with no
  pretrained network; blur and noise both score high, a fill with the truth's kind of texture low (0 = the
  truth). A sliced Wasserstein-1 distance between 7×7×3 patch sets, per level of a Laplacian pyramid.
- `seam_step`: how much more the image steps across the hole's border than the truth does, in 8-bit levels
  (0 = as the truth; > 0 a visible edge around the fill).
- `grid_artefact`: how much more of the hole's detail repeats on an 8-px grid tied to the image's corner
  (the plaid of strided and dilated networks) than in the truth, in 8-bit levels (0 = as the truth).
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

# texture_distance: a 3-level Laplacian pyramid (two band-pass levels and the low-pass residual), 7×7×3
# patches centred on hole pixels, at most 512 of them per level (seeded), 64 projection directions drawn
# once from a fixed seed, so every run, model and machine scores with the same directions.
TEXTURE_LEVELS = 3
TEXTURE_PATCH = 7
TEXTURE_MAX_PATCHES = 512
TEXTURE_DIRECTIONS = 64
TEXTURE_SCALE = 1000.0
# Floor of the per-dimension std that normalises the patches (intensity units): the truth's band-pass
# levels of a flat sky have std ≈ 0, and dividing by that would blow one quantisation step up to a
# distance; 1/255 is one 8-bit level.
TEXTURE_STD_FLOOR = 1.0 / 255.0


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


def laplacian_pyramid(image: np.ndarray, levels: int = TEXTURE_LEVELS) -> list[np.ndarray]:
    """[band-pass level 0, …, band-pass level levels−2, low-pass residual] of an (H, W, C) float image;
    level k has the size of the image halved k times (rounded up, as cv2.pyrDown does)."""
    pyramid = []
    current = np.asarray(image, dtype=np.float64)
    for _ in range(levels - 1):
        smaller = cv2.pyrDown(current, borderType=cv2.BORDER_REFLECT101).reshape(
            (current.shape[0] + 1) // 2, (current.shape[1] + 1) // 2, -1
        )
        expanded = cv2.pyrUp(smaller, dstsize=(current.shape[1], current.shape[0]), borderType=cv2.BORDER_REFLECT101)
        pyramid.append(current - expanded.reshape(current.shape))
        current = smaller
    pyramid.append(current)
    return pyramid


def _texture_directions(dimensions: int) -> np.ndarray:
    """TEXTURE_DIRECTIONS fixed random unit vectors (dimensions, TEXTURE_DIRECTIONS)."""
    directions = np.random.default_rng(20091).standard_normal((dimensions, TEXTURE_DIRECTIONS))
    return directions / np.linalg.norm(directions, axis=0, keepdims=True)


def _patches_at(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The TEXTURE_PATCH² patches centred on (rows, cols), reflect-padded: (N, TEXTURE_PATCH²·C)."""
    half = TEXTURE_PATCH // 2
    padded = np.pad(image, ((half, half), (half, half), (0, 0)), mode="reflect")
    offsets = np.arange(TEXTURE_PATCH)
    window_rows = rows[:, None, None] + offsets[None, :, None]  # (N, P, 1) in padded coordinates
    window_cols = cols[:, None, None] + offsets[None, None, :]  # (N, 1, P)
    return padded[window_rows, window_cols].reshape(len(rows), -1)


def _sliced_w1(prediction: np.ndarray, target: np.ndarray) -> float:
    """Sliced Wasserstein-1 distance between two equally sized point sets (N, D)."""
    directions = _texture_directions(prediction.shape[1])
    projected_prediction = np.sort(prediction @ directions, axis=0)
    projected_target = np.sort(target @ directions, axis=0)
    return float(np.mean(np.abs(projected_prediction - projected_target)))


def texture_distance(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray, seed: int = 0) -> float:
    """Patch sliced-Wasserstein distance in the hole, ×1000 (0 = the truth's patches; lower is better).

    At each level of a 3-level Laplacian pyramid of both images, the 7×7×3 patches centred on the hole's
    pixels (the mask downscaled to the level, a pixel counting when any of its source pixels is a hole; at
    most 512, the same seeded positions in both images) are normalised by the truth patches' per-dimension
    mean and std (std floored at one 8-bit level), and compared by the sliced Wasserstein-1 distance over 64
    fixed random unit directions. The score is the mean over levels, ×1000. A blurred fill loses the
    band-pass energy and a noisy one adds energy the truth lacks: both move the patch distribution away
    from the truth's, while a fill with the truth's kind of texture keeps it, even where it does not match
    the truth pixel for pixel (which is what PSNR asks for).
    """
    prediction, target = _pair(prediction, target, mask)
    hole = np.asarray(mask, dtype=bool)
    rng = np.random.default_rng(seed)
    distances = []
    for level, (ours, truth) in enumerate(zip(laplacian_pyramid(prediction), laplacian_pyramid(target), strict=True)):
        level_hole = hole
        for _ in range(level):  # a level pixel is in the hole when any of its 2×2 source pixels is
            padded = np.pad(level_hole, ((0, level_hole.shape[0] % 2), (0, level_hole.shape[1] % 2)))
            level_hole = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2).any(axis=(1, 3))
        rows, cols = np.nonzero(level_hole)
        if len(rows) > TEXTURE_MAX_PATCHES:
            keep = rng.choice(len(rows), TEXTURE_MAX_PATCHES, replace=False)
            rows, cols = rows[keep], cols[keep]
        patches_ours = _patches_at(ours, rows, cols)
        patches_truth = _patches_at(truth, rows, cols)
        centre = patches_truth.mean(axis=0)
        scale = np.maximum(patches_truth.std(axis=0), TEXTURE_STD_FLOOR)
        distances.append(_sliced_w1((patches_ours - centre) / scale, (patches_truth - centre) / scale))
    return TEXTURE_SCALE * float(np.mean(distances))


def seam_step(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray) -> float:
    """The visible edge around a fill, in 8-bit levels: the mean absolute difference across the hole's
    border (each horizontally or vertically adjacent pair of a hole pixel and a known pixel, all channels)
    in the prediction, minus the same in the truth. 0 = the border steps as much as the truth does there;
    positive = a seam (a fill brighter, darker or of another colour than its surroundings); negative = a
    fill that smooths over an edge the truth has."""
    prediction, target = _pair(prediction, target, mask)
    hole = np.asarray(mask, dtype=bool)
    steps_prediction: list[np.ndarray] = []
    steps_target: list[np.ndarray] = []
    for axis in (0, 1):
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        crossing = hole[tuple(first)] != hole[tuple(second)]
        for image, steps in ((prediction, steps_prediction), (target, steps_target)):
            difference = np.abs(image[tuple(first)] - image[tuple(second)])
            steps.append(difference[crossing])
    across_prediction = np.concatenate(steps_prediction)
    if across_prediction.size == 0:  # the hole covers the whole image: there is no border
        return 0.0
    return 255.0 * float(across_prediction.mean() - np.concatenate(steps_target).mean())


GRID_PERIOD = 8  # DeepFill's plaid: two stride-2 stages, then dilation 2 at quarter resolution


def _grid_rms(image: np.ndarray, hole: np.ndarray, period: int) -> float:
    """The RMS of the periodic part of the hole's detail, its sampling noise taken off (see grid_artefact)."""
    height, width = (hole.shape[0] // period) * period, (hole.shape[1] // period) * period
    image, hole = image[:height, :width], hole[:height, :width]
    detail = image - cv2.blur(image, (period, period), borderType=cv2.BORDER_REPLICATE).reshape(image.shape)
    detail = detail.reshape(height // period, period, width // period, period, -1)
    weights = hole.reshape(height // period, period, width // period, period, 1).astype(np.float64)
    counts = weights.sum(axis=(0, 2))  # (period, period, 1)
    if (counts < 2).any():
        return 0.0
    phase_means = (detail * weights).sum(axis=(0, 2)) / counts  # (period, period, C)
    spread = (np.square(detail - phase_means[None, :, None]) * weights).sum(axis=(0, 2)) / (counts - 1)
    power = np.square(phase_means - phase_means.mean(axis=(0, 1))).mean(axis=(0, 1))
    noise = (spread / counts).mean(axis=(0, 1))  # what a texture with no period puts in `power`
    return float(np.sqrt(np.maximum(power - noise, 0.0)).mean())


def grid_artefact(prediction: np.ndarray, target: np.ndarray, mask: np.ndarray, period: int = GRID_PERIOD) -> float:
    """The plaid of a fill, in 8-bit levels: each image minus its period×period box mean (smooth trends go,
    anything repeating with the period stays), averaged over the hole pixels of each of the period² phases
    (y mod period, x mod period, counted from the image's corner, where a network's grid starts when it
    fills the whole image); the power of those means about their mean, less the power a texture without
    a period leaves there (each phase's variance over its pixel count), as an RMS, over the channels; the
    prediction's minus the truth's (about 0 for a photograph). So a 2-level plaid shows in a textured fill
    too, where the texture's sampling noise alone would put 3 levels into the phase means. Training's
    counterpart, without the noise correction, is `models.losses.grid_artefact`."""
    prediction, target = _pair(prediction, target, mask)
    hole = np.asarray(mask, dtype=bool)
    return 255.0 * (_grid_rms(prediction, hole, period) - _grid_rms(target, hole, period))

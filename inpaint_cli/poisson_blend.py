"""GLCIC's post-processing (Iizuka, Simo-Serra & Ishikawa 2017): Poisson-blend a prediction into the known
pixels around the hole with OpenCV's `seamlessClone`. `GLCIC.inpaint` calls it with `postprocess="poisson"`;
how it departs from the paper (no fast-marching fill first, 8-bit blend) is in `models/glcic.py`'s docstring."""

from __future__ import annotations

import cv2
import numpy as np
import torch

# OpenCV's seamlessClone erodes its mask by 3 px before using the source gradients; 5 px of dilation
# leaves a ~2 px ring of known pixels around the hole inside the blended region.
POISSON_DILATION = 5


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] → (H, W, 3) uint8."""
    array = image.detach().float().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray((array * 255.0).round().clip(0, 255).astype(np.uint8))


def _blend_padding(hole: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) mirror padding for `poisson_blend`: `margin` on each side, or, where the
    hole comes within `margin` of that border, enough to hold the hole's mirror image plus `margin`."""
    height, width = hole.shape
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))

    def side(near: int, far: int, size: int) -> int:
        return min(size, far + margin) if near < margin else margin

    return (
        side(rows[0], rows[-1] + 1, height),
        side(height - 1 - rows[-1], height - rows[0], height),
        side(cols[0], cols[-1] + 1, width),
        side(width - 1 - cols[-1], width - cols[0], width),
    )


def poisson_blend(
    image: torch.Tensor, prediction: torch.Tensor, mask: torch.Tensor, dilation: int = POISSON_DILATION
) -> torch.Tensor:
    """The paper's post-processing: Poisson-clone the prediction into the known image over the dilated hole.

    The destination is the composite (prediction in the hole, image outside). All three images are
    mirror-padded first, so the clone region (and the bounding rect OpenCV requires to lie inside the
    destination) always fits, and a hole touching the border is blended as half of a symmetric hole:
    a zero-gradient boundary at the image edge instead of a value forced there. Returns the prediction
    with the blended values inside the clone region; outside it the prediction is unchanged.
    """
    out = prediction.clone()
    margin = dilation + 2  # the dilation plus the 1-px ring seamlessClone clears in its mask
    kernel = np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8)
    for index in range(image.shape[0]):
        hole = (mask[index, 0] > 0.5).cpu().numpy()
        if not hole.any():
            continue
        height, width = hole.shape
        top, bottom, left, right = _blend_padding(hole, margin)
        source = _to_uint8(prediction[index])
        destination = np.where(hole[..., None], source, _to_uint8(image[index]))
        source, destination, region = (
            cv2.copyMakeBorder(a, top, bottom, left, right, cv2.BORDER_REFLECT)
            for a in (source, destination, hole.astype(np.uint8) * 255)
        )
        region = cv2.dilate(region, kernel)
        region[[0, -1], :] = 0  # seamlessClone clears this ring itself; clear it first so our rect is its rect
        region[:, [0, -1]] = 0
        x, y, w, h = cv2.boundingRect(region)
        # seamlessClone centres the source rect on this point: with w//2, h//2 it lands on the very same
        # pixels, so nothing shifts. It erodes the mask it is given in place, hence the copy.
        blended = cv2.seamlessClone(source, destination, region.copy(), (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
        window = (slice(top, top + height), slice(left, left + width))
        blended_t = torch.from_numpy(blended[window].astype(np.float32) / 255.0).permute(2, 0, 1)
        inside = torch.from_numpy(region[window] > 0).to(out.device)
        out[index] = torch.where(inside, blended_t.to(out.device, out.dtype), out[index])
    return out

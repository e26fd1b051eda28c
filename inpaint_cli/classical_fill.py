"""OpenCV's classical inpainting (`telea`, `ns`) in numpy and cv2 only, without torch.

The registry's `telea` and `ns` architectures (`models/classical.py`, torch modules like every other
model) call `opencv_fill` below. `inpaint fill --model telea` builds a `ClassicalFill` instead: importing
torch costs about 1.6 s, four fifths of a 256² fill, which a shell loop over many files would pay for every
file. The engine fills through `ClassicalFill.predict_numpy` and never imports torch for it.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .errors import UsageError
from .registry import InputContract

CONTRACT = InputContract(pad_multiple=1, comfortable_size=None, trainable=False, needs_weights=False)
# arch name -> cv2 flag: fast marching (Telea 2004), Navier-Stokes based (Bertalmio et al. 2001)
CV2_FLAGS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
DEFAULT_RADIUS = 5


def opencv_fill(image: np.ndarray, hole: np.ndarray, radius: float, flag: int) -> np.ndarray:
    """image: (H, W, C) float64 in [0, 1]; hole: (H, W) uint8, non-zero = hole -> (H, W, C) float64.

    Always in float32, one channel at a time (what cv2.inpaint takes beside 8-bit), on the 0–255 scale:
    the fill is not rounded to 8 bits, so a 16-bit image is quantised once, at its own depth, when the
    output is composed (an earlier 8-bit path rounded every filled pixel to 1/255)."""
    scaled = np.ascontiguousarray(image * 255.0, dtype=np.float32)
    filled = np.stack(
        [cv2.inpaint(np.ascontiguousarray(scaled[..., c]), hole, radius, flag) for c in range(image.shape[2])],
        axis=-1,
    )
    filled = (filled.astype(np.float64) / 255.0).clip(0.0, 1.0)
    return np.where(hole[..., None] > 0, filled, image)  # known pixels exactly as given


def fill_stack(rgbs: np.ndarray, masks: np.ndarray, radius: float, flag: int) -> np.ndarray:
    """rgbs (B, H, W, C) floats in [0, 1], masks (B, H, W) (or (1, H, W) for all), True/non-zero = hole ->
    (B, H, W, C) float64, each image filled on its own."""
    holes = (np.asarray(masks) > 0).astype(np.uint8)
    if holes.shape[0] == 1 and rgbs.shape[0] > 1:
        holes = np.broadcast_to(holes, (rgbs.shape[0], *holes.shape[1:]))
    images = np.asarray(rgbs, dtype=np.float64)
    return np.stack(
        [opencv_fill(img, np.ascontiguousarray(h), radius, flag) for img, h in zip(images, holes, strict=True)]
    )


class ClassicalFill:
    """`telea` or `ns` as the engine runs it without torch: the registry's contract and config (`radius`),
    and `predict_numpy`, which the engine calls instead of a torch forward pass."""

    contract = CONTRACT

    def __init__(self, arch: str, **config: Any) -> None:
        if arch not in CV2_FLAGS:
            raise UsageError(f"{arch}: not a classical fill; expected one of {', '.join(CV2_FLAGS)}")
        unknown = set(config) - {"radius"}
        if unknown:
            raise UsageError(f"--set {', '.join(sorted(unknown))}: not a config key of {arch} (known: radius)")
        radius = config.get("radius", DEFAULT_RADIUS)
        if isinstance(radius, bool) or not isinstance(radius, int | float) or not radius > 0:
            raise UsageError(f"--set radius={radius}: expected a positive number of pixels, e.g. radius=3")
        self.arch_name = arch
        self.arch_config = {"radius": radius}
        self.radius = float(radius)
        self.checkpoint_name = arch

    def predict_numpy(self, rgbs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """rgbs (B, H, W, 3) float32 in [0, 1], masks (B, H, W) bool -> the filled images, float32."""
        return fill_stack(rgbs, masks, self.radius, CV2_FLAGS[self.arch_name]).astype(np.float32)

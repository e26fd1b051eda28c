"""OpenCV's classical inpainting as registry architectures: `telea` and `ns`.

telea: fast marching (Telea 2004), cv2.INPAINT_TELEA. ns: Navier–Stokes based (Bertalmio et al. 2001),
cv2.INPAINT_NS. No parameters and no weights; they run on the CPU with numpy whatever the input device.

In: image (B, C, H, W) in [0, 1], mask (B, 1, H, W), > 0.5 = hole. Out: (B, C, H, W) in [0, 1] on the
input's device and dtype; known pixels come back unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import cv2
import numpy as np
import torch

from ..registry import InputContract, register
from .base import InpaintModel

_CONTRACT = InputContract(pad_multiple=1, comfortable_size=None, trainable=False, needs_weights=False)

# An image is treated as 8-bit when every value·255 is this close to an integer (0–255 scale).
# float32 rounding of k/255 alone is up to ~1.5e-5 off, while 16-bit data that is not on the 8-bit
# grid lies at least 1/257 ≈ 0.004 away, so 1e-3 separates the two cleanly.
_EIGHT_BIT_TOLERANCE = 1e-3


def _is_eight_bit(image: np.ndarray) -> bool:
    scaled = image * 255.0
    return bool(np.all(np.abs(scaled - np.rint(scaled)) <= _EIGHT_BIT_TOLERANCE))


class _OpenCVInpaint(InpaintModel):
    """Shared implementation; subclasses pick the cv2 flag."""

    cv2_flag: ClassVar[int]

    def __init__(self, radius: float = 5) -> None:
        super().__init__(radius=radius)
        self.radius = float(radius)

    def _fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """image: (H, W, C) float64 in [0, 1]; hole: (H, W) uint8, non-zero = hole."""
        channels = image.shape[2]
        if _is_eight_bit(image):
            # Standard path: the data came from an 8-bit file, so uint8 loses nothing.
            as_uint8 = np.rint(image * 255.0).clip(0, 255).astype(np.uint8)
            if channels in (1, 3):
                filled = cv2.inpaint(as_uint8, hole, self.radius, self.cv2_flag).reshape(image.shape)
            else:
                filled = np.stack(
                    [
                        cv2.inpaint(as_uint8[..., c], hole, self.radius, self.cv2_flag)
                        for c in range(channels)
                    ],
                    axis=-1,
                )
            return filled.astype(np.float64) / 255.0
        # Higher bit depth: cv2 takes 1-channel float32, so fill each channel separately, on the 0–255
        # scale so both paths feed cv2 the same value range.
        scaled = np.ascontiguousarray(image * 255.0, dtype=np.float32)
        filled = np.stack(
            [
                cv2.inpaint(np.ascontiguousarray(scaled[..., c]), hole, self.radius, self.cv2_flag)
                for c in range(channels)
            ],
            axis=-1,
        )
        return (filled.astype(np.float64) / 255.0).clip(0.0, 1.0)

    @torch.no_grad()
    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """image (B, C, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → filled image in [0, 1]."""
        images = image.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().to("cpu", torch.float32)[:, 0] > 0.5).numpy().astype(np.uint8)
        if holes.shape[0] == 1 and images.shape[0] > 1:
            holes = np.broadcast_to(holes, (images.shape[0], *holes.shape[1:]))
        filled = np.stack(
            [self._fill_one(img, np.ascontiguousarray(h)) for img, h in zip(images, holes, strict=True)]
        )
        result = torch.from_numpy(filled).permute(0, 3, 1, 2)
        return result.to(device=image.device, dtype=image.dtype)


@register(
    "telea",
    contract=_CONTRACT,
    summary="OpenCV fast-marching inpainting (Telea, 2004); no weights, CPU",
    paper="Telea, Journal of Graphics Tools 9(1), 2004",
)
class Telea(_OpenCVInpaint):
    cv2_flag = cv2.INPAINT_TELEA


@register(
    "ns",
    contract=_CONTRACT,
    summary="OpenCV Navier-Stokes inpainting (Bertalmio et al., CVPR 2001); no weights, CPU",
    paper="Bertalmio, Bertozzi & Sapiro, CVPR 2001",
)
class NavierStokes(_OpenCVInpaint):
    cv2_flag = cv2.INPAINT_NS

"""OpenCV's classical inpainting as registry architectures: `telea` and `ns`.

telea: fast marching (Telea 2004), cv2.INPAINT_TELEA. ns: Navier–Stokes based (Bertalmio et al. 2001),
cv2.INPAINT_NS. No parameters and no weights; they run on the CPU with numpy whatever the input device,
in float32 whatever the source's bit depth.

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

class _OpenCVInpaint(InpaintModel):
    """Shared implementation; subclasses pick the cv2 flag."""

    cv2_flag: ClassVar[int]

    def __init__(self, radius: float = 5) -> None:
        super().__init__(radius=radius)
        self.radius = float(radius)

    def _fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """image: (H, W, C) float64 in [0, 1]; hole: (H, W) uint8, non-zero = hole.

        Always in float32, one channel at a time (what cv2.inpaint takes beside 8-bit), on the 0–255
        scale: the fill is not rounded to 8 bits, so a 16-bit image is quantised once, at its own depth,
        when the output is composed (an earlier 8-bit path rounded every filled pixel to 1/255)."""
        scaled = np.ascontiguousarray(image * 255.0, dtype=np.float32)
        filled = np.stack(
            [
                cv2.inpaint(np.ascontiguousarray(scaled[..., c]), hole, self.radius, self.cv2_flag)
                for c in range(image.shape[2])
            ],
            axis=-1,
        )
        filled = (filled.astype(np.float64) / 255.0).clip(0.0, 1.0)
        return np.where(hole[..., None] > 0, filled, image)  # known pixels exactly as given

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

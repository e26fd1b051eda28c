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

from ..classical_fill import CONTRACT, fill_stack, opencv_fill
from ..registry import register
from .base import InpaintModel

_CONTRACT = CONTRACT


class _OpenCVInpaint(InpaintModel):
    """Shared implementation; subclasses pick the cv2 flag. The algorithm is `classical_fill`'s, which
    `inpaint fill` also runs without torch."""

    cv2_flag: ClassVar[int]

    def __init__(self, radius: float = 5) -> None:
        super().__init__(radius=radius)
        self.radius = float(radius)

    def _fill_one(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """image: (H, W, C) float64 in [0, 1]; hole: (H, W) uint8, non-zero = hole (`opencv_fill`)."""
        return opencv_fill(image, hole, self.radius, self.cv2_flag)

    def predict_numpy(self, rgbs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """What the engine calls instead of `inpaint`: (B, H, W, 3) float32 and (B, H, W) bool masks ->
        the filled images, float32 (no tensors on the way)."""
        return fill_stack(rgbs, masks, self.radius, self.cv2_flag).astype(np.float32)

    @torch.no_grad()
    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """image (B, C, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → filled image in [0, 1]."""
        images = image.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().to("cpu", torch.float32)[:, 0] > 0.5).numpy()
        filled = fill_stack(images, holes, self.radius, self.cv2_flag)
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

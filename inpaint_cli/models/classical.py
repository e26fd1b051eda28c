"""The classical fills as registry architectures: OpenCV's `telea` and `ns`, and `patchmatch`.

telea: fast marching (Telea 2004), cv2.INPAINT_TELEA. ns: Navier–Stokes based (Bertalmio et al. 2001),
cv2.INPAINT_NS. patchmatch: Barnes et al., SIGGRAPH 2009, through the optional `pypatchmatch` package.
No weights; they run on the CPU with numpy whatever the input device. The algorithms and their config
keys are `classical_fill`'s, which `inpaint fill` also runs without torch.

In: image (B, C, H, W) in [0, 1], mask (B, 1, H, W), > 0.5 = hole. Out: (B, C, H, W) in [0, 1] on the
input's device and dtype; known pixels come back unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..classical_fill import CONTRACT, check_classical_config, classical_stack
from ..errors import UsageError
from ..registry import register
from .base import InpaintModel


class _ClassicalInpaint(InpaintModel):
    """Shared implementation: `classical_stack` of the registered name, on numpy arrays."""

    def __init__(self, **config: Any) -> None:
        try:
            checked = check_classical_config(self.arch_name, config)
        except UsageError as error:  # the registry reports a bad config as a ValueError
            raise ValueError(error.message) from None
        super().__init__(**checked)
        for key, value in checked.items():
            setattr(self, key, value)

    def predict_numpy(self, rgbs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """What the engine calls instead of `inpaint`: (B, H, W, 3) float32 and (B, H, W) bool masks ->
        the filled images, float32 (no tensors on the way)."""
        return classical_stack(self.arch_name, self.arch_config, rgbs, masks).astype(np.float32)

    @torch.no_grad()
    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """image (B, C, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → filled image in [0, 1]."""
        images = image.detach().to("cpu", torch.float64).permute(0, 2, 3, 1).numpy()
        holes = (mask.detach().to("cpu", torch.float32)[:, 0] > 0.5).numpy()
        filled = classical_stack(self.arch_name, self.arch_config, images, holes)
        result = torch.from_numpy(filled).permute(0, 3, 1, 2)
        return result.to(device=image.device, dtype=image.dtype)


@register(
    "telea",
    contract=CONTRACT,
    summary="OpenCV fast-marching inpainting (Telea, 2004); no weights, CPU",
    paper="Telea, Journal of Graphics Tools 9(1), 2004",
)
class Telea(_ClassicalInpaint):
    def __init__(self, radius: float = 5) -> None:
        super().__init__(radius=radius)


@register(
    "ns",
    contract=CONTRACT,
    summary="OpenCV Navier-Stokes inpainting (Bertalmio et al., CVPR 2001); no weights, CPU",
    paper="Bertalmio, Bertozzi & Sapiro, CVPR 2001",
)
class NavierStokes(_ClassicalInpaint):
    def __init__(self, radius: float = 5) -> None:
        super().__init__(radius=radius)


@register(
    "patchmatch",
    contract=CONTRACT,
    summary="PatchMatch patch copying (Barnes et al., 2009); no weights, CPU; needs the 'patchmatch' extra",
    paper="Barnes, Shechtman, Finkelstein & Goldman, SIGGRAPH 2009",
)
class PatchMatch(_ClassicalInpaint):
    def __init__(self, patch_size: int = 3, seed: int = 0) -> None:
        super().__init__(patch_size=patch_size, seed=seed)

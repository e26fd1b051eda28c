"""The contract every registered model implements, learned or classical."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from ..registry import InputContract


class InpaintModel(nn.Module):
    """Base class of every architecture.

    Subclasses are decorated with `@register(...)`, which sets `arch_name` and `contract`. They keep the
    keyword arguments they were built with in `self.arch_config` (JSON-serialisable), which is what a
    checkpoint stores in its metadata so the file alone can rebuild the network.
    """

    arch_name: ClassVar[str]
    contract: ClassVar[InputContract]

    def __init__(self, **arch_config: Any) -> None:
        super().__init__()
        self.arch_config: dict[str, Any] = dict(arch_config)

    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Fill the holes of a batch.

        image: float (B, 3, H, W) in [0, 1]; values under the hole are arbitrary (the model must not
            depend on them). mask: float (B, 1, H, W), 1 = hole, 0 = known. H and W satisfy
            `contract` (the engine pads/crops). generator: randomness for sampling models.
        Returns the raw prediction (B, 3, H, W) in [0, 1]; the engine composites known pixels back.
        """
        raise NotImplementedError

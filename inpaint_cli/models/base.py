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


class TrainingRecipe:
    """A paper's training procedure, kept in the same file as its networks.

    A recipe owns everything beyond the generator that training needs — discriminators/critics and
    other networks, optimisers, losses, the D:G step ratio and phase schedule — and exposes one step.
    The generic loop (`inpaint train`) owns data, masks, devices, AMP, DDP, checkpoints and logging.

    Contract:
    - `networks`: every trainable module by name, "generator" included (checkpointed and DDP-wrapped
      by the loop; a recipe must call them through this dict so wrapping takes effect).
    - `optimizers`: name -> optimiser (checkpointed for exact resume).
    - `train_step(images, masks, step)`: images (B, 3, H, W) in [0, 1], masks (B, 1, H, W) with 1 = hole
      (one per sample); returns the step's losses as floats for logging.
    - `paper_mask(height, width, rng)`: the hole the paper trains with (MODELS.md §6), used for
      `--masks paper` (called on the instance: some recipes cache a mask pattern).
    - `image_size`: the square training crop; critics with dense layers are built for it.
    - Registered with `@register_recipe(arch)` so `registry.get_recipe(arch)` finds it.
    """

    default_batch: ClassVar[int] = 16
    default_size: ClassVar[int] = 256
    default_lr: ClassVar[float] = 1e-4

    def __init__(
        self, generator: InpaintModel, *, lr: float | None = None, total_steps: int = 0, image_size: int | None = None
    ) -> None:
        self.generator = generator
        self.lr = self.default_lr if lr is None else lr
        self.total_steps = total_steps
        self.image_size = self.default_size if image_size is None else image_size
        self.networks: dict[str, nn.Module] = {"generator": generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError

    @staticmethod
    def paper_mask(height: int, width: int, rng: Any) -> Any:
        raise NotImplementedError

    def prepare(self, images: list[Any]) -> None:
        """Called once before the first step with a sample of training images (float RGB in [0, 1], H×W×3)
        for recipes that derive settings from the data (GLCIC's mean hole colour). Default: nothing."""


def composite(prediction: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`prediction·M + image·(1−M)`: the filled image, as the critics and discriminators see it."""
    return prediction * mask + image * (1.0 - mask)


def hole_centred_boxes(masks: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Top-left corners of a size×size window per sample, centred on the bounding box of its hole and
    kept inside the image: the "local" patch that local critics and discounted losses look at
    (MODELS.md §3.4, §2.3, §5.3). Works for any mask shape, so free-form training masks get one too."""
    height, width = masks.shape[-2:]
    boxes = []
    for mask in masks[:, 0]:
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        cols = torch.nonzero(mask.any(dim=0)).flatten()
        if len(rows) == 0:
            centre_y, centre_x = height // 2, width // 2
        else:
            centre_y = int(rows[0] + rows[-1] + 1) // 2
            centre_x = int(cols[0] + cols[-1] + 1) // 2
        top = min(max(centre_y - size // 2, 0), max(height - size, 0))
        left = min(max(centre_x - size // 2, 0), max(width - size, 0))
        boxes.append((top, left))
    return boxes


def crop_boxes(images: torch.Tensor, boxes: list[tuple[int, int]], size: int) -> torch.Tensor:
    """Stack the size×size crops at `boxes` (one per sample) into (B, C, size, size)."""
    return torch.stack(
        [image[:, top : top + size, left : left + size] for image, (top, left) in zip(images, boxes, strict=True)]
    )

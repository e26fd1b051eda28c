"""Differentiable augmentation of what a discriminator sees (DiffAugment: Zhao et al., *Differentiable
Augmentation for Data-Efficient GAN Training*, NeurIPS 2020), for training on a few hundred images.

A discriminator trained on ~500 images memorises them within a few thousand steps; its gradients then
stop describing realism and the generator's fills turn to stripes. DiffAugment transforms both the real
and the generated images, in the discriminator's step and in the generator's, with operations that are
differentiable with respect to the generated image, so the generator still learns through them and
never learns the augmentation itself (it is applied to the real images too).

Policies (the paper's three, at its strengths), applied in this order:
- "color": brightness + U(−0.5, 0.5), saturation × U(0, 2) around each pixel's channel mean, contrast ×
  U(0.5, 1.5) around the image mean (images in [−1, 1]).
- "translation": a shift by up to 1/8 of the side in x and y, zero-filled.
- "cutout": a zeroed square of half the side at a random place.

Deviation from the paper's code: the parameters are drawn once per sample and applied to the real and the
generated image of that sample alike (and the translation to the hole mask too), instead of drawing
independently for the two batches. Inpainting pairs each fill with its own ground truth, and the local
critics and the hole-masked gradient penalty need the hole where the images have it; the distribution of
augmentations each side sees is the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")
# What a recipe's `augment` is: (images, mask) → (the images and the mask, augmented alike).
Augment: TypeAlias = Callable[
    [Sequence[torch.Tensor], "torch.Tensor | None"], "tuple[list[torch.Tensor], torch.Tensor | None]"
]
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str) -> tuple[str, ...]:
    """'color,translation,cutout' → the policy names, in POLICIES' order; '' → ()."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"augment: unknown policy {', '.join(unknown)}; use a comma list of {', '.join(POLICIES)}")
    return tuple(name for name in POLICIES if name in names)


def paired_augment(
    images: Sequence[torch.Tensor], mask: torch.Tensor | None, policy: Sequence[str]
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Augment each tensor of `images` (B, 3, H, W) in [−1, 1] with the same per-sample parameters, and
    `mask` (B, 1, H, W) with the same translation. Draws from torch's global RNG (the training loop seeds
    and restores it). Returns the augmented images and mask."""
    augmented = list(images)
    if not policy or not augmented:
        return augmented, mask
    reference = augmented[0]
    batch, _, height, width = reference.shape
    device, dtype = reference.device, reference.dtype
    if "color" in policy:
        brightness = torch.rand(batch, 1, 1, 1, device=device, dtype=dtype) - 0.5
        saturation = torch.rand(batch, 1, 1, 1, device=device, dtype=dtype) * 2.0
        contrast = torch.rand(batch, 1, 1, 1, device=device, dtype=dtype) + 0.5
        augmented = [_color(x, brightness, saturation, contrast) for x in augmented]
    if "translation" in policy:
        max_y, max_x = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
        shift_y = torch.randint(-max_y, max_y + 1, (batch,), device="cpu").tolist()
        shift_x = torch.randint(-max_x, max_x + 1, (batch,), device="cpu").tolist()
        augmented = [_translate(x, shift_y, shift_x) for x in augmented]
        if mask is not None:
            mask = _translate(mask, shift_y, shift_x)
    if "cutout" in policy:
        side_y, side_x = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
        # The square's centre may lie anywhere in the image, so near a border part of it falls outside.
        top = torch.randint(0, height, (batch, 1, 1), device=device) - side_y // 2
        left = torch.randint(0, width, (batch, 1, 1), device=device) - side_x // 2
        rows = torch.arange(height, device=device).view(1, height, 1)
        cols = torch.arange(width, device=device).view(1, 1, width)
        inside = (rows >= top) & (rows < top + side_y) & (cols >= left) & (cols < left + side_x)
        keep = (~inside).to(dtype).unsqueeze(1)
        augmented = [x * keep for x in augmented]
    return augmented, mask


def _color(x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor, contrast: torch.Tensor) -> torch.Tensor:
    x = x + brightness
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * saturation + grey
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * contrast + mean


def _translate(x: torch.Tensor, shift_y: list[int], shift_x: list[int]) -> torch.Tensor:
    """Each sample shifted by (shift_y[i], shift_x[i]) pixels, what comes in zero-filled."""
    height, width = x.shape[-2:]
    pad_y, pad_x = max(abs(s) for s in shift_y), max(abs(s) for s in shift_x)
    padded = F.pad(x, (pad_x, pad_x, pad_y, pad_y))
    return torch.stack(
        [
            padded[i, :, pad_y - dy : pad_y - dy + height, pad_x - dx : pad_x - dx + width]
            for i, (dy, dx) in enumerate(zip(shift_y, shift_x, strict=True))
        ]
    )

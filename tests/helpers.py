"""Small helpers shared by the model tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def box_mask(batch: int, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) with one off-centre rectangular hole: a quarter-ish of the image."""
    mask = torch.zeros(batch, 1, height, width)
    mask[..., height // 4 : height // 2 + 4, width // 4 : width // 2 + 8] = 1.0
    return mask

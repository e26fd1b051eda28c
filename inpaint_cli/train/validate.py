"""Validation during training: hole metrics of a generator on the fixed val cases, the Telea baseline,
and preview sheets.

Validation never shifts the training random streams: it runs inside `torch.random.fork_rng`, and a
sampling model's latents come from its own generator seeded with VAL_SAMPLE_SEED, so every pass draws
the same ones and a resumed run stays exact. The model sees only the known pixels (the hole is zeroed),
and only the hole is scored (`metrics.psnr/ssim/l1` with the mask), beside the hole's texture distance
border seam and plaid (`metrics.texture_distance`, `metrics.seam_step`, `metrics.grid_artefact`), so the
curves show what an adversarial phase buys in texture against what it costs in PSNR and in artefacts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from .data import ValCase

VAL_BATCH = 8
VAL_SAMPLE_SEED = 1234  # latent draws of sampling models during validation: the same every pass
PREVIEW_ROWS = 8
MAX_PSNR = 100.0  # a case filled perfectly counts as 100 dB, so one cannot make the mean infinite

Fill = Callable[[torch.Tensor, torch.Tensor], tuple[Any, Any]]  # (known images, holes) → (prediction, coarse)
# Per case: the output (the prediction inside the hole, the image outside) and the coarse stage's, or None.
Outputs = list[tuple[np.ndarray, np.ndarray | None]]


def score_cases(cases: Sequence[ValCase], device: torch.device, fill: Fill) -> tuple[dict[str, float], Outputs]:
    """Fill every val case with `fill(images, masks)` → (predictions, coarse or None); mean hole metrics."""
    psnrs, ssims, l1s, textures, seams, grids, outputs = [], [], [], [], [], [], []
    for start in range(0, len(cases), VAL_BATCH):
        batch = cases[start : start + VAL_BATCH]
        images = torch.from_numpy(np.stack([c.image for c in batch])).permute(0, 3, 1, 2).to(device)
        holes = torch.from_numpy(np.stack([c.mask for c in batch])[:, None].astype(np.float32)).to(device)
        known = images * (1.0 - holes)  # nothing under the hole reaches the model
        prediction, coarse = fill(known, holes)
        for index, case in enumerate(batch):
            pred = prediction[index].float().permute(1, 2, 0).cpu().numpy()
            output = np.where(case.mask[..., None], pred, case.image).astype(np.float32)
            psnrs.append(min(metrics.psnr(output, case.image, case.mask), MAX_PSNR))
            ssims.append(metrics.ssim(output, case.image, case.mask))
            l1s.append(metrics.l1(output, case.image, case.mask))
            textures.append(metrics.texture_distance(output, case.image, case.mask))
            seams.append(metrics.seam_step(output, case.image, case.mask))
            grids.append(metrics.grid_artefact(output, case.image, case.mask))
            rough = None
            if coarse is not None:
                rough = coarse[index].float().permute(1, 2, 0).cpu().numpy()
                rough = np.where(case.mask[..., None], rough, case.image).astype(np.float32)
            outputs.append((output, rough))
    scores = {
        "psnr": float(np.mean(psnrs)),
        "ssim": float(np.mean(ssims)),
        "l1": float(np.mean(l1s)),
        "texture": float(np.mean(textures)),
        "seam": float(np.mean(seams)),
        "grid": float(np.mean(grids)),
    }
    return scores, outputs


def telea_scores(cases: Sequence[ValCase], device: torch.device) -> dict[str, float]:
    """OpenCV's Telea fill on the val cases: the number a learned model has to beat."""
    from ..registry import create_model

    telea = create_model("telea")
    scores, _ = score_cases(cases, device, lambda images, holes: (telea.inpaint(images.cpu(), holes.cpu()), None))
    return scores


def evaluate(
    generator: nn.Module, cases: Sequence[ValCase], device: torch.device, *, amp: bool
) -> tuple[dict[str, float], Outputs]:
    """`score_cases` of one generator in eval mode (bf16 autocast with `amp`), without touching the
    training random streams; two-stage models' coarse outputs come back for the preview."""
    captured: list[Any] = []
    hook = generator.register_forward_hook(lambda module, args, output: captured.append(output))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    # fork_rng: validation must not consume training randomness, or a resumed run would diverge.
    devices = [device] if device.type == "cuda" else []
    was_training = generator.training
    try:
        generator.eval()
        with torch.random.fork_rng(devices=devices), torch.inference_mode(), autocast:
            sampler = torch.Generator(device=device).manual_seed(VAL_SAMPLE_SEED)

            def fill(images: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
                captured.clear()
                prediction = generator.inpaint(images, holes, generator=sampler)
                output = captured[-1] if captured else None
                # Two-stage models (DeepFill v1/v2, PiiGAN) return (coarse, refined) in [-1, 1].
                is_pair = isinstance(output, tuple) and len(output) == 2
                coarse = ((output[0].float() + 1.0) / 2.0).clamp(0.0, 1.0) if is_pair else None
                return prediction, coarse

            return score_cases(cases, device, fill)
    finally:
        hook.remove()
        generator.train(was_training)


def write_preview(path: Path, cases: Sequence[ValCase], outputs: Outputs, *, size: int) -> None:
    """A contact sheet of the first PREVIEW_ROWS cases: masked input / coarse (two-stage models) / output
    (captioned with its hole PSNR) / ground truth."""
    from ..grid import contact_sheet, masked_input
    from ..io import write_image

    has_coarse = any(rough is not None for _, rough in outputs)
    labels = ["masked input", *(["coarse"] if has_coarse else []), "output", "ground truth"]
    rows, captions = [], []
    for case, (output, rough) in list(zip(cases, outputs, strict=True))[:PREVIEW_ROWS]:
        row = [masked_input(case.image, case.mask), *([rough] if has_coarse else []), output, case.image]
        rows.append(row)
        psnr = metrics.psnr(output, case.image, case.mask)
        captions.append(["", *([""] if has_coarse else []), f"{psnr:.1f} dB", ""])
    cell = max(128, min(192, size))  # room for the column labels
    sheet = contact_sheet(rows, labels=labels, captions=captions, cell=cell)
    write_image(path, sheet)

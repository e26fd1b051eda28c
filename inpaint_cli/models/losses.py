"""Loss functions shared by the training recipes (DeepFill v1 and v2, PiiGAN; GLCIC and the Context Encoder
share `feature_matching`).

Means follow TF's `reduce_mean` over the whole broadcast tensor (batch, channels and pixels), which is
what the official weights (1.2, 0.001, ...) were tuned against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..metrics import GRID_PERIOD  # the benchmark's measure of the same plaid


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |prediction − target| over every element."""
    return (prediction - target).abs().mean()


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """mean(|prediction − target| · weight) over the broadcast tensor, e.g. weight = M for the hole,
    1 − M for known pixels, or a spatial-discount map.

    Not normalised by the weight's mean: DeepFill v1's `ae` divides by mean(1 − M) itself.
    """
    return ((prediction - target).abs() * weight).mean()


def spatial_discount(size: int | tuple[int, int], gamma: float) -> torch.Tensor:
    """DeepFill v1 spatial discount map, shape (1, 1, H, W).

    W[i, j] = max(γ^min(i, H−i), γ^min(j, W−j)): 1 on the crop border, decaying towards its centre, so
    pixels far from known context are penalised less. Reproduces neuralgym, including its asymmetry
    (row 0 has distance 0, row H−1 distance 1).
    """
    height, width = (size, size) if isinstance(size, int) else size
    rows = torch.arange(height, dtype=torch.float64)
    cols = torch.arange(width, dtype=torch.float64)
    row_weight = gamma ** torch.minimum(rows, height - rows)
    col_weight = gamma ** torch.minimum(cols, width - cols)
    discount = torch.maximum(row_weight[:, None], col_weight[None, :])
    return discount.to(torch.float32)[None, None]


def hole_discount(masks: torch.Tensor, gamma: float) -> torch.Tensor:
    """The spatial discount over a hole of any shape: γ^(d−1) at a hole pixel whose chessboard
    distance to the nearest known pixel is d, 0 at known pixels. masks (B, 1, H, W), 1 = hole.

    For a box hole this is `spatial_discount` of the box (1 on its border, decaying inwards); for free-form
    holes it supervises every hole pixel, where the box form would miss those outside the local patch.
    The image border is not context: distances grow only from known pixels. A mask with no known pixel
    gets weight 1 everywhere (nothing to be near)."""
    hole = masks > 0.5
    reached = ~hole  # known pixels and, after step k, every hole pixel within distance k
    discount = torch.zeros_like(masks)
    weight = 1.0
    while True:
        grown = F.max_pool2d(reached.to(masks.dtype), 3, stride=1, padding=1) > 0.5
        new = grown & ~reached
        if not bool(new.any()):
            break
        discount = torch.where(new, weight, discount)
        reached, weight = grown, weight * gamma
    return torch.where(hole & ~reached, 1.0, discount)  # samples with no known pixel at all


def discounted_hole_l1(prediction: torch.Tensor, target: torch.Tensor, discount: torch.Tensor) -> torch.Tensor:
    """Σ |prediction − target|·W / (C·Σ hole pixels): the discounted L1 averaged over the hole (W = 0 outside
    it, from `hole_discount`). For the papers' box holes, which nearly fill the local patch, this is the
    patch mean the official code takes."""
    hole_elements = (discount > 0).sum() * prediction.shape[1]
    return ((prediction - target).abs() * discount).sum() / hole_elements.clamp(min=1)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """SN-PatchGAN D loss: 0.5·mean ReLU(1 − D(real)) + 0.5·mean ReLU(1 + D(fake))."""
    return 0.5 * F.relu(1.0 - real_logits).mean() + 0.5 * F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """SN-PatchGAN G adversarial term: −mean D(fake)."""
    return -fake_logits.mean()


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss without the penalty: mean D(fake) − mean D(real)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN generator adversarial term: −mean D(fake)."""
    return -fake_scores.mean()


def feature_matching(real_features: Sequence[torch.Tensor], fake_features: Sequence[torch.Tensor]) -> torch.Tensor:
    """Feature matching (pix2pixHD): the mean over a discriminator's layers of mean |fake − real| between its
    features of the ground truth and of the fill, layer by layer. The real side is detached, so the
    gradient reaches only the fill (`TrainingRecipe.fm_weight`)."""
    pairs = list(zip(real_features, fake_features, strict=True))
    return sum((fake - real.detach()).abs().mean() for real, fake in pairs) / len(pairs)


def grid_artefact(images: torch.Tensor, masks: torch.Tensor, period: int = GRID_PERIOD) -> torch.Tensor:
    """How strongly the hole of `images` (B, C, H, W) repeats on the network's pixel grid: the image minus
    its period×period box mean (which removes every smooth trend and keeps anything repeating with the
    period), averaged over the hole pixels of each of the period² phases (y mod period, x mod period); the
    RMS of those phase means about their mean, averaged over the images that have a hole and the channels.

    A plaid or checkerboard tied to the strides and dilations of the network (period 8 for DeepFill, with
    its 4 and 2 px harmonics) puts the same value on every pixel of a phase and keeps its amplitude here; a
    texture without such a tie averages out (about its std/√(pixels per phase)). Not a term of any of the
    papers: the critics of a run on a few hundred images let this plaid through and even reward it
    (training/README.md, "The adversarial phase")."""
    height, width = (images.shape[-2] // period) * period, (images.shape[-1] // period) * period
    images, hole = images[..., :height, :width].float(), masks[..., :height, :width].float()
    before, after = (period - 1) // 2, period // 2
    padded = F.pad(images, (before, after, before, after), mode="replicate")
    detail = (images - F.avg_pool2d(padded, period, stride=1)) * hole
    shape = (images.shape[0], -1, height // period, period, width // period, period)
    phase_means = detail.reshape(shape).sum(dim=(2, 4)) / hole.reshape(shape).sum(dim=(2, 4)).clamp(min=1.0)
    centred = phase_means - phase_means.mean(dim=(2, 3), keepdim=True)
    rms = (centred.square().mean(dim=(2, 3)) + 1e-12).sqrt().mean(dim=1)  # per image
    has_hole = (hole.flatten(1).sum(dim=1) > 0).float()
    return (rms * has_hole).sum() / has_hole.sum().clamp(min=1.0)


def random_interpolates(
    real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x̃ = real + α·(fake − real) with α ~ U[0, 1] per sample."""
    alpha = torch.rand(
        (real.shape[0],) + (1,) * (real.dim() - 1), generator=generator, device=real.device, dtype=real.dtype
    )
    return real + alpha * (fake - real)


GRADIENT_NORM_EPS = 1e-12  # inside the square root of `gradient_penalty`: shifts a norm of 1 by 5e-13


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    mask: torch.Tensor | None = None,
    target_norm: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty mean((‖∇ₓ Σ D(x̃)‖ − target_norm)²) with DeepFill v1's hole masking.

    inputs: the interpolates x̃ (B, C, H, W) (see `random_interpolates`). mask: (B or 1, 1, H, W),
    1 = hole; when given, the per-sample norm is sqrt(Σ ∇² · M) over hole pixels and all channels.
    The graph is kept (create_graph) so the penalty trains the critic.
    """
    inputs = inputs.detach().requires_grad_(True)
    scores = critic(inputs)
    (gradients,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True)
    squared = gradients.square()
    if mask is not None:
        squared = squared * mask
    # The epsilon keeps the square root's derivative finite where the gradient is zero (a flat critic, a
    # sample without hole pixels): there it was inf · 0 = NaN, and one NaN ruins the critic's weights.
    slopes = (squared.flatten(1).sum(dim=1) + GRADIENT_NORM_EPS).sqrt()
    return (slopes - target_norm).square().mean()


def kl_diag_gaussian(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, e^logvar) ‖ N(0, 1)) = −0.5·Σ(1 + logvar − μ² − e^logvar), **summed** over batch and
    dimensions as PiiGAN does; its 0.1 weight assumes the sum."""
    return -0.5 * (1.0 + logvar - mu.square() - logvar.exp()).sum()

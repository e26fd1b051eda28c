"""Shared losses (DeepFill v1 and v2, PiiGAN) against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from inpaint_cli.models import losses


def test_l1_and_masked_l1() -> None:
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    target = torch.zeros_like(prediction)
    assert losses.l1(prediction, target).item() == pytest.approx(2.5)
    hole = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # mean over all 4 pixels of (1, 0, 0, 4), not normalised by the hole area
    assert losses.masked_l1(prediction, target, hole).item() == pytest.approx(1.25)
    # the weight broadcasts over channels
    rgb = prediction.expand(2, 3, 2, 2)
    assert losses.masked_l1(rgb, torch.zeros_like(rgb), hole).item() == pytest.approx(1.25)


def test_spatial_discount_values() -> None:
    gamma = 0.5
    discount = losses.spatial_discount(4, gamma)
    assert discount.shape == (1, 1, 4, 4)
    # distance to the border per axis: min(i, 4 − i) = 0, 1, 2, 1
    assert discount[0, 0, 0, 0].item() == 1.0  # corner
    assert discount[0, 0, 2, 2].item() == pytest.approx(gamma**2)  # centre
    assert discount[0, 0, 1, 2].item() == pytest.approx(gamma**1)  # max over the two axes
    assert discount[0, 0, 3, 3].item() == pytest.approx(gamma**1)  # neuralgym's asymmetric far edge
    rect = losses.spatial_discount((3, 5), 0.9)
    assert rect.shape == (1, 1, 3, 5)
    assert rect[0, 0, 1, 2].item() == pytest.approx(0.9)  # max(0.9^1, 0.9^2)


def test_hinge_losses() -> None:
    real = torch.tensor([2.0, 0.5, -1.0])  # ReLU(1 − x) = 0, 0.5, 2 → mean 2.5/3
    fake = torch.tensor([-2.0, 0.0, 1.0])  # ReLU(1 + x) = 0, 1, 2 → mean 1
    d_loss = losses.hinge_discriminator_loss(real, fake)
    assert d_loss.item() == pytest.approx(0.5 * 2.5 / 3 + 0.5 * 1.0)
    assert losses.hinge_generator_loss(fake).item() == pytest.approx(1.0 / 3)


def test_wgan_losses() -> None:
    real = torch.tensor([1.0, 3.0])
    fake = torch.tensor([0.0, -2.0])
    assert losses.wgan_critic_loss(real, fake).item() == pytest.approx(-1.0 - 2.0)
    assert losses.wgan_generator_loss(fake).item() == pytest.approx(1.0)


def test_gradient_penalty_on_linear_critic() -> None:
    weights = torch.tensor([0.3, -0.4, 1.2])  # per channel, same at every pixel ⇒ ∇ = w everywhere

    def critic(x: torch.Tensor) -> torch.Tensor:
        return (x * weights[None, :, None, None]).flatten(1).sum(dim=1)

    inputs = torch.randn(2, 3, 4, 5)
    w_norm = weights.norm().item()  # 1.3
    unmasked = losses.gradient_penalty(critic, inputs)
    assert unmasked.item() == pytest.approx((w_norm * math.sqrt(20) - 1.0) ** 2, rel=1e-5)

    mask = torch.zeros(2, 1, 4, 5)
    mask[0, :, :2, :3] = 1.0  # 6 hole pixels
    mask[1, :, 1:, 4:] = 1.0  # 3 hole pixels
    expected = ((w_norm * math.sqrt(6) - 1.0) ** 2 + (w_norm * math.sqrt(3) - 1.0) ** 2) / 2
    assert losses.gradient_penalty(critic, inputs, mask).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_trains_the_critic() -> None:
    scale = torch.tensor(2.0, requires_grad=True)
    penalty = losses.gradient_penalty(lambda x: scale * x.sum(dim=(1, 2, 3)), torch.randn(1, 1, 2, 2))
    penalty.backward()
    # ‖∇‖ = 2·sqrt(4) = 4 ⇒ penalty = (4 − 1)² and d/dscale = 2·3·sqrt(4) = 12
    assert penalty.item() == pytest.approx(9.0)
    assert scale.grad.item() == pytest.approx(12.0)


def test_gradient_penalty_gradient_is_finite_where_the_critics_gradient_is_zero() -> None:
    # A critic flat in x (here: scale 0), or a sample whose mask has no hole, has ‖∇‖ = 0, where the square
    # root's derivative is infinite: without an epsilon the critic's update was NaN (inf · 0).
    scale = torch.tensor(0.0, requires_grad=True)
    penalty = losses.gradient_penalty(lambda x: scale * x.sum(dim=(1, 2, 3)), torch.randn(2, 1, 2, 2))
    penalty.backward()
    assert penalty.item() == pytest.approx(1.0, abs=1e-5)  # (√ε − 1)²
    assert scale.grad is not None and torch.isfinite(scale.grad) and scale.grad.item() == pytest.approx(0.0)

    scale = torch.tensor(2.0, requires_grad=True)
    no_hole = torch.zeros(2, 1, 2, 2)
    no_hole[0, :, 0, 0] = 1.0  # the second sample has no hole pixel
    penalty = losses.gradient_penalty(lambda x: scale * x.sum(dim=(1, 2, 3)), torch.randn(2, 1, 2, 2), no_hole)
    penalty.backward()
    # sample 0: ‖∇‖ = 2 ⇒ (2 − 1)², d/dscale = 2·1·1 = 2; sample 1: (0 − 1)², d/dscale = 0; mean of both
    assert penalty.item() == pytest.approx(1.0, abs=1e-5)  # (√ε − 1)²
    assert scale.grad.item() == pytest.approx(1.0)


def test_random_interpolates_lie_between() -> None:
    real, fake = torch.zeros(4, 3, 2, 2), torch.ones(4, 3, 2, 2)
    mixed = losses.random_interpolates(real, fake, generator=torch.Generator().manual_seed(0))
    per_sample = mixed.flatten(1)
    assert (per_sample == per_sample[:, :1]).all()  # one α per sample
    assert (mixed >= 0).all() and (mixed <= 1).all()


def test_kl_diag_gaussian() -> None:
    assert losses.kl_diag_gaussian(torch.zeros(2, 8), torch.zeros(2, 8)).item() == 0.0
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # per dim: 0.5·(μ² + σ² − 1 − log σ²) → 0.5 and 0.5·(1 − log 2); summed
    expected = 0.5 + 0.5 * (1.0 - math.log(2.0))
    assert losses.kl_diag_gaussian(mu, logvar).item() == pytest.approx(expected)

"""DeepFill v2: parameter counts, shapes, ranges, gradient flow, recipe."""

from __future__ import annotations

import pytest
import torch
from helpers import box_mask, count_parameters

from inpaint_cli.models import deepfill_v2
from inpaint_cli.models.blocks import GatedConv2d
from inpaint_cli.models.deepfill_v2 import DeepFillV2, DeepFillV2Discriminator
from inpaint_cli.registry import create_model, get_arch


@pytest.fixture(scope="module")
def model() -> DeepFillV2:
    torch.manual_seed(0)
    return create_model("deepfill_v2")


def test_registered_with_its_contract() -> None:
    spec = get_arch("deepfill_v2")
    assert spec.cls is DeepFillV2
    assert spec.default_config == {"cnum": 48, "tf_padding": False, "tf_resize": False, "channel_order": "rgb"}
    assert spec.contract.pad_multiple == 8 and spec.contract.comfortable_size == 512
    assert spec.contract.trainable and spec.contract.needs_weights and not spec.contract.can_sample


def test_parameter_counts(model: DeepFillV2) -> None:
    total, coarse = count_parameters(model), count_parameters(model.coarse)
    discriminator = count_parameters(DeepFillV2Discriminator())
    print(f"DeepFill v2: G {total:,} (coarse {coarse:,}), D {discriminator:,}")
    assert total == pytest.approx(4.05e6, rel=0.005)
    assert coarse == pytest.approx(1.63e6, rel=0.005)
    assert discriminator == pytest.approx(5.95e6, rel=0.005)
    assert model.arch_config == {"cnum": 48, "tf_padding": False, "tf_resize": False, "channel_order": "rgb"}


def test_gated_widths_are_half_of_cnum(model: DeepFillV2) -> None:
    first = model.coarse[0]
    assert isinstance(first, GatedConv2d)
    assert first.conv.in_channels == 5 and first.conv.out_channels == 48 and first.out_channels == 24
    assert model.refine_conv[0].conv.in_channels == 3  # refine sees the composite only
    assert model.refine_attention_encoder[0].conv.in_channels == 3


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_output_shapes_and_tanh_range(model: DeepFillV2, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, *size) * 2 - 1
    mask = box_mask(2, *size)
    with torch.no_grad():
        x1, x2 = model(x * (1 - mask), mask)
    assert x1.shape == x2.shape == (2, 3, *size)
    for out in (x1, x2):
        assert torch.isfinite(out).all()
        assert out.abs().max() < 1.0
    assert not torch.allclose(x1, x2)


def test_inpaint_returns_unit_range(model: DeepFillV2) -> None:
    image = torch.rand(1, 3, 32, 48)
    mask = box_mask(1, 32, 48)
    with torch.no_grad():
        out = model.inpaint(image, mask)
        # Values under the hole must not matter.
        garbage = model.inpaint(torch.where(mask.bool(), torch.rand_like(image), image), mask)
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    torch.testing.assert_close(out, garbage)


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(2)
    model = DeepFillV2().train()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = box_mask(1, 64, 64)
    x1, x2 = model(x * (1 - mask), mask)
    (x1.square().mean() + x2.square().mean()).backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_channels_last_and_bf16_autocast_agree(model: DeepFillV2) -> None:
    torch.manual_seed(3)
    image = torch.rand(1, 3, 32, 32)
    mask = box_mask(1, 32, 32)
    with torch.inference_mode():
        expected = model.inpaint(image, mask)
        model_cl = model.to(memory_format=torch.channels_last)
        out_cl = model_cl.inpaint(image.contiguous(memory_format=torch.channels_last), mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out_bf16 = model_cl.inpaint(image, mask)
        model.to(memory_format=torch.contiguous_format)
    torch.testing.assert_close(out_cl, expected, atol=1e-4, rtol=1e-4)
    assert (out_bf16.float() - expected).abs().mean() < 0.05


def test_discriminator_output_and_losses() -> None:
    torch.manual_seed(4)
    discriminator = DeepFillV2Discriminator()
    real = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = box_mask(2, 64, 64)
    logits = discriminator(real, mask)
    assert logits.shape == (2, 256)  # 64² / 64² · 256 channels
    assert (logits >= 0).float().mean() > 0  # LeakyReLU after the last layer: not a bare linear map

    x1 = torch.rand_like(real, requires_grad=True)
    x2 = torch.rand_like(real, requires_grad=True)
    d_loss = deepfill_v2.discriminator_loss(discriminator, real, x2, mask)
    d_loss.backward()
    assert x2.grad is None  # the fake is detached for the D step
    assert all(p.grad is not None for p in discriminator.parameters())

    discriminator.eval()  # freeze the spectral-norm power iteration so both forwards below agree
    g_loss, terms = deepfill_v2.generator_loss(discriminator, real, mask, x1, x2)
    expected_ae = (real - x1).abs().mean() + (real - x2).abs().mean()
    torch.testing.assert_close(terms["ae"], expected_ae.detach())
    fake = x2 * mask + real * (1 - mask)
    with torch.no_grad():
        expected_adv = -discriminator(fake, mask).mean()
    torch.testing.assert_close(terms["g_adv"], expected_adv)
    torch.testing.assert_close(g_loss.detach(), expected_ae.detach() + expected_adv)
    g_loss.backward()
    assert x1.grad is not None and x2.grad is not None


def test_recipe_constants_and_optimizers() -> None:
    assert deepfill_v2.LEARNING_RATE == 1e-4
    assert deepfill_v2.ADAM_BETAS == (0.5, 0.999)
    assert deepfill_v2.D_STEPS_PER_G_STEP == 1
    g_opt, d_opt = deepfill_v2.make_optimizers(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    assert g_opt.defaults["lr"] == 1e-4 and d_opt.defaults["betas"] == (0.5, 0.999)

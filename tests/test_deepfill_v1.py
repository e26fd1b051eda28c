"""DeepFill v1: parameter counts, shapes, ranges, gradient flow, critics, recipe."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import box_mask, count_parameters

from inpaint_cli.models import coarse_to_fine, deepfill_v1, losses
from inpaint_cli.models.coarse_to_fine import GlobalCritic, LocalCritic
from inpaint_cli.models.deepfill_v1 import DeepFillV1, DeepFillV1Recipe
from inpaint_cli.registry import create_model, get_arch

# The switches for the official TF weights (inpaint models convert): off for weights trained here.
TF_KEYS_OFF = {"tf_padding": False, "tf_resize": False, "channel_order": "rgb"}


@pytest.fixture(scope="module")
def model() -> DeepFillV1:
    torch.manual_seed(0)
    return create_model("deepfill_v1")


def test_registered_with_its_contract() -> None:
    spec = get_arch("deepfill_v1")
    assert spec.cls is DeepFillV1
    assert spec.default_config == {"cnum": 32, **TF_KEYS_OFF}
    assert spec.contract.pad_multiple == 8 and spec.contract.comfortable_size == 512
    assert spec.contract.trainable and spec.contract.needs_weights and not spec.contract.can_sample


def test_parameter_counts(model: DeepFillV1) -> None:
    total = count_parameters(model)
    coarse = count_parameters(model.coarse_encoder) + count_parameters(model.coarse_decoder)
    local, global_ = count_parameters(LocalCritic(128)), count_parameters(GlobalCritic(256))
    print(f"DeepFill v1: G {total:,} (coarse {coarse:,}), local critic {local:,}, global critic {global_:,}")
    assert total == pytest.approx(3.60e6, rel=0.01)
    assert coarse == pytest.approx(1.45e6, rel=0.01)
    assert local == pytest.approx(4.34e6, rel=0.01)
    assert global_ == pytest.approx(2.73e6, rel=0.01)
    assert model.arch_config == {"cnum": 32, **TF_KEYS_OFF}


def test_both_stages_take_five_channels_and_p6_is_relu(model: DeepFillV1) -> None:
    assert model.coarse_encoder[0].conv.in_channels == 5
    assert model.refine_conv[0].conv.in_channels == 5
    assert model.refine_attention_encoder[0].conv.in_channels == 5
    assert isinstance(model.refine_attention_encoder[-1].activation, torch.nn.ReLU)
    assert isinstance(model.refine_attention_encoder[-2].activation, torch.nn.ELU)


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_output_shapes_and_clip_range(model: DeepFillV1, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, *size) * 2 - 1
    mask = box_mask(2, *size)
    with torch.no_grad():
        x1, x2 = model(x * (1 - mask), mask)
    assert x1.shape == x2.shape == (2, 3, *size)
    for out in (x1, x2):
        assert torch.isfinite(out).all()
        assert out.abs().max() <= 1.0
    assert not torch.allclose(x1, x2)


def test_clip_is_a_clamp() -> None:
    x = torch.tensor([-3.0, -0.5, 0.5, 2.0], requires_grad=True)
    y = coarse_to_fine.clip_output(x)
    y.sum().backward()
    assert y.tolist() == [-1.0, -0.5, 0.5, 1.0]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]  # as tf.clip_by_value


def test_inpaint_returns_unit_range(model: DeepFillV1) -> None:
    image = torch.rand(1, 3, 32, 48)
    mask = box_mask(1, 32, 48)
    with torch.no_grad():
        out = model.inpaint(image, mask)
        garbage = model.inpaint(torch.where(mask.bool(), torch.rand_like(image), image), mask)
    assert out.shape == image.shape
    assert out.min() >= 0.0 and out.max() <= 1.0
    torch.testing.assert_close(out, garbage)  # values under the hole do not matter


def test_tf_keys_change_the_same_weights_output_and_bgr_flips_channels(model: DeepFillV1) -> None:
    """The keys for converted TF weights (tests/test_convert_deepfill.py checks them against TF itself): each
    changes what the same weights compute, and "bgr" feeds the network the flipped image and flips back."""
    torch.manual_seed(3)
    image, mask = torch.rand(1, 3, 64, 64), box_mask(1, 64, 64)
    x_in = (image * 2 - 1) * (1 - mask)
    variants = {}
    for keys in ({}, {"tf_padding": True}, {"tf_resize": True}):
        other = DeepFillV1(**keys)
        other.load_state_dict(model.state_dict())
        with torch.no_grad():
            variants[tuple(keys)] = other(x_in, mask)
    (x1, x2), (x1_pad, x2_pad), (x1_resize, x2_resize) = variants.values()
    assert (x1_pad - x1).abs().max() > 1e-3 and (x2_pad - x2).abs().max() > 1e-3
    torch.testing.assert_close(x1_resize, x1)  # the coarse stage has no resize
    assert (x2_resize - x2).abs().max() > 1e-3
    bgr = DeepFillV1(channel_order="bgr")
    bgr.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(bgr.inpaint(image, mask), model.inpaint(image.flip(1), mask).flip(1))
    with pytest.raises(ValueError, match="channel_order must be one of"):
        DeepFillV1(channel_order="grb")


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(2)
    model = DeepFillV1().train()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = box_mask(1, 64, 64)
    x1, x2 = model(x * (1 - mask), mask)
    (x1.square().mean() + x2.square().mean()).backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_fully_masked_neighbourhood_gives_no_nan(model: DeepFillV1) -> None:
    # Everything but a 2-px border is a hole: no background patch is usable, attention goes silent.
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 2:-2, 2:-2] = 1.0
    x = (torch.rand(1, 3, 64, 64) * 2 - 1) * (1 - mask)
    x.requires_grad_(True)
    x1, x2 = model(x, mask)
    assert torch.isfinite(x1).all() and torch.isfinite(x2).all()
    x2.mean().backward()
    assert torch.isfinite(x.grad).all()
    model.zero_grad(set_to_none=True)


def test_critics_forward_backward_and_gradient_penalty() -> None:
    torch.manual_seed(3)
    local, global_ = LocalCritic(32), GlobalCritic(64)
    real = torch.rand(2, 3, 64, 64) * 2 - 1
    fake = torch.rand(2, 3, 64, 64) * 2 - 1
    scores = global_(real)
    assert scores.shape == (2,)
    scores.sum().backward()
    assert all(p.grad is not None for p in global_.parameters())
    with pytest.raises(ValueError, match="built for 32"):
        local(real)

    mask = box_mask(2, 64, 64)
    penalty = losses.gradient_penalty(global_, losses.random_interpolates(real, fake), mask)
    assert torch.isfinite(penalty) and penalty > 0

    total, terms = coarse_to_fine.critic_loss(local, global_, real, fake, mask, 32)
    assert torch.isfinite(total) and terms["gp"] > 0
    torch.testing.assert_close(total.detach(), terms["d_wgan"] + 10.0 * terms["gp"])


def test_reconstruction_losses_match_the_spec() -> None:
    real = torch.zeros(1, 3, 4, 4)
    x1 = torch.full_like(real, 0.5)
    x2 = torch.full_like(real, 0.25)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0  # half the pixels are holes
    # [1.2·0.5·0.5 + 0.25·0.5] / 0.5
    assert deepfill_v1.known_pixel_loss(real, x1, x2, mask).item() == pytest.approx(1.2 * 0.5 + 0.25)
    # Rows 0-1 are the hole: row 1 touches known pixels (weight 1), row 0 is 2 away (weight γ = 0.9).
    discount = losses.hole_discount(mask, 0.9)
    assert torch.equal(discount[0, 0, :, 0], torch.tensor([0.9, 1.0, 0.0, 0.0]))
    mean_weight = (4 * 0.9 + 4 * 1.0) / 8
    expected = (1.2 * 0.5 + 0.25) * mean_weight
    assert deepfill_v1.discounted_hole_l1(real, x1, x2, discount).item() == pytest.approx(expected)


def test_every_hole_pixel_gets_a_reconstruction_gradient() -> None:
    """Two holes in opposite corners: the hole-centred local patch (half the canvas) covers at most one, and
    the paper's patch-only L1 left the other unsupervised. Every hole pixel must get a gradient."""
    torch.manual_seed(0)
    generator = deepfill_v1.DeepFillV1(cnum=4)
    recipe = deepfill_v1.DeepFillV1Recipe(generator, image_size=32, recon_steps=10)
    images = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 1:6, 1:6] = 1.0
    mask[..., 26:31, 26:31] = 1.0
    output = {}

    def keep_gradient(module: torch.nn.Module, args: object, out: tuple[torch.Tensor, torch.Tensor]) -> None:
        out[1].register_hook(lambda grad: output.update(grad=grad))

    generator.register_forward_hook(keep_gradient)
    recipe.train_step(images, mask, step=0)
    grad = output["grad"][0].abs().sum(dim=0)
    assert bool((grad[mask[0, 0] > 0] > 0).all()), "some hole pixels got no reconstruction gradient"


def test_recipe_step_trains_generator_and_critics() -> None:
    torch.manual_seed(4)
    generator = create_model("deepfill_v1", cnum=8).train()
    recipe = DeepFillV1Recipe(generator, image_size=64)
    assert set(recipe.networks) == {"generator", "local_critic", "global_critic"}
    before = {name: copy.deepcopy(net.state_dict()) for name, net in recipe.networks.items()}
    images = torch.rand(2, 3, 64, 64)
    masks = torch.from_numpy(
        np.stack([DeepFillV1Recipe.paper_mask(64, 64, np.random.default_rng(seed)) for seed in (0, 1)])
    )[:, None].float()
    result = recipe.train_step(images, masks, step=0)
    assert {"g", "l1", "ae", "g_adv", "d", "d_wgan", "gp"} <= set(result)
    assert all(np.isfinite(value) for value in result.values())
    assert result["gp"] > 0
    for name, net in recipe.networks.items():
        changed = any(not torch.equal(before[name][key], value) for key, value in net.state_dict().items())
        assert changed, name
    with pytest.raises(ValueError, match="image_size"):
        recipe.train_step(images[..., :32, :32], masks[..., :32, :32], step=1)


def test_recipe_constants_and_paper_mask() -> None:
    assert coarse_to_fine.ADAM_BETAS == (0.5, 0.9) and deepfill_v1.LEARNING_RATE == 1e-4
    assert deepfill_v1.D_STEPS_PER_G_STEP == 5
    assert (DeepFillV1Recipe.default_batch, DeepFillV1Recipe.default_size) == (16, 256)
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = DeepFillV1Recipe.paper_mask(256, 256, rng)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert mask.dtype == bool and mask.shape == (256, 256)
        assert 96 <= len(rows) <= 128 and 96 <= len(cols) <= 128
        assert mask.sum() == len(rows) * len(cols)  # one rectangle

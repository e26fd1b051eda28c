"""Context Encoder: parameter counts, shapes, bias-free layers, hole fill, composite
semantics, loss weights, one training step per variant, paper masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import count_parameters
from torch import nn

from inpaint_cli.masks import hole_ratio
from inpaint_cli.models import context_encoder as ce
from inpaint_cli.models.context_encoder import ContextEncoder, ContextEncoderDiscriminator, ContextEncoderRecipe
from inpaint_cli.registry import create_model, get_arch

SMALL = 64  # bottleneck for everything except the parameter-count tests


def _generator_formula(bottleneck: int, variant: str, w: int = 64) -> int:
    """Hand count from the layer table in context_encoder.py: 4×4 kernels, no biases, BN = 2 parameters per channel."""
    encoder = [(3, w), (w, w), (w, 2 * w), (2 * w, 4 * w), (4 * w, 8 * w), (8 * w, bottleneck)]
    decoder = [(bottleneck, 8 * w), (8 * w, 4 * w), (4 * w, 2 * w), (2 * w, w)]
    if variant == "random":
        decoder.append((w, w))  # D4b
    decoder.append((w, 3))
    convs = sum(16 * cin * cout for cin, cout in encoder + decoder)
    bn_channels = [cout for _, cout in encoder[1:]] + [cout for _, cout in decoder[:-1]]  # not E1, not D5
    return convs + 2 * sum(bn_channels)


def _box_mask(batch: int, top: int = 50, left: int = 44, size: int = 30) -> torch.Tensor:
    mask = torch.zeros(batch, 1, 128, 128)
    mask[..., top : top + size, left : left + size] = 1.0
    return mask


@pytest.fixture(scope="module", params=ce.VARIANTS)
def small(request: pytest.FixtureRequest) -> ContextEncoder:
    torch.manual_seed(0)
    return create_model("context_encoder", bottleneck=SMALL, variant=request.param)


def test_registered_with_its_contract() -> None:
    spec = get_arch("context_encoder")
    assert spec.cls is ContextEncoder
    assert spec.default_config == {"bottleneck": 4000, "variant": "random", "width": 64, "conv_bias": False}
    c = spec.contract
    assert c.fixed_size == 128 and c.pad_multiple == 1 and c.comfortable_size == 128
    assert c.trainable and c.needs_weights and not c.can_sample
    with pytest.raises(ValueError):
        ContextEncoder(bottleneck=SMALL, variant="center")


@pytest.mark.parametrize("variant", ce.VARIANTS)
def test_generator_parameter_count_at_4000(variant: str) -> None:
    model = ContextEncoder(bottleneck=4000, variant=variant)
    total = count_parameters(model)
    print(f"context_encoder[{variant}] G at 4000: {total:,}")
    assert total == _generator_formula(4000, variant)
    if variant == "centre":
        assert total == pytest.approx(71.1e6, rel=0.01)
    assert model.arch_config == {"bottleneck": 4000, "variant": variant, "width": 64, "conv_bias": False}
    # conv_bias (the Lua networks'): one bias per conv/deconv output, 16·64 + 4000 + 15·64 (+ 64 random) + 3.
    biases = 16 * 64 + 4000 + 15 * 64 + (64 if variant == "random" else 0) + 3
    assert count_parameters(ContextEncoder(bottleneck=4000, variant=variant, conv_bias=True)) == total + biases


def test_reduced_width_and_bottleneck_shrink_the_generator() -> None:
    """The shipped checkpoint's config: a quarter of the convolution weights, a 128-unit bottleneck."""
    model = ContextEncoder(bottleneck=128, variant="random", width=32)
    assert count_parameters(model) == _generator_formula(128, "random", w=32)
    assert model(torch.zeros(2, 3, 128, 128)).shape == (2, 3, 128, 128)
    with pytest.raises(ValueError):
        ContextEncoder(width=0)


def test_discriminator_parameter_counts() -> None:
    centre, full = count_parameters(ContextEncoderDiscriminator(64)), count_parameters(ContextEncoderDiscriminator(128))
    print(f"context_encoder D: centre {centre:,}, random {full:,}")
    assert centre == pytest.approx(2.77e6, rel=0.01)
    assert full == centre + 16 * 64 * 64 + 2 * 64  # one extra 64→64 stage with BN


def test_small_bottleneck_matches_formula(small: ContextEncoder) -> None:
    assert count_parameters(small) == _generator_formula(SMALL, small.variant)


def test_no_conv_has_a_bias(small: ContextEncoder) -> None:
    for module in (small, ContextEncoderDiscriminator(64), ContextEncoderDiscriminator(128)):
        convs = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
        assert convs and all(m.bias is None for m in convs)


@torch.no_grad()
def test_dcgan_init(small: ContextEncoder) -> None:
    weights = torch.cat([m.weight.flatten() for m in small.modules() if isinstance(m, nn.Conv2d)])
    assert weights.mean().abs() < 2e-3 and weights.std() == pytest.approx(0.02, rel=0.05)
    bn = torch.cat([m.weight.flatten() for m in small.modules() if isinstance(m, nn.BatchNorm2d)])
    assert bn.mean() == pytest.approx(1.0, abs=5e-3)


def test_output_shapes(small: ContextEncoder) -> None:
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        out = small(x)
    side = 64 if small.variant == "centre" else 128
    assert out.shape == (2, 3, side, side)
    assert out.abs().max() < 1.0


def test_network_sees_fill_constants_in_the_hole(small: ContextEncoder) -> None:
    seen: list[torch.Tensor] = []
    hook = small.encoder[0].register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach()))
    image, mask = torch.rand(1, 3, 128, 128), _box_mask(1)
    try:
        with torch.no_grad():
            small.inpaint(image, mask)
    finally:
        hook.remove()
    (x_in,) = seen
    expected = torch.tensor([2 * 117 / 255 - 1, 2 * 104 / 255 - 1, 2 * 123 / 255 - 1])
    hole = mask[0, 0].bool()
    if small.variant == "centre":
        hole = torch.zeros(128, 128, dtype=torch.bool)
        hole[36:92, 36:92] = True  # the fixed inner 56²; the user mask lies inside it
        assert x_in[0, :, 35, 36:92].ne(expected[:, None]).all()  # the ring keeps real pixels
    for channel in range(3):
        assert torch.equal(x_in[0, channel][hole], torch.full((int(hole.sum()),), float(expected[channel])))
    torch.testing.assert_close(x_in[0][:, ~hole], (image[0] * 2 - 1)[:, ~hole], rtol=0, atol=0)


def test_inpaint_range_and_hole_values_do_not_matter(small: ContextEncoder) -> None:
    image, mask = torch.rand(2, 3, 128, 128), _box_mask(2)
    with torch.no_grad():
        out = small.inpaint(image, mask)
        garbage = small.inpaint(torch.where(mask.bool(), torch.rand_like(image), image), mask)
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    torch.testing.assert_close(out * mask, garbage * mask)


def test_centre_inpaint_returns_input_outside_the_block() -> None:
    torch.manual_seed(1)
    model = create_model("context_encoder", bottleneck=SMALL, variant="centre")
    image, mask = torch.rand(2, 3, 128, 128), _box_mask(2)
    with torch.no_grad():
        out = model.inpaint(image, mask)
        prediction = (model(model.model_input(image, mask)) + 1) / 2
    outside = torch.ones(128, 128, dtype=torch.bool)
    outside[32:96, 32:96] = False
    assert torch.equal(out[..., outside], image[..., outside])
    torch.testing.assert_close(out[..., 32:96, 32:96], prediction.clamp(0, 1))


def test_l2_weight_maps() -> None:
    centre = ce.centre_l2_weights()[0, 0]
    expected = torch.full((64, 64), 10.0)
    expected[4:60, 4:60] = 1.0
    assert torch.equal(centre, expected)
    assert int((centre == 10).sum()) == 64 * 64 - 56 * 56
    mask = _box_mask(1)
    random = ce.random_l2_weights(mask)
    assert torch.equal(random, torch.where(mask.bool(), 1.0, 10.0))


def test_losses() -> None:
    torch.manual_seed(2)
    real, fake = torch.randn(4), torch.randn(4)
    expected_d = -torch.log(torch.sigmoid(real)).mean() - torch.log(1 - torch.sigmoid(fake)).mean()
    torch.testing.assert_close(ce.discriminator_loss(real, fake), expected_d)
    prediction, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    weights = ce.centre_l2_weights()
    expected_l2 = (weights * (prediction - target) ** 2).mean()
    torch.testing.assert_close(ce.weighted_l2(prediction, target, weights), expected_l2)
    expected_adv = -torch.log(torch.sigmoid(fake)).mean()
    torch.testing.assert_close(ce.adversarial_loss(fake), expected_adv)


@pytest.mark.parametrize("input_size", [64, 128])
def test_discriminator_forward_backward(input_size: int) -> None:
    torch.manual_seed(3)
    discriminator = ContextEncoderDiscriminator(input_size)
    image = (torch.rand(2, 3, input_size, input_size) * 2 - 1).requires_grad_(True)
    logits = discriminator(image)
    assert logits.shape == (2,)
    ce.discriminator_loss(logits, logits.flip(0)).backward()
    assert image.grad is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())


def test_recipe_constants_and_optimizers() -> None:
    assert ContextEncoderRecipe.default_batch == 64 and ContextEncoderRecipe.default_size == 128
    assert ContextEncoderRecipe.default_lr == 2e-4
    assert ce.ADAM_BETAS == (0.5, 0.999) and ce.D_STEPS_PER_G_STEP == 1
    assert ce.L2_WEIGHT == 0.999 and abs(ce.ADV_WEIGHT - 0.001) < 1e-12
    g_opt, d_opt = ce.make_optimizers(nn.Linear(2, 2), nn.Linear(2, 2))
    assert g_opt.defaults["lr"] == pytest.approx(2e-3) and d_opt.defaults["lr"] == 2e-4
    assert g_opt.defaults["betas"] == d_opt.defaults["betas"] == (0.5, 0.999)


@pytest.mark.parametrize("variant", ce.VARIANTS)
def test_train_step_updates_both_networks(variant: str) -> None:
    torch.manual_seed(4)
    generator = ContextEncoder(bottleneck=SMALL, variant=variant).train()
    recipe = ContextEncoderRecipe(generator)
    assert recipe.optimizers["generator"].defaults["lr"] == pytest.approx(
        10 * recipe.optimizers["discriminator"].defaults["lr"]
    )
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in recipe.networks.items()}
    logs = recipe.train_step(torch.rand(2, 3, 128, 128), _box_mask(2), step=0)
    assert set(logs) == {"d", "g", "l2", "g_adv"}
    assert all(np.isfinite(v) for v in logs.values())
    for name, net in recipe.networks.items():
        changed = [not torch.equal(p, q) for p, q in zip(net.parameters(), before[name], strict=True)]
        assert all(changed), name


def test_paper_masks() -> None:
    rng = np.random.default_rng(5)
    recipe = ContextEncoderRecipe(ContextEncoder(bottleneck=SMALL, variant="random"))
    masks = [recipe.paper_mask(128, 128, rng) for _ in range(20)]
    for mask in masks:
        assert mask.shape == (128, 128) and mask.dtype == bool
        assert 0.20 < hole_ratio(mask) < 0.30
    assert len({m.tobytes() for m in masks}) == len(masks)
    # Replay the same draws through the public pieces: one pattern from the first call's rng, then only
    # windows of it, so the 21st mask matches the 21st window only if the recipe kept its pattern.
    replay = np.random.default_rng(5)
    pattern = ce.random_pattern(ce.PATTERN_SIDE, replay)
    windows = [ce.pattern_window(pattern, 128, 128, replay) for _ in range(21)]
    again = recipe.paper_mask(128, 128, rng)
    same_pattern = np.array_equal(again, windows[20])
    assert 0.20 < hole_ratio(again) < 0.30 and same_pattern  # a new window of the same pattern

    centre = ContextEncoderRecipe(ContextEncoder(bottleneck=SMALL, variant="centre")).paper_mask(128, 128, rng)
    expected = np.zeros((128, 128), bool)
    expected[36:92, 36:92] = True
    assert np.array_equal(centre, expected)

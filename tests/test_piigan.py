"""PiiGAN: parameter counts, latent injection, seeded sampling, extractor, recipe."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import box_mask, count_parameters

from inpaint_cli.models import piigan
from inpaint_cli.models.piigan import PiiGAN, PiiGANRecipe, StyleExtractor
from inpaint_cli.registry import create_model, get_arch


@pytest.fixture(scope="module")
def model() -> PiiGAN:
    torch.manual_seed(0)
    return create_model("piigan")


def _seeded(model: PiiGAN, image: torch.Tensor, mask: torch.Tensor, seed: int) -> torch.Tensor:
    with torch.no_grad():
        return model.inpaint(image, mask, generator=torch.Generator().manual_seed(seed))


def test_registered_with_its_contract() -> None:
    spec = get_arch("piigan")
    assert spec.cls is PiiGAN
    assert spec.default_config == {"cnum": 32, "extractor_activation": "elu"}
    assert spec.contract.pad_multiple == 8 and spec.contract.comfortable_size == 512
    assert spec.contract.can_sample and spec.contract.trainable and spec.contract.needs_weights


def test_parameter_counts(model: PiiGAN) -> None:
    total, extractor = count_parameters(model), count_parameters(StyleExtractor(64))
    print(f"PiiGAN: G {total:,}, E {extractor:,}")
    assert total == pytest.approx(3.61e6, rel=0.01)
    assert extractor == pytest.approx(36.2e6, rel=0.01)
    for stage in (model.coarse_encoder, model.refine_conv, model.refine_attention_encoder):
        assert stage[0].conv.in_channels == 6  # [x, z·M, ones, M]
    assert isinstance(model.refine_attention_encoder[-1].activation, torch.nn.ELU)  # p6: ELU in gen_conv_add_z


def test_extractor_activation_option() -> None:
    assert isinstance(StyleExtractor(16).layers[0].activation, torch.nn.ELU)
    assert isinstance(StyleExtractor(16, "lrelu").layers[0].activation, torch.nn.LeakyReLU)
    assert create_model("piigan", cnum=4, extractor_activation="lrelu").arch_config["extractor_activation"] == "lrelu"
    with pytest.raises(ValueError):
        PiiGAN(extractor_activation="relu")


@pytest.mark.parametrize("size", [(64, 64), (48, 80)])
def test_output_shapes_and_clip_range(model: PiiGAN, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    x = torch.rand(2, 3, *size) * 2 - 1
    mask = box_mask(2, *size)
    with torch.no_grad():
        x1, x2 = model(x * (1 - mask), mask, torch.randn(2, 1, *size))
    assert x1.shape == x2.shape == (2, 3, *size)
    for out in (x1, x2):
        assert torch.isfinite(out).all()
        assert out.abs().max() <= 1.0


def test_seeds_fix_and_vary_the_fill(model: PiiGAN) -> None:
    image = torch.rand(1, 3, 48, 64)
    mask = box_mask(1, 48, 64)
    first, again, other = (_seeded(model, image, mask, seed) for seed in (7, 7, 8))
    assert first.shape == image.shape and first.min() >= 0.0 and first.max() <= 1.0
    assert torch.equal(first, again)
    assert (first - other).abs().mul(mask).max() > 1e-4  # a different sample inside the hole
    garbage = torch.where(mask.bool(), torch.rand_like(image), image)
    torch.testing.assert_close(_seeded(model, garbage, mask, 7), first)  # hole values do not matter


def test_latent_outside_the_hole_is_ignored(model: PiiGAN) -> None:
    torch.manual_seed(2)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mask = box_mask(1, 32, 32)
    z = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        expected = model(x * (1 - mask), mask, z)
        shifted = model(x * (1 - mask), mask, z + 5.0 * (1 - mask))
    for a, b in zip(expected, shifted, strict=True):
        torch.testing.assert_close(a, b)


def test_gradient_reaches_every_parameter() -> None:
    torch.manual_seed(3)
    model = PiiGAN().train()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = box_mask(1, 64, 64)
    x1, x2 = model(x * (1 - mask), mask, torch.randn(1, 1, 64, 64))
    (x1.square().mean() + x2.square().mean()).backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []


def test_fully_masked_neighbourhood_gives_no_nan(model: PiiGAN) -> None:
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 2:-2, 2:-2] = 1.0  # only a 2-px border is known: no usable background patch
    x = ((torch.rand(1, 3, 64, 64) * 2 - 1) * (1 - mask)).requires_grad_(True)
    x1, x2 = model(x, mask, torch.randn(1, 1, 64, 64))
    assert torch.isfinite(x1).all() and torch.isfinite(x2).all()
    x2.mean().backward()
    assert torch.isfinite(x.grad).all()
    model.zero_grad(set_to_none=True)


def test_extractor_sampling_and_placement() -> None:
    torch.manual_seed(4)
    extractor = StyleExtractor(16)
    mu, logvar = extractor(torch.rand(3, 3, 16, 16))
    assert mu.shape == logvar.shape == (3, 256)
    with pytest.raises(ValueError, match="16"):
        extractor(torch.rand(1, 3, 32, 32))

    mu = torch.randn(4000, 2)
    samples = piigan.reparameterise(mu, torch.full_like(mu, 2 * np.log(0.5)))  # σ = 0.5
    assert (samples - mu).std().item() == pytest.approx(0.5, rel=0.05)  # standard form: no μ in the noise

    latent = torch.arange(2 * 4, dtype=torch.float32).reshape(2, 4) + 1
    maps = piigan.place_latent(latent, [(0, 1), (2, 2)], 2, 4, 5)
    assert maps.shape == (2, 1, 4, 5)
    assert maps[0, 0, 0:2, 1:3].flatten().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert maps[1, 0, 2:4, 2:4].flatten().tolist() == [5.0, 6.0, 7.0, 8.0]
    assert maps.sum().item() == latent.sum().item()  # zero elsewhere


def test_recipe_step_trains_generator_extractor_and_critics() -> None:
    torch.manual_seed(5)
    generator = create_model("piigan", cnum=8).train()
    recipe = PiiGANRecipe(generator, image_size=64)
    assert set(recipe.networks) == {"generator", "extractor", "local_critic", "global_critic"}
    assert recipe.networks["extractor"].patch_size == 32
    before = {name: copy.deepcopy(net.state_dict()) for name, net in recipe.networks.items()}
    images = torch.rand(2, 3, 64, 64)
    masks = torch.from_numpy(
        np.stack([PiiGANRecipe.paper_mask(64, 64, np.random.default_rng(seed)) for seed in (0, 1)])
    )[:, None].float()
    result = recipe.train_step(images, masks, step=0)
    assert {"g", "ae", "g_adv", "reg_z", "kl", "l1_zx", "ae_zx", "d", "d_wgan", "gp"} <= set(result)
    assert all(np.isfinite(value) for value in result.values())
    assert result["gp"] > 0
    for name, net in recipe.networks.items():
        changed = any(not torch.equal(before[name][key], value) for key, value in net.state_dict().items())
        assert changed, name
    with pytest.raises(ValueError, match="image_size"):
        recipe.train_step(images[..., :32, :32], masks[..., :32, :32], step=1)


def test_recipe_constants_and_paper_mask() -> None:
    assert (PiiGANRecipe.default_batch, PiiGANRecipe.default_size, PiiGANRecipe.default_lr) == (13, 128, 1e-4)
    assert piigan.KL_WEIGHT == 0.1 and piigan.GAN_LOSS_WEIGHT == 0.001
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = PiiGANRecipe.paper_mask(128, 128, rng)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        assert 56 <= len(rows) <= 64 and 56 <= len(cols) <= 64
        assert rows[0] + rows[-1] + 1 == 128 and cols[0] + cols[-1] + 1 == 128  # centred
        assert mask.sum() == len(rows) * len(cols)

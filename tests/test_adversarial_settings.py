"""The small-data settings of the adversarial phase (`TrainingRecipe`: d_warmup_steps, adv_ramp_steps,
fm_weight, augment) and the DiffAugment transforms (`models/augment.py`)."""

from __future__ import annotations

import pytest
import torch
from helpers import box_mask
from test_recipes import batch, critics_of, make_recipe

from inpaint_cli.models import augment, deepfill_v1, piigan

ADVERSARIAL_ARCHS = ("deepfill_v1", "piigan", "deepfill_v2")  # the recipes that honour every setting


def _snapshot(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def _changed(before: list[torch.Tensor], net: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("arch", ADVERSARIAL_ARCHS)
def test_discriminator_warm_up_trains_the_critics_alone(arch: str) -> None:
    recipe = make_recipe(arch, recon_steps=1, d_warmup_steps=2)
    images, masks = batch(arch)
    critics = list(critics_of(recipe).values())
    trained_with_g = [recipe.networks[name] for name in recipe.generator_networks]
    assert [recipe.generator_trains(s) for s in range(5)] == [True, False, False, True, True]
    for step in (1, 2):
        before_g = [_snapshot(net) for net in trained_with_g]
        before_d = [_snapshot(net) for net in critics]
        logs = recipe.train_step(images, masks, step=step)
        assert "d" in logs and "g" not in logs and "g_adv" not in logs
        assert not any(_changed(b, net) for b, net in zip(before_g, trained_with_g, strict=True))
        assert all(_changed(b, net) for b, net in zip(before_d, critics, strict=True))
    before_g = _snapshot(recipe.generator)
    logs = recipe.train_step(images, masks, step=3)
    assert "g_adv" in logs and _changed(before_g, recipe.generator)


def test_adversarial_scale_ramps_after_the_warm_ups() -> None:
    recipe = make_recipe("deepfill_v1", recon_steps=2, d_warmup_steps=3, adv_ramp_steps=4)
    assert [recipe.adversarial_scale(s) for s in range(11)] == [0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1]
    assert make_recipe("deepfill_v1", recon_steps=2).adversarial_scale(2) == 1.0


@pytest.mark.parametrize("arch", ADVERSARIAL_ARCHS)
def test_logged_total_includes_scaled_adversarial_and_feature_matching(arch: str) -> None:
    recipe = make_recipe(arch, adv_ramp_steps=4, fm_weight=2.0, gan_weight=0.01, augment="color,translation,cutout")
    logs = recipe.train_step(*batch(arch), step=1)  # ramp factor 0.5
    assert logs["fm"] > 0
    adversarial = 0.5 * (0.01 * logs["g_adv"] + 2.0 * logs["fm"])
    if arch == "deepfill_v1":
        rest = deepfill_v1.L1_LOSS_WEIGHT * (logs["l1"] + logs["ae"])
    elif arch == "deepfill_v2":
        rest = logs["ae"]
    else:
        rest = (
            piigan.KL_WEIGHT * logs["kl"]
            + piigan.REGRESSION_Z_WEIGHT * (logs["l1_zx"] + logs["ae_zx"] + logs["reg_z"])
            + piigan.AE_LOSS_WEIGHT * logs["ae"]
        )
    assert logs["g"] == pytest.approx(rest + adversarial, rel=1e-5)


def test_feature_matching_is_zero_for_the_ground_truth_and_trains_only_the_fill() -> None:
    recipe = make_recipe("deepfill_v1")
    local, global_ = recipe.networks["local_critic"], recipe.networks["global_critic"]
    images, masks = batch("deepfill_v1")
    real = images * 2 - 1
    from inpaint_cli.models.coarse_to_fine import adversarial_terms

    _, same = adversarial_terms(local, global_, real, real.clone(), masks, recipe.local_size, feature_matching=True)
    assert same.item() == 0.0
    fake = (real + 0.3 * torch.randn_like(real)).requires_grad_(True)
    g_adv, matching = adversarial_terms(local, global_, real, fake, masks, recipe.local_size, feature_matching=True)
    (g_adv + matching).backward()
    assert matching.item() > 0 and fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in [*local.parameters(), *global_.parameters()])


@pytest.mark.parametrize(
    "bad",
    [{"d_warmup_steps": -1}, {"adv_ramp_steps": 1.5}, {"fm_weight": -0.1}, {"augment": "colour"}, {"gan_weight": -1}],
)
def test_bad_adversarial_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad)).split("_")[0]):
        make_recipe("deepfill_v1", **bad)


# ---------------------------------------------------------------------------------------- DiffAugment


def test_augment_applies_the_same_transform_to_each_image_and_the_mask() -> None:
    torch.manual_seed(0)
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    masks = box_mask(6, 32, 32)
    (first, second), _ = augment.paired_augment([images, images.clone()], masks, ("translation",))
    assert torch.equal(first, second)
    # A translation moves the hole with the image: where the shifted mask is 1 the shifted image equals a
    # hole pixel of the original (tested with a marker value written only into the hole).
    marked = torch.where(masks.bool(), torch.full_like(images, 5.0), images)
    torch.manual_seed(1)
    (shifted,), shifted_mask = augment.paired_augment([marked], masks, ("translation",))
    assert torch.equal((shifted == 5.0).all(dim=1, keepdim=True).float(), shifted_mask)
    assert shifted_mask.sum() < masks.sum() or not torch.equal(shifted_mask, masks)  # something moved


def test_augment_strengths() -> None:
    torch.manual_seed(2)
    images = torch.rand(64, 3, 32, 32) * 2 - 1
    (shifted,), _ = augment.paired_augment([images], None, ("translation",))
    zero_columns = (shifted == 0).all(dim=(1, 2)).sum(dim=1)  # fully zero columns per sample
    assert zero_columns.max() <= 4 and zero_columns.max() >= 3  # up to 1/8 of 32 px
    (cut,), _ = augment.paired_augment([images], None, ("cutout",))
    zeroed = (cut == 0).all(dim=1).float().mean(dim=(1, 2))
    assert zeroed.max() == pytest.approx(0.25) and zeroed.min() > 0  # a 16² square, part may fall outside
    flat = torch.full((256, 3, 4, 4), 0.2)
    (coloured,), _ = augment.paired_augment([flat], None, ("color",))
    shift = (coloured - flat).mean(dim=(1, 2, 3))  # brightness only: a flat grey has no saturation/contrast
    assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.std() > 0.25


def test_augment_is_differentiable_and_policy_is_checked() -> None:
    fake = torch.rand(2, 3, 16, 16, requires_grad=True)
    (out,), _ = augment.paired_augment([fake], None, augment.POLICIES)
    out.sum().backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert augment.parse_policy(" cutout, color ") == ("color", "cutout")
    assert augment.parse_policy("") == ()
    with pytest.raises(ValueError, match="unknown policy colour"):
        augment.parse_policy("colour")
    (same,), _ = augment.paired_augment([fake], None, ())
    assert same is fake


@pytest.mark.parametrize("arch", ["glcic", "context_encoder"])
def test_recipes_without_the_small_data_settings_refuse_them(arch: str) -> None:
    with pytest.raises(ValueError, match="does not implement"):
        make_recipe(arch, fm_weight=1.0)


def test_piigan_mode_seeking_term_is_in_the_total_and_spreads_the_samples() -> None:
    recipe = make_recipe("piigan", diversity_weight=0.05, recon_steps=10)
    images, masks = batch("piigan")
    logs = recipe.train_step(images, masks, step=0)
    rest = (
        piigan.KL_WEIGHT * logs["kl"]
        + piigan.REGRESSION_Z_WEIGHT * (logs["l1_zx"] + logs["ae_zx"] + logs["reg_z"])
        + piigan.AE_LOSS_WEIGHT * logs["ae"]
    )
    expected = rest + 0.05 / (logs["mode_seeking"] + piigan.MODE_SEEKING_EPSILON)
    assert logs["g"] == pytest.approx(expected, rel=1e-5)

    # The term alone, descended: two latents' fills move apart in the hole.
    generator = recipe.generator
    x_in = (images * 2 - 1) * (1 - masks)
    latents = [torch.randn_like(masks) for _ in range(2)]

    def spread() -> torch.Tensor:
        first, second = (generator(x_in, masks, z)[1] for z in latents)
        return ((first - second).abs() * masks).sum() / masks.sum()

    optimizer = torch.optim.SGD(generator.parameters(), lr=1e-3)
    before = spread().item()
    for _ in range(3):
        optimizer.zero_grad()
        (1.0 / (spread() + piigan.MODE_SEEKING_EPSILON)).backward()
        optimizer.step()
    assert spread().item() > 1.03 * before  # 1.051 -> 1.095 measured; the opposite sign shrinks it

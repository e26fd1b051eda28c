"""The small-data settings of the adversarial phase (`TrainingRecipe`: d_warmup_steps, adv_ramp_steps,
fm_weight, augment) and the DiffAugment transforms (`models/augment.py`)."""

from __future__ import annotations

import pytest
import torch
from helpers import box_mask
from test_recipes import batch, critics_of, make_recipe

from inpaint_cli.models import augment, deepfill_v1, glcic, piigan
from inpaint_cli.models import context_encoder as ce
from inpaint_cli.models.base import crop_boxes, hole_centred_boxes
from inpaint_cli.models.deepfill_v2 import DeepFillV2Recipe
from inpaint_cli.registry import create_model, get_arch
from inpaint_cli.train.config import recipe_settings

ADVERSARIAL_ARCHS = ("deepfill_v1", "piigan", "deepfill_v2", "glcic", "context_encoder")  # every recipe with a D
# The weight of g_adv in each recipe's total where it is not the `gan_weight` setting.
FIXED_ADVERSARIAL_WEIGHT = {"glcic": glcic.ALPHA, "context_encoder": ce.ADV_WEIGHT}


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
    settings = {"adv_ramp_steps": 4, "fm_weight": 2.0, "augment": "color,translation,cutout"}
    if "gan_weight" in recipe_settings(arch):
        settings["gan_weight"] = 0.01
    recipe = make_recipe(arch, **settings)
    logs = recipe.train_step(*batch(arch), step=1)  # ramp factor 0.5
    assert logs["fm"] > 0
    adversarial = 0.5 * (FIXED_ADVERSARIAL_WEIGHT.get(arch, 0.01) * logs["g_adv"] + 2.0 * logs["fm"])
    if arch == "deepfill_v1":
        rest = deepfill_v1.L1_LOSS_WEIGHT * (logs["l1"] + logs["ae"])
    elif arch == "deepfill_v2":
        rest = logs["ae"]
    elif arch == "glcic":
        rest = logs["mse"]
    elif arch == "context_encoder":
        rest = ce.L2_WEIGHT * logs["l2"]
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


@pytest.mark.parametrize(
    "setting", [{"d_warmup_steps": 1}, {"adv_ramp_steps": 1}, {"fm_weight": 1.0}, {"augment": "color"}]
)
def test_a_recipe_without_the_small_data_settings_refuses_them(setting: dict) -> None:
    class PaperOnlyRecipe(DeepFillV2Recipe):  # test-only, never registered
        small_data_adversarial = False

    generator = create_model("deepfill_v2", **get_arch("deepfill_v2").cls.small_config)
    with pytest.raises(ValueError, match="PaperOnlyRecipe does not implement d_warmup_steps"):
        PaperOnlyRecipe(generator, **setting)
    assert PaperOnlyRecipe(generator).fm_weight == 0.0  # without them it trains as the paper


@pytest.mark.parametrize("arch", ["glcic", "context_encoder"])
def test_batch_norm_feature_matching_is_zero_for_the_ground_truth_and_trains_only_the_fill(arch: str) -> None:
    """GLCIC's and the Context Encoder's D see real and fake in separate forwards (batch statistics each)."""
    recipe = make_recipe(arch, fm_weight=1.0, augment="color,translation,cutout")
    images, masks = batch(arch)
    # GLCIC: D's inputs in [0, 1], the fill is C's raw output; CE: in [-1, 1], the whole image (random variant).
    truth = images if arch == "glcic" else images * 2 - 1

    def terms(fill: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return (
            recipe.adversarial_terms(truth, fill, masks) if arch == "glcic" else recipe.adversarial_terms(truth, fill)
        )

    _, same = terms(truth.clone())
    assert same is not None and same.item() == 0.0
    fill = (truth + 0.2 * torch.randn_like(truth)).requires_grad_(True)
    g_adv, matching = terms(fill)
    assert matching is not None
    (g_adv + matching).backward()
    assert matching.item() > 0 and fill.grad is not None and fill.grad.abs().sum() > 0
    assert all(p.grad is None for p in recipe.networks["discriminator"].parameters())
    recipe.fm_weight = 0.0
    assert terms(fill)[1] is None


@pytest.mark.parametrize("arch", ["glcic", "context_encoder"])
def test_augment_reaches_every_discriminator_forward(arch: str) -> None:
    recipe = make_recipe(arch, augment="translation")
    blank = 0.5 if arch == "glcic" else 0.0  # translation's zero fill in [-1, 1], in D's range
    inputs: list[torch.Tensor] = []
    recipe.networks["discriminator"].register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    torch.manual_seed(4)
    recipe.train_step(*batch(arch), step=0)
    assert len(inputs) == 3  # D's step on the real and the fake images, then the generator's
    for seen in inputs:
        filled = (seen == blank).all(dim=1)  # (B, H, W): pixels the shift brought in
        assert filled.all(dim=2).any() or filled.all(dim=1).any()  # a whole row or column of some sample


def test_glcic_local_patches_are_cropped_from_the_augmented_images_around_the_moved_hole() -> None:
    recipe = make_recipe("glcic", augment="translation")  # the geometry; colour and cutout would hide the marker
    images, masks = batch("glcic")
    marker = 5.0  # survives the map to [-1, 1] and back exactly; no image pixel has it
    fill = torch.where(masks.bool(), marker, images)
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    recipe.networks["discriminator"].register_forward_pre_hook(lambda module, args: seen.append(args))
    torch.manual_seed(3)
    recipe._d_step(images, fill, masks)
    (real, real_local), (fake, fake_local) = seen
    size = recipe.local_size
    moved_hole = (fake == marker).all(dim=1, keepdim=True).float()
    assert not torch.equal(moved_hole, masks)  # translation moved a hole (seed 3)
    assert torch.equal(fake_local, crop_boxes(fake, hole_centred_boxes(moved_hole, size), size))
    assert not torch.equal(real, images)  # the real images are augmented too; their patch is a crop of them
    for sample in range(real.shape[0]):
        windows = real[sample].unfold(1, size, 1).unfold(2, size, 1)  # (3, top, left, size, size)
        assert (windows == real_local[sample][:, None, None]).all(dim=(0, 3, 4)).any()


def test_glcic_d_warmup_steps_is_its_second_phase() -> None:
    recipe = make_recipe("glcic", recon_steps=2, d_warmup_steps=3, adv_ramp_steps=4)
    assert (recipe.tc, recipe.td) == (2, 3)
    assert [recipe.phase(s) for s in range(7)] == [1, 1, 2, 2, 2, 3, 3]
    assert [recipe.generator_trains(s) for s in range(7)] == [True, True, False, False, False, True, True]
    assert [recipe.adversarial_scale(s) for s in range(10)] == [0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 1]
    without = make_recipe("glcic", recon_steps=2)  # phase 2 keeps the schedule's length
    assert without.td == glcic.phase_lengths(8)[1] and without.d_warmup_steps == without.td
    with pytest.raises(ValueError, match="d_warmup_steps and phase_steps"):
        make_recipe("glcic", d_warmup_steps=3, phase_steps=(2, 2))


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


def test_grid_artefact_sees_a_plaid_on_the_network_grid_and_not_texture_or_ramps() -> None:
    """An 8-px plaid in a smooth fill scores its RMS; a ramp (a smooth trend) and the same plaid outside
    the hole score nothing; random texture scores only its sampling noise."""
    from inpaint_cli.models import losses

    hole = torch.zeros(2, 1, 128, 128)
    hole[..., 24:104, 16:96] = 1.0
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    plaid = 3 / 127.5 * (torch.cos(xx * torch.pi / 4) + torch.cos(yy * torch.pi / 4)) / 2
    ramp = (xx / 128 - 0.5).expand(2, 3, 128, 128)
    noise = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 0.2

    def score(images: torch.Tensor, masks: torch.Tensor = hole) -> float:
        return losses.grid_artefact(images, masks).item() * 127.5  # in 8-bit levels

    assert score(ramp) < 0.01
    assert score(ramp + plaid * (1 - hole)) < 0.3  # the plaid is in the known pixels only
    plaided = score(ramp + plaid * hole)
    assert 1.3 < plaided < 1.7  # two cosines of amplitude 1.5 levels: RMS 1.5 over the phases
    # 25-level white noise: only its sampling noise, std/√(pixels per phase) = 25.5/√100 ≈ 2.5 levels
    assert 2.0 < score(noise) < 3.0
    assert score(ramp, torch.zeros_like(hole)) == 0.0  # no hole, nothing to score


@pytest.mark.parametrize("arch", ["deepfill_v1", "piigan"])
def test_grid_weight_adds_its_term_to_the_total(arch: str) -> None:
    images, masks = batch(arch)
    torch.manual_seed(0)
    plain = make_recipe(arch, recon_steps=5).train_step(images, masks, step=0)
    torch.manual_seed(0)
    logs = make_recipe(arch, recon_steps=5, grid_weight=3.0).train_step(images, masks, step=0)
    assert "grid" not in plain and logs["grid"] > 0
    assert logs["g"] == pytest.approx(plain["g"] + 3.0 * logs["grid"], rel=1e-4)
    with pytest.raises(ValueError, match="grid_weight cannot be negative"):
        make_recipe(arch, grid_weight=-1.0)

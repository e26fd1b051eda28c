"""What every training recipe shares: the logged total is the documented weighted sum of the logged terms,
the reconstruction warm-up (`recon_steps`) runs no discriminator at all, the generator's step leaves no
gradients on the discriminator, `hole_weight` separates hole and known means, and the learning-rate warm-up.

Every trainable architecture of the registry, built with its `small_config` and trained at its recipe's
`small_size` (fixed-size models at their size)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from helpers import box_mask

from inpaint_cli.models import context_encoder as ce
from inpaint_cli.models import deepfill_v1, deepfill_v2, glcic, piigan
from inpaint_cli.models.base import TrainingRecipe, hole_and_known_means
from inpaint_cli.models.coarse_to_fine import WganCriticsRecipe
from inpaint_cli.registry import create_model, get_arch, get_recipe, shipped_archs
from inpaint_cli.train.config import recipe_settings

TRAINABLE = [spec.name for spec in shipped_archs() if spec.contract.trainable]


def training_size(arch: str) -> int:
    return get_arch(arch).contract.fixed_size or get_recipe(arch).small_size


def make_recipe(arch: str, **settings) -> TrainingRecipe:
    torch.manual_seed(0)
    if arch == "glcic" and "recon_steps" not in settings:
        settings.setdefault("phase_steps", (0, 0))  # straight to phase 3 (both networks)
    generator = create_model(arch, **get_arch(arch).cls.small_config)
    return get_recipe(arch)(generator, image_size=training_size(arch), total_steps=8, **settings)


def critics_of(recipe: TrainingRecipe) -> dict[str, torch.nn.Module]:
    """The discriminators and critics: every network the generator's optimiser does not train."""
    return {name: net for name, net in recipe.networks.items() if name not in recipe.generator_networks}


def batch(arch: str, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    side = size or training_size(arch)
    torch.manual_seed(1)
    return torch.rand(2, 3, side, side), box_mask(2, side, side)


def _piigan_total(logs: dict[str, float]) -> float:
    consistency = logs["recon_zx"] if "recon_zx" in logs else logs["l1_zx"] + logs["ae_zx"]
    return (
        piigan.GAN_LOSS_WEIGHT * logs.get("g_adv", 0.0)
        + piigan.KL_WEIGHT * logs["kl"]
        + piigan.REGRESSION_Z_WEIGHT * (consistency + logs["reg_z"])
        + piigan.AE_LOSS_WEIGHT * logs["ae"]
    )


# Each recipe's docstring formula for "g" from the other logged terms. A new recipe adds its own here.
DOCUMENTED_TOTAL: dict[str, Callable[[dict[str, float]], float]] = {
    "deepfill_v2": lambda logs: logs["ae"] + deepfill_v2.GAN_LOSS_WEIGHT * logs.get("g_adv", 0.0),
    "deepfill_v1": lambda logs: (
        deepfill_v1.L1_LOSS_WEIGHT * (logs["recon"] if "recon" in logs else logs["l1"] + logs["ae"])
        + deepfill_v1.GAN_LOSS_WEIGHT * logs.get("g_adv", 0.0)
    ),
    "piigan": _piigan_total,
    "glcic": lambda logs: logs["mse"] + glcic.ALPHA * logs.get("g_adv", 0.0),
    "context_encoder": lambda logs: ce.L2_WEIGHT * logs["l2"] + ce.ADV_WEIGHT * logs.get("g_adv", 0.0),
}


def documented_total(arch: str, logs: dict[str, float]) -> float:
    if arch not in DOCUMENTED_TOTAL:
        pytest.fail(f"{arch}: add its recipe's documented formula for the logged total g to DOCUMENTED_TOTAL")
    return DOCUMENTED_TOTAL[arch](logs)


@pytest.mark.parametrize("arch", TRAINABLE)
@pytest.mark.parametrize("hole_weight", [None, 6.0])
def test_logged_total_is_the_documented_sum(arch: str, hole_weight: float | None) -> None:
    recipe = make_recipe(arch, hole_weight=hole_weight)
    images, masks = batch(arch)
    logs = recipe.train_step(images, masks, step=0)
    assert "g_adv" in logs and "d" in logs  # an adversarial step
    assert logs["g"] == pytest.approx(documented_total(arch, logs), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("arch", TRAINABLE)
def test_reconstruction_warm_up_runs_no_discriminator(arch: str) -> None:
    recipe = make_recipe(arch, recon_steps=2)
    critics = critics_of(recipe)
    assert critics, "every recipe trains against a discriminator or critic"
    calls = []
    for net in critics.values():
        net.register_forward_pre_hook(lambda module, args: calls.append(module))
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in critics.items()}
    generator_before = [p.detach().clone() for p in recipe.generator.parameters()]
    images, masks = batch(arch)

    for step in (0, 1):
        logs = recipe.train_step(images, masks, step=step)
        assert not recipe.adversarial(step) and "g_adv" not in logs and "d" not in logs
        assert logs["g"] == pytest.approx(documented_total(arch, logs), rel=1e-5)
    assert calls == []  # not one forward
    for name, net in critics.items():
        assert all(torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)), name
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, recipe.generator.parameters(), strict=True))

    first = recipe.tc + recipe.td if arch == "glcic" else 2  # GLCIC's phase 2 trains D alone
    assert recipe.adversarial(first) and not recipe.adversarial(first - 1)
    logs = recipe.train_step(images, masks, step=first)
    assert "g_adv" in logs and calls


def test_deepfill_v2_without_an_adversarial_weight_runs_no_discriminator() -> None:
    recipe = make_recipe("deepfill_v2", gan_weight=0.0)
    calls = []
    recipe.networks["discriminator"].register_forward_pre_hook(lambda module, args: calls.append(1))
    logs = recipe.train_step(*batch("deepfill_v2"), step=5)
    assert calls == [] and "d" not in logs and logs["g"] == logs["ae"]


@pytest.mark.parametrize("arch", TRAINABLE)
def test_the_generator_step_leaves_no_gradient_on_the_critics(arch: str) -> None:
    """Each critic parameter's gradient is accumulated once per critic update and never by the G step."""
    updates = 2 if "critic_steps" in recipe_settings(arch) else 1
    recipe = make_recipe(arch, **({"critic_steps": 2} if updates == 2 else {}))
    counts: dict[int, int] = {}
    for net in critics_of(recipe).values():
        for parameter in net.parameters():
            parameter.register_post_accumulate_grad_hook(lambda p: counts.__setitem__(id(p), counts.get(id(p), 0) + 1))
    recipe.train_step(*batch(arch), step=0)
    assert counts and set(counts.values()) == {updates}


def test_deepfill_v2_spectral_norm_iterates_once_per_step() -> None:
    """The G step runs D in eval mode: one power iteration per step (D's own), not two."""
    recipe = make_recipe("deepfill_v2")
    modes = []
    recipe.networks["discriminator"].register_forward_pre_hook(lambda module, args: modes.append(module.training))
    recipe.train_step(*batch("deepfill_v2"), step=0)
    assert modes == [True, False] and recipe.networks["discriminator"].training


def test_hole_weight_separates_hole_and_known_means() -> None:
    recipe = make_recipe("deepfill_v2", hole_weight=6.0, gan_weight=0.0)
    outputs = {}
    recipe.generator.register_forward_hook(lambda module, args, out: outputs.update(x=out))
    images, masks = batch("deepfill_v2")
    logs = recipe.train_step(images, masks, step=0)
    real = images * 2 - 1
    expected = 0.0
    for stage in outputs["x"]:
        error = (stage.detach() - real).abs()
        expected += 6.0 * (error * masks).sum() / (3 * masks.sum()) + (error * (1 - masks)).sum() / (
            3 * (1 - masks).sum()
        )
    assert logs["ae"] == pytest.approx(float(expected), rel=1e-5)
    hole, known = hole_and_known_means(torch.tensor([[[[1.0, 3.0]]]]), torch.tensor([[[[1.0, 0.0]]]]))
    assert (hole.item(), known.item()) == (1.0, 3.0)


def test_glcic_recon_steps_is_its_first_phase() -> None:
    recipe = make_recipe("glcic", recon_steps=3)
    assert (recipe.tc, [recipe.phase(s) for s in (0, 2, 3)]) == (3, [1, 1, 2])
    with pytest.raises(ValueError, match="recon_steps and phase_steps"):
        make_recipe("glcic", recon_steps=3, phase_steps=(2, 2))


def test_learning_rate_warm_up_is_linear_then_flat() -> None:
    recipe = make_recipe("deepfill_v2", warmup_steps=4)
    seen = []
    for step in range(6):
        recipe.set_learning_rates(step)
        seen.append([o.param_groups[0]["lr"] for o in recipe.optimizers.values()])
    assert seen == [[pytest.approx(1e-4 * min(1, (s + 1) / 4))] * 2 for s in range(6)]


@pytest.mark.parametrize("bad", [{"recon_steps": -1}, {"hole_weight": 0.0}, {"ema": 1.0}, {"warmup_steps": -2}])
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        make_recipe("deepfill_v2", **bad)


def test_a_second_recipe_for_an_arch_is_refused_and_the_first_kept() -> None:
    from inpaint_cli.registry import get_recipe, register_recipe

    shipped = get_recipe("glcic")

    class Impostor(shipped):
        pass

    with pytest.raises(ValueError, match=r"training recipe for 'glcic' is registered twice \(GLCICRecipe, Impostor\)"):
        register_recipe("glcic")(Impostor)
    assert get_recipe("glcic") is shipped
    assert register_recipe("glcic")(shipped) is shipped  # the same class again (a re-import) is no conflict


@pytest.mark.parametrize("arch", TRAINABLE)
def test_generator_networks_are_what_the_generator_optimiser_trains(arch: str) -> None:
    """`generator_networks` (what distributed training wraps in DDP) names exactly the networks whose
    parameters the "generator" optimiser holds; every other network is trained by another optimiser."""
    recipe = make_recipe(arch)
    held = {id(p) for group in recipe.optimizers["generator"].param_groups for p in group["params"]}
    named = {id(p) for name in recipe.generator_networks for p in recipe.networks[name].parameters()}
    assert "generator" in recipe.generator_networks and held == named
    others = {id(p) for net in critics_of(recipe).values() for p in net.parameters()}
    elsewhere = {
        id(p)
        for name, o in recipe.optimizers.items()
        if name != "generator"
        for g in o.param_groups
        for p in g["params"]
    }
    assert others and others <= elsewhere


# The logs of two steps of the WGAN-GP recipes (critic_steps 2, feature matching, every augmentation, PiiGAN's
# mode-seeking pass), recorded before `WganCriticsRecipe` held their shared code (torch 2.13, CPU), and the
# global RNG's next draw after them. A change that reorders or adds random draws (GP interpolation, DiffAugment,
# latents) changes them, and runs resumed with the new code would no longer continue as they began.
RECORDED_WGAN_STEPS = {
    "deepfill_v1": (
        [
            {"g": 2.55795, "d": 19.7742, "d_wgan": -0.016586, "gp": 1.97908, "l1": 0.944475, "ae": 1.12343,
             "g_adv": 0.0639321, "fm": 0.0381968},
            {"g": 2.55664, "d": 19.4427, "d_wgan": -0.109845, "gp": 1.95525, "l1": 0.943151, "ae": 1.12282,
             "g_adv": 0.0643552, "fm": 0.0387037},
        ],
        0.20366013050079346,
    ),
    "piigan": (
        [
            {"g": 7.13246, "l1_zx": 1.418, "ae_zx": 1.18128, "mode_seeking": 0.322826, "g_adv": 0.0238061,
             "fm": 0.0679465, "ae": 1.17539, "reg_z": 0.720163, "kl": 0.539613, "d": 19.7682, "d_wgan": 3.38214e-05,
             "gp": 1.97682},
            {"g": 7.07364, "l1_zx": 1.40504, "ae_zx": 1.17805, "mode_seeking": 0.329618, "g_adv": 0.0257458,
             "fm": 0.068728, "ae": 1.17397, "reg_z": 0.718281, "kl": 0.488893, "d": 19.4304, "d_wgan": -0.0350207,
             "gp": 1.94655},
        ],
        0.4281391501426697,
    ),
}  # fmt: skip


@pytest.mark.parametrize("arch", sorted(RECORDED_WGAN_STEPS))
def test_wgan_recipes_draw_their_randomness_as_recorded(arch: str) -> None:
    assert issubclass(get_recipe(arch), WganCriticsRecipe)
    settings = {"critic_steps": 2, "fm_weight": 2.0, "augment": "color,translation,cutout"}
    if arch == "piigan":
        settings["diversity_weight"] = 0.5
    recipe = make_recipe(arch, **settings)
    assert training_size(arch) == 32 and get_arch(arch).cls.small_config == {"cnum": 4}  # as recorded
    recorded, next_draw = RECORDED_WGAN_STEPS[arch]
    for step, expected in enumerate(recorded):
        logs = recipe.train_step(*batch(arch), step=step)
        assert list(logs) == list(expected)  # the logged terms, in their order
        assert logs == pytest.approx(expected, rel=1e-4, abs=1e-5), step
    assert torch.rand(1).item() == next_draw  # as many draws as before: the position of the global RNG

"""What every training recipe shares: the logged total is the documented weighted sum of the logged terms,
the reconstruction warm-up (`recon_steps`) runs no discriminator at all, the generator's step leaves no
gradients on the discriminator, `hole_weight` separates hole and known means, and the learning-rate warm-up.

Small widths and 64² crops (the Context Encoder trains at 128² only)."""

from __future__ import annotations

import pytest
import torch
from helpers import box_mask

from inpaint_cli.models import context_encoder as ce
from inpaint_cli.models import deepfill_v1, deepfill_v2, glcic, piigan
from inpaint_cli.models.base import hole_and_known_means
from inpaint_cli.registry import create_model, get_recipe

SMALL = {
    "context_encoder": {"bottleneck": 16, "width": 8},
    "glcic": {},
    "deepfill_v1": {"cnum": 4},
    "deepfill_v2": {"cnum": 8},
    "piigan": {"cnum": 4},
}
SIZE = {"context_encoder": 128}  # every other recipe at 64²
CRITICS = ("discriminator", "local_critic", "global_critic")


def make_recipe(arch: str, **settings):
    torch.manual_seed(0)
    if arch == "glcic" and "recon_steps" not in settings:
        settings.setdefault("phase_steps", (0, 0))  # straight to phase 3 (both networks)
    generator = create_model(arch, **SMALL[arch])
    return get_recipe(arch)(generator, image_size=SIZE.get(arch, 64), total_steps=8, **settings)


def batch(arch: str, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    side = size or SIZE.get(arch, 64)
    torch.manual_seed(1)
    return torch.rand(2, 3, side, side), box_mask(2, side, side)


def documented_total(arch: str, logs: dict[str, float]) -> float:
    """Each recipe's docstring formula for "g" from the other logged terms."""
    adv = logs.get("g_adv", 0.0)
    if arch == "deepfill_v2":
        return logs["ae"] + deepfill_v2.GAN_LOSS_WEIGHT * adv
    if arch == "deepfill_v1":
        recon = logs["recon"] if "recon" in logs else logs["l1"] + logs["ae"]
        return deepfill_v1.L1_LOSS_WEIGHT * recon + deepfill_v1.GAN_LOSS_WEIGHT * adv
    if arch == "piigan":
        consistency = logs["recon_zx"] if "recon_zx" in logs else logs["l1_zx"] + logs["ae_zx"]
        return (
            piigan.GAN_LOSS_WEIGHT * adv
            + piigan.KL_WEIGHT * logs["kl"]
            + piigan.REGRESSION_Z_WEIGHT * (consistency + logs["reg_z"])
            + piigan.AE_LOSS_WEIGHT * logs["ae"]
        )
    if arch == "glcic":
        return logs["mse"] + glcic.ALPHA * adv
    return ce.L2_WEIGHT * logs["l2"] + ce.ADV_WEIGHT * adv


@pytest.mark.parametrize("arch", list(SMALL))
@pytest.mark.parametrize("hole_weight", [None, 6.0])
def test_logged_total_is_the_documented_sum(arch: str, hole_weight: float | None) -> None:
    recipe = make_recipe(arch, hole_weight=hole_weight)
    images, masks = batch(arch)
    logs = recipe.train_step(images, masks, step=0)
    assert "g_adv" in logs and "d" in logs  # an adversarial step
    assert logs["g"] == pytest.approx(documented_total(arch, logs), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("arch", list(SMALL))
def test_reconstruction_warm_up_runs_no_discriminator(arch: str) -> None:
    recipe = make_recipe(arch, recon_steps=2)
    critics = {name: net for name, net in recipe.networks.items() if name in CRITICS}
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


@pytest.mark.parametrize("arch", list(SMALL))
def test_the_generator_step_leaves_no_gradient_on_the_critics(arch: str) -> None:
    """Each critic parameter's gradient is accumulated once per critic update and never by the G step."""
    recipe = make_recipe(arch, **({"critic_steps": 2} if arch in ("deepfill_v1", "piigan") else {}))
    updates = 2 if arch in ("deepfill_v1", "piigan") else 1
    counts: dict[int, int] = {}
    for name, net in recipe.networks.items():
        if name in CRITICS:
            for parameter in net.parameters():
                parameter.register_post_accumulate_grad_hook(
                    lambda p: counts.__setitem__(id(p), counts.get(id(p), 0) + 1)
                )
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

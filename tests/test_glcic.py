"""GLCIC (MODELS.md §2): parameter counts, shapes, mean fill, checkpoint metadata, Poisson post-processing,
the three-phase schedule and the discriminators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import box_mask, count_parameters

from inpaint_cli.engine import Inpainter
from inpaint_cli.models import glcic
from inpaint_cli.models.glcic import GLCIC, GLCICDiscriminator, GLCICRecipe
from inpaint_cli.registry import create_model, get_arch
from inpaint_cli.weights import load_model, save_checkpoint


@pytest.fixture(scope="module")
def model() -> GLCIC:
    torch.manual_seed(0)
    return create_model("glcic")


def test_registered_with_its_contract() -> None:
    spec = get_arch("glcic")
    assert spec.cls is GLCIC
    assert spec.default_config == {"mean": (0.485, 0.456, 0.406), "postprocess": "none"}
    assert spec.contract.pad_multiple == 4 and spec.contract.comfortable_size == 512
    assert spec.contract.trainable and spec.contract.needs_weights and not spec.contract.can_sample


def test_parameter_counts(model: GLCIC) -> None:
    with torch.device("meta"):  # 45 M parameters: no need to allocate or initialise them
        discriminator = GLCICDiscriminator(256)
    counts = {
        "completion": count_parameters(model),
        "global": count_parameters(discriminator.global_branch),
        "local": count_parameters(discriminator.local_branch),
        "total": count_parameters(discriminator),
    }
    print("GLCIC:", {k: f"{v:,}" for k, v in counts.items()})
    assert counts["completion"] == pytest.approx(6.07e6, rel=0.01)
    assert counts["global"] == pytest.approx(25.8e6, rel=0.01)
    assert counts["local"] == pytest.approx(19.3e6, rel=0.01)
    assert counts["total"] == pytest.approx(45.1e6, rel=0.01)
    assert len([m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]) == 16  # all but the last
    # conv → BN → ReLU, the paper's order (otenim puts BN after the ReLU).
    first = model.net[0]
    assert [type(m) for m in first] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert first[0].in_channels == 4


@pytest.mark.parametrize("size", [(64, 64), (52, 80)])
def test_output_shapes_and_range(model: GLCIC, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    image = torch.rand(1, 3, *size)
    mask = box_mask(1, *size)
    with torch.no_grad():
        out = model.inpaint(image, mask)
    assert out.shape == (1, 3, *size)
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_first_conv_sees_the_mean_in_the_hole() -> None:
    model = GLCIC(mean=(0.25, 0.5, 0.75)).eval()
    seen: list[torch.Tensor] = []
    model.net[0][0].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    image = torch.rand(1, 3, 32, 32)
    mask = box_mask(1, 32, 32)
    with torch.no_grad():
        out = model.inpaint(image, mask)
        # Values under the hole must not matter: they are replaced by the mean.
        garbage = model.inpaint(torch.where(mask.bool(), torch.rand_like(image), image), mask)
    torch.testing.assert_close(out, garbage)
    net_input = seen[0]
    hole = mask[0, 0].bool()
    for channel, value in enumerate((0.25, 0.5, 0.75)):
        assert torch.all(net_input[0, channel][hole] == value)
        assert torch.equal(net_input[0, channel][~hole], image[0, channel][~hole])
    assert torch.equal(net_input[:, 3:], mask)


def test_mean_survives_a_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = create_model("glcic", postprocess="poisson")
    model.set_mean(GLCICRecipe.mean_colour([np.full((4, 4, 3), (51, 102, 153), np.uint8)]))
    path = tmp_path / "glcic.safetensors"
    save_checkpoint(path, model)
    loaded = load_model(path)
    assert isinstance(loaded, GLCIC)
    assert loaded.arch_config == {"mean": pytest.approx((0.2, 0.4, 0.6)), "postprocess": "poisson"}
    torch.testing.assert_close(loaded.mean, torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1))
    image, mask = torch.rand(1, 3, 16, 16), box_mask(1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(image, mask), model.eval()(image, mask))


@pytest.mark.parametrize("where", ["inside", "corner"])
def test_poisson_postprocess(where: str) -> None:
    torch.manual_seed(3)
    model = GLCIC(postprocess="poisson").eval()
    raw_model = GLCIC(postprocess="none").eval()
    raw_model.load_state_dict(model.state_dict())
    rng = np.random.default_rng(0)
    rgb = (0.8 + 0.05 * rng.random((40, 52, 3))).astype(np.float32)  # bright, far from the raw output
    mask = np.zeros((40, 52), bool)
    if where == "inside":
        mask[12:26, 16:34] = True
    else:  # touches the top and left borders: seamlessClone's rect must still fit
        mask[:14, :18] = True
    blended = Inpainter(model, device="cpu").fill(rgb, mask).rgb
    raw = Inpainter(raw_model, device="cpu").fill(rgb, mask).rgb
    assert np.array_equal(blended[~mask], rgb[~mask])  # only hole pixels change
    assert np.isfinite(blended).all() and blended.min() >= 0.0 and blended.max() <= 1.0
    # Blending pulls the hole towards the colour of its surroundings.
    surroundings = rgb[~mask].mean()
    assert abs(blended[mask].mean() - surroundings) < abs(raw[mask].mean() - surroundings)


def test_phase_lengths_scale_with_short_runs() -> None:
    assert glcic.phase_lengths(0) == (90_000, 10_000)
    assert glcic.phase_lengths(500_000) == (90_000, 10_000)
    assert glcic.phase_lengths(50) == (9, 1)
    assert glcic.phase_lengths(5_000) == (900, 100)
    recipe = GLCICRecipe.__new__(GLCICRecipe)  # phase() needs only the lengths: skip building D
    recipe.tc, recipe.td = glcic.phase_lengths(50)
    assert [recipe.phase(s) for s in (0, 8, 9, 10, 49)] == [1, 1, 2, 3, 3]


def test_recipe_constants() -> None:
    assert glcic.ALPHA == 0.0004
    assert (glcic.PAPER_TC, glcic.PAPER_TD, glcic.PAPER_TOTAL) == (90_000, 10_000, 500_000)
    assert GLCICRecipe.default_batch == 96 and GLCICRecipe.default_size == 256
    assert GLCICRecipe.default_lr == 1.0


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(p, before[name]) for name, p in module.named_parameters())


def test_train_step_updates_only_what_each_phase_trains() -> None:
    size = 64  # the discriminators' convs end at 1×1 here (local patch 32²); batch norm still has 2 values
    torch.manual_seed(4)
    generator = GLCIC().train()
    recipe = GLCICRecipe(generator, total_steps=50, image_size=size, phase_steps=(1, 1))
    assert isinstance(recipe.optimizers["generator"], torch.optim.Adadelta)
    assert recipe.optimizers["generator"].defaults["lr"] == 1.0
    discriminator = recipe.networks["discriminator"]
    images = torch.rand(2, 3, size, size)
    masks = torch.from_numpy(
        np.stack([GLCICRecipe.paper_mask(size, size, np.random.default_rng(i)) for i in range(2)])
    ).float()[:, None]
    expected_keys = {1: {"phase", "mse", "g"}, 2: {"phase", "d"}, 3: {"phase", "d", "g_adv", "mse", "g"}}
    for step, (g_trains, d_trains) in enumerate([(True, False), (False, True), (True, True)]):
        g_before, d_before = _snapshot(generator), _snapshot(discriminator)
        losses = recipe.train_step(images, masks, step)
        assert losses["phase"] == step + 1 and set(losses) == expected_keys[step + 1]
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert _changed(generator, g_before) == g_trains, f"phase {step + 1}"
        assert _changed(discriminator, d_before) == d_trains, f"phase {step + 1}"
    with pytest.raises(ValueError, match="image_size"):
        recipe.train_step(torch.rand(2, 3, 2 * size, 2 * size), masks.repeat(1, 1, 2, 2), 3)


def test_discriminator_forward_backward() -> None:
    torch.manual_seed(5)
    discriminator = GLCICDiscriminator(64)
    assert discriminator.local_size == 32
    images = torch.rand(2, 3, 64, 64, requires_grad=True)
    logits = discriminator(images, images[..., 16:48, 8:40])
    assert logits.shape == (2,)
    logits.sum().backward()
    assert images.grad is not None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in discriminator.parameters())


@pytest.mark.parametrize("size", [256, 128])
def test_paper_mask(size: int) -> None:
    rng = np.random.default_rng(6)
    low, high = 96 * size // 256, 128 * size // 256
    for _ in range(20):
        mask = GLCICRecipe.paper_mask(size, size, rng)
        rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
        height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        assert low <= height <= high and low <= width <= high
        assert mask.sum() == height * width  # one solid rectangle


def test_mean_colour_accepts_arrays_and_batches() -> None:
    arrays = [np.full((2, 2, 3), 255, np.uint8), np.zeros((2, 2, 3), np.float32)]
    assert GLCICRecipe.mean_colour(arrays) == pytest.approx((0.5, 0.5, 0.5))
    batch = torch.zeros(2, 3, 4, 4)
    batch[:, 0] = 1.0
    batch[:, 2] = 0.25
    assert GLCICRecipe.mean_colour([batch]) == pytest.approx((1.0, 0.0, 0.25))
    with pytest.raises(ValueError):
        GLCIC(mean=(0.5, 0.5))

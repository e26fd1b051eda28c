"""GLCIC: parameter counts, shapes, mean fill, checkpoint metadata, Poisson post-processing,
the three-phase schedule and the discriminators."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import box_mask, count_parameters

from inpaint_cli.engine import Inpainter
from inpaint_cli.models import blocks, glcic
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
    assert spec.default_config == {
        "mean": (0.485, 0.456, 0.406),
        "postprocess": "none",
        "padding": "zeros",
        "layer_order": "conv-bn-relu",
        "subtract_mean": False,
    }
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
    assert [type(m) for m in first] == [glcic.MirrorPadConv2d, torch.nn.BatchNorm2d, torch.nn.ReLU]
    assert first[0].in_channels == 4
    # Every conv of C pads as `padding` says (see test_batch_norm_statistics_do_not_depend_on_the_image_size).
    convs = [m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 15 and all(isinstance(m, glcic.MirrorPadConv2d) and not m.mirror for m in convs)


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


def test_mean_and_padding_survive_a_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = create_model("glcic", postprocess="poisson")
    model.set_padding("mirror")
    model.set_mean(GLCICRecipe.mean_colour([np.full((4, 4, 3), (51, 102, 153), np.uint8)]))
    path = tmp_path / "glcic.safetensors"
    save_checkpoint(path, model)
    loaded = load_model(path)
    assert isinstance(loaded, GLCIC)
    assert loaded.arch_config == {
        "mean": pytest.approx((0.2, 0.4, 0.6)),
        "postprocess": "poisson",
        "padding": "mirror",
        "layer_order": "conv-bn-relu",
        "subtract_mean": False,
    }
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
    blended = Inpainter(model, device="cpu", blend="none").fill(rgb, mask).rgb
    raw = Inpainter(raw_model, device="cpu", blend="none").fill(rgb, mask).rgb
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


def _tiled_batch(tiles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """4 random 32² images, each with a centred 16² hole, tiled tiles × tiles: the same content statistics
    at every size, so only the image size differs."""
    generator = torch.Generator().manual_seed(8)
    images = torch.rand(4, 3, 32, 32, generator=generator)
    masks = torch.zeros(4, 1, 32, 32)
    masks[..., 8:24, 8:24] = 1.0
    return images.repeat(1, 1, tiles, tiles), masks.repeat(1, 1, tiles, tiles)


def _batch_norm_input_variances(model: GLCIC, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The mean over channels of each batch norm's input variance over (B, H, W), one forward in train mode
    (so every layer is normalised with its batch statistics, as in training)."""
    seen: list[torch.Tensor] = []
    layers = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    hooks = [
        layer.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].var((0, 2, 3)).mean()))
        for layer in layers
    ]
    model.train()
    with torch.no_grad():
        model(images, masks)
    for hook in hooks:
        hook.remove()
    return torch.stack(seen)


def test_batch_norm_statistics_do_not_depend_on_the_image_size() -> None:
    # With zero padding the dilated convs' taps fall off a 16² map (64² image) far more often than off a
    # 32² one, so the variance of their output grows 4.7× (dilation 16) from 64² to 128²: running statistics
    # from training crops are wrong at any other size. Mirrored padding reads real activations at every size.
    small, large = _tiled_batch(2), _tiled_batch(4)
    ratios = {}
    for padding in ("zeros", "mirror"):
        torch.manual_seed(9)
        model = GLCIC(padding=padding)
        ratios[padding] = _batch_norm_input_variances(model, *large) / _batch_norm_input_variances(model, *small)
    assert ratios["zeros"][9] > 3.0, ratios["zeros"]  # c10, dilation 16: the cause of the dark fills
    assert ratios["mirror"].min() > 0.9 and ratios["mirror"].max() < 1.1, ratios["mirror"]


def test_padding_is_in_the_config_and_zeros_is_the_old_network() -> None:
    torch.manual_seed(11)
    model = GLCIC(padding="mirror")
    assert model.arch_config["padding"] == "mirror"
    image, mask = torch.rand(1, 3, 32, 32), box_mask(1, 32, 32)
    with torch.no_grad():
        mirrored = model.eval()(image, mask)
        model.set_padding("zeros")
        assert model.arch_config["padding"] == "zeros"
        assert not torch.allclose(mirrored, model(image, mask))
        conv = model.net[9][0]  # c10, dilation 16: a zero-padded conv again, on a map smaller than its padding
        x = torch.rand(1, 256, 8, 8)
        torch.testing.assert_close(conv(x), torch.nn.functional.conv2d(x, conv.weight, conv.bias, 1, 16, 16))
        conv.mirror = True
        expected = torch.nn.functional.conv2d(blocks.mirror_pad(x, 16), conv.weight, conv.bias, dilation=16)
        torch.testing.assert_close(conv(x), expected)
    with pytest.raises(ValueError, match="padding"):
        GLCIC(padding="reflect")


def test_mirror_pad_is_reflection_at_any_width() -> None:
    x = torch.rand(2, 3, 7, 9)
    torch.testing.assert_close(blocks.mirror_pad(x, 4), torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect"))
    row = torch.arange(4.0).view(1, 1, 1, 4)
    # Reflected again where the padding is wider than the row: the periodic extension 0 1 2 3 2 1 0 1 …
    assert blocks.mirror_pad(row, 7)[0, 0, 0].tolist() == [3 - abs(i % 6 - 3) for i in range(-7, 11)]
    assert blocks.mirror_pad(row, 7).shape == (1, 1, 15, 18)  # a 1-pixel side is repeated
    assert blocks.mirror_pad(torch.rand(1, 1, 1, 1), 16).shape == (1, 1, 33, 33)


def test_a_trained_glcic_fills_the_same_in_eval_mode_at_twice_its_training_size() -> None:
    # The bundled 128² checkpoint filled 256² images nearly black in eval mode while train mode (batch
    # statistics) filled them plausibly. Train briefly at 64², set the running statistics to the exact
    # training-batch statistics of the final weights (no EMA lag), then fill 64² and 128² images of the same
    # content in eval mode and in train mode (normalised with their own batch's statistics, as in training).
    torch.manual_seed(10)
    generator = GLCIC(mean=(0.5, 0.5, 0.5))
    recipe = GLCICRecipe(generator, image_size=64, phase_steps=(10, 1))
    assert generator.arch_config["padding"] == "mirror"  # what the recipe trains with, saved in checkpoints
    generator.train()
    images, masks = _tiled_batch(2)
    for step in range(2):
        recipe.train_step(images, masks, step)
    for layer in [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: after one batch, exactly its statistics
    with torch.no_grad():
        generator(images, masks)
        gaps = {}
        for tiles in (2, 4):
            batch, holes = _tiled_batch(tiles)
            eval_output = generator.eval()(batch, holes)
            train_output = copy.deepcopy(generator).train()(batch, holes)  # a copy: keep the running statistics
            hole = holes.expand_as(eval_output).bool()
            gaps[32 * tiles] = float((eval_output - train_output)[hole].abs().mean())
    assert gaps[64] < 0.005, gaps  # at the training size the two modes agree
    # Zero padding: 0.32 at 128² (the eval-mode fill 0.70 bright where train mode gives 0.50); mirrored: 0.02.
    assert gaps[128] < 0.05, gaps

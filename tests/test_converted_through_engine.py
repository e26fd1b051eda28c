"""Converted architectures through the engine (`Inpainter`, what `fill` runs) against the model called directly.

The engine runs a model channels-last, and `GatedConv2d` has an inference fast path for channels-last input
(`fast_gate.split_conv_gate`) that once padded symmetrically whatever `tf_padding` said: a DeepFill v2 with the released
config filled its holes with something else through `fill` than called directly. Here each converted
architecture, with the config its converter writes, fills odd-sized images (reflect-padded to the model's
multiple) with the "full" and "crop" strategies, in fp32 and in bf16 (`--half` on a CPU), and must agree with
`model.inpaint` called on contiguous NCHW fp32 tensors of the same (padded) window.

The reference pads as the engine's contract says (reflect, bottom/right, to `pad_multiple`) with numpy and runs
the model directly; the engine's window geometry (`hole_windows`) is read from the engine, as that is not what
is under test. Each DeepFill case first checks that padding matters for its weights and input: the same model
with symmetric padding must fill the hole visibly differently, so a one-pixel shift cannot hide.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint_cli.convert.deepfill import RELEASE_CONFIG
from inpaint_cli.engine import Inpainter, hole_windows
from inpaint_cli.models.blocks import set_tf_padding, signal_preserving_init
from inpaint_cli.registry import create_model

# The configs the converters write (convert/deepfill.py, glcic.py, context_encoder.py), at small widths.
CONVERTED = {
    "deepfill_v2": {"cnum": 8, **RELEASE_CONFIG},
    "deepfill_v1": {"cnum": 8, **RELEASE_CONFIG},
    "glcic_t7": {"mean": (0.456, 0.4472, 0.4155), "padding": "zeros", "layer_order": "conv-bn-relu",
                 "subtract_mean": True},
    "glcic_state_dict": {"mean": (0.5, 0.45, 0.4), "padding": "zeros", "layer_order": "conv-relu-bn"},
}  # fmt: skip
ARCH = {"deepfill_v2": "deepfill_v2", "deepfill_v1": "deepfill_v1", "glcic_t7": "glcic", "glcic_state_dict": "glcic"}
DEEPFILL = ("deepfill_v2", "deepfill_v1")

# bf16 keeps 8 bits of mantissa: through 20–40 layers the fill moves by 0.001–0.01 on average, 0.13 at most
# (measured); symmetric padding in the fast path moved it by 0.14 on average, 0.67 at most.
BF16_MEAN, BF16_MAX = 0.02, 0.2
FP32_MAX = 1e-4


# He-style gains at which the random DeepFill stacks carry the image's structure to the output (hole std
# 0.12–0.15) without saturating; there, symmetric padding moves the fill by 0.12–0.15 on average (measured).
INIT_GAIN = {"deepfill_v2": 2.0, "deepfill_v1": 1.4}


def _model(case: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(ARCH[case], **CONVERTED[case]).eval()
    if case in INIT_GAIN:
        signal_preserving_init(model, gain=INIT_GAIN[case], gate_bias=1.0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # running statistics as a trained file has them
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
    return model


def _image(height: int, width: int, seed: int = 1) -> np.ndarray:
    """Smooth colour gradients with a few sharp edges: structure that a one-pixel shift changes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([0.5 + 0.4 * np.sin(x / 7.0), 0.5 + 0.4 * np.cos(y / 5.0), (x + y) / (height + width)], -1)
    image[(x.astype(int) // 9 + y.astype(int) // 9) % 2 == 0] *= 0.6
    return np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1).astype(np.float32)


def _direct(model: torch.nn.Module, rgb: np.ndarray, mask: np.ndarray, multiple: int) -> np.ndarray:
    """model.inpaint on NCHW fp32 of the window reflect-padded bottom/right to `multiple`, cropped back."""
    height, width = mask.shape
    pad = ((0, (-height) % multiple), (0, (-width) % multiple))
    rgb_p = np.pad(rgb, (*pad, (0, 0)), mode="reflect")
    mask_p = np.pad(mask, pad, mode="reflect")
    image = torch.from_numpy(np.ascontiguousarray(rgb_p.transpose(2, 0, 1)))[None]
    hole = torch.from_numpy(mask_p.astype(np.float32))[None, None]
    # NCHW all through: channels-last weights (the engine converts the model it is given) would make the
    # convs' outputs channels-last even for an NCHW input, and take the fast path under test.
    assert image.is_contiguous() and all(p.is_contiguous() for p in model.parameters())
    with torch.no_grad():
        prediction = model.inpaint(image, hole)[0].numpy().transpose(1, 2, 0)[:height, :width]
    return np.where(mask[..., None], prediction.clip(0, 1), rgb)


def _compare(filled: np.ndarray, expected: np.ndarray, mask: np.ndarray, half: bool) -> tuple[float, float]:
    error = np.abs(filled - expected)
    assert error[~mask].max() == 0.0  # known pixels are the input's
    hole = error[mask]
    worst, mean = float(hole.max()), float(hole.mean())
    if half:
        assert mean <= BF16_MEAN and worst <= BF16_MAX, (worst, mean)
    else:
        assert worst <= FP32_MAX, (worst, mean)
    return worst, mean


def _padding_matters(model: torch.nn.Module, rgb: np.ndarray, mask: np.ndarray, multiple: int) -> None:
    """The same weights with symmetric padding fill this hole differently, by far more than any tolerance."""
    expected = _direct(model, rgb, mask, multiple)
    set_tf_padding(model, False)
    try:
        symmetric = _direct(model, rgb, mask, multiple)
    finally:
        set_tf_padding(model, True)
    difference = np.abs(symmetric - expected)[mask]
    assert difference.mean() > 5 * BF16_MEAN and difference.max() > 0.3, (difference.mean(), difference.max())


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("case", list(CONVERTED))
def test_full_strategy_on_an_odd_size_matches_the_direct_call(case, half):
    model = _model(case)
    height, width = 61, 87
    rgb = _image(height, width)
    mask = np.zeros((height, width), bool)
    mask[17:41, 30:66] = True
    mask[50:53, 5:40] = True  # a thin stroke near the bottom: reaches the reflect-padded rows
    multiple = model.contract.pad_multiple
    assert height % multiple and width % multiple
    expected = _direct(model, rgb, mask, multiple)
    if case in DEEPFILL:
        _padding_matters(model, rgb, mask, multiple)
    result = Inpainter(model, device="cpu", half=half, blend="none").fill(rgb, mask, strategy="full")
    assert result.precision == ("bf16" if half else "fp32") and result.windows == 1
    _compare(result.rgb, expected, mask, half)


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "bf16"])
@pytest.mark.parametrize("case", DEEPFILL)
def test_crop_strategy_matches_the_direct_call_on_each_window(case, half):
    """Two holes far apart: two windows of odd sizes, each filled as the model fills that window alone."""
    model = _model(case)
    height, width = 75, 401
    rgb = _image(height, width, seed=2)
    mask = np.zeros((height, width), bool)
    mask[20:43, 6:29] = True
    mask[40:61, 371:395] = True
    windows = hole_windows(mask, model.contract.comfortable_size)  # the engine's windows at native size
    assert len(windows) == 2
    expected = rgb.copy()
    for top, left, bottom, right, region in windows:
        assert (bottom - top) % 8 and (right - left) % 8  # odd windows: padded by the engine
        window = (slice(top, bottom), slice(left, right))
        expected[window][region] = _direct(model, rgb[window], mask[window], 8)[region]
        _padding_matters(model, rgb[window], mask[window], 8)
    result = Inpainter(model, device="cpu", half=half, blend="none").fill(rgb, mask, strategy="crop")
    assert result.strategy == "crop" and result.windows == 2
    _compare(result.rgb, expected, mask, half)


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "bf16"])
def test_context_encoder_as_converted_matches_the_direct_call(half):
    """The fixed-size centre model: a 128² image with its hole in the centre is one window, the image itself."""
    torch.manual_seed(0)
    model = create_model("context_encoder", variant="centre", bottleneck=64, width=16, conv_bias=True).eval()
    rgb = _image(128, 128, seed=3)
    mask = np.zeros((128, 128), bool)
    mask[40:88, 44:84] = True
    expected = _direct(model, rgb, mask, 1)
    result = Inpainter(model, device="cpu", half=half, blend="none").fill(rgb, mask)
    assert result.windows == 1
    _compare(result.rgb, expected, mask, half)

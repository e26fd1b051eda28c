"""Building blocks shared by the DeepFill family, PiiGAN, GLCIC and the Context Encoder.

Padding follows TF "SAME", as the papers' released code does: `same_padding` gives the symmetric PyTorch padding
that produces the same output *size* as TF. At stride 1 it is also the same alignment. At stride 2 TF
pads asymmetrically (the extra row/column goes bottom/right), so a stride-2 layer here sees the image
shifted by one pixel compared with TF. That only matters for weights trained in TF: `set_tf_padding`
switches every `SameConv2d` under a module to TF's own SAME padding (the extra pixel after, as TF does),
which the converted official DeepFill checkpoints record in their config (`tf_padding`). Weights
trained here keep the symmetric padding.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from . import fast_gate

ActivationName = Literal["elu", "relu", "lrelu", "none"]


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Symmetric zero padding that reproduces TF SAME output sizes: `dilation * (kernel_size - 1) // 2`.

    Exact TF alignment at stride 1. At stride 2 (odd kernel) the output size matches TF for any input
    size, but TF would put the odd padding pixel at the bottom/right only (see module docstring).
    """
    return dilation * (kernel_size - 1) // 2


def make_activation(name: ActivationName) -> nn.Module:
    """The activations the papers use: ELU (DeepFill/PiiGAN), ReLU, LeakyReLU 0.2 (critics), identity."""
    if name == "elu":
        return nn.ELU()
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(0.2)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def tf_same_pads(size: int, kernel_size: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF "SAME" zero padding of one spatial dim: (before, after). The odd pixel goes after, so a 3×3
    stride-2 conv on an even size pads 0 before and 1 after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel_size - 1) + 1 - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """An `nn.Conv2d` with "same" output size: symmetric padding by default, TF's own SAME padding
    (computed per input size, the odd pixel after) when `tf_padding` is set. The parameters are
    `nn.Conv2d`'s either way, so the state dict does not change."""

    tf_padding: bool = False

    def padded_input(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...] | str]:
        """(input, padding) to give `F.conv2d` with this layer's weights: `x` and the symmetric padding, or
        with `tf_padding` `x` zero-padded as TF's SAME pads it and no padding. Every path that runs this
        layer's weights (`forward`, `fast_gate.split_conv_gate`) pads through here.

        TF's pads are symmetric at stride 1 (odd kernels); those are left to the conv itself, which is
        the same arithmetic without a padded copy of the input."""
        if not self.tf_padding:
            return x, self.padding
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        top, bottom = tf_same_pads(x.shape[-2], kh, sh, dh)
        left, right = tf_same_pads(x.shape[-1], kw, sw, dw)
        if top == bottom and left == right:
            return x, (top, left)
        return F.pad(x, (left, right, top, bottom)), (0, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.tf_padding:
            return super().forward(x)
        x, padding = self.padded_input(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


def set_tf_padding(module: nn.Module, enabled: bool) -> None:
    """Pad every `SameConv2d` under `module` as TF's SAME does (`enabled`) or symmetrically."""
    for layer in module.modules():
        if isinstance(layer, SameConv2d):
            layer.tf_padding = enabled


def mirror_pad(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims of `x` by `pad` on every side with mirrored values (reflection without
    repeating the edge), for any `pad`: where it is not smaller than a side, the padded map is reflected
    again (a periodic mirror extension); a 1-pixel side is repeated."""
    pad_h = pad_w = pad
    while pad_h or pad_w:
        step_h, step_w = min(pad_h, x.shape[-2] - 1), min(pad_w, x.shape[-1] - 1)
        if step_h == step_w == 0:  # what is left to pad has a single row or column: repeating it is its mirror
            return F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="replicate")
        x = F.pad(x, (step_w, step_w, step_h, step_h), mode="reflect")
        pad_h, pad_w = pad_h - step_h, pad_w - step_w
    return x


class MirrorPadConv2d(nn.Conv2d):
    """A conv with "same" output size, padded with zeros (the paper's) or, with `mirror` set, by mirroring
    the map (`mirror_pad`).

    With zeros, the share of a dilated kernel's taps that fall outside the map depends on the map's size
    (at dilation 16 on a 32² map, 4 of the 9 taps are inside everywhere; on a 64² map 6.25 on average),
    so the layer's activation statistics, and with them the batch-norm statistics, change with the image
    size; mirrored taps read real activations at every size. The parameters are `nn.Conv2d`'s either way."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
    ) -> None:
        padding = same_padding(kernel_size, dilation)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation)
        self.same_padding, self.mirror = padding, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.mirror:
            return super().forward(x)
        x = mirror_pad(x, self.same_padding)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def resize_nearest_tf(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """TF1's `resize_nearest_neighbor(x, size, align_corners=True)` on (B, C, H, W): output index j reads
    input round(j·(in−1)/(out−1)), computed in float32 as TF does. Halving a 64-pixel side picks pixels
    0, 2, …, 30, 33, 35, …, 63, where strided slicing picks 0, 2, …, 62."""

    def indices(n_in: int, n_out: int) -> torch.Tensor:
        scale = np.float32((n_in - 1) / (n_out - 1)) if n_out > 1 else np.float32(0.0)
        picked = np.floor(np.arange(n_out, dtype=np.float32) * scale + np.float32(0.5)).astype(np.int64)
        return torch.from_numpy(np.minimum(picked, n_in - 1)).to(x.device)

    rows, cols = indices(x.shape[-2], size[0]), indices(x.shape[-1], size[1])
    return x.index_select(-2, rows).index_select(-1, cols)


def resize_nearest(x: torch.Tensor, size: tuple[int, int], tf_resize: bool = False) -> torch.Tensor:
    """Nearest resize of (B, C, H, W) to `size`: PyTorch's nearest mode, or TF1's align_corners=True pixel
    choice (`resize_nearest_tf`) for weights trained in TF (the DeepFill models' `tf_resize` key)."""
    if tf_resize:
        return resize_nearest_tf(x, size)
    return F.interpolate(x, size=size, mode="nearest")


# The DeepFill models' `channel_order` key: "bgr" for the released TF weights, trained on OpenCV-loaded images.
CHANNEL_ORDERS = ("rgb", "bgr")


def check_channel_order(channel_order: str) -> None:
    """Refuse a `channel_order` other than "rgb" and "bgr" (ValueError)."""
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")


def in_channel_order(image: torch.Tensor, channel_order: str) -> torch.Tensor:
    """An RGB (B, 3, H, W) batch in `channel_order`, or one in `channel_order` back in RGB (the flip is its
    own inverse)."""
    return image.flip(1) if channel_order == "bgr" else image


def conv2d_same(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    bias: bool = True,
) -> SameConv2d:
    """A plain (linear) conv with SAME padding, e.g. the RGB output layer of a generator."""
    return SameConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=same_padding(kernel_size, dilation),
        dilation=dilation,
        bias=bias,
    )


class GatedConv2d(nn.Module):
    """DeepFill v2's gated convolution: output = act(features) · sigmoid(gates).

    One conv produces 2·out_channels raw channels, split in half into features and gates, so
    `out_channels` is the *effective* width (the official code's cnum = 48 gives 24 here). RGB output
    layers are not gated in DeepFill v2: build those with `conv2d_same`.

    `reference_forward` is the formula; `forward` computes the same values through the CPU fast paths of
    `fast_gate` where they apply (the activations `make_activation` builds, outside torch.compile).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: ActivationName = "elu",
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.conv = conv2d_same(in_channels, 2 * out_channels, kernel_size, stride, dilation)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast_gate.applies(self.activation):
            return fast_gate.gated_conv(self.conv, x, self.out_channels, self.activation)
        return self.reference_forward(x)

    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The gated convolution as the paper writes it: split the conv output, act(F) · sigmoid(G)."""
        features, gates = self.conv(x).split(self.out_channels, dim=1)
        return self.activation(features) * torch.sigmoid(gates)


class ConvBlock(nn.Module):
    """Conv (TF SAME) followed by an activation, ELU by default: the DeepFill v1 / PiiGAN layer.

    `forward(x, add)` adds `add` to the pre-activation when given. PiiGAN's `gen_conv_add_z`
    uses this to inject its latent map: pass the (B, 1, h, w) z map, resized to this layer's output
    size; it broadcasts over channels.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        activation: ActivationName = "elu",
    ) -> None:
        super().__init__()
        self.conv = conv2d_same(in_channels, out_channels, kernel_size, stride, dilation)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor, add: torch.Tensor | None = None) -> torch.Tensor:
        y = self.conv(x)
        if add is not None:
            y = y + add
        return self.activation(y)


# Measured on the default widths at 128² (input negated → mean |Δ output|): 0.41 for DeepFill v2 with these
# settings (std of the output 0.40, far from tanh saturation), 0.18 for DeepFill v1 and 0.09–0.15 for PiiGAN;
# 0.0000 for all three with the default init.
GATED_INIT_GAIN, GATED_INIT_GATE_BIAS = 2.0, 1.0
ELU_STACK_INIT_GAIN = 1.2


def signal_preserving_init(module: nn.Module, *, gain: float, gate_bias: float = 0.0) -> None:
    """Re-initialise every `GatedConv2d` and `ConvBlock` under `module`: weights N(0, gain²/fan_in), biases 0,
    the gate half of a gated conv's bias `gate_bias`.

    Why: the DeepFill/PiiGAN generators stack 17–30 convolutions with no normalisation. With TF's Glorot
    or PyTorch's default init each layer shrinks the signal (a gated layer halves it through
    sigmoid(0) = 0.5), so at init the output does not depend on the input at all (negating the input
    image changes DeepFill v2's output by < 1e-4) and the first thousand steps learn only a flat mean
    colour. A He-style gain, and gates that start mostly open (bias +1, like a highway network's gate
    bias), keep the signal alive through the stack. Plain output convs keep PyTorch's default.
    """
    for layer in module.modules():
        if isinstance(layer, GatedConv2d | ConvBlock):
            conv = layer.conv
            fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
            nn.init.normal_(conv.weight, 0.0, gain / math.sqrt(fan_in))
            nn.init.zeros_(conv.bias)
            if isinstance(layer, GatedConv2d):
                with torch.no_grad():
                    conv.bias[layer.out_channels :] = gate_bias


class UpConv(nn.Module):
    """The DeepFill "deconv": ×2 nearest-neighbour upsampling, then `conv` (any block, stride 1).

    TF resizes with align_corners=True; for an exact ×2 that picks the same source pixels as PyTorch's
    nearest mode (output j reads round(j·(n−1)/(2n−1)) = floor(j/2)), so converted TF weights need no switch
    here (tests/test_convert_deepfill.py compares with TF's own resize).
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SNConvLeakyReLU(nn.Module):
    """Spectral-normalised conv (1 power iteration per training forward, persistent u) + LeakyReLU 0.2.

    The SN-PatchGAN layer of DeepFill v2's discriminator; defaults are its 5×5, stride 2, SAME.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.conv = spectral_norm(conv2d_same(in_channels, out_channels, kernel_size, stride), n_power_iterations=1)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))

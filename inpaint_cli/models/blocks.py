"""Building blocks shared by the DeepFill family, PiiGAN, GLCIC and the Context Encoder.

Padding follows TF "SAME" (MODELS.md, Notation): `same_padding` gives the symmetric PyTorch padding
that produces the same output *size* as TF. At stride 1 it is also the same alignment. At stride 2 TF
pads asymmetrically (the extra row/column goes bottom/right), so a stride-2 layer here sees the image
shifted by one pixel compared with TF. That only matters when porting TF weights, which we do not load;
our weights are trained with this padding.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

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


def conv2d_same(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    stride: int = 1,
    dilation: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A plain (linear) conv with TF-SAME padding, e.g. the RGB output layer of a generator."""
    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=same_padding(kernel_size, dilation),
        dilation=dilation,
        bias=bias,
    )


class GatedConv2d(nn.Module):
    """DeepFill v2 gated convolution (MODELS.md §4.2): `act(F) * sigmoid(G)`.

    One conv produces 2·out_channels raw channels, split in half into features F and gates G, so
    `out_channels` is the *effective* width (the official code's cnum = 48 gives 24 here). RGB output
    layers are not gated in DeepFill v2: build those with `conv2d_same`.
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
        raw = self.conv(x)
        features, gates = raw.split(self.out_channels, dim=1)
        if raw.dim() == 4 and raw.is_contiguous(memory_format=torch.channels_last):
            # Channel halves of a channels-last tensor are strided views; on CPU the elementwise
            # kernels run ~4× slower on them than a copy plus a contiguous kernel.
            features = features.contiguous(memory_format=torch.channels_last)
            gates = gates.contiguous(memory_format=torch.channels_last)
        return self.activation(features) * torch.sigmoid(gates)


class ConvBlock(nn.Module):
    """Conv (TF SAME) followed by an activation, ELU by default: the DeepFill v1 / PiiGAN layer (§3.2).

    `forward(x, add)` adds `add` to the pre-activation when given. PiiGAN's `gen_conv_add_z` (§5.2)
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

    TF resizes with align_corners=True, which picks slightly different source pixels than PyTorch's
    nearest mode; irrelevant for weights trained here.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class SNConvLeakyReLU(nn.Module):
    """Spectral-normalised conv (1 power iteration per training forward, persistent u) + LeakyReLU 0.2.

    The SN-PatchGAN layer of DeepFill v2 (§4.3); defaults are its 5×5, stride 2, SAME.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.conv = spectral_norm(
            conv2d_same(in_channels, out_channels, kernel_size, stride), n_power_iterations=1
        )
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))

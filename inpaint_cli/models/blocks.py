"""Building blocks shared by the DeepFill family, PiiGAN, GLCIC and the Context Encoder.

Padding follows TF "SAME" (MODELS.md, Notation): `same_padding` gives the symmetric PyTorch padding
that produces the same output *size* as TF. At stride 1 it is also the same alignment. At stride 2 TF
pads asymmetrically (the extra row/column goes bottom/right), so a stride-2 layer here sees the image
shifted by one pixel compared with TF. That only matters for weights trained in TF: `set_tf_padding`
switches every `SameConv2d` under a module to TF's own SAME padding (the extra pixel after, as TF does),
which the converted official DeepFill checkpoints record in their config (`tf_padding`). Weights
trained here keep the symmetric padding.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable
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
        layer's weights (`forward`, `GatedConv2d`'s split fast path) pads through here.

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


def _is_channels_last(raw: torch.Tensor) -> bool:
    """A 4-D tensor laid out channels-last (and not also plain contiguous, as 1×1 maps or 1 channel are)."""
    return raw.dim() == 4 and not raw.is_contiguous() and raw.is_contiguous(memory_format=torch.channels_last)


def _dense_halves(raw: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features, gates): the two channel halves of `raw`, as tensors the element-wise kernels run fast on.

    NCHW halves are views (each sample's half is one contiguous block). Channel halves of a channels-last
    tensor are strided views, on which CPU element-wise kernels run 5-20× slower than a copy to a dense
    channels-last tensor plus the dense kernel (measured: ELU on a (8, 24, 128, 128) half 33 ms strided, 1.3 ms
    copy + 3.1 ms dense), so those are copied.
    """
    features, gates = raw.split(channels, dim=1)
    if _is_channels_last(raw):
        features = features.contiguous(memory_format=torch.channels_last)
        gates = gates.contiguous(memory_format=torch.channels_last)
    return features, gates


def _activation_value(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`activation(x)` through the functional op, so module hooks (e.g. FlopCounterMode's module tracker) do not
    fire inside the autograd.Function."""
    if isinstance(activation, nn.ELU):
        return F.elu(x, activation.alpha)
    if isinstance(activation, nn.ReLU):
        return F.relu(x)
    if isinstance(activation, nn.LeakyReLU):
        return F.leaky_relu(x, activation.negative_slope)
    return x  # nn.Identity


def _activation_in_place(activation: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`activation(x)` written over x (one of `_FUSABLE`; inference only)."""
    if isinstance(activation, nn.ELU):
        return F.elu_(x, activation.alpha)
    if isinstance(activation, nn.ReLU):
        return F.relu_(x)
    if isinstance(activation, nn.LeakyReLU):
        return F.leaky_relu_(x, activation.negative_slope)
    return x  # nn.Identity


def _activation_grad(
    activation: nn.Module, grad: torch.Tensor, result: torch.Tensor, out: torch.Tensor | None = None
) -> torch.Tensor:
    """d activation(x)/dx · grad, from the activation's *result* (so x need not be kept); into `out` if given.

    ELU: grad·(result + α) for x ≤ 0, i.e. exp(x) computed as expm1(x) + 1 (what autograd does for the in-place
    elu_; it differs from exp(x) by fp32 rounding only). ReLU and LeakyReLU: the sign of the result is the sign
    of x. Identity: grad.
    """
    aten = torch.ops.aten
    if isinstance(activation, nn.ELU):
        if out is None:
            return aten.elu_backward(grad, activation.alpha, 1, 1, True, result)
        return aten.elu_backward.grad_input(grad, activation.alpha, 1, 1, True, result, grad_input=out)
    if isinstance(activation, nn.ReLU):
        value = aten.threshold_backward(grad, result, 0)
    elif isinstance(activation, nn.LeakyReLU):
        value = aten.leaky_relu_backward(grad, result, activation.negative_slope, True)
    else:  # nn.Identity
        value = grad
    return value if out is None else out.copy_(value)


# The activations `_activation_grad` differentiates from their result (`make_activation` builds these).
_FUSABLE = (nn.ELU, nn.ReLU, nn.LeakyReLU, nn.Identity)


class _GatedActivation(torch.autograd.Function):
    """y = act(F)·sigmoid(G) for raw = [F, G] (channel halves), with a hand-written backward.

    Autograd's own graph of `act(F) * sigmoid(G)` saves the same two tensors (act(F), sigmoid(G)) but builds
    d raw with two extra passes: each half's gradient is written to its own tensor and then concatenated
    (split's backward). This backward writes both halves straight into one d raw tensor (NCHW), or
    concatenates dense halves (channels-last, where writing into strided halves is slow). Values equal
    autograd's up to fp32 rounding (tests/test_blocks.py). Not twice differentiable (no gradient penalty
    through gated convs; none of the recipes needs one).
    """

    @staticmethod
    def forward(ctx: Any, raw: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
        features, gates = _dense_halves(raw, channels)
        gate = torch.sigmoid(gates)
        value = _activation_value(activation, features)
        ctx.activation = activation
        ctx.raw_shape = raw.shape
        ctx.channels_last = _is_channels_last(raw)
        ctx.save_for_backward(value, gate)
        return value * gate

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        value, gate = ctx.saved_tensors
        if ctx.channels_last:
            grad = grad.contiguous(memory_format=torch.channels_last)
            features_grad = _activation_grad(ctx.activation, grad * gate, value)
            gates_grad = torch.ops.aten.sigmoid_backward(grad * value, gate)
            return torch.cat([features_grad, gates_grad], dim=1), None, None
        raw_grad = grad.new_empty(ctx.raw_shape)
        features_out, gates_out = raw_grad.split(value.shape[1], dim=1)
        _activation_grad(ctx.activation, grad * gate, value, out=features_out)
        torch.ops.aten.sigmoid_backward.grad_input(grad * value, gate, grad_input=gates_out)
        return raw_grad, None, None


def _compiling() -> bool:
    """Whether torch.compile (dynamo) is tracing this call (torch.compiler.is_compiling, torch >= 2.3)."""
    is_compiling = getattr(torch.compiler, "is_compiling", None)
    return bool(is_compiling()) if is_compiling is not None else False


def gated_activation(raw: torch.Tensor, channels: int, activation: nn.Module) -> torch.Tensor:
    """DeepFill v2's gate on a conv output: activation(raw[:, :channels]) · sigmoid(raw[:, channels:]).

    With autograd: `_GatedActivation`. Without (inference): the product is formed in place in the activation's
    output. Activations other than `make_activation`'s, and code traced by torch.compile, use the plain
    expression.
    """
    if type(activation) not in _FUSABLE or _compiling():  # exact types: a subclass may compute something else
        # Under torch.compile the plain expression is best: inductor fuses it into one kernel.
        features, gates = _dense_halves(raw, channels)
        return activation(features) * torch.sigmoid(gates)
    if torch.is_grad_enabled() and raw.requires_grad:
        return _GatedActivation.apply(raw, channels, activation)
    features, gates = _dense_halves(raw, channels)
    if isinstance(activation, nn.Identity):
        return features * torch.sigmoid(gates)
    return _activation_value(activation, features).mul_(torch.sigmoid(gates))


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
        if not torch.is_grad_enabled() and _is_channels_last(x) and self._splittable():
            return self._forward_split(x)
        return gated_activation(self.conv(x), self.out_channels, self.activation)

    def _splittable(self) -> bool:
        return type(self.activation) in _FUSABLE and self.conv.padding_mode == "zeros" and not _compiling()

    def _forward_split(self, x: torch.Tensor) -> torch.Tensor:
        """Inference on channels-last input: features and gates as two convs of out_channels each, so both
        come out dense, and the gate is formed in place (ELU, sigmoid, multiply: three passes).

        The channel halves of one 2·out_channels channels-last output are strided; making them dense costs
        two copies and the element-wise kernels a new tensor each. Measured on one AVX-512 core, a 24-channel
        layer at 256²: 37.9 ms as one conv + gate, 14.8 ms split (the conv alone 6.6 ms); 96 channels at
        64²: 7.7 vs 7.0 ms. Same values (each output channel is the same dot product)."""
        conv = self.conv
        x, padding = conv.padded_input(x)  # TF's SAME padding when the layer has `tf_padding` set
        weights = conv.weight.split(self.out_channels)
        biases = (None, None) if conv.bias is None else conv.bias.split(self.out_channels)
        features, gates = (
            F.conv2d(x, weight, bias, conv.stride, padding, conv.dilation, conv.groups)
            for weight, bias in zip(weights, biases, strict=True)
        )
        return _activation_in_place(self.activation, features).mul_(gates.sigmoid_())


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

    The SN-PatchGAN layer of DeepFill v2 (§4.3); defaults are its 5×5, stride 2, SAME.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, stride: int = 2) -> None:
        super().__init__()
        self.conv = spectral_norm(conv2d_same(in_channels, out_channels, kernel_size, stride), n_power_iterations=1)
        self.activation = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))

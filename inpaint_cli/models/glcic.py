"""GLCIC: Globally and Locally Consistent Image Completion (Iizuka, Simo-Serra & Ishikawa, SIGGRAPH 2017).

This docstring is the spec the module implements: the contract, the layers, the losses and the schedule,
then where and why it departs from the paper and the reference implementations.

In:  image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) with 1 = hole; H and W multiples of 4. The network
     sees 4 channels [x with hole pixels set to the training-set mean colour, M]; what lies under
     the hole never matters. The mean is the `mean` config key, stored in checkpoint metadata.
Out: the full-size prediction (B, 3, H, W) through a sigmoid, in [0, 1]. The result is the composite
     out·M + x·(1−M), done by the engine; `postprocess="poisson"` first Poisson-blends the prediction
     into the known pixels around the hole (see `inpaint_cli/poisson_blend.py`).

Completion network (6.07 M parameters): every layer is conv → BN → ReLU except the last,
3×3 convs unless noted, "same" padding (zeros as in the paper, or mirrored as the recipe trains; see
deviations):
  c1 5×5→64 · c2 s2→128 · c3→128 · c4 s2→256 · c5, c6→256 · c7–c10 dilated 2/4/8/16→256 · c11, c12→256 ·
  d13 deconv (ConvTranspose 4×4 s2 p1)→128 · c14→128 · d15 deconv→64 · c16→32 · c17→3 (sigmoid)

Context discriminators (45.1 M parameters at 256²), image in [0, 1], no mask input:
  global: the whole image, 6 × [5×5 s2 conv + BN + ReLU] 64, 128, 256, 512, 512, 512 → FC 1024 + ReLU
  local:  a (size/2)² patch,  5 × the same          64, 128, 256, 512, 512      → FC 1024 + ReLU
  fusion: concat (2048) → FC → 1 logit (sigmoid + BCE in the paper; BCEWithLogits here, the same maths).
The FC inputs are 512·(size/64)² and 512·(size/2/32)² (4×4×512 at 256²), so the discriminator is built
for one training size (`image_size`), e.g. 128² for a quick run.

Losses: L_MSE = mean((out·M − x·M)²) over every element (otenim's form: hole pixels, averaged over
all pixels); C in phase 3 minimises L_MSE + α·BCE(D(out, out_local), real) with α = 0.0004; D minimises
½·[BCE(D(x, x_local), real) + BCE(D(out, out_local), fake)]. The fake is the **raw** output and its
hole-centred crop, not the composite (as otenim; the paper's text on this is unverified). The real local
patch sits at a random position (the paper's M_d).

Schedule: phase 1 trains C alone with L_MSE for Tc = 90,000 steps, phase 2 trains D alone for
Td = 10,000, phase 3 trains both (one D step, then one C step) until 500,000 steps. Shorter runs scale Tc
and Td by total_steps/500,000 (see `GLCICRecipe`). ADADELTA (torch defaults: lr 1.0, rho 0.9,
eps 1e-6, as otenim) for C and D, batch 96 at 256², one rectangular hole per image with sides in [96, 128]
inside a random 128² area. Before training the loop computes the training-set mean colour
(`GLCICRecipe.mean_colour`) and sets it with `GLCIC.set_mean`, so checkpoints carry the real one.

Deviations from the paper and otenim/GLCIC-PyTorch:
- At inference the engine matches the fill to the known pixels at the hole's border (`border_blend.py`,
  Poisson image editing; `--blend none` leaves it out): not in the paper; it removes the colour casts
  and border steps a network trained on a few hundred images leaves, and leaves the fill's detail alone.
- The recipe trains C with mirrored padding (`padding="mirror"`, set by `GLCICRecipe`; `blocks.mirror_pad`:
  reflection, repeated where the padding is wider than the map), not zeros. With zeros the dilated
  layers' batch-norm statistics depend on the image size, since the share of their taps that fall on the
  padding does: at dilation 16, 4 of 9 taps land on the 32² map of a 128² image, 6.25 on average at 256².
  Their output variance grows 1.5× from 128² to 256² (4.7× from 64² to 128²), the running statistics of
  the training crops misfit every other size, and eval mode compounds the error through the batch norms
  after them: a C trained with zeros at 128² fills 256² images too dark (hole mean 0.30 where train mode
  gives 0.42 and the truth is 0.47), and one trained at 64² lost 5.7 dB at 128² in eval mode, where a
  mirrored one lost none. The bundled checkpoint is trained mirrored. `padding="zeros"` stays the default,
  for the paper's network and for checkpoints saved without the key (which were trained with zeros).
- The authors' Lua release (completionnet_*.t7) feeds the image channels as x − mean with zeros in the
  hole; `subtract_mean=True` runs that input for its converted weights. The default feeds x with the mean
  in the hole (the same hole value, but the known pixels and the zero padding differ by the mean).
- otenim orders each layer conv → ReLU → BN; we use the paper's conv → BN → ReLU. Convs keep their
  bias before BN (redundant, but it is in the 6.07 M count and in otenim). `layer_order="conv-relu-bn"`
  runs otenim's order, for its pretrained model converted by `inpaint models convert` (inpaint_cli/convert/).
- The Telea fast-marching fill before the Poisson blend (`inpaint_cli/poisson_blend.py`) is skipped: the
  clone mask is the hole dilated by `POISSON_DILATION` px, so the blend's boundary values come from known
  pixels and never from the hole of the destination, which is all the fast-marching fill would have
  provided. The blend runs in 8-bit (OpenCV's `seamlessClone`), so post-processed hole pixels are
  quantised to 1/255.
- The C adversarial term is the non-saturating BCE(D(fake), real) (as otenim), not log(1 − D(fake)).
  Without otenim's phase-3 scalings: C's loss is not halved and D's is not
  multiplied by α; α only balances C's two terms. (ADADELTA is nearly scale-free, except that gradients
  scaled by α come close to its eps = 1e-6, which would slow D down.)
- The fake local patch is centred on the hole's bounding box (`hole_centred_boxes`, so any mask shape
  works), not the random area `paper_mask` placed the hole in; the hole is inside it either way.
- Real and fake batches go through D in separate forward passes, as otenim, so D's batch norm
  normalises each with its own statistics. At image_size 64 D's last maps are 1×1: batches of ≥ 2.
- In phase 2 C runs in train mode without gradients (D sees phase-3-like outputs); its parameters stay
  fixed but its BN running statistics keep updating.
- The small-data settings of `TrainingRecipe` (off by default): `recon_steps` and `d_warmup_steps` are Tc
  and Td (phases 1 and 2 are GLCIC's own warm-ups); `adv_ramp_steps` raises α's term (and feature
  matching) from 0 over the first steps of phase 3; `fm_weight` adds feature matching over both branches'
  conv stages (the ground truth's local patch taken at the output's hole-centred box, so each output meets
  its own ground truth); `augment` transforms the whole real and output images, mapped to [−1, 1], and the
  hole alike before the local patches are cropped (`GLCICRecipe.discriminator_views`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..poisson_blend import poisson_blend
from ..registry import InputContract, register, register_recipe
from . import losses
from .base import InpaintModel, TrainingRecipe, crop_boxes, frozen, hole_centred_boxes
from .blocks import MirrorPadConv2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # placeholder until the recipe measures the training set's mean
POSTPROCESS_MODES = ("none", "poisson")
PADDING_MODES = ("zeros", "mirror")  # see `MirrorPadConv2d`
LAYER_ORDERS = ("conv-bn-relu", "conv-relu-bn")  # the paper's; otenim's (its converted weights)


class _Layer(nn.Sequential):
    """[conv, BN, ReLU], run in the paper's order conv → BN → ReLU, or conv → ReLU → BN (otenim's, for
    its converted weights) when `relu_before_bn` is set; the state dict is the same either way."""

    relu_before_bn = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn, relu = self
        return bn(relu(conv(x))) if self.relu_before_bn else relu(bn(conv(x)))


def _conv_bn_relu(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """conv → BN → ReLU, the paper's order."""
    return _Layer(
        MirrorPadConv2d(in_channels, out_channels, kernel_size, stride, dilation),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def _deconv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """4×4 stride-2 transposed conv (padding 1: exactly ×2) → BN → ReLU."""
    return _Layer(
        nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def _as_mean(mean: Iterable[float]) -> tuple[float, float, float]:
    values = tuple(float(v) for v in mean)
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise ValueError(f"mean must be three values in [0, 1] (RGB), got {mean!r}")
    return values  # type: ignore[return-value]


@register(
    "glcic",
    contract=InputContract(pad_multiple=4, comfortable_size=512, can_sample=False, trainable=True, needs_weights=True),
    summary="GLCIC: dilated completion network + global/local context discriminators (Iizuka et al., 2017)",
    paper="doi:10.1145/3072959.3073659",
)
class GLCIC(InpaintModel):
    """The GLCIC completion network; see the module docstring for the layer table.

    mean: the training-set mean RGB colour in [0, 1] that fills the holes of the input (ImageNet's mean
        until the recipe measures the real one). postprocess: "none" or "poisson" (applied in
        `inpaint` only, never during training). padding: how the convs pad, "zeros" (the paper's, and what
        checkpoints without the key were trained with) or "mirror" (what `GLCICRecipe` trains with: batch-norm
        statistics that hold at every image size; see the module docstring's deviations). layer_order:
        "conv-bn-relu" (the paper's) or "conv-relu-bn" (otenim/GLCIC-PyTorch's, set by `inpaint models
        convert` for its weights). subtract_mean: feed the image channels as x − mean, zero in the hole, as
        the authors' Lua release does (set by `inpaint models convert` for its .t7); with zero padding this
        is not the same network as the default x-with-mean-in-the-hole input.
    """

    def __init__(
        self,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        postprocess: str = "none",
        padding: str = "zeros",
        layer_order: str = "conv-bn-relu",
        subtract_mean: bool = False,
    ) -> None:
        mean = _as_mean(mean)
        if postprocess not in POSTPROCESS_MODES:
            raise ValueError(f"postprocess must be one of {POSTPROCESS_MODES}, got {postprocess!r}")
        if layer_order not in LAYER_ORDERS:
            raise ValueError(f"layer_order must be one of {LAYER_ORDERS}, got {layer_order!r}")
        super().__init__(
            mean=mean, postprocess=postprocess, padding=padding, layer_order=layer_order, subtract_mean=subtract_mean
        )
        self.subtract_mean = bool(subtract_mean)
        # Not persistent: the mean lives in the config (checkpoint metadata), not among the tensors.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.net = nn.Sequential(
            _conv_bn_relu(4, 64, 5),  # 1
            _conv_bn_relu(64, 128, 3, stride=2),  # 2
            _conv_bn_relu(128, 128),  # 3
            _conv_bn_relu(128, 256, 3, stride=2),  # 4
            _conv_bn_relu(256, 256),  # 5
            _conv_bn_relu(256, 256),  # 6
            *[_conv_bn_relu(256, 256, 3, dilation=d) for d in (2, 4, 8, 16)],  # 7–10
            _conv_bn_relu(256, 256),  # 11
            _conv_bn_relu(256, 256),  # 12
            _deconv_bn_relu(256, 128),  # 13
            _conv_bn_relu(128, 128),  # 14
            _deconv_bn_relu(128, 64),  # 15
            _conv_bn_relu(64, 32),  # 16
            MirrorPadConv2d(32, 3, 3),  # 17: output, sigmoid below
        )
        self.set_padding(padding)
        for module in self.net:
            if isinstance(module, _Layer):
                module.relu_before_bn = layer_order == "conv-relu-bn"

    def set_padding(self, padding: str) -> None:
        """Pad every conv of the network with "zeros" or by "mirror"ing from now on; saved with the checkpoint
        through `arch_config`. The weights stay, but they compute something else with the other padding."""
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        self.arch_config["padding"] = padding
        for module in self.net.modules():
            if isinstance(module, MirrorPadConv2d):
                module.mirror = padding == "mirror"

    def set_mean(self, mean: Iterable[float]) -> None:
        """Use `mean` (RGB in [0, 1], e.g. `GLCICRecipe.mean_colour(...)`) as the hole fill from now on;
        it is saved with the checkpoint through `arch_config`."""
        values = _as_mean(mean)
        self.arch_config["mean"] = values
        self.mean.copy_(torch.tensor(values).view(1, 3, 1, 1))

    def mean_filled(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network input (B, 4, H, W): [image with hole pixels set to the mean colour, M], or with
        `subtract_mean`, [(image − mean) with hole pixels 0, M] (the same hole, the known pixels shifted)."""
        mean = self.mean.to(image.dtype)
        if self.subtract_mean:
            return torch.cat([(image - mean) * (1.0 - mask), mask], dim=1)
        return torch.cat([image * (1.0 - mask) + mean * mask, mask], dim=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1] (hole values ignored), mask (B, 1, H, W) 1 = hole →
        the raw prediction (B, 3, H, W) in (0, 1)."""
        return torch.sigmoid(self.net(self.mean_filled(image, mask)))

    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → prediction in [0, 1]."""
        prediction = self(image, mask).clamp(0.0, 1.0)
        if self.arch_config["postprocess"] == "poisson":
            prediction = poisson_blend(image, prediction, mask)
        return prediction


class ContextBranch(nn.Module):
    """One context discriminator: `num_convs` × [5×5 s2 conv + BN + ReLU] → flatten → FC 1024 + ReLU."""

    def __init__(self, input_size: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous, size = 3, input_size
        for width in widths:
            layers += [nn.Conv2d(previous, width, 5, stride=2, padding=2), nn.BatchNorm2d(width), nn.ReLU()]
            previous, size = width, (size + 1) // 2  # ceil: k5 s2 p2 output size
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(previous * size * size, 1024)
        self.input_size = input_size

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.features(image)[1]

    def features(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(each conv stage's output after its ReLU, for feature matching; the FC features of `forward`)."""
        if image.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"this discriminator was built for {self.input_size}² inputs, got {tuple(image.shape[-2:])}"
            )
        stages = []
        features = image
        for layer in self.convs:
            features = layer(features)
            if isinstance(layer, nn.ReLU):
                stages.append(features)
        return stages, F.relu(self.fc(features.flatten(1)))


class GLCICDiscriminator(nn.Module):
    """Global + local context discriminators fused into one logit per sample.

    image_size: the square training size the global branch sees; local_size: the local patch side
    (default image_size // 2, 128 at 256²). Both fix the FC input sizes.
    """

    def __init__(self, image_size: int = 256, local_size: int | None = None) -> None:
        super().__init__()
        local_size = image_size // 2 if local_size is None else local_size
        self.image_size, self.local_size = image_size, local_size
        self.global_branch = ContextBranch(image_size, (64, 128, 256, 512, 512, 512))
        self.local_branch = ContextBranch(local_size, (64, 128, 256, 512, 512))
        self.fusion = nn.Linear(2048, 1)

    def forward(self, image: torch.Tensor, local_patch: torch.Tensor) -> torch.Tensor:
        """image (B, 3, S, S) and local_patch (B, 3, S/2, S/2) in [0, 1] → logits (B,)."""
        features = torch.cat([self.global_branch(image), self.local_branch(local_patch)], dim=1)
        return self.fusion(features).squeeze(1)

    def features(self, image: torch.Tensor, local_patch: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(the conv stages of the global then the local branch, the logits of `forward`)."""
        global_stages, global_features = self.global_branch.features(image)
        local_stages, local_features = self.local_branch.features(local_patch)
        logits = self.fusion(torch.cat([global_features, local_features], dim=1)).squeeze(1)
        return global_stages + local_stages, logits


# ---- training recipe -----------------------------------------------------------------------------

ALPHA = 0.0004  # weight of the adversarial term in C's loss
PAPER_TC = 90_000  # phase 1: C alone, MSE
PAPER_TD = 10_000  # phase 2: D alone
PAPER_TOTAL = 500_000  # phase 3 runs until here
LEARNING_RATE = 1.0  # ADADELTA's own default step multiplier; the paper tunes nothing else
BATCH_SIZE = 96
TRAIN_SIZE = 256
HOLE_SIDES = (96, 128)  # per side, at 256²; scaled with the canvas


def reconstruction_loss(prediction: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean((out·M − x·M)²) over every element: hole-only MSE, averaged over all pixels."""
    return F.mse_loss(prediction * mask, image * mask)


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def phase_lengths(total_steps: int) -> tuple[int, int]:
    """(Tc, Td) for a run of `total_steps`: the paper's 90k/10k, scaled by total_steps/500k for shorter
    runs (at least one step each) so every phase still happens; 0 means "unknown", i.e. the paper's."""
    if total_steps <= 0 or total_steps >= PAPER_TOTAL:
        return PAPER_TC, PAPER_TD
    scale = total_steps / PAPER_TOTAL
    return max(1, round(PAPER_TC * scale)), max(1, round(PAPER_TD * scale))


@register_recipe("glcic")
class GLCICRecipe(TrainingRecipe):
    """The three-phase GLCIC schedule with ADADELTA for both networks.

    image_size: the square training size (the discriminator's FC layers depend on it; local patch =
    image_size // 2; the training loop must pass it when it is not 256). phase_steps: (Tc, Td) overriding
    `phase_lengths(total_steps)`. Steps count from 0: phase 1 is steps [0, Tc), phase 2 [Tc, Tc + Td),
    phase 3 from Tc + Td on; `train_step` reports it as losses["phase"]. The shared warm-ups are the
    first two phases: `recon_steps` sets Tc (C alone, MSE) and `d_warmup_steps` Td (D alone against the
    frozen C), each instead of phase_steps (0: the schedule's length). `hole_weight` replaces the hole-only
    MSE by hole_weight·mean_hole + mean_known of the squared error. Logged: g = mse + 0.0004·g_adv (phase
    3), with the other small-data settings (module docstring) g = mse + scale·(0.0004·g_adv + fm_weight·fm).
    """

    min_batch = 2  # batch norm in training mode needs more than one value per channel
    default_batch = BATCH_SIZE
    default_size = TRAIN_SIZE
    default_lr = LEARNING_RATE
    channels_last_on_cpu = True  # 1.04× per step at 1 thread (benchmarks/README.md)
    small_data_adversarial = True

    def __init__(
        self,
        generator: GLCIC,
        *,
        lr: float | None = None,
        total_steps: int = 0,
        image_size: int = TRAIN_SIZE,
        phase_steps: tuple[int, int] | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(generator, lr=lr, total_steps=total_steps, image_size=image_size, **settings)
        generator.set_padding("mirror")  # batch-norm statistics that hold at every size (module docstring)
        self.local_size = image_size // 2
        self.tc, self.td = phase_steps if phase_steps is not None else phase_lengths(total_steps)
        # The shared warm-ups are GLCIC's phases 1 (C alone, MSE) and 2 (D alone).
        for name, phase, length in (("recon_steps", 1, self.recon_steps), ("d_warmup_steps", 2, self.d_warmup_steps)):
            if length and phase_steps is not None:
                raise ValueError(f"{name} and phase_steps both set phase {phase}'s length; pass one of them")
        self.tc = self.recon_steps or self.tc
        self.td = self.d_warmup_steps or self.td
        # So that `generator_trains` and `adversarial_scale` follow the phases.
        self.recon_steps, self.d_warmup_steps = self.tc, self.td
        discriminator = GLCICDiscriminator(image_size, self.local_size)
        self.networks["discriminator"] = discriminator
        self.optimizers = {
            "generator": torch.optim.Adadelta(generator.parameters(), lr=self.lr),
            "discriminator": torch.optim.Adadelta(discriminator.parameters(), lr=self.lr),
        }

    def phase(self, step: int) -> int:
        if step < self.tc:
            return 1
        return 2 if step < self.tc + self.td else 3

    def adversarial(self, step: int) -> bool:
        return self.phase(step) == 3  # phase 2 trains D alone

    def _random_boxes(self, images: torch.Tensor) -> list[tuple[int, int]]:
        """Uniform local-patch positions for real images (the paper's M_d)."""
        height, width = images.shape[-2:]
        tops = torch.randint(0, height - self.local_size + 1, (images.shape[0],)).tolist()
        lefts = torch.randint(0, width - self.local_size + 1, (images.shape[0],)).tolist()
        return list(zip(tops, lefts, strict=True))

    def discriminator_views(
        self, images: torch.Tensor, output: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(real, output, masks) as D sees them: unchanged, or with `augment` transformed alike per sample."""
        # Whole images first, local patches cropped afterwards around the moved hole: the local branch sees a
        # part of the very image the global branch sees (one fused logit judges both), centred on the hole;
        # crops augmented on their own would be shifted and cut by twice the share of their side. DiffAugment's
        # strengths are for [−1, 1] (D's inputs are in [0, 1]): brightness shift and mid-grey zero fill as
        # in the other recipes.
        if not self.augment_policy:
            return images, output, masks
        (real, output), masks = self.augment([images * 2.0 - 1.0, output * 2.0 - 1.0], masks)
        return (real + 1.0) / 2.0, (output + 1.0) / 2.0, masks

    def _d_step(self, images: torch.Tensor, output: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        discriminator = self.networks["discriminator"]
        real, fake, masks = self.discriminator_views(images, output.detach(), masks)
        real_logits = discriminator(real, crop_boxes(real, self._random_boxes(real), self.local_size))
        fake_local = crop_boxes(fake, hole_centred_boxes(masks, self.local_size), self.local_size)
        fake_logits = discriminator(fake, fake_local)
        loss = 0.5 * (_bce(real_logits, real=True) + _bce(fake_logits, real=False))
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["discriminator"].step()
        return loss

    def adversarial_terms(
        self, images: torch.Tensor, output: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """C's BCE(D(out, out_local), real) and, with `fm_weight`, the feature matching of both branches' conv
        stages, else None; D frozen, in train mode (batch statistics). The ground truth's local patch is
        the output's hole-centred one, not M_d: each output is matched with its own ground truth."""
        discriminator = self.networks["discriminator"]
        real, fake, masks = self.discriminator_views(images, output, masks)
        boxes = hole_centred_boxes(masks, self.local_size)
        fake_local = crop_boxes(fake, boxes, self.local_size)
        with frozen(discriminator):
            if not self.fm_weight:
                return _bce(discriminator(fake, fake_local), real=True), None
            fake_features, logits = discriminator.features(fake, fake_local)
            with torch.no_grad():  # a separate forward, as D's own step: batch statistics of its own
                real_features, _ = discriminator.features(real, crop_boxes(real, boxes, self.local_size))
        return _bce(logits, real=True), losses.feature_matching(real_features, fake_features)

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"GLCIC's discriminators were built for {self.image_size}² crops, got {tuple(images.shape[-2:])}; "
                "pass image_size to GLCICRecipe"
            )
        generator = self.networks["generator"]
        phase = self.phase(step)
        if phase == 2:
            with torch.no_grad():  # C stays in train mode so D sees the outputs phase 3 will give it
                output = generator(images, masks)
            return {"phase": 2.0, "d": self._d_step(images, output, masks).item()}

        output = generator(images, masks)
        if self.hole_weight is None:
            mse = reconstruction_loss(output, images, masks)
        else:
            mse = self.reconstruction([(1.0, (output - images).square())], masks)
        if phase == 1:
            loss, logs = mse, {"phase": 1.0}
        else:
            d_loss = self._d_step(images, output, masks)
            adversarial, matching = self.adversarial_terms(images, output, masks)
            scale = self.adversarial_scale(step)
            loss = mse + scale * ALPHA * adversarial
            logs = {"phase": 3.0, "d": d_loss.item(), "g_adv": adversarial.item()}
            if matching is not None:
                loss = loss + scale * self.fm_weight * matching
                logs["fm"] = matching.item()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["generator"].step()
        return {**logs, "mse": mse.item(), "g": loss.item()}

    @staticmethod
    def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """One rectangle, sides uniform in [96, 128]·(side/256), at a random position inside a random
        local area of half the canvas. Returns a bool (H, W) mask, True = hole."""
        area_h, area_w = max(1, height // 2), max(1, width // 2)
        area_top = int(rng.integers(0, height - area_h + 1))
        area_left = int(rng.integers(0, width - area_w + 1))
        low, high = HOLE_SIDES
        hole_h = min(area_h, max(1, int(rng.integers(round(low * height / 256), round(high * height / 256) + 1))))
        hole_w = min(area_w, max(1, int(rng.integers(round(low * width / 256), round(high * width / 256) + 1))))
        top = area_top + int(rng.integers(0, area_h - hole_h + 1))
        left = area_left + int(rng.integers(0, area_w - hole_w + 1))
        mask = np.zeros((height, width), bool)
        mask[top : top + hole_h, left : left + hole_w] = True
        return mask

    def prepare(self, images: list[np.ndarray]) -> None:
        """Holes are filled with the training set's mean colour: measure it and store it in the
        generator's config, so checkpoints carry it in their metadata."""
        self.networks["generator"].set_mean(self.mean_colour(images))

    @staticmethod
    def mean_colour(images: Iterable[Any]) -> tuple[float, float, float]:
        """The mean RGB colour in [0, 1] over every pixel of `images`, for `GLCIC.set_mean`.

        Accepts numpy arrays channel-last ((H, W, 3) or (B, H, W, 3); integer dtypes are scaled by their
        maximum, e.g. /255 for uint8) and torch tensors channel-first ((3, H, W) or (B, 3, H, W), as the
        training batches), in any mix. Accumulates in float64.
        """
        total = np.zeros(3, np.float64)
        count = 0
        for item in images:
            is_tensor = isinstance(item, torch.Tensor)
            array = item.detach().cpu().movedim(-3, -1).numpy() if is_tensor else np.asarray(item)
            pixels = array.reshape(-1, array.shape[-1]).astype(np.float64)
            if np.issubdtype(array.dtype, np.integer):
                pixels /= np.iinfo(array.dtype).max
            total += pixels[:, :3].sum(axis=0)
            count += pixels.shape[0]
        if count == 0:
            raise ValueError("mean_colour needs at least one image")
        return tuple(float(v) for v in total / count)  # type: ignore[return-value]

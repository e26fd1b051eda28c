"""DeepFill v2: gated convolutions + contextual attention, SN-PatchGAN (Yu et al., ICCV 2019).

This docstring is the spec the module implements: the contract, the layers, the losses and the schedule,
then where and why it departs from the paper and the released code.

In:  x_in (B, 3, H, W) in [-1, 1] with hole pixels zeroed, mask (B, 1, H, W) with 1 = hole;
     H and W multiples of 8. The generator sees 5 channels [x_in, ones, ones·M].
Out: x1 (coarse) and x2 (refined), both (B, 3, H, W) through tanh. The result is the composite
     x2·M + x·(1−M), done by the engine (inference) or by the recipe below (training).

Layers (cnum = 48 is the raw conv width of the official code; a gated conv splits it in half, so the
effective widths are 24/48/96 — 4.05 M generator parameters, coarse stage 1.63 M):
  coarse:           c1 5×5→24 · c2 s2→48 · c3→48 · c4 s2→96 · c5, c6→96 · c7–c10 dilated 2/4/8/16→96 ·
                    c11, c12→96 · c13 up→48 · c14→48 · c15 up→24 · c16→12 · c17→3 (plain conv, tanh)
  refine input:     the composite x1·M + x_in·(1−M) only (3 channels)
  conv branch:      x1 5×5→24 · x2 s2→24 · x3→48 · x4 s2→48 · x5, x6→96 · x7–x10 dilated 2/4/8/16→96
  attention branch: p1 5×5→24 · p2 s2→24 · p3→48 · p4 s2→96 · p5→96 · p6→96 (ReLU) ·
                    contextual attention · p9, p10→96
  merge:            concat (192) · a11, a12→96 · a13 up→48 · a14→48 · a15 up→24 · a16→12 · a17→3 (tanh)
Every layer except the RGB outputs is a gated conv with ELU (p6: ReLU); all 3×3 unless noted.

Discriminator (SN-PatchGAN): [image, M] → 6 × (5×5 s2 conv + spectral norm + LeakyReLU 0.2)
with 64, 128, 256, 256, 256, 256 channels → every element of the final map is a logit (4096 at 256²).

Losses: G = mean|x−x1| + mean|x−x2| (whole image) + 1.0·(−mean D(x̂, M));
               D = 0.5·mean ReLU(1 − D(x, M)) + 0.5·mean ReLU(1 + D(x̂, M)).
Schedule: Adam lr 1e-4, betas (0.5, 0.999), one D step per G step, batch 16 at 256², masks =
free-form brush ∪ rectangle.

The G step runs D frozen (no weight gradients) and in eval mode, so spectral norm does one power iteration
per step, in D's own step — as the official graph, which computes D's logits once per iteration for both losses.

Small-budget settings shared by every recipe (`TrainingRecipe`: recon_steps, hole_weight, ema, warmup_steps)
are off by default; `gan_weight=0` or a warm-up step runs no discriminator at all.

Config keys for the official TF weights (`inpaint models convert`, inpaint_cli/convert/; all off for weights
trained here, and for checkpoints saved before the keys existed):
- tf_padding: stride-2 convs pad as TF's SAME (0 before, 1 after on even sizes), not 1 on each side.
- tf_resize: the nearest resizes of the mask to 1/4 and inside contextual attention use TF's
  align_corners=True pixel choice, not PyTorch's nearest / strided slicing. (The ×2 nearest upsampling of
  the "deconvs" picks the same pixels in both.)
- channel_order: "bgr" for the released checkpoints, which were trained on OpenCV-loaded (BGR) images;
  `inpaint` flips the channels on the way in and out. Value range ([-1, 1]) and zero hole fill are as here.

Deviation: at inference the engine matches the fill to the known pixels at the hole's border (`border_blend.py`,
Poisson image editing; `--blend none` leaves it out): not in the paper; it removes the colour casts
and border steps a network trained on a few hundred images leaves, and leaves the fill's detail alone.

Deviation: generator initialisation. With TF's Glorot (or PyTorch's default) init, the output of this stack
of 20+ gated convolutions does not depend on its input (each gate halves the signal), and a short run learns
only a flat colour (measured: 250 steps at 128², val hole L1 unchanged). `blocks.signal_preserving_init`
draws kernels N(0, 2²/fan_in) and starts the gates open (bias +1), so the first steps already use context.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from ..masks import mixed_mask
from ..registry import InputContract, register, register_recipe
from . import losses
from .attention import ContextualAttention
from .augment import Augment
from .base import TrainingRecipe, composite, frozen
from .blocks import (
    GATED_INIT_GAIN,
    GATED_INIT_GATE_BIAS,
    GatedConv2d,
    SNConvLeakyReLU,
    UpConv,
    conv2d_same,
    resize_nearest,
    set_tf_padding,
    signal_preserving_init,
)
from .coarse_to_fine import DeepFillGenerator


def _dilated_stack(width: int) -> list[nn.Module]:
    return [GatedConv2d(width, width, 3, dilation=d) for d in (2, 4, 8, 16)]


def _decoder(in_channels: int, cnum: int) -> nn.Sequential:
    """The shared tail of both stages: 2 convs at 1/4 res, two ×2 up-convs, then the RGB layer."""
    c1, c2, c4 = cnum // 2, cnum, 2 * cnum  # effective widths: 24, 48, 96 for cnum = 48
    return nn.Sequential(
        GatedConv2d(in_channels, c4, 3),
        GatedConv2d(c4, c4, 3),
        UpConv(GatedConv2d(c4, c2, 3)),
        GatedConv2d(c2, c2, 3),
        UpConv(GatedConv2d(c2, c1, 3)),
        GatedConv2d(c1, c1 // 2, 3),
        conv2d_same(c1 // 2, 3, 3),  # RGB output: linear, not gated
    )


@register(
    "deepfill_v2",
    contract=InputContract(pad_multiple=8, comfortable_size=512, can_sample=False, trainable=True, needs_weights=True),
    summary="DeepFill v2: gated convolutions + contextual attention, SN-PatchGAN (Yu et al., ICCV 2019)",
    paper="arXiv:1806.03589",
)
class DeepFillV2(DeepFillGenerator):
    """The DeepFill v2 generator (coarse + refine); see the module docstring for the layer table.

    tf_options: tf_padding, tf_resize, channel_order (`DeepFillGenerator`)."""

    small_config: ClassVar[dict[str, Any]] = {"cnum": 8}

    def __init__(self, cnum: int = 48, **tf_options: Any) -> None:
        super().__init__(cnum, **tf_options)
        if cnum % 4:
            raise ValueError(f"cnum must be a multiple of 4, got {cnum}")
        tf_resize = self.arch_config["tf_resize"]
        c1, c2, c4 = cnum // 2, cnum, 2 * cnum  # effective widths after the gate split

        # Coarse stage: 5 input channels [x_in, ones, ones·M]; the ones channel marks the image border.
        self.coarse = nn.Sequential(
            GatedConv2d(5, c1, 5),
            GatedConv2d(c1, c2, 3, stride=2),
            GatedConv2d(c2, c2, 3),
            GatedConv2d(c2, c4, 3, stride=2),
            GatedConv2d(c4, c4, 3),
            GatedConv2d(c4, c4, 3),
            *_dilated_stack(c4),
            _decoder(c4, cnum),
        )

        # Refine stage, conv ("hallucination") branch on the 3-channel composite.
        self.refine_conv = nn.Sequential(
            GatedConv2d(3, c1, 5),
            GatedConv2d(c1, c1, 3, stride=2),
            GatedConv2d(c1, c2, 3),
            GatedConv2d(c2, c2, 3, stride=2),
            GatedConv2d(c2, c4, 3),
            GatedConv2d(c4, c4, 3),
            *_dilated_stack(c4),
        )

        # Refine stage, attention branch: encoder (p1–p6, p6 with ReLU), attention, p9–p10.
        self.refine_attention_encoder = nn.Sequential(
            GatedConv2d(3, c1, 5),
            GatedConv2d(c1, c1, 3, stride=2),
            GatedConv2d(c1, c2, 3),
            GatedConv2d(c2, c4, 3, stride=2),
            GatedConv2d(c4, c4, 3),
            GatedConv2d(c4, c4, 3, activation="relu"),
        )
        self.contextual_attention = ContextualAttention(
            ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True, tf_resize=tf_resize
        )
        self.refine_attention_decoder = nn.Sequential(GatedConv2d(c4, c4, 3), GatedConv2d(c4, c4, 3))

        # Merge both branches (concat 2·c4) and decode.
        self.refine_decoder = _decoder(2 * c4, cnum)
        # A deviation: see blocks.signal_preserving_init (with the paper's init the output ignores the input).
        signal_preserving_init(self, gain=GATED_INIT_GAIN, gate_bias=GATED_INIT_GATE_BIAS)
        set_tf_padding(self, self.arch_config["tf_padding"])

    def forward(self, x_in: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_in: (B, 3, H, W) in [-1, 1], holes zeroed; mask: (B, 1, H, W), 1 = hole.

        Returns (x1, x2): coarse and refined predictions, (B, 3, H, W) in (-1, 1).
        """
        ones = torch.ones_like(mask)
        x1 = torch.tanh(self.coarse(torch.cat([x_in, ones, ones * mask], dim=1)))

        composite = x1 * mask + x_in * (1.0 - mask)
        conv_features = self.refine_conv(composite)
        attention_features = self.refine_attention_encoder(composite)
        # Nearest resize of the mask to the 1/4-res features, as the official resize_mask_like.
        quarter = (attention_features.shape[-2], attention_features.shape[-1])
        mask_quarter = resize_nearest(mask, quarter, tf_resize=self.arch_config["tf_resize"])
        attention_features = self.contextual_attention(attention_features, attention_features, mask_quarter)
        attention_features = self.refine_attention_decoder(attention_features)

        x2 = torch.tanh(self.refine_decoder(torch.cat([conv_features, attention_features], dim=1)))
        return x1, x2


class DeepFillV2Discriminator(nn.Module):
    """SN-PatchGAN: input [image (3), M (1)], output (B, N) logits, N = 256·(H/64)·(W/64)."""

    def __init__(self, in_channels: int = 4, widths: tuple[int, ...] = (64, 128, 256, 256, 256, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers.append(SNConvLeakyReLU(previous, width, kernel_size=5, stride=2))
            previous = width
        self.layers = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image: (B, 3, H, W) in [-1, 1]; mask: (B, 1, H, W). The last conv has a LeakyReLU too."""
        features = self.layers(torch.cat([image, mask], dim=1))
        return features.reshape(features.shape[0], -1)

    def features(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(each layer's output, the flattened logits of `forward`): what feature matching compares."""
        outputs = []
        features = torch.cat([image, mask], dim=1)
        for layer in self.layers:
            features = layer(features)
            outputs.append(features)
        return outputs, features.reshape(features.shape[0], -1)


# ---- training recipe ----------------------------------------------------------------------------

LEARNING_RATE = 1e-4
ADAM_BETAS = (0.5, 0.999)  # β2 of the released code; the author once said v1's 0.9
D_STEPS_PER_G_STEP = 1
BATCH_SIZE = 16
TRAIN_SIZE = 256
COARSE_L1_WEIGHT = 1.0
REFINE_L1_WEIGHT = 1.0
GAN_LOSS_WEIGHT = 1.0  # mmagic and upstream issue #267 use 0.1; fall back to it if the coarse output collapses


def make_optimizers(
    generator: nn.Module, discriminator: nn.Module, lr: float = LEARNING_RATE
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam(lr 1e-4, betas (0.5, 0.999)) for G and for D, as the released v2 training code."""
    return (
        torch.optim.Adam(generator.parameters(), lr=lr, betas=ADAM_BETAS),
        torch.optim.Adam(discriminator.parameters(), lr=lr, betas=ADAM_BETAS),
    )


def discriminator_loss(
    discriminator: nn.Module, real: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor, augment: Augment | None = None
) -> torch.Tensor:
    """Hinge D loss on [real, M] vs [composite of x2, M]; x2 is detached here.

    Real and fake go through D as one batch, as in the official code, so spectral norm does one power
    iteration per D step. augment: the recipe's `augment`, applied to real, fake and M alike first.
    """
    fake = composite(x2.detach(), real, mask)
    if augment is not None:
        (real, fake), mask = augment([real, fake], mask)
    logits = discriminator(torch.cat([real, fake], dim=0), torch.cat([mask, mask], dim=0))
    real_logits, fake_logits = logits.chunk(2, dim=0)
    return losses.hinge_discriminator_loss(real_logits, fake_logits)


def reconstruction_loss(real: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """mean|x−x1| + mean|x−x2| over the whole image, no hole/valid split."""
    return COARSE_L1_WEIGHT * losses.l1(x1, real) + REFINE_L1_WEIGHT * losses.l1(x2, real)


def adversarial_loss(
    discriminator: nn.Module, real: torch.Tensor, mask: torch.Tensor, x2: torch.Tensor
) -> torch.Tensor:
    """−mean D(x̂, M) on the composite x̂ of x2."""
    return losses.hinge_generator_loss(discriminator(composite(x2, real, mask), mask))


def adversarial_terms(
    discriminator: DeepFillV2Discriminator,
    real: torch.Tensor,
    mask: torch.Tensor,
    x2: torch.Tensor,
    *,
    augment: Augment | None = None,
    feature_matching: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The generator's adversarial term −mean D(x̂, M) after the recipe's `augment`, and with
    `feature_matching` the mean L1 between D's features of [x, M] and of [x̂, M] (a deviation for small
    data, `TrainingRecipe.fm_weight`), else None. Call with D `frozen`."""
    fake = composite(x2, real, mask)
    if augment is not None:
        (real, fake), mask = augment([real.detach(), fake], mask)
    if not feature_matching:
        return losses.hinge_generator_loss(discriminator(fake, mask)), None
    batch = fake.shape[0]
    features, logits = discriminator.features(torch.cat([real, fake]), torch.cat([mask, mask]))
    matching = losses.feature_matching([f[:batch] for f in features], [f[batch:] for f in features])
    return losses.hinge_generator_loss(logits[batch:]), matching


def generator_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    mask: torch.Tensor,
    x1: torch.Tensor,
    x2: torch.Tensor,
    gan_weight: float = GAN_LOSS_WEIGHT,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_G = mean|x−x1| + mean|x−x2| + gan_weight·(−mean D(x̂, M)), no hole/valid split.

    real: (B, 3, H, W) ground truth in [-1, 1]. Returns the total and its detached terms for logging.
    Gradients also reach D's parameters unless it is `frozen`.
    """
    reconstruction = reconstruction_loss(real, x1, x2)
    adversarial = adversarial_loss(discriminator, real, mask, x2)
    total = reconstruction + gan_weight * adversarial
    return total, {"ae": reconstruction.detach(), "g_adv": adversarial.detach()}


@register_recipe("deepfill_v2")
class DeepFillV2Recipe(TrainingRecipe):
    """One D step then one G step per iteration, hinge SN-PatchGAN + L1 on both stages.

    Logged: g = ae + gan_weight·g_adv (ae alone while `adversarial(step)` is false), d = the hinge D loss.
    With `hole_weight` set, ae is Σ over both stages of hole_weight·mean_hole|x−xi| + mean_known|x−xi|.
    The small-data settings of `TrainingRecipe`: during `d_warmup_steps` only D trains (no g logged);
    g_adv and, with `fm_weight`, D's feature matching (logged as fm) are scaled by `adversarial_scale`:
    g = ae + scale·(gan_weight·g_adv + fm_weight·fm); `augment` transforms [x, M] and [x̂, M] alike before
    every D forward.
    """

    default_batch = BATCH_SIZE
    default_size = TRAIN_SIZE
    default_lr = LEARNING_RATE
    small_data_adversarial = True
    channels_last_on_cpu = True  # 1.16–1.20× per step at 1 thread (benchmarks/README.md)
    small_size = 32

    def __init__(
        self,
        generator: DeepFillV2,
        *,
        lr: float | None = None,
        total_steps: int = 0,
        image_size: int | None = None,
        gan_weight: float = GAN_LOSS_WEIGHT,
        **settings: Any,
    ) -> None:
        # SN-PatchGAN is fully convolutional: any image_size works.
        super().__init__(generator, lr=lr, total_steps=total_steps, image_size=image_size, **settings)
        if gan_weight < 0:
            raise ValueError(f"gan_weight cannot be negative (got {gan_weight})")
        self.gan_weight = gan_weight
        self.networks["discriminator"] = DeepFillV2Discriminator()
        g_opt, d_opt = make_optimizers(generator, self.networks["discriminator"], self.lr)
        self.optimizers = {"generator": g_opt, "discriminator": d_opt}

    def adversarial(self, step: int) -> bool:
        return self.gan_weight > 0 and super().adversarial(step)

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        real = images * 2.0 - 1.0
        generator_trains = self.generator_trains(step)
        with torch.set_grad_enabled(generator_trains):  # D's warm-up only reads the fills
            x1, x2 = generator(real * (1.0 - masks), masks)
        logs: dict[str, float] = {}
        if self.adversarial(step):
            d_loss = discriminator_loss(discriminator, real, x2, masks, self.augment)
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizers["discriminator"].step()
            logs["d"] = d_loss.item()
        if not generator_trains:
            return logs
        if self.hole_weight is None:
            reconstruction = reconstruction_loss(real, x1, x2)
        else:
            errors = [(COARSE_L1_WEIGHT, (x1 - real).abs()), (REFINE_L1_WEIGHT, (x2 - real).abs())]
            reconstruction = self.reconstruction(errors, masks)
        g_loss = reconstruction
        if self.adversarial(step):
            # Frozen: no D weight gradients from G's loss; eval: spectral norm reuses this step's power iteration.
            with frozen(discriminator, eval_mode=True):
                adversarial, matching = adversarial_terms(
                    discriminator, real, masks, x2, augment=self.augment, feature_matching=self.fm_weight > 0
                )
            scale = self.adversarial_scale(step)
            g_loss = reconstruction + scale * self.gan_weight * adversarial
            logs["g_adv"] = adversarial.item()
            if matching is not None:
                g_loss = g_loss + scale * self.fm_weight * matching
                logs["fm"] = matching.item()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"g": g_loss.item(), "ae": reconstruction.item(), **logs}

    @staticmethod
    def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """Free-form brush strokes united with DeepFill's random box."""
        return mixed_mask(height, width, rng)

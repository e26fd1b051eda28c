"""DeepFill v1: coarse-to-fine generator with contextual attention, WGAN-GP critics (Yu et al., CVPR 2018).

This docstring is the spec the module implements (contextual attention: attention.py). The layer stacks,
the critics, their losses and the optimisers live in coarse_to_fine.py, shared with PiiGAN;
this module wires the v1 generator and holds v1's recipe, schedule and deviations.

In:  x_in (B, 3, H, W) in [-1, 1] with hole pixels zeroed, mask (B, 1, H, W) with 1 = hole;
     H and W multiples of 8. Both stages see 5 channels: the coarse stage [x_in, ones, ones·M], the
     refine stage [x1·M + x_in·(1−M), ones, M]. The ones channel tells the net where the border is.
Out: x1 (coarse) and x2 (refined), both (B, 3, H, W), a linear conv clipped to [-1, 1]. The result is
     the composite x2·M + x·(1−M), done by the engine (inference) or by the recipe below (training).

Layers (cnum = 32; plain conv + ELU, TF-SAME zero padding, no normalisation; 3×3 unless noted;
3.60 M generator parameters, coarse stage 1.45 M):
  coarse encoder:   c1 5×5→32 · c2 s2→64 · c3→64 · c4 s2→128 · c5, c6→128 · c7–c10 dilated 2/4/8/16→128 ·
                    c11, c12→128
  coarse decoder:   c13 up→64 · c14→64 · c15 up→32 · c16→16 · c17→3 (linear, clip)
  conv branch:      x1 5×5→32 · x2 s2→32 · x3→64 · x4 s2→64 · x5, x6→128 · x7–x10 dilated 2/4/8/16→128
  attention branch: p1 5×5→32 · p2 s2→32 · p3→64 · p4 s2→128 · p5→128 · p6→128 (ReLU) ·
                    contextual attention · p9, p10→128
  merge:            concat (256) · a11, a12→128 · a13 up→64 · a14→64 · a15 up→32 · a16→16 · a17→3 (clip)
"up" = ×2 nearest upsampling then the conv (`UpConv`).

Critics (WGAN-GP, no normalisation): 4 × (5×5 s2 SAME conv + LeakyReLU 0.2) → flatten → dense 1.
  local:  the local_size² hole-centred patch (128² at 256²), widths 64, 128, 256, 512 (4.34 M at 128²)
  global: the whole image, widths 64, 128, 256, 256 (2.73 M at 256²)
  Both see the composite x̂ = x2·M + x_in·(1−M) as the fake and no mask channel.

Losses, P(·) = the local patch, W = spatial discount (γ = 0.9) over the whole hole:
  l1  = [1.2·Σ(|x−x1|·W) + Σ(|x−x2|·W)] / (3·|hole|)      (every hole pixel; see the deviations)
  ae  = [1.2·mean(|x−x1|·(1−M)) + mean(|x−x2|·(1−M))] / mean(1−M)      (known pixels)
  g_adv = −mean D_g(x̂) − mean D_l(P(x̂))
  L_G = 0.001·g_adv + 1.2·l1 + 1.2·ae
  L_D = Σ_{g,l} [mean D(x̂) − mean D(x)] + 10·(GP_g + GP_l), GP on x + α(x̂ − x) with the gradient norm
        taken over hole pixels only.
Schedule: Adam lr 1e-4, betas (0.5, 0.9); 5 critic steps per generator step; batch 16 at 256²;
  masks: a random half-canvas rectangle, each side pair shrunk by up to box/8.

Deviations from the paper / the released code, and why:
- `grid_weight` (off by default) adds a penalty on hole detail that repeats on the 8-px grid of the two
  stride-2 stages and the dilated convs (`losses.grid_artefact`): in adversarial runs on ~500 images the
  critics let that plaid grow and the texture distance rewarded it (training/README.md).
- At inference the engine matches the fill to the known pixels at the hole's border (`border_blend.py`,
  Poisson image editing; `--blend none` leaves it out): not in the paper; it removes the colour casts
  and border steps a network trained on a few hundred images leaves, and leaves the fill's detail alone.
- The L1 term covers the whole hole, not the local patch: W = γ^(d−1) at a hole pixel d pixels (chessboard)
  from the nearest known pixel (`losses.hole_discount`), averaged over the hole. The official code takes
  the mean of the discounted L1 over the local patch, which for its box holes is the hole; under free-form
  or mixed masks about half of the hole pixels (51 % measured at 128² with `mixed_mask`) lie outside the
  patch and got no L1 at all. The local patch stays for the local critic. (neuralgym's map has a one-pixel
  asymmetry, γ⁰ on the first row only; ours is symmetric.)
- The generator's step runs the critics frozen: no gradients on their weights (they were zeroed anyway).
- The 5 critic updates of a step all use the step's batch (fresh GP interpolation each time). The
  official trainer draws a new batch for every critic update; our loop hands a recipe one batch per
  step, and splitting 16 samples five ways would give the critics 3-sample batches with noisy GP.
  The generator runs once per step: its weights do not change during the critic updates, so its
  output for the G update is the same as recomputing it.
- G and the critics get two Adam instances with the same hyperparameters. The official code uses one
  TF optimiser object for both; the per-variable Adam state is the same, only TF1's shared
  bias-correction counter differs.
- Masks are per sample (the loop's contract) rather than one per batch; contextual attention builds
  its known-patch mask per sample (attention.py), and the local patch is centred on each sample's hole
  (`hole_centred_boxes`), which for the paper's training rectangle is exactly its unshrunk box.
- PRETRAIN_COARSE_NETWORK (coarse-only pre-training) is not implemented; the released models skip it.
- Initialisation: N(0, 1.2²/fan_in) kernels, zero biases (`blocks.signal_preserving_init`) instead of TF's
  Glorot-uniform: with Glorot (or PyTorch's default) the untrained 30-conv stack's output does not depend on
  its input at all, and short runs learn only a flat colour. `--recipe critic_steps=N` may lower the 5
  critic updates per G step for short CPU budgets (the shipped checkpoint used 1; its note says so).

Config keys for the official TF weights (`inpaint models convert`, inpaint_cli/convert/deepfill.py; all off
for weights trained here, and for checkpoints saved before the keys existed), as DeepFill v2's:
- tf_padding: stride-2 convs pad as TF's SAME (0 before, 1 after on even sizes), not 1 on each side.
- tf_resize: the nearest resizes of the mask to 1/4 and inside contextual attention use TF's
  align_corners=True pixel choice, not PyTorch's nearest / strided slicing. (The ×2 upsampling of the
  "deconvs" picks the same pixels in both.)
- channel_order: "bgr" for the released checkpoints, trained on OpenCV-loaded (BGR) images; `inpaint`
  flips the channels on the way in and out. Value range ([-1, 1]), zero hole fill, both stages' 5-channel
  inputs and the clip are as the released graph's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..masks import box_mask
from ..registry import InputContract, register, register_recipe
from . import losses
from .attention import ContextualAttention
from .base import composite
from .blocks import ELU_STACK_INIT_GAIN, set_tf_padding, signal_preserving_init
from .coarse_to_fine import D_STEPS_PER_G_STEP as D_STEPS_PER_G_STEP  # both papers' schedule, named here too
from .coarse_to_fine import GAN_LOSS_WEIGHT as GAN_LOSS_WEIGHT
from .coarse_to_fine import (
    DeepFillGenerator,
    WganCriticsRecipe,
    clip_output,
    coarse_encoder,
    known_pixel_l1,
    quarter_mask,
    refine_attention_encoder,
    refine_conv_branch,
    rgb_decoder,
    two_convs,
)


@register(
    "deepfill_v1",
    contract=InputContract(pad_multiple=8, comfortable_size=512, can_sample=False, trainable=True, needs_weights=True),
    summary="DeepFill v1: coarse-to-fine generator with contextual attention, WGAN-GP (Yu et al., CVPR 2018)",
    paper="arXiv:1801.07892",
)
class DeepFillV1(DeepFillGenerator):
    """The DeepFill v1 generator (coarse + refine); see the module docstring for the layer table.

    tf_options: tf_padding, tf_resize, channel_order (`DeepFillGenerator`)."""

    small_config: ClassVar[dict[str, Any]] = {"cnum": 4}

    def __init__(self, cnum: int = 32, **tf_options: Any) -> None:
        super().__init__(cnum, **tf_options)
        if cnum % 2:
            raise ValueError(f"cnum must be even (c16 has cnum/2 channels), got {cnum}")
        tf_resize = self.arch_config["tf_resize"]
        c4 = 4 * cnum

        # Coarse stage on [x_in, ones, ones·M].
        self.coarse_encoder = coarse_encoder(5, cnum)
        self.coarse_decoder = rgb_decoder(cnum)

        # Refine stage on [composite, ones, M]: a conv branch and an attention branch, merged.
        self.refine_conv = refine_conv_branch(5, cnum)
        self.refine_attention_encoder = refine_attention_encoder(5, cnum, p6_activation="relu")
        self.contextual_attention = ContextualAttention(
            ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True, tf_resize=tf_resize
        )
        self.refine_attention_decoder = two_convs(c4, cnum)
        self.refine_merge = two_convs(2 * c4, cnum)
        self.refine_decoder = rgb_decoder(cnum)
        signal_preserving_init(self, gain=ELU_STACK_INIT_GAIN)  # a deviation: see blocks.signal_preserving_init
        set_tf_padding(self, self.arch_config["tf_padding"])

    def forward(self, x_in: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_in: (B, 3, H, W) in [-1, 1], holes zeroed; mask: (B, 1, H, W), 1 = hole.

        Returns (x1, x2): coarse and refined predictions, (B, 3, H, W) in [-1, 1].
        """
        ones = torch.ones_like(mask)
        x1 = clip_output(self.coarse_decoder(self.coarse_encoder(torch.cat([x_in, ones, ones * mask], dim=1))))

        composite = x1 * mask + x_in * (1.0 - mask)
        refine_in = torch.cat([composite, ones, mask], dim=1)
        conv_features = self.refine_conv(refine_in)
        attention_features = self.refine_attention_encoder(refine_in)
        attention_features = self.contextual_attention(
            attention_features,
            attention_features,
            quarter_mask(mask, attention_features, tf_resize=self.arch_config["tf_resize"]),
        )
        attention_features = self.refine_attention_decoder(attention_features)
        merged = self.refine_merge(torch.cat([conv_features, attention_features], dim=1))
        x2 = clip_output(self.refine_decoder(merged))
        return x1, x2


# ---- training recipe ---------------------------------------------------------------------------------

# Adam's betas (0.5, 0.9), the GP weight 10, the 5 critic steps per G step and the GAN loss weight 0.001
# are both papers': coarse_to_fine.ADAM_BETAS, GP_WEIGHT, D_STEPS_PER_G_STEP, GAN_LOSS_WEIGHT.
LEARNING_RATE = 1e-4
BATCH_SIZE = 16
TRAIN_SIZE = 256  # the local patch is half of it (128² at 256²)
GAMMA = 0.9  # spatial discount; the paper says 0.99, the code (and the author, upstream issue #74) 0.9
COARSE_L1_WEIGHT = 1.2  # COARSE_L1_ALPHA: weight of x1's terms inside l1 and ae
L1_LOSS_WEIGHT = 1.2
AE_LOSS_WEIGHT = 1.2


def known_pixel_loss(real: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ae = [1.2·mean(|x−x1|·(1−M)) + mean(|x−x2|·(1−M))] / mean(1−M): `known_pixel_l1` with v1's
    COARSE_L1_WEIGHT."""
    return known_pixel_l1(real, x1, x2, mask, COARSE_L1_WEIGHT)


def discounted_hole_l1(real: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, discount: torch.Tensor) -> torch.Tensor:
    """l1 = 1.2·Σ|x−x1|·W/|hole| + Σ|x−x2|·W/|hole| over the whole image, W = `losses.hole_discount` (the
    official code's patch mean, generalised to holes the local patch does not cover)."""
    return COARSE_L1_WEIGHT * losses.discounted_hole_l1(x1, real, discount) + losses.discounted_hole_l1(
        x2, real, discount
    )


@register_recipe("deepfill_v1")
class DeepFillV1Recipe(WganCriticsRecipe):
    """5 critic updates then 1 generator update per step; losses as in the module docstring.

    image_size: the square training size; the critics' dense layers and the local patch (image_size/2)
    are built for it. Logged: g = gan_weight·g_adv + 1.2·l1 + 1.2·ae, or with `hole_weight` set
    g = gan_weight·g_adv + 1.2·recon (recon = `reconstruction` of 1.2·|x−x1| and |x−x2|); g_adv and the
    critics' terms only on adversarial steps. gan_weight: the paper's 0.001 by default; critic_steps: its 5
    (`WganCriticsRecipe`).

    The small-data settings of `TrainingRecipe`: during `d_warmup_steps` only the critics train (the
    generator runs without gradients and no g is logged); the adversarial terms (g_adv and, with
    `fm_weight`, the critics' feature matching, logged as fm) are scaled by `adversarial_scale`; `augment`
    transforms the real and filled images (and the hole for the local crop and the penalty's mask) before
    every critic forward. `grid_weight` adds grid_weight·(grid(x̂1) + grid(x̂2)) of the coarse and refined
    composites (`losses.grid_artefact`, logged as grid) from the first generator step.
    """

    default_batch = BATCH_SIZE
    default_size = TRAIN_SIZE
    default_lr = LEARNING_RATE
    channels_last_on_cpu = True  # 1.04× per step at 1 thread (benchmarks/README.md)
    model_title = "DeepFill v1"

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        generator = self.networks["generator"]
        self.check_image_size(images)
        real = images * 2.0 - 1.0
        x_in = real * (1.0 - masks)
        generator_trains = self.generator_trains(step)
        with torch.set_grad_enabled(generator_trains):  # the critics' warm-up only reads the fills
            x1, x2 = generator(x_in, masks)
        fake = composite(x2, x_in, masks)
        logs: dict[str, float] = {}
        if self.adversarial(step):
            logs.update(self.update_critics(real, fake, masks))
        if not generator_trains:
            return logs

        if self.hole_weight is None:
            l1 = discounted_hole_l1(real, x1, x2, losses.hole_discount(masks, GAMMA))
            ae = known_pixel_loss(real, x1, x2, masks)
            g_loss = L1_LOSS_WEIGHT * l1 + AE_LOSS_WEIGHT * ae
            logs.update({"l1": l1.item(), "ae": ae.item()})
        else:
            recon = self.reconstruction([(COARSE_L1_WEIGHT, (x1 - real).abs()), (1.0, (x2 - real).abs())], masks)
            g_loss = L1_LOSS_WEIGHT * recon
            logs["recon"] = recon.item()
        g_loss, grid = self.add_grid(g_loss, (composite(x1, x_in, masks), fake), masks)
        logs.update({name: value.item() for name, value in grid.items()})
        if self.adversarial(step):
            g_adv, matching = self.adversarial_terms(real, fake, masks)
            g_loss, terms = self.add_adversarial(g_loss, g_adv, matching, step)
            logs.update({name: value.item() for name, value in terms.items()})
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"g": g_loss.item(), **logs}

    @staticmethod
    def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """DeepFill v1's training hole: a half-canvas box at a uniform position, opposite sides shrunk by up to
        box/8 each."""
        mask, _ = box_mask(height, width, rng)
        return mask

"""PiiGAN: pluralistic inpainting with a style latent (Cai & Wei, IEEE Access 2020, arXiv:1912.01834).

This docstring is the spec the module implements. The backbone is DeepFill v1's (coarse_to_fine.py). Everything
here comes from the released TF code; where the paper differs, the paper is the default and the code an option.

In:  x_in (B, 3, H, W) in [-1, 1] with hole pixels zeroed, mask (B, 1, H, W) with 1 = hole, and a
     latent map z (B, 1, H, W); H and W multiples of 8. The generator multiplies z by M itself, so z
     lives only in the hole. Both stages see 6 channels: [x_in, z·M, ones, M] and
     [x1·M + x_in·(1−M), z·M, ones, M].
     - Sampling (`inpaint`, random-z training pass): z ~ N(0, 1) over the whole image.
     - Ground-truth style: the extractor E encodes the local hole patch into a (local_size)² vector,
       reshaped to a local_size × local_size map and placed over that patch (zero elsewhere).
Out: x1 (coarse) and x2 (refined), both (B, 3, H, W) clipped to [-1, 1]; result = composite of x2.
     Each z gives a different completion.

Layers: the DeepFill v1 generator (coarse_to_fine.py; cnum 32, conv + ELU, SAME padding, contextual
attention, clip), with the latent *added* to the pre-activation of c1–c12, x1–x10, p1–p10 and a11–a12
(`gen_conv_add_z`): z·M nearest-resized to the layer's output resolution (1, ½ or ¼), broadcast over
channels. p6 is ELU here (the released code ignores its ReLU argument). The decoders (c13–c17,
a13–a17) are plain. 3.61 M generator parameters.

Style extractor E, on the local_size² hole patch (64² at 128²): 4 × (5×5 s2 SAME conv +
activation) → 64, 128, 256, 256 → flatten (4096) → two dense heads of local_size² = 4096 (μ, logvar);
36.2 M parameters. Activation: ELU (the paper, default) or LeakyReLU 0.2 (`extractor_activation="lrelu"`,
the released code). Sampling: z = μ + e^{logvar/2}·ε.
Critics: DeepFill v1's (coarse_to_fine.py) at the training size: local on the local_size² patch
(64² at 128²), global on the whole image.

Losses, P(·) = the local patch, all with the weights of setting.yml:
  random-z pass (x1, x2 from z ~ N(0, 1)·M):
    ae    = [1.2·mean(|x−x1|·(1−M)) + mean(|x−x2|·(1−M))] / mean(1−M)   (no hole L1 on this pass)
    g_adv = −mean D_g(x̂) − mean D_l(P(x̂))
    reg_z = 1.2·mean|μ(E(P(x̂))) − P(z·M)|
  ground-truth-style pass (xr1, xr2 from z_real = sample(E(P(x)))):
    l1_zx = 1.2·mean_hole|x−xr1| + 1.2·mean_hole|x−xr2| (every hole pixel);  ae_zx = ae on (xr1, xr2)
    KL    = −0.5·Σ(1 + logvar − μ² − e^logvar) over E(P(x)), summed over batch and dims
  L_G = 0.001·g_adv + 0.1·KL + 1.2·l1_zx + 1.2·ae_zx + 1.2·ae + 1.2·reg_z    (reg_z effectively 1.44)
  L_D = DeepFill v1's WGAN-GP on both critics, λ = 10, hole-masked gradient norm.
Schedule: Adam lr 1e-4, betas (0.5, 0.9); 5 critic steps per generator step; batch 13 at 128²;
  mask: a centred half-canvas box (64² in 128²), each side pair shrunk by 0–4 px (MAX_DELTA 8).

Deviations from the paper / the released code, and why:
- At inference the engine matches the fill to the known pixels at the hole's border (`border_blend.py`,
  Poisson image editing; `--blend none` leaves it out): not in the paper; it removes the colour casts
  and border steps a network trained on a few hundred images leaves, and leaves the fill's detail alone.
- l1_zx averages over every hole pixel, not over the local patch P: under free-form or mixed masks about
  half of the hole lies outside the patch and got no reconstruction loss (as in DeepFill v1, whose
  deviation this shares). The patch stays for E and the local critic.
- The small-data settings of `TrainingRecipe` (d_warmup_steps, adv_ramp_steps, fm_weight, augment) act
  as in DeepFill v1's recipe; during the critics' warm-up neither G nor E is updated. `gan_weight`
  (default the paper's 0.001) weighs g_adv; `grid_weight` adds DeepFill v1's grid penalty
  (`losses.grid_artefact`) of the composite x̂, not a term of the paper.
- `recon_steps` skips the critics and g_adv only; KL and reg_z train from the first step. With
  `hole_weight`, l1_zx + ae_zx becomes hole_weight·mean_hole + mean_known of 1.2·|x−xr1| and 1.2·|x−xr2|.
- E is trained, in the generator's optimiser: the released code never updates E, which makes
  KL and the latent regression train nothing in E. This is our reading of the paper's intent.
- Standard reparameterisation μ + e^{logvar/2}·ε; the released code computes μ + (μ + e^{logvar/2}·ε)·ε.
- E uses ELU by default (the paper); the code's LeakyReLU is the `extractor_activation` option.
- reg_z regresses E's μ on the latent the generator actually saw, P(z·M). The released code uses the
  unmasked P(z), whose values outside the hole never reach the generator; the L1 optimum there is 0
  either way, so only the noise of the target changes.
- Critic updates, optimiser objects and per-sample masks as in DeepFill v1 (see deepfill_v1.py): the 5
  critic updates reuse the step's batch and its one random z.
- The local patch (E, critics, losses) is hole-centred (`hole_centred_boxes`) of side image/2, so any
  mask shape trains; for the paper's centred box it is exactly the released code's (32, 32, 64, 64).
- E and the critics live in the recipe, not in the registered model: the shipped checkpoint is the
  generator alone, and E is only needed to reproduce a ground-truth style.
- Generator initialisation and `critic_steps` as in DeepFill v1 (`blocks.signal_preserving_init`, gain 1.2).
- `diversity_weight` (0 = off, the paper): a mode-seeking term (Mao et al., *Mode Seeking Generative
  Adversarial Networks for Diverse Image Synthesis*, CVPR 2019) on a second random-z pass of the same
  batch: w / (mean_hole|x2 − x2'| / mean_hole|z − z'| + 1e-5), so two latents that differ must give fills
  that differ. The paper's own pressure towards diverse samples is reg_z; on a few hundred images, with
  reconstruction-trained weights, the samples of the shipped checkpoint differ by 0.025 mean L1 in the hole.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import InputContract, register, register_recipe
from . import losses
from .attention import ContextualAttention
from .base import (
    Generators,
    InpaintModel,
    composite,
    crop_boxes,
    hole_and_known_means,
    hole_centred_boxes,
    standard_normal,
)
from .blocks import ELU_STACK_INIT_GAIN, ActivationName, ConvBlock, signal_preserving_init
from .coarse_to_fine import D_STEPS_PER_G_STEP as D_STEPS_PER_G_STEP  # DeepFill v1's schedule, named here too
from .coarse_to_fine import GAN_LOSS_WEIGHT as GAN_LOSS_WEIGHT
from .coarse_to_fine import (
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


def _run_with_latent(layers: nn.Sequential, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Run ConvBlocks adding z (B, 1, H, W), nearest-resized to each layer's output size, before the
    activation (`gen_conv_add_z`). SAME convs output ceil(size / stride)."""
    resized: dict[tuple[int, int], torch.Tensor] = {}
    for layer in layers:
        stride = layer.conv.stride[0]
        size = (math.ceil(x.shape[-2] / stride), math.ceil(x.shape[-1] / stride))
        if size not in resized:
            resized[size] = z if size == tuple(z.shape[-2:]) else F.interpolate(z, size=size, mode="nearest")
        x = layer(x, add=resized[size])
    return x


@register(
    "piigan",
    contract=InputContract(pad_multiple=8, comfortable_size=512, can_sample=True, trainable=True, needs_weights=True),
    summary="PiiGAN: pluralistic inpainting, DeepFill v1 generator with an injected style latent (IEEE Access 2020)",
    paper="arXiv:1912.01834",
)
class PiiGAN(InpaintModel):
    """The PiiGAN generator; see the module docstring.

    extractor_activation: "elu" (paper) or "lrelu" (released code) for the style extractor E. E is built
    by the training recipe, not here; the key lives in this config so a checkpoint records it.
    """

    small_config: ClassVar[dict[str, Any]] = {"cnum": 4}

    def __init__(self, cnum: int = 32, extractor_activation: ActivationName = "elu") -> None:
        super().__init__(cnum=cnum, extractor_activation=extractor_activation)
        if cnum % 2:
            raise ValueError(f"cnum must be even (c16 has cnum/2 channels), got {cnum}")
        if extractor_activation not in ("elu", "lrelu"):
            raise ValueError(f"extractor_activation must be 'elu' or 'lrelu', got {extractor_activation!r}")
        c4 = 4 * cnum

        # Coarse stage on [x_in, z·M, ones, M]; latent in c1–c12.
        self.coarse_encoder = coarse_encoder(6, cnum)
        self.coarse_decoder = rgb_decoder(cnum)

        # Refine stage on [composite, z·M, ones, M]; latent in x1–x10, p1–p10, a11–a12.
        self.refine_conv = refine_conv_branch(6, cnum)
        self.refine_attention_encoder = refine_attention_encoder(6, cnum, p6_activation="elu")
        self.contextual_attention = ContextualAttention(
            ksize=3, stride=1, rate=2, fuse_k=3, softmax_scale=10.0, fuse=True
        )
        self.refine_attention_decoder = two_convs(c4, cnum)
        self.refine_merge = two_convs(2 * c4, cnum)
        self.refine_decoder = rgb_decoder(cnum)
        signal_preserving_init(self, gain=ELU_STACK_INIT_GAIN)  # a deviation: see blocks.signal_preserving_init

    def forward(self, x_in: torch.Tensor, mask: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_in: (B, 3, H, W) in [-1, 1], holes zeroed; mask: (B, 1, H, W), 1 = hole; z: (B, 1, H, W).

        Returns (x1, x2): coarse and refined predictions, (B, 3, H, W) in [-1, 1].
        """
        z = z * mask
        ones = torch.ones_like(mask)
        features = _run_with_latent(self.coarse_encoder, torch.cat([x_in, z, ones, mask], dim=1), z)
        x1 = clip_output(self.coarse_decoder(features))

        refine_in = torch.cat([x1 * mask + x_in * (1.0 - mask), z, ones, mask], dim=1)
        conv_features = _run_with_latent(self.refine_conv, refine_in, z)
        attention_features = _run_with_latent(self.refine_attention_encoder, refine_in, z)
        attention_features = self.contextual_attention(
            attention_features, attention_features, quarter_mask(mask, attention_features)
        )
        attention_features = _run_with_latent(self.refine_attention_decoder, attention_features, z)
        merged = _run_with_latent(self.refine_merge, torch.cat([conv_features, attention_features], dim=1), z)
        x2 = clip_output(self.refine_decoder(merged))
        return x1, x2

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, generator: Generators = None) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → raw prediction in [0, 1].

        Draws z ~ N(0, 1) with `generator` (one, or one per sample), so a seed fixes the fill."""
        x = image * 2.0 - 1.0
        batch, _, height, width = image.shape
        z = standard_normal((batch, 1, height, width), generator, like=image)
        _, x2 = self(x * (1.0 - mask), mask, z)
        return ((x2 + 1.0) / 2.0).clamp(0.0, 1.0)


# ---- style extractor E -------------------------------------------------------------------------------


class StyleExtractor(nn.Module):
    """E: local patch (B, 3, s, s) → (μ, logvar), each (B, s·s) — one latent value per patch pixel.

    patch_size: s, fixed by the dense heads (64 at the paper's 128² training size, 36.2 M parameters).
    activation: "elu" (paper) or "lrelu" (released code).
    """

    def __init__(self, patch_size: int = 64, activation: ActivationName = "elu") -> None:
        super().__init__()
        self.patch_size = patch_size
        widths = (64, 128, 256, 256)
        layers: list[nn.Module] = []
        previous = 3
        for width in widths:
            layers.append(ConvBlock(previous, width, 5, stride=2, activation=activation))
            previous = width
        self.layers = nn.Sequential(*layers)
        side = patch_size
        for _ in widths:
            side = math.ceil(side / 2)
        self.mu = nn.Linear(previous * side * side, patch_size * patch_size)
        self.logvar = nn.Linear(previous * side * side, patch_size * patch_size)

    def forward(self, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if patch.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(f"StyleExtractor was built for {self.patch_size}² patches, got {tuple(patch.shape[-2:])}")
        features = self.layers(patch)
        features = features.reshape(features.shape[0], -1)
        return self.mu(features), self.logvar(features)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + e^{logvar/2}·ε. The released code's μ + (μ + e^{logvar/2}·ε)·ε is not used."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def place_latent(
    latent: torch.Tensor, boxes: list[tuple[int, int]], patch_size: int, height: int, width: int
) -> torch.Tensor:
    """(B, s·s) latents → (B, 1, H, W) maps, each s×s block at its box, zero elsewhere (differentiable)."""
    maps = latent.reshape(latent.shape[0], 1, patch_size, patch_size)
    return torch.stack(
        [
            F.pad(block, (left, width - left - patch_size, top, height - top - patch_size))
            for block, (top, left) in zip(maps, boxes, strict=True)
        ]
    )


# ---- training recipe ---------------------------------------------------------------------------------

# Adam's betas (0.5, 0.9), the GP weight 10, the 5 critic steps per G step and the GAN loss weight 0.001
# are DeepFill v1's: coarse_to_fine.ADAM_BETAS, GP_WEIGHT, D_STEPS_PER_G_STEP, GAN_LOSS_WEIGHT.
LEARNING_RATE = 1e-4
BATCH_SIZE = 13
TRAIN_SIZE = 128  # the local patch (E, critics) is half of it: 64²
MAX_DELTA = 8  # the centred box's sides shrink by 0..MAX_DELTA/2 px each
COARSE_L1_WEIGHT = 1.2  # COARSE_L1_ALPHA inside ae, l1_zx, ae_zx
KL_WEIGHT = 0.1  # assumes the KL is summed over batch and 4096 dims
REGRESSION_Z_WEIGHT = 1.2  # REGRESSION_Z_LOSS_ALPHA: inside reg_z and again on reg_z, l1_zx, ae_zx
AE_LOSS_WEIGHT = 1.2
MODE_SEEKING_EPSILON = 1e-5  # `diversity_weight`'s term is w / (ratio + ε), as MSGAN's


@register_recipe("piigan")
class PiiGANRecipe(WganCriticsRecipe):
    """5 critic updates then 1 generator + extractor update per step; losses as in the module docstring.

    networks: "generator", "extractor" (E, trained with the generator's optimiser), "local_critic",
    "global_critic". image_size: the square training size; E, the critics and the local patch
    (image_size/2) are built for it. critic_steps and gan_weight: `WganCriticsRecipe`.
    """

    default_batch = BATCH_SIZE
    default_size = TRAIN_SIZE
    default_lr = LEARNING_RATE
    channels_last_on_cpu = True  # 1.28× per step at 1 thread (benchmarks/README.md)
    generator_networks = ("generator", "extractor")
    model_title = "PiiGAN"

    def __init__(self, generator: PiiGAN, *, diversity_weight: float = 0.0, **settings: Any) -> None:
        super().__init__(generator, **settings)
        if not diversity_weight >= 0:
            raise ValueError(f"diversity_weight cannot be negative (got {diversity_weight})")
        self.diversity_weight = float(diversity_weight)

    def build_generator_side(self) -> None:
        activation = self.generator.arch_config["extractor_activation"]
        self.networks["extractor"] = StyleExtractor(self.local_size, activation)

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        generator, extractor = self.networks["generator"], self.networks["extractor"]
        size = self.local_size
        batch, _, height, width = images.shape
        self.check_image_size(images)
        real = images * 2.0 - 1.0
        x_in = real * (1.0 - masks)
        boxes = hole_centred_boxes(masks, size)
        generator_trains = self.generator_trains(step)

        # Random-z pass; its composite is the critics' fake.
        z = torch.randn_like(masks) * masks
        with torch.set_grad_enabled(generator_trains):  # the critics' warm-up only reads the fills
            x1, x2 = generator(x_in, masks, z)
        fake = composite(x2, x_in, masks)
        logs: dict[str, float] = {}
        if self.adversarial(step):
            logs.update(self.update_critics(real, fake, masks))
        if not generator_trains:
            return logs
        fake_local = crop_boxes(fake, boxes, size)
        ae = known_pixel_l1(real, x1, x2, masks, COARSE_L1_WEIGHT)
        g_adv = matching = None
        if self.adversarial(step):
            g_adv, matching = self.adversarial_terms(real, fake, masks)

        # E on real and completed patches in one batch: real → style for the consistency pass and KL,
        # fake → regression onto the z that produced it.
        real_local = crop_boxes(real, boxes, size)
        mu, logvar = extractor(torch.cat([real_local, fake_local]))
        mu_real, mu_fake = mu.split(batch)
        logvar_real, _ = logvar.split(batch)
        z_target = crop_boxes(z, boxes, size).reshape(batch, -1)
        reg_z = REGRESSION_Z_WEIGHT * losses.l1(mu_fake, z_target)
        kl = losses.kl_diag_gaussian(mu_real, logvar_real)

        # Ground-truth-style pass: G must reproduce the real hole from E's encoding of it — every hole
        # pixel, not only those inside the local patch.
        z_real = place_latent(reparameterise(mu_real, logvar_real), boxes, size, height, width)
        xr1, xr2 = generator(x_in, masks, z_real)
        if self.hole_weight is None:
            l1_zx = COARSE_L1_WEIGHT * (
                hole_and_known_means((xr1 - real).abs(), masks)[0] + hole_and_known_means((xr2 - real).abs(), masks)[0]
            )
            ae_zx = known_pixel_l1(real, xr1, xr2, masks, COARSE_L1_WEIGHT)
            consistency = l1_zx + ae_zx
            terms = {"l1_zx": l1_zx, "ae_zx": ae_zx}
        else:
            errors = [(COARSE_L1_WEIGHT, (xr1 - real).abs()), (COARSE_L1_WEIGHT, (xr2 - real).abs())]
            consistency = self.reconstruction(errors, masks)
            terms = {"recon_zx": consistency}

        g_loss = KL_WEIGHT * kl + REGRESSION_Z_WEIGHT * (consistency + reg_z) + AE_LOSS_WEIGHT * ae
        g_loss, grid = self.add_grid(g_loss, (fake,), masks)
        terms.update(grid)
        if self.diversity_weight:
            z_other = torch.randn_like(masks) * masks
            _, x2_other = generator(x_in, masks, z_other)
            hole_count = masks.sum().clamp(min=1.0)
            output_gap = ((x2 - x2_other).abs() * masks).sum() / (hole_count * x2.shape[1])
            latent_gap = ((z - z_other).abs() * masks).sum() / hole_count
            mode_seeking = output_gap / latent_gap
            g_loss = g_loss + self.diversity_weight / (mode_seeking + MODE_SEEKING_EPSILON)
            terms["mode_seeking"] = mode_seeking
        if g_adv is not None:
            g_loss, adversarial = self.add_adversarial(g_loss, g_adv, matching, step)
            terms.update(adversarial)
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        terms.update({"ae": ae, "reg_z": reg_z, "kl": kl})
        return {"g": g_loss.item(), **{name: value.item() for name, value in terms.items()}, **logs}

    @staticmethod
    def paper_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
        """PiiGAN's training hole: a centred box of half the canvas, each pair of opposite sides shrunk by
        0–MAX_DELTA/2 px."""
        box_h, box_w = height // 2, width // 2
        top, left = (height - box_h) // 2, (width - box_w) // 2
        dh, dw = (int(d) for d in rng.integers(0, MAX_DELTA // 2 + 1, size=2))
        mask = np.zeros((height, width), bool)
        mask[top + dh : top + box_h - dh, left + dw : left + box_w - dw] = True
        return mask

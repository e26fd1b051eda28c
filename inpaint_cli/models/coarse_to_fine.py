"""DeepFill v1's coarse-to-fine generator pieces and WGAN-GP critics, shared by DeepFill v1 (Yu et al.,
CVPR 2018; deepfill_v1.py) and PiiGAN (Cai & Wei, IEEE Access 2020; piigan.py), whose backbone is the
DeepFill v1 generator trained against the same two critics; and what both DeepFills (v1 and v2) share.

- `DeepFillGenerator`: the base of the DeepFill v1 and v2 generators: the config keys that run the authors'
  TensorFlow weights (tf_padding, tf_resize, channel_order; see deepfill_v1.py) and `inpaint()`.
- Generator layer stacks (layer table in deepfill_v1.py): `coarse_encoder` (c1–c12), `refine_conv_branch`
  (x1–x10), `refine_attention_encoder` (p1–p6), `two_convs` (p9–p10, a11–a12), `rgb_decoder` (c13–c17,
  a13–a17), plus `clip_output` and `quarter_mask`. Each model wires them itself: DeepFill v1 runs them
  plainly, PiiGAN adds its latent to each ConvBlock's pre-activation. A layer's index in its `nn.Sequential`
  is part of both models' state_dict keys: reordering the stacks breaks the shipped checkpoints.
- The two WGAN-GP critics: `WganCritic`, `LocalCritic`, `GlobalCritic`.
- Their losses and training: `critic_loss` (λ = `GP_WEIGHT`, hole-masked gradient norms),
  `train_critics`, `adversarial_terms`, and the known-pixel term `known_pixel_l1` (its coarse weight is each
  paper's own constant, passed in).
- `make_optimizers`: two Adams with `ADAM_BETAS` (0.5, 0.9), the betas of both papers.
- `WganCriticsRecipe`: the base of both recipes: builds the two critics and the optimisers, runs the
  critic updates of a step and the generator's adversarial terms.

Each paper's recipe, schedule (learning rate, batch, size), loss weights and the list of its deviations
stay in its own module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import nn

from . import losses
from .augment import Augment
from .base import Generators, InpaintModel, TrainingRecipe, crop_boxes, frozen, hole_centred_boxes
from .blocks import (
    ActivationName,
    ConvBlock,
    UpConv,
    check_channel_order,
    conv2d_same,
    in_channel_order,
    resize_nearest,
)

# ---- what both DeepFill generators share -------------------------------------------------------------


class DeepFillGenerator(InpaintModel):
    """A DeepFill generator (v1 or v2): `forward(x_in, mask) -> (x1, x2)` in [-1, 1], and the config keys
    for the authors' TensorFlow weights, off for weights trained here (see deepfill_v1.py's docstring):
    tf_padding (TF's SAME padding on stride-2 convs; the subclass applies it with `set_tf_padding` once its
    layers exist), tf_resize (TF's nearest resizes; the subclass passes it to its attention and mask
    resize) and channel_order ("bgr": the released checkpoints' OpenCV channel order, flipped in `inpaint`).

    A subclass declares its own keys and passes these on: `def __init__(self, cnum=32, **tf_options)`; the
    registry reads their defaults here."""

    def __init__(
        self, cnum: int, tf_padding: bool = False, tf_resize: bool = False, channel_order: str = "rgb"
    ) -> None:
        check_channel_order(channel_order)
        super().__init__(cnum=cnum, tf_padding=tf_padding, tf_resize=tf_resize, channel_order=channel_order)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, generator: Generators = None) -> torch.Tensor:
        """image (B, 3, H, W) in [0, 1], mask (B, 1, H, W) 1 = hole → raw prediction in [0, 1]."""
        order = self.arch_config["channel_order"]
        x = in_channel_order(image, order) * 2.0 - 1.0
        _, x2 = self(x * (1.0 - mask), mask)
        return in_channel_order(((x2 + 1.0) / 2.0).clamp(0.0, 1.0), order)


# ---- generator building pieces (PiiGAN injects its latent into the ConvBlocks) -----------------------


def coarse_encoder(in_channels: int, cnum: int) -> nn.Sequential:
    """c1–c12: down to 1/4 resolution, then dilated convs for a large receptive field."""
    c1, c2, c4 = cnum, 2 * cnum, 4 * cnum
    return nn.Sequential(
        ConvBlock(in_channels, c1, 5),
        ConvBlock(c1, c2, 3, stride=2),
        ConvBlock(c2, c2, 3),
        ConvBlock(c2, c4, 3, stride=2),
        ConvBlock(c4, c4, 3),
        ConvBlock(c4, c4, 3),
        *[ConvBlock(c4, c4, 3, dilation=d) for d in (2, 4, 8, 16)],
        ConvBlock(c4, c4, 3),
        ConvBlock(c4, c4, 3),
    )


def refine_conv_branch(in_channels: int, cnum: int) -> nn.Sequential:
    """x1–x10, the "hallucination" branch: narrower than the coarse encoder at 1/2 resolution."""
    c1, c2, c4 = cnum, 2 * cnum, 4 * cnum
    return nn.Sequential(
        ConvBlock(in_channels, c1, 5),
        ConvBlock(c1, c1, 3, stride=2),
        ConvBlock(c1, c2, 3),
        ConvBlock(c2, c2, 3, stride=2),
        ConvBlock(c2, c4, 3),
        ConvBlock(c4, c4, 3),
        *[ConvBlock(c4, c4, 3, dilation=d) for d in (2, 4, 8, 16)],
    )


def refine_attention_encoder(in_channels: int, cnum: int, p6_activation: ActivationName = "relu") -> nn.Sequential:
    """p1–p6, the features contextual attention matches and copies (p6 is ReLU in DeepFill)."""
    c1, c2, c4 = cnum, 2 * cnum, 4 * cnum
    return nn.Sequential(
        ConvBlock(in_channels, c1, 5),
        ConvBlock(c1, c1, 3, stride=2),
        ConvBlock(c1, c2, 3),
        ConvBlock(c2, c4, 3, stride=2),
        ConvBlock(c4, c4, 3),
        ConvBlock(c4, c4, 3, activation=p6_activation),
    )


def two_convs(in_channels: int, cnum: int) -> nn.Sequential:
    """Two 3×3 ConvBlocks to 4·cnum at 1/4 resolution: p9–p10 after attention, a11–a12 after the merge."""
    c4 = 4 * cnum
    return nn.Sequential(ConvBlock(in_channels, c4, 3), ConvBlock(c4, c4, 3))


def rgb_decoder(cnum: int) -> nn.Sequential:
    """c13–c17 / a13–a17: two ×2 up-convs back to full resolution, then the linear RGB layer."""
    c1, c2, c4 = cnum, 2 * cnum, 4 * cnum
    return nn.Sequential(
        UpConv(ConvBlock(c4, c2, 3)),
        ConvBlock(c2, c2, 3),
        UpConv(ConvBlock(c2, c1, 3)),
        ConvBlock(c1, c1 // 2, 3),
        conv2d_same(c1 // 2, 3, 3),  # linear; clipped by the caller
    )


def clip_output(x: torch.Tensor) -> torch.Tensor:
    """The official `tf.clip_by_value(x, -1, 1)`. Like it, clamp has zero gradient outside the range, so
    a pixel that overshoots gets no reconstruction gradient until other weights pull it back."""
    return torch.clamp(x, -1.0, 1.0)


def quarter_mask(mask: torch.Tensor, features: torch.Tensor, tf_resize: bool = False) -> torch.Tensor:
    """The mask resized (nearest) to the 1/4-res attention features, as the official resize_mask_like;
    `tf_resize` picks its pixels as TF's align_corners=True does (DeepFill v1's converted weights)."""
    return resize_nearest(mask, (features.shape[-2], features.shape[-1]), tf_resize=tf_resize)


# ---- WGAN-GP critics --------------------------------------------------------------------------------


class WganCritic(nn.Module):
    """4 × (5×5 s2 SAME conv + LeakyReLU 0.2) → flatten → dense 1: one score per sample.

    image_size: the square input side the dense layer is built for (SAME stride 2 gives ceil(n/2)).
    """

    def __init__(self, image_size: int, widths: tuple[int, ...], in_channels: int = 3) -> None:
        super().__init__()
        self.image_size = image_size
        layers: list[nn.Module] = []
        previous = in_channels
        for width in widths:
            layers.append(ConvBlock(previous, width, 5, stride=2, activation="lrelu"))
            previous = width
        self.layers = nn.Sequential(*layers)
        side = image_size
        for _ in widths:
            side = math.ceil(side / 2)
        self.score = nn.Linear(previous * side * side, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, 3, image_size, image_size) in [-1, 1] → (B,) scores."""
        return self.features(image)[1]

    def features(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(each conv layer's output, the (B,) scores): the features are what feature matching compares."""
        if image.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"{type(self).__name__} was built for {self.image_size}² inputs, got {tuple(image.shape[-2:])}"
            )
        outputs = []
        features = image
        for layer in self.layers:
            features = layer(features)
            outputs.append(features)
        return outputs, self.score(features.reshape(features.shape[0], -1)).reshape(-1)


class LocalCritic(WganCritic):
    """The local critic on the hole-centred patch: widths 64, 128, 256, 512 (4.34 M at 128²)."""

    def __init__(self, image_size: int = 128) -> None:
        super().__init__(image_size, (64, 128, 256, 512))


class GlobalCritic(WganCritic):
    """The global critic on the whole image: widths 64, 128, 256, 256 (2.73 M at 256²)."""

    def __init__(self, image_size: int = 256) -> None:
        super().__init__(image_size, (64, 128, 256, 256))


# ---- losses and optimisers shared by both recipes ---------------------------------------

ADAM_BETAS = (0.5, 0.9)
GP_WEIGHT = 10.0  # λ of the gradient penalty, both papers
D_STEPS_PER_G_STEP = 5  # critic updates per generator update, both papers
GAN_LOSS_WEIGHT = 0.001  # the weight of g_adv in L_G, both papers


def make_optimizers(
    generator_params: Iterable[nn.Parameter], critic_params: Iterable[nn.Parameter], lr: float
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam(lr, betas (0.5, 0.9)) for the generator and for the critics."""
    return (
        torch.optim.Adam(generator_params, lr=lr, betas=ADAM_BETAS),
        torch.optim.Adam(critic_params, lr=lr, betas=ADAM_BETAS),
    )


def known_pixel_l1(
    real: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor, mask: torch.Tensor, coarse_weight: float
) -> torch.Tensor:
    """ae = [coarse_weight·mean(|x−x1|·(1−M)) + mean(|x−x2|·(1−M))] / mean(1−M); each paper
    passes its own COARSE_L1_WEIGHT (COARSE_L1_ALPHA, 1.2 in both)."""
    known = 1.0 - mask
    weighted = coarse_weight * losses.masked_l1(x1, real, known) + losses.masked_l1(x2, real, known)
    return weighted / known.mean()


def critic_loss(
    local_critic: nn.Module,
    global_critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor,
    local_size: int,
    augment: Augment | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_D = WGAN loss of both critics + 10·(GP_g + GP_l) with hole-masked gradient norms.

    real, fake: (B, 3, H, W) in [-1, 1] (fake = the composite, detached here); the local patch is centred
    on each sample's hole. augment: the recipe's `augment`, applied to real, fake and mask alike first.
    Returns the total and its detached terms.
    """
    fake = fake.detach()
    if augment is not None:
        (real, fake), mask = augment([real, fake], mask)
    boxes = hole_centred_boxes(mask, local_size)
    real_local, fake_local = crop_boxes(real, boxes, local_size), crop_boxes(fake, boxes, local_size)
    mask_local = crop_boxes(mask, boxes, local_size)

    batch = real.shape[0]
    global_real, global_fake = global_critic(torch.cat([real, fake])).split(batch)
    local_real, local_fake = local_critic(torch.cat([real_local, fake_local])).split(batch)
    wgan = losses.wgan_critic_loss(global_real, global_fake) + losses.wgan_critic_loss(local_real, local_fake)

    penalty = losses.gradient_penalty(
        global_critic, losses.random_interpolates(real, fake), mask
    ) + losses.gradient_penalty(local_critic, losses.random_interpolates(real_local, fake_local), mask_local)
    total = wgan + GP_WEIGHT * penalty
    return total, {"d_wgan": wgan.detach(), "gp": penalty.detach()}


def train_critics(
    optimizer: torch.optim.Optimizer,
    local_critic: nn.Module,
    global_critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor,
    local_size: int,
    steps: int,
    augment: Augment | None = None,
) -> dict[str, float]:
    """`steps` critic updates on one batch (see deepfill_v1's deviations), each with fresh augmentations;
    returns the last step's losses."""
    for _ in range(steps):
        total, terms = critic_loss(local_critic, global_critic, real, fake, mask, local_size, augment)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
    return {"d": total.item(), **{name: value.item() for name, value in terms.items()}}


def adversarial_terms(
    local_critic: WganCritic,
    global_critic: WganCritic,
    real: torch.Tensor,
    fake: torch.Tensor,
    mask: torch.Tensor,
    local_size: int,
    *,
    augment: Augment | None = None,
    feature_matching: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The generator's adversarial terms: g_adv = −mean D_g(x̂) − mean D_l(P(x̂)), global weight 1,
    and with `feature_matching` the mean L1 between both critics' features of the ground truth and of the
    fill (a deviation for small data, `TrainingRecipe.fm_weight`), else None. The critics are `frozen`:
    the generator's loss leaves no gradients on their weights. augment: as in `critic_loss`."""
    if augment is not None:
        (real, fake), mask = augment([real.detach(), fake], mask)
    boxes = hole_centred_boxes(mask, local_size)
    local_real, local_fake = crop_boxes(real, boxes, local_size), crop_boxes(fake, boxes, local_size)
    pairs = ((global_critic, real, fake), (local_critic, local_real, local_fake))
    g_adv = torch.zeros((), device=fake.device)
    matching = torch.zeros((), device=fake.device) if feature_matching else None
    with frozen(local_critic), frozen(global_critic):
        for critic, real_view, fake_view in pairs:
            if not feature_matching:
                g_adv = g_adv + losses.wgan_generator_loss(critic(fake_view))
                continue
            batch = fake_view.shape[0]
            features, scores = critic.features(torch.cat([real_view, fake_view]))
            g_adv = g_adv + losses.wgan_generator_loss(scores[batch:])
            matching = matching + losses.feature_matching([f[:batch] for f in features], [f[batch:] for f in features])
    return g_adv, matching


# ---- the recipe base both papers share ---------------------------------------------------------------


class WganCriticsRecipe(TrainingRecipe):
    """A recipe training its generator against the local and global WGAN-GP critics (DeepFill v1, PiiGAN).

    It builds, in this order, the recipe's other generator-side networks (`build_generator_side`), the
    critics ("local_critic" on the hole-centred image_size/2 patch, "global_critic" on the whole image) and
    the optimisers "generator" (every network of `generator_networks`) and "critics". Each step, the
    subclass runs its generator and calls `update_critics` (`critic_steps` updates on the step's batch) and
    `adversarial_terms` (the generator's g_adv and, with `fm_weight`, feature matching), then
    `add_adversarial` to weigh them into its loss.

    critic_steps: the papers' 5 critic updates per G step; fewer trade critic quality for G steps on a short
    budget. gan_weight: the weight of g_adv (the papers' 0.001). grid_weight: the weight of
    `losses.grid_artefact` of the coarse and the refined composite, added to L_G at every generator step
    (not a term of either paper: it holds back the 8-px plaid the critics let through; 0 = off).
    """

    small_data_adversarial = True
    small_size = 32
    # What the recipe's errors call the model, e.g. "DeepFill v1".
    model_title: ClassVar[str] = ""

    def __init__(
        self,
        generator: InpaintModel,
        *,
        lr: float | None = None,
        total_steps: int = 0,
        image_size: int | None = None,
        critic_steps: int = D_STEPS_PER_G_STEP,
        gan_weight: float = GAN_LOSS_WEIGHT,
        grid_weight: float = 0.0,
        **settings: Any,
    ) -> None:
        super().__init__(generator, lr=lr, total_steps=total_steps, image_size=image_size, **settings)
        if not grid_weight >= 0:
            raise ValueError(f"grid_weight cannot be negative (got {grid_weight})")
        self.grid_weight = float(grid_weight)
        if critic_steps < 1:
            raise ValueError(f"critic_steps must be at least 1, got {critic_steps}")
        if not gan_weight >= 0:
            raise ValueError(f"gan_weight cannot be negative (got {gan_weight})")
        self.critic_steps = critic_steps
        self.gan_weight = float(gan_weight)
        self.local_size = self.image_size // 2
        self.build_generator_side()
        self.networks["local_critic"] = LocalCritic(self.local_size)
        self.networks["global_critic"] = GlobalCritic(self.image_size)
        generator_params = [p for name in self.generator_networks for p in self.networks[name].parameters()]
        critic_params = [*self.networks["local_critic"].parameters(), *self.networks["global_critic"].parameters()]
        g_opt, d_opt = make_optimizers(generator_params, critic_params, self.lr)
        self.optimizers = {"generator": g_opt, "critics": d_opt}

    def build_generator_side(self) -> None:
        """Add the networks of `generator_networks` beyond "generator" to `networks` (built before the
        critics, so a seed gives the same weights as ever). Default: none."""

    def check_image_size(self, images: torch.Tensor) -> None:
        """A ValueError unless `images` are the image_size² crops the critics were built for."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(
                f"{self.model_title}'s critics were built for {self.image_size}² images, "
                f"got {tuple(images.shape[-2:])}; pass image_size to the recipe"
            )

    def update_critics(self, real: torch.Tensor, fake: torch.Tensor, masks: torch.Tensor) -> dict[str, float]:
        """`critic_steps` updates of both critics on the step's batch (`train_critics`); the last one's losses."""
        return train_critics(
            self.optimizers["critics"],
            self.networks["local_critic"],
            self.networks["global_critic"],
            real,
            fake,
            masks,
            self.local_size,
            self.critic_steps,
            self.augment,
        )

    def adversarial_terms(
        self, real: torch.Tensor, fake: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(g_adv, feature matching or None) of the fill `fake` against the frozen critics (`adversarial_terms`)."""
        return adversarial_terms(
            self.networks["local_critic"],
            self.networks["global_critic"],
            real,
            fake,
            masks,
            self.local_size,
            augment=self.augment,
            feature_matching=self.fm_weight > 0,
        )

    def add_grid(
        self, g_loss: torch.Tensor, composites: Iterable[torch.Tensor], masks: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """g_loss + grid_weight·Σ grid_artefact(composite), and the sum to log ("grid"), when grid_weight is set."""
        if not self.grid_weight:
            return g_loss, {}
        grid = sum(losses.grid_artefact(composite, masks) for composite in composites)
        return g_loss + self.grid_weight * grid, {"grid": grid}

    def add_adversarial(
        self, g_loss: torch.Tensor, g_adv: torch.Tensor, matching: torch.Tensor | None, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """g_loss + adversarial_scale·(gan_weight·g_adv + fm_weight·matching), and the terms to log
        ("g_adv", and "fm" with feature matching)."""
        scale = self.adversarial_scale(step)
        g_loss = g_loss + scale * self.gan_weight * g_adv
        terms = {"g_adv": g_adv}
        if matching is not None:
            g_loss = g_loss + scale * self.fm_weight * matching
            terms["fm"] = matching
        return g_loss, terms

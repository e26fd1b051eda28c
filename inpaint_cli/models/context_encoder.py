"""Context Encoder: encoder–bottleneck–decoder + adversarial loss (Pathak et al., CVPR 2016).

This docstring is the spec the module implements, taken from the paper and the released Lua code
(train.lua, train_random.lua, test.lua): the contract, the layers, the losses and the schedule, then the
deviations.

In:  x_in (B, 3, 128, 128) in [-1, 1], no mask channel; hole pixels are overwritten with the constants
     2·v/255 − 1 for v = (117, 104, 123) on channels R, G, B (`fill_holes`). Exactly 128² (dense
     bottleneck). The hole depends on `variant`:
       "centre": the fixed inner 56² of the central 64² block (rows/cols 36–91; `centre_hole`).
       "random": any hole in the window (train_random.lua); the default, used for user masks.
Out: "centre": (B, 3, 64, 64) tanh, the whole central block (rows/cols 32–95) including the 4-px ring
               that stayed visible; test.lua pastes only its inner 56². `inpaint` returns the input with
               the 64² prediction placed on the central block, so the engine's `out·M + in·(1−M)` with M
               inside the inner 56² is the paper's composite.
     "random": (B, 3, 128, 128) tanh, the full image; the composite is the engine's `out·M + in·(1−M)`.

Layers (k/s/p, every conv/deconv bias-free, DCGAN init N(0, 0.02), BN weights N(1, 0.02)):
  (widths for the paper's base width 64; `width` scales every stage of the generator: 8·width at 4²)
  E1 conv 4/2/1 3→64 (LReLU 0.2) · E2 64→64 · E3 →128 · E4 →256 · E5 →512, 4² (BN + LReLU 0.2)
  B  conv 4/1/0 512→bottleneck, 1² (BN + LReLU 0.2)            bottleneck = 4000 (README), 71.1 M params
  D1 deconv 4/1/0 →512, 4² · D2 4/2/1 →256 · D3 →128 · D4 →64, 32² (BN + ReLU)
  "random" only: D4b deconv 4/2/1 64→64, 64² (BN + ReLU) — the mirror of E2, exactly as train_random.lua
     inserts it for fineSize 128 (+65,664 params)
  D5 deconv 4/2/1 64→3 (tanh): 64² for "centre", 128² for "random".

Discriminator: conv 4/2/1 3→64 (LReLU, no BN) · [64→64, "random" only] · →128 · →256 · →512
(BN + LReLU) · conv 4/1/0 →1. Input: the 64² centre ("centre", 2.77 M) or the full 128² image ("random",
one more stride-2 stage as train_random.lua, 2.83 M). It sees the raw G output as the fake, not a
composite, and never the context (conditionAdv = 0). Returns logits; BCE-with-logits ≡ sigmoid + BCE.

Losses: G = 0.999·mean(W·(G(x) − x)²) + 0.001·BCE(D(G(x)), 1), D = BCE(D(x), 1) + BCE(D(G(x)), 0).
  "centre": W over the 64² block = 10 on the 4-px ring (overlapL2Weight), 1 on the inner 56².
  "random": W = 10 on known pixels, 1 in the hole.
  W multiplies the squared error inside the mean (not renormalised): the gradient the Lua code applies.
Schedule: Adam β = (0.5, 0.999); D lr 2e-4, G lr 10× = 2e-3; per iteration one D step then one G
step on the same G forward; batch 64 at 128².

Deviations from the paper / the released Lua code:
- At inference the engine matches the fill to the known pixels at the hole's border (`border_blend.py`,
  Poisson image editing; `--blend none` leaves it out): not in the paper; it removes the colour casts
  and border steps a network trained on a few hundred images leaves, and leaves the fill's detail alone.
- The G step re-runs D (after its update) on the fake instead of reusing the stale pre-update D output
  (a harmless difference: one D step apart; PyTorch cannot backprop through weights already stepped).
- D returns logits and the losses use BCE-with-logits (numerically safer, same values as sigmoid + BCE).
- Random masks come from a 2000² pattern (120² noise, the same 0.06 ratio, so the same blob
  scale) instead of 10000² (600²), built lazily once per recipe from the caller's rng; OpenCV bicubic
  instead of Torch image.scale. This pattern averages ≈ 18 % holes, so ≈ 30 % of 128² windows pass the
  20–30 % test. The training loop supplies per-sample masks, whereas the Lua code used one per batch.
- train_random.lua defaults useOverlapPred = 0 (plain MSE); we always use the 10×-known weighting above.
- Training needs batch ≥ 2: BatchNorm on the 1×1 bottleneck has one value per channel otherwise.
- The Lua convs carry biases that train.lua zeroes before every step (so they hold one Adam step's worth);
  ours are bias-free unless `conv_bias` is set, which `inpaint models convert` does for the released .t7.
- The small-data settings of `TrainingRecipe` (off by default): during `d_warmup_steps` G runs in train
  mode without gradients (its parameters stay, its BN running statistics move) and only D trains;
  `adv_ramp_steps` ramps the 0.001·g_adv term; `fm_weight` adds feature matching over D's conv stages
  (real and fake in separate forwards, as D's own step); `augment` transforms exactly what D sees, the
  target and the raw output (the 64² centre block or the whole image), alike per sample.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..registry import InputContract, register, register_recipe
from . import losses
from .base import InpaintModel, TrainingRecipe, frozen

VARIANTS = ("random", "centre")
IMAGE_SIZE = 128  # the dense bottleneck only accepts this
CENTRE_START, CENTRE_SIZE = 32, 64  # the predicted central block: rows/cols 32–95
OVERLAP = 4  # overlapPred: the ring of the central block that stays visible
HOLE_FILL_VALUES = (117.0, 104.0, 123.0)  # channels 1, 2, 3 of the Lua tensors

BASE_WIDTH = 64  # nef = ngf = ndf


def hole_fill_values() -> torch.Tensor:
    """The fill constants in [-1, 1], shape (3,): 2·(117, 104, 123)/255 − 1."""
    return torch.tensor([2.0 * v / 255.0 - 1.0 for v in HOLE_FILL_VALUES], dtype=torch.float32)


def fill_holes(x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """x (B, 3, H, W) in [-1, 1], hole bool (B or 1, 1, H, W) → x with hole pixels set to the constants."""
    fill = hole_fill_values().to(device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return torch.where(hole, fill, x)


def centre_hole(height: int = IMAGE_SIZE, width: int = IMAGE_SIZE, overlap: int = OVERLAP) -> torch.Tensor:
    """The centre variant's hole, bool (1, 1, H, W): the central H/2 × W/2 block shrunk by `overlap` px per
    side (rows/cols 36–91 at 128²)."""
    hole = torch.zeros(1, 1, height, width, dtype=torch.bool)
    top, left = height // 4 + overlap, width // 4 + overlap
    hole[..., top : height // 4 + height // 2 - overlap, left : width // 4 + width // 2 - overlap] = True
    return hole


# ---- networks -----------------------------------------------------------------------------------


def _down(in_channels: int, out_channels: int, batch_norm: bool = True, bias: bool = False) -> list[nn.Module]:
    """conv 4/2/1 (halves the size) [+ BN] + LeakyReLU 0.2: the encoder and D stage."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=bias)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return layers


def _up(in_channels: int, out_channels: int, bias: bool = False) -> list[nn.Module]:
    """deconv 4/2/1 (doubles the size) + BN + ReLU: the decoder stage."""
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias), nn.BatchNorm2d(out_channels), nn.ReLU()]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN initialisation of the Lua `weights_init`: convs N(0, 0.02) (bias 0), BN weight N(1, 0.02), BN bias 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")


@register(
    "context_encoder",
    contract=InputContract(
        fixed_size=IMAGE_SIZE,
        pad_multiple=1,
        comfortable_size=IMAGE_SIZE,
        can_sample=False,
        trainable=True,
        needs_weights=True,
    ),
    summary="Context Encoder: encoder-bottleneck-decoder with L2 + adversarial loss (Pathak et al., CVPR 2016)",
    paper="arXiv:1604.07379",
)
class ContextEncoder(InpaintModel):
    """The Context Encoder generator; see the module docstring for the layer table and the two variants.

    conv_bias: give every conv and deconv of the generator a bias, as the authors' Lua networks have
    (their training zeroes the biases before each step, but the step after moves them; `inpaint models
    convert` sets it for a released .t7 whose biases are not all zero). Off by default (bias-free).
    """

    small_config: ClassVar[dict[str, Any]] = {"bottleneck": 16, "width": 8}

    def __init__(
        self, bottleneck: int = 4000, variant: str = "random", width: int = BASE_WIDTH, conv_bias: bool = False
    ) -> None:
        super().__init__(bottleneck=bottleneck, variant=variant, width=width, conv_bias=conv_bias)
        _check_variant(variant)
        if width < 1:
            raise ValueError(f"width must be positive, got {width}")
        self.variant = variant
        if variant == "centre":
            # Only the inner 56² of the 128² window is ever predicted: the engine must fit holes there.
            self.contract = dataclasses.replace(
                type(self).contract, hole_fraction=(CENTRE_SIZE - 2 * OVERLAP) / IMAGE_SIZE
            )
        w, b = width, bool(conv_bias)  # width 64 in the paper; smaller widths are for a small shipped checkpoint
        self.encoder = nn.Sequential(
            *_down(3, w, batch_norm=False, bias=b),  # E1: no BN on the first layer (DCGAN)
            *_down(w, w, bias=b),  # E2
            *_down(w, 2 * w, bias=b),  # E3
            *_down(2 * w, 4 * w, bias=b),  # E4
            *_down(4 * w, 8 * w, bias=b),  # E5 → 512 × 4²
        )
        # Valid 4×4 conv over the whole 4² map: a dense layer, hence the fixed 128² input.
        self.bottleneck = nn.Sequential(
            nn.Conv2d(8 * w, bottleneck, 4, 1, 0, bias=b), nn.BatchNorm2d(bottleneck), nn.LeakyReLU(0.2)
        )
        decoder: list[nn.Module] = [
            nn.ConvTranspose2d(bottleneck, 8 * w, 4, 1, 0, bias=b),  # D1 → 512 × 4²
            nn.BatchNorm2d(8 * w),
            nn.ReLU(),
            *_up(8 * w, 4 * w, bias=b),  # D2
            *_up(4 * w, 2 * w, bias=b),  # D3
            *_up(2 * w, w, bias=b),  # D4 → 64 × 32²
        ]
        if variant == "random":
            decoder += _up(w, w, bias=b)  # D4b → 64 × 64²: mirrors E2 so the output is the full 128² (train_random.lua)
        decoder += [nn.ConvTranspose2d(w, 3, 4, 2, 1, bias=b), nn.Tanh()]  # D5
        self.decoder = nn.Sequential(*decoder)
        dcgan_init(self)

    def forward(self, x_in: torch.Tensor) -> torch.Tensor:
        """x_in: (B, 3, 128, 128) in [-1, 1] with the hole filled (`fill_holes`).

        Returns (B, 3, 64, 64) for "centre" (the central block) or (B, 3, 128, 128) for "random", in (-1, 1).
        """
        return self.decoder(self.bottleneck(self.encoder(x_in)))

    def model_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (B, 3, 128, 128) in [0, 1], mask (B, 1, 128, 128) 1 = hole → the filled x_in in [-1, 1].

        "centre" always fills the fixed inner 56² (what it was trained on), united with the mask so the
        values under any hole never reach the network.
        """
        hole = mask > 0.5
        if self.variant == "centre":
            hole = hole | centre_hole(*image.shape[-2:]).to(image.device)
        return fill_holes(image * 2.0 - 1.0, hole)

    def inpaint(
        self, image: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """image (B, 3, 128, 128) in [0, 1], mask (B, 1, 128, 128) 1 = hole → prediction in [0, 1].

        "centre": the input itself except on the central 64² block, which holds the prediction.
        """
        if image.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"context_encoder needs {IMAGE_SIZE}² inputs, got {tuple(image.shape[-2:])}")
        prediction = ((self(self.model_input(image, mask)) + 1.0) / 2.0).clamp(0.0, 1.0)
        if self.variant == "random":
            return prediction
        out = image.clone()
        block = slice(CENTRE_START, CENTRE_START + CENTRE_SIZE)
        out[..., block, block] = prediction.to(out.dtype)
        return out


class ContextEncoderDiscriminator(nn.Module):
    """The adversary: 64² centre (`input_size=64`) or full 128² image (`input_size=128`) → (B,) logits."""

    def __init__(self, input_size: int = CENTRE_SIZE) -> None:
        super().__init__()
        if input_size not in (CENTRE_SIZE, IMAGE_SIZE):
            raise ValueError(f"input_size must be {CENTRE_SIZE} or {IMAGE_SIZE}, got {input_size}")
        w = BASE_WIDTH
        layers = _down(3, w, batch_norm=False)
        if input_size == IMAGE_SIZE:
            layers += _down(w, w)  # the extra stage of train_random.lua for fineSize 128
        layers += [*_down(w, 2 * w), *_down(2 * w, 4 * w), *_down(4 * w, 8 * w)]  # → 512 × 4²
        layers.append(nn.Conv2d(8 * w, 1, 4, 1, 0, bias=False))  # → 1 × 1²; sigmoid lives in the loss
        self.layers = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, 3, S, S) in [-1, 1], S = input_size → logits (B,)."""
        return self.layers(image).flatten()

    def features(self, image: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(each conv stage's output after its LeakyReLU, the logits of `forward`): the stages are what
        feature matching compares."""
        stages = []
        features = image
        for layer in self.layers:
            features = layer(features)
            if isinstance(layer, nn.LeakyReLU):
                stages.append(features)
        return stages, features.flatten()


# ---- losses -------------------------------------------------------------------------------------

L2_WEIGHT = 0.999  # wtl2
ADV_WEIGHT = 1.0 - L2_WEIGHT
OVERLAP_L2_WEIGHT = 10.0  # overlapL2Weight: ring (centre) / known pixels (random)


def centre_l2_weights(overlap: int = OVERLAP) -> torch.Tensor:
    """(1, 1, 64, 64): 10 on the 4-px ring of the central block, 1 on its inner 56²."""
    weights = torch.full((1, 1, CENTRE_SIZE, CENTRE_SIZE), OVERLAP_L2_WEIGHT)
    weights[..., overlap : CENTRE_SIZE - overlap, overlap : CENTRE_SIZE - overlap] = 1.0
    return weights


def random_l2_weights(masks: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W): 10 on known pixels, 1 in the hole (mask 1 = hole)."""
    return torch.where(masks > 0.5, 1.0, OVERLAP_L2_WEIGHT).to(masks.dtype)


def weighted_l2(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """mean(W·(prediction − target)²) over every element: MSECriterion's mean with the Lua per-pixel
    gradient weights folded in (not renormalised by mean W)."""
    return (weights * (prediction - target).square()).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """errD = BCE(D(real), 1) + BCE(D(fake), 0), each averaged over the batch (sum, as the Lua code)."""
    return F.binary_cross_entropy_with_logits(
        real_logits, torch.ones_like(real_logits)
    ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial term BCE(D(fake), 1); G = 0.999·l2 + 0.001·this (`ContextEncoderRecipe`)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


# ---- training recipe ----------------------------------------------------------------------------

D_LEARNING_RATE = 2e-4
G_LR_FACTOR = 10.0  # G lr = 10 × D lr when 0 < wtl2 < 1
ADAM_BETAS = (0.5, 0.999)  # optim.adam's default β2
D_STEPS_PER_G_STEP = 1
BATCH_SIZE = 64
TRAIN_SIZE = IMAGE_SIZE

# Random-region masks: thresholded bicubic-upsampled uniform noise.
PATTERN_SIDE = 2000  # the Lua code uses 10000; 2000 keeps the same statistics in 4 MB
PATTERN_RESOLUTION = 0.06  # noise side / pattern side ("res"): sets the blob scale (~17 px)
PATTERN_DENSITY = 0.25
HOLE_RATIO_RANGE = (0.20, 0.30)  # windows are resampled until 20 % < hole < 30 % (strict, as the Lua code)
MAX_WINDOW_TRIES = 100_000


def random_pattern(side: int, rng: np.random.Generator) -> np.ndarray:
    """A side × side bool pattern (True = hole): uniform noise at `PATTERN_RESOLUTION`·side, bicubically
    upsampled and thresholded at `PATTERN_DENSITY`."""
    low = max(2, round(side * PATTERN_RESOLUTION))
    noise = rng.uniform(0.0, 1.0, size=(low, low)).astype(np.float32)
    return cv2.resize(noise, (side, side), interpolation=cv2.INTER_CUBIC) < PATTERN_DENSITY


def pattern_window(pattern: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A random height × width window of `pattern` whose hole ratio is within `HOLE_RATIO_RANGE`."""
    low, high = HOLE_RATIO_RANGE
    for _ in range(MAX_WINDOW_TRIES):
        top = int(rng.integers(0, pattern.shape[0] - height + 1))
        left = int(rng.integers(0, pattern.shape[1] - width + 1))
        window = pattern[top : top + height, left : left + width]
        if low < window.mean() < high:
            return window.copy()
    raise RuntimeError(f"no {height}×{width} window of the pattern has a {low:.0%}–{high:.0%} hole")


def make_optimizers(
    generator: nn.Module, discriminator: nn.Module, lr: float = D_LEARNING_RATE
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam β = (0.5, 0.999): G at G_LR_FACTOR·lr (2e-3), D at lr (2e-4)."""
    return (
        torch.optim.Adam(generator.parameters(), lr=G_LR_FACTOR * lr, betas=ADAM_BETAS),
        torch.optim.Adam(discriminator.parameters(), lr=lr, betas=ADAM_BETAS),
    )


@register_recipe("context_encoder")
class ContextEncoderRecipe(TrainingRecipe):
    """One D step then one G step per iteration on a single G forward; L2 + BCE GAN.

    `lr` is D's learning rate; G trains 10× faster. The centre variant ignores the loop's masks and
    always uses the fixed inner-56² hole. `paper_mask` is an instance method: it depends on the variant
    and on the random pattern cached by the recipe. `recon_steps` warm-up steps train L2 alone (no D);
    `hole_weight` (random variant) replaces the 10×-known-weighted L2 by hole_weight·mean_hole +
    mean_known of the squared error. Logged: g = 0.999·l2 + 0.001·g_adv.

    The small-data settings of `TrainingRecipe`: during `d_warmup_steps` only D trains (G runs without
    gradients; no g is logged); g_adv and, with `fm_weight`, the feature matching of D's conv stages
    (logged as fm) are scaled by `adversarial_scale`: g = 0.999·l2 + scale·(0.001·g_adv + fm_weight·fm);
    `augment` transforms the target and the fill alike before every D forward.
    """

    min_batch = 2  # batch norm in training mode needs more than one value per channel
    default_batch = BATCH_SIZE
    default_size = TRAIN_SIZE
    default_lr = D_LEARNING_RATE
    small_data_adversarial = True

    def __init__(
        self,
        generator: ContextEncoder,
        *,
        lr: float | None = None,
        total_steps: int = 0,
        image_size: int | None = None,
        **settings: Any,
    ) -> None:
        if image_size not in (None, IMAGE_SIZE):
            raise ValueError(f"context_encoder trains at {IMAGE_SIZE}² only (dense bottleneck), got {image_size}")
        super().__init__(generator, lr=lr, total_steps=total_steps, image_size=IMAGE_SIZE, **settings)
        self.variant: str = generator.arch_config["variant"]
        if self.hole_weight is not None and self.variant == "centre":
            raise ValueError("hole_weight needs the random variant: the centre variant predicts the hole block only")
        input_size = CENTRE_SIZE if self.variant == "centre" else IMAGE_SIZE
        self.networks["discriminator"] = ContextEncoderDiscriminator(input_size)
        g_opt, d_opt = make_optimizers(generator, self.networks["discriminator"], self.lr)
        self.optimizers = {"generator": g_opt, "discriminator": d_opt}
        self._pattern: np.ndarray | None = None

    def _batch(self, images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ (x_in, target, L2 weights) for the variant; images in [0, 1]."""
        if images.shape[-2:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"context_encoder trains at {IMAGE_SIZE}², got {tuple(images.shape[-2:])}")
        real = images * 2.0 - 1.0
        if self.variant == "centre":
            block = slice(CENTRE_START, CENTRE_START + CENTRE_SIZE)
            x_in = fill_holes(real, centre_hole().to(real.device))
            return x_in, real[..., block, block], centre_l2_weights().to(real)
        return fill_holes(real, masks > 0.5), real, random_l2_weights(masks).to(real)

    def adversarial_terms(self, target: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """G's BCE(D(fake), 1) and, with `fm_weight`, the feature matching of D's conv stages between the
        target and the fill, else None; D frozen, in train mode (its batch norm uses batch statistics, as
        the Lua code), real and fake in separate forwards as in D's step."""
        discriminator = self.networks["discriminator"]
        (real, fake), _ = self.augment([target, fake])
        with frozen(discriminator):
            if not self.fm_weight:
                return adversarial_loss(discriminator(fake)), None
            fake_features, logits = discriminator.features(fake)
            with torch.no_grad():
                real_features, _ = discriminator.features(real)
        return adversarial_loss(logits), losses.feature_matching(real_features, fake_features)

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        generator, discriminator = self.networks["generator"], self.networks["discriminator"]
        x_in, target, weights = self._batch(images, masks)
        generator_trains = self.generator_trains(step)
        with torch.set_grad_enabled(generator_trains):  # D's warm-up only reads the fills
            fake = generator(x_in)
        logs: dict[str, float] = {}
        if self.adversarial(step):  # not in the reconstruction warm-up: L2 alone there, no D forward
            # D step: real and fake in separate forwards (separate BN batch statistics, as the Lua code), after
            # the `augment` policy (D sees no mask: the target and the fill are transformed alike).
            (real_view, fake_view), _ = self.augment([target, fake.detach()])
            d_loss = discriminator_loss(discriminator(real_view), discriminator(fake_view))
            self.optimizers["discriminator"].zero_grad(set_to_none=True)
            d_loss.backward()
            self.optimizers["discriminator"].step()
            logs["d"] = d_loss.item()
        if not generator_trains:
            return logs
        if self.hole_weight is None:
            l2 = weighted_l2(fake, target, weights)
        else:
            l2 = self.reconstruction([(1.0, (fake - target).square())], masks)
        g_loss = L2_WEIGHT * l2
        if self.adversarial(step):
            # G step on the same forward, with D re-run after its update (a harmless difference).
            adversarial, matching = self.adversarial_terms(target, fake)
            scale = self.adversarial_scale(step)
            g_loss = g_loss + scale * ADV_WEIGHT * adversarial
            logs["g_adv"] = adversarial.item()
            if matching is not None:
                g_loss = g_loss + scale * self.fm_weight * matching
                logs["fm"] = matching.item()
        self.optimizers["generator"].zero_grad(set_to_none=True)
        g_loss.backward()
        self.optimizers["generator"].step()
        return {"g": g_loss.item(), "l2": l2.item(), **logs}

    def paper_mask(self, height: int, width: int, rng: np.random.Generator) -> np.ndarray:  # type: ignore[override]
        """The variant's training hole, bool (H, W), True = hole.

        "centre": the fixed inner-56² box. "random": a window of the random pattern with a 20–30 %
        hole; the pattern is drawn from `rng` on the first call and reused afterwards.
        """
        if self.variant == "centre":
            return centre_hole(height, width)[0, 0].numpy()
        side = max(PATTERN_SIDE, 4 * max(height, width))
        if self._pattern is None or self._pattern.shape[0] < side:
            self._pattern = random_pattern(side, rng)
        return pattern_window(self._pattern, height, width, rng)

"""The contract every registered model implements, learned or classical."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar, TypeAlias

import torch
from torch import nn

from ..registry import InputContract
from .augment import paired_augment, parse_policy

# What `inpaint` takes as randomness: one generator for the batch, one per sample (the engine's batched
# fills, so sample i draws what it would draw alone), or None for torch's global RNG.
Generators: TypeAlias = "torch.Generator | Sequence[torch.Generator] | None"


class InpaintModel(nn.Module):
    """Base class of every architecture.

    Subclasses are decorated with `@register(...)`, which sets `arch_name` and `contract`. They keep the
    keyword arguments they were built with in `self.arch_config` (JSON-serialisable), which is what a
    checkpoint stores in its metadata so the file alone can rebuild the network.

    `small_config` is the config quick checks build it with (the test suite fills and trains every
    architecture the registry holds): small widths that still run every layer. A model file brings its own.
    """

    arch_name: ClassVar[str]
    contract: ClassVar[InputContract]
    small_config: ClassVar[dict[str, Any]] = {}

    def __init__(self, **arch_config: Any) -> None:
        super().__init__()
        self.arch_config: dict[str, Any] = dict(arch_config)

    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, *, generator: Generators = None) -> torch.Tensor:
        """Fill the holes of a batch.

        image: float (B, 3, H, W) in [0, 1]; values under the hole are arbitrary (the model must not
            depend on them). mask: float (B, 1, H, W), 1 = hole, 0 = known. H and W satisfy
            `contract` (the engine pads/crops). generator: randomness for sampling models, drawn
            through `standard_normal`.
        Returns the raw prediction (B, 3, H, W) in [0, 1]; the engine composites known pixels back.
        """
        raise NotImplementedError


def standard_normal(shape: tuple[int, ...], generator: Generators, *, like: torch.Tensor) -> torch.Tensor:
    """z ~ N(0, 1) of `shape` on like's device and dtype. It is drawn in float32 on the generators'
    device and then cast, so a seed gives the same latent in fp32, bf16 and fp16; with one generator
    per sample, sample i of a batch draws exactly what a batch of that sample alone draws."""
    if generator is None or isinstance(generator, torch.Generator):
        device = like.device if generator is None else generator.device
        z = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    else:
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        z = torch.cat(
            [torch.randn((1, *shape[1:]), generator=g, device=g.device, dtype=torch.float32) for g in generator]
        )
    return z.to(like.device, like.dtype)


class TrainingRecipe:
    """A paper's training procedure, kept in the same file as its networks.

    A recipe owns everything beyond the generator that training needs — discriminators/critics and
    other networks, optimisers, losses, the D:G step ratio and phase schedule — and exposes one step.
    The generic loop (`inpaint train`) owns data, masks, devices, AMP, DDP, checkpoints and logging.

    Contract:
    - `networks`: every trainable module by name, "generator" included (checkpointed and, under torchrun,
      kept in sync by the loop; a recipe must call them through this dict so wrapping takes effect).
    - `generator_networks`: the names of the networks the generator's optimiser trains ("generator" and,
      e.g., PiiGAN's style extractor). Distributed training wraps these in DistributedDataParallel; every
      other network (the discriminators and critics) has its gradients averaged before its optimiser steps.
    - `optimizers`: name -> optimiser (checkpointed for exact resume).
    - `train_step(images, masks, step)`: images (B, 3, H, W) in [0, 1], masks (B, 1, H, W) with 1 = hole
      (one per sample); returns the step's losses as floats for logging, "g" being the generator's total.
    - `paper_mask(height, width, rng)`: the hole the paper trains with, used for
      `--masks paper` (called on the instance: some recipes cache a mask pattern).
    - `image_size`: the square training crop; critics with dense layers are built for it.
    - Registered with `@register_recipe(arch)` so `registry.get_recipe(arch)` finds it.
    - `small_size`: a small square crop every part of the recipe takes (dense layers, local patches), which
      quick checks train at; fixed-size models train at their `contract.fixed_size` instead.

    Settings every recipe takes (`--recipe KEY=VALUE`), each a documented deviation for small budgets; the
    defaults are the papers' recipes:
    - recon_steps: the first N steps train the generator on its reconstruction losses alone, with no
      discriminator forward or update (`adversarial(step)` says which steps are adversarial).
    - hole_weight: replace the paper's reconstruction loss by w·mean over hole pixels + mean over known
      pixels of each stage's error (separate means, as mmagic trains DeepFill v2); None = the paper's loss.
    - ema: keep an exponential moving average of the generator's weights with this decay (0 = off); the
      loop validates, exports and ships the average.
    - warmup_steps: ramp every learning rate linearly from lr/N to lr over the first N steps.

    Settings that steady the adversarial phase on small data (all off by default; each recipe that has a
    discriminator honours them, and its docstring says how):
    - d_warmup_steps: after the reconstruction warm-up, N steps train the discriminator alone against the
      frozen generator (GLCIC's T_D phase, for every recipe; GLCIC's recipe takes it as its T_D), so the
      generator's first adversarial gradients come from a discriminator that already tells its fills from
      photographs.
    - adv_ramp_steps: the adversarial terms' weight then rises linearly from 0 to its full value over N
      steps (`adversarial_scale`), instead of switching on at once.
    - fm_weight: feature matching (pix2pixHD): w·mean L1 between the discriminator's intermediate features
      of the ground truth and of the fill, added to the generator's loss (scaled by the ramp too). Each
      fill has its ground truth, so this is a perceptual loss learned from the data.
    - augment: DiffAugment policy for everything the discriminator sees (`augment.POLICIES`, a comma list,
      e.g. "color,translation,cutout"; '' = none).
    """

    default_batch: ClassVar[int] = 16
    default_size: ClassVar[int] = 256
    default_lr: ClassVar[float] = 1e-4
    generator_networks: ClassVar[tuple[str, ...]] = ("generator",)
    small_size: ClassVar[int] = 64
    # Train in channels-last memory format on CPUs too (CUDA always does): set where it measured faster
    # with oneDNN (benchmarks/README.md, bench_train.py --variant channels-last).
    channels_last_on_cpu: ClassVar[bool] = False
    # The smallest batch (per process) the recipe trains with: 2 where batch norm needs batch statistics.
    min_batch: ClassVar[int] = 1
    # Whether train_step honours d_warmup_steps, adv_ramp_steps, fm_weight and augment; a recipe that does
    # not refuses them rather than ignoring them.
    small_data_adversarial: ClassVar[bool] = False

    def __init__(
        self,
        generator: InpaintModel,
        *,
        lr: float | None = None,
        total_steps: int = 0,
        image_size: int | None = None,
        recon_steps: int = 0,
        hole_weight: float | None = None,
        ema: float = 0.0,
        warmup_steps: int = 0,
        d_warmup_steps: int = 0,
        adv_ramp_steps: int = 0,
        fm_weight: float = 0.0,
        augment: str = "",
    ) -> None:
        for name, count in (
            ("recon_steps", recon_steps),
            ("warmup_steps", warmup_steps),
            ("d_warmup_steps", d_warmup_steps),
            ("adv_ramp_steps", adv_ramp_steps),
        ):
            if int(count) != count or count < 0:
                raise ValueError(f"{name} must be a whole number of steps, 0 or more (got {count})")
        if not fm_weight >= 0:
            raise ValueError(f"fm_weight cannot be negative (got {fm_weight})")
        if not self.small_data_adversarial and (d_warmup_steps or adv_ramp_steps or fm_weight or augment):
            raise ValueError(
                f"{type(self).__name__} does not implement d_warmup_steps, adv_ramp_steps, fm_weight or augment yet"
            )
        if hole_weight is not None and not hole_weight > 0:
            raise ValueError(f"hole_weight must be positive (got {hole_weight})")
        if not 0.0 <= ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1), e.g. 0.999 (got {ema})")
        self.generator = generator
        self.lr = self.default_lr if lr is None else lr
        self.total_steps = total_steps
        self.image_size = self.default_size if image_size is None else image_size
        self.recon_steps = int(recon_steps)
        self.hole_weight = None if hole_weight is None else float(hole_weight)
        self.ema = float(ema)
        self.warmup_steps = int(warmup_steps)
        self.d_warmup_steps = int(d_warmup_steps)
        self.adv_ramp_steps = int(adv_ramp_steps)
        self.fm_weight = float(fm_weight)
        self.augment_policy = parse_policy(augment)
        self.networks: dict[str, nn.Module] = {"generator": generator}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def train_step(self, images: torch.Tensor, masks: torch.Tensor, step: int) -> dict[str, float]:
        raise NotImplementedError

    @staticmethod
    def paper_mask(height: int, width: int, rng: Any) -> Any:
        raise NotImplementedError

    def prepare(self, images: list[Any]) -> None:
        """Called once before the first step with a sample of training images (float RGB in [0, 1], H×W×3)
        for recipes that derive settings from the data (GLCIC's mean hole colour). Default: nothing."""

    def adversarial(self, step: int) -> bool:
        """Whether `step` (counted from 0) trains against the discriminator: not during the reconstruction
        warm-up. Recipes whose adversarial weight is 0 also skip their discriminator."""
        return step >= self.recon_steps

    def generator_trains(self, step: int) -> bool:
        """False during the discriminator warm-up (`d_warmup_steps` after the reconstruction warm-up)."""
        return not self.recon_steps <= step < self.recon_steps + self.d_warmup_steps

    def adversarial_scale(self, step: int) -> float:
        """The factor on the generator's adversarial terms at `step`: 0 until the discriminator warm-up
        ends, then rising linearly to 1 over `adv_ramp_steps` (at once without a ramp)."""
        start = self.recon_steps + self.d_warmup_steps
        if step < start:
            return 0.0
        if not self.adv_ramp_steps:
            return 1.0
        return min(1.0, (step - start + 1) / self.adv_ramp_steps)

    def augment(
        self, images: Sequence[torch.Tensor], mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """The `augment` policy applied alike to each of `images` (and its translation to `mask`): what the
        discriminator sees, in its own step and in the generator's."""
        return paired_augment(images, mask, self.augment_policy)

    def set_learning_rates(self, step: int) -> None:
        """Apply the warm-up to every optimiser for `step` (a pure function of the step, so a resumed run
        needs no scheduler state): lr·min(1, (step + 1)/warmup_steps)."""
        if not self.warmup_steps:
            return
        factor = min(1.0, (step + 1) / self.warmup_steps)
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                base = group.setdefault("base_lr", group["lr"])  # saved with the optimiser's state
                group["lr"] = base * factor

    def reconstruction(self, errors: list[tuple[float, torch.Tensor]], masks: torch.Tensor) -> torch.Tensor:
        """The `hole_weight` reconstruction loss: Σ weight·(hole_weight·mean over hole + mean over known
        pixels) of each (weight, element-wise error map) pair, e.g. [(1.0, |x − x1|), (1.0, |x − x2|)]."""
        if self.hole_weight is None:
            raise ValueError("reconstruction() is the hole_weight loss; hole_weight is not set")
        total = torch.zeros((), device=masks.device, dtype=torch.float32)
        for weight, error in errors:
            hole, known = hole_and_known_means(error, masks)
            total = total + weight * (self.hole_weight * hole + known)
        return total


def hole_and_known_means(error: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean of `error` over hole elements, mean over known elements); error (B, C, H, W), masks (B, 1, H, W).

    Means over every channel of the selected pixels of the whole batch; a side with no pixels gives 0."""
    channels = error.shape[1]
    hole_count = masks.sum() * channels
    known_count = (1.0 - masks).sum() * channels
    hole = (error * masks).sum() / hole_count.clamp(min=1.0)
    known = (error * (1.0 - masks)).sum() / known_count.clamp(min=1.0)
    return hole, known


@contextlib.contextmanager
def frozen(module: nn.Module, *, eval_mode: bool = False) -> Iterator[None]:
    """No parameter gradients for `module` inside the block (the generator's step backpropagates through
    the discriminator without filling its .grad). eval_mode: also run it in eval mode — for spectrally
    normalised nets that skips the second power iteration of the step; never for batch-norm nets, whose
    eval mode computes something else."""
    flags = [p.requires_grad for p in module.parameters()]
    was_training = module.training
    module.requires_grad_(False)
    if eval_mode:
        module.eval()
    try:
        yield
    finally:
        for parameter, flag in zip(module.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
        module.train(was_training)


def composite(prediction: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`prediction·M + image·(1−M)`: the filled image, as the critics and discriminators see it."""
    return prediction * mask + image * (1.0 - mask)


def hole_centred_boxes(masks: torch.Tensor, size: int) -> list[tuple[int, int]]:
    """Top-left corners of a size×size window per sample, centred on the bounding box of its hole and
    kept inside the image: the "local" patch that local critics and discounted losses look at
    (DeepFill v1's and PiiGAN's). Works for any mask shape, so free-form training masks get one too."""
    height, width = masks.shape[-2:]
    boxes = []
    for mask in masks[:, 0]:
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        cols = torch.nonzero(mask.any(dim=0)).flatten()
        if len(rows) == 0:
            centre_y, centre_x = height // 2, width // 2
        else:
            centre_y = int(rows[0] + rows[-1] + 1) // 2
            centre_x = int(cols[0] + cols[-1] + 1) // 2
        top = min(max(centre_y - size // 2, 0), max(height - size, 0))
        left = min(max(centre_x - size // 2, 0), max(width - size, 0))
        boxes.append((top, left))
    return boxes


def crop_boxes(images: torch.Tensor, boxes: list[tuple[int, int]], size: int) -> torch.Tensor:
    """Stack the size×size crops at `boxes` (one per sample) into (B, C, size, size)."""
    return torch.stack(
        [image[:, top : top + size, left : left + size] for image, (top, left) in zip(images, boxes, strict=True)]
    )

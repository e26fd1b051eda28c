"""The generic training loop behind `inpaint train`: every model's recipe, on one process or many.

The recipe (next to each model, `TrainingRecipe`) owns networks, optimisers, losses and the paper's
schedule; this loop owns data, masks, device, AMP, DDP, validation, checkpoints and logging.

Run directory (`--out`):
  config.toml              the resolved config (every key mirrors a flag; `--config` reads the same format)
  last.safetensors         the generator alone, in the format `inpaint fill --model` loads, with its arch
                           config and training provenance in the metadata
  best.safetensors         the same, at the best validation PSNR so far
  last.state.safetensors   everything `--resume` needs (below)
  metrics.jsonl            one JSON object per line: kind "train" (losses averaged since the last line,
                           it/s, lr), "val" (PSNR/SSIM/L1 over the hole), "baseline" (Telea on the same cases)
  previews/step_XXXXXX.png masked input / coarse (two-stage models) / output / ground truth

Training state (`last.state.safetensors`, no pickles anywhere): every network of `recipe.networks`
("network.NAME.KEY"), every optimiser's tensors ("optimizer.NAME.INDEX.KEY") with the rest of its
state_dict (param_groups, non-tensor values) as JSON in the metadata, LR schedulers' state_dicts (JSON),
the torch RNG state of every rank ("rng.torch.RANK", "rng.cuda.RANK"), the step, the resolved config and
the best validation result. Each file is written atomically (temp file + fsync + os.replace). The state is
written before last.safetensors: a resume reads only the state file (it holds the generator too), so a
crash between the two writes loses nothing and cannot pair mismatched files.

Exact resume: data and masks are pure functions of (seed, step, rank, sample) (see `data.py`), the state
file restores weights, optimiser moments, schedulers and RNG states, and validation runs inside
`torch.random.fork_rng` with its own seeded generator, so it never shifts the training random streams.
N steps in one go and N/2 + resume N/2 give the same weights on CPU. Ctrl-C asks the loop to stop after
the current step (a second Ctrl-C aborts at once, without saving); it then saves and raises
KeyboardInterrupt, which the CLI turns into exit code 130.

AMP: `--amp` runs `train_step` under bf16 autocast (CPU and CUDA). fp16 is not offered for training:
it needs a GradScaler, which would have to reach inside every recipe's backward/step pairs; bf16 has
fp32's exponent range and needs none. Known issue (torch 2.13, CPU): oneDNN's bf16 convolution weight
gradient can contain NaN when a layer's input is smaller than its padded kernel window (1×1 maps into a
5×5 conv), which DeepFill v2's SN-PatchGAN reaches at crops below 128²; fp32, or --amp at ≥ 128², is fine.
Non-finite losses are logged as warnings, training is not stopped.

Resuming with a different --steps is allowed, but recipes that scale their schedule with the run length
(GLCIC's phases) then follow the new length from the resumed step on.

Distributed (torchrun, WORLD_SIZE > 1): gloo on CPU, nccl on CUDA; each rank draws its own samples (the
rank is part of every seed tuple and of the sharded file order), so the global batch is batch × world.
Rank 0 alone logs, validates and writes files; the others wait at a barrier. Gradients are averaged
across ranks in one of two ways, by network role (`DDP_NETWORK_NAMES`):
- `DistributedDataParallel` for the generator side: every "generator" and PiiGAN's "extractor" (which
  shares the generator's optimiser). Their gradients come from one backward per step, and DDP overlaps
  the all-reduce with it.
- Every other network — the discriminators and critics — is not wrapped; an optimiser step pre-hook
  all-reduces (averages) its gradients in one flat buffer right before each of its optimiser steps.
  Why: recipes backpropagate the generator's loss through the discriminator too, and under DDP that
  backward would all-reduce the discriminator's gradients a second time per step only for them to be
  zeroed; and the WGAN-GP critics (DeepFill v1, PiiGAN) take `torch.autograd.grad(create_graph=True)`
  and run several forwards per backward, which DDP's documentation does not support. Averaging at the
  step communicates each gradient exactly once and needs no support from DDP at all.
Checked with torch 2.13 on CPU (gloo, 2 processes, 3 steps of every recipe): this split, DDP on every
network and the all-reduce hook on every network gave bitwise-identical weights, and every run ends by
comparing a hash of all parameters across ranks (an InpaintError if they differ). Batch-norm running
statistics are per rank (DDP broadcasts rank 0's before each forward, the unwrapped networks keep their
own); rank 0's are saved. Only GLCIC and the Context Encoder have batch norm.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import gc
import hashlib
import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..errors import InpaintError, UsageError
from ..io import write_atomic
from ..weights import (
    load_state_strict,
    read_checkpoint,
    read_checkpoint_metadata,
    read_toml,
    save_checkpoint,
    toml_key,
    toml_value,
)
from . import data as train_data

log = logging.getLogger("inpaint_cli")

STATE_FORMAT = "inpaint-cli-train-state/1"
CONFIG_FILE = "config.toml"
LAST_FILE = "last.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "last.state.safetensors"
METRICS_FILE = "metrics.jsonl"
PREVIEW_DIR = "previews"
TEST_LIST = "test.txt"  # in --data: the report split, never trained on nor used to select a checkpoint

PREPARE_IMAGES = 64  # images handed to `recipe.prepare` (e.g. GLCIC's mean colour)
VAL_BATCH = 8
VAL_SAMPLE_SEED = 1234  # latent draws of sampling models during validation: the same every pass
PREVIEW_ROWS = 8
MAX_PSNR = 100.0  # a case filled perfectly counts as 100 dB, so one cannot make the mean infinite

# Networks trained with DistributedDataParallel; every other network has its gradients all-reduced right
# before its optimiser steps (see the module docstring for why).
DDP_NETWORK_NAMES = frozenset({"generator", "extractor"})

# -------------------------------------------------------------------------------------------- config


@dataclass
class TrainConfig:
    """What `inpaint train` does; every field mirrors a flag (`--val-list` ↔ val_list).

    None means "not given": the recipe's default (size, batch, lr), the documented default below, or, with
    `resume`, the value the run was started with.
    model: arch name (deepfill_v2, ...). data: folder of training images (recursive). val: a folder of
    validation images, or val_list: a file of names relative to `data` (excluded from training); with
    neither, validation scores `val_count` training images (fit, not generalisation). out: run directory.
    short_side: resize every image so its shorter side is this many pixels before cropping (the scale that
    `inpaint benchmark --size` scores at); None = crop the files at their own resolution.
    masks: paper (default) | freeform | box | mixed. device: auto (default) | cpu | cuda[:N] | mps.
    amp: bf16 autocast. seed: 0. workers: data-loading threads (0 = in process). init: a generator
    checkpoint to fine-tune from. resume: continue the run in `out` exactly.
    val_every / save_every: 1000 steps; log_every: 10; preview_every: val_every (previews are written at
    validation passes whose step is a multiple of it, and at the end). val_count: 16 validation cases.
    model_config: arch config overrides, e.g. {"cnum": 48}.
    recipe_config: keyword arguments of the model's training recipe beyond the paper's defaults, e.g.
    {"gan_weight": 0.1} for DeepFill v2 or {"phase_steps": [300, 30]} for GLCIC (`recipe_settings(arch)`
    lists them).
    """

    model: str | None = None
    data: str | None = None
    val: str | None = None
    val_list: str | None = None
    out: str | None = None
    size: int | None = None
    short_side: int | None = None
    batch: int | None = None
    steps: int | None = None
    lr: float | None = None
    masks: str | None = None
    device: str | None = None
    amp: bool | None = None
    seed: int | None = None
    workers: int | None = None
    init: str | None = None
    resume: bool = False
    val_every: int | None = None
    save_every: int | None = None
    log_every: int | None = None
    preview_every: int | None = None
    val_count: int | None = None
    model_config: dict[str, Any] | None = None
    recipe_config: dict[str, Any] | None = None


DEFAULTS: dict[str, Any] = {
    "steps": 10_000,
    "masks": "paper",
    "device": "auto",
    "amp": False,
    "seed": 0,
    "workers": 0,
    "val_every": 1000,
    "save_every": 1000,
    "log_every": 10,
    "val_count": 16,
}
FIELD_TYPES: dict[str, type] = {
    "model": str,
    "data": str,
    "val": str,
    "val_list": str,
    "out": str,
    "size": int,
    "short_side": int,
    "batch": int,
    "steps": int,
    "lr": float,
    "masks": str,
    "device": str,
    "amp": bool,
    "seed": int,
    "workers": int,
    "init": str,
    "resume": bool,
    "val_every": int,
    "save_every": int,
    "log_every": int,
    "preview_every": int,
    "val_count": int,
    "model_config": dict,
    "recipe_config": dict,
}
PATH_FIELDS = ("data", "val", "val_list", "out", "init")
TABLE_FIELDS = ("model_config", "recipe_config")
FLAG_NAMES = {"model_config": "set", "recipe_config": "recipe"}  # fields whose flag is not their name
# What a resumed run may change: when and how often things happen and where, never what is trained. (A
# different device, e.g. a CUDA run continued on a CPU, resumes correctly but not bit for bit.)
RESUME_MUTABLE = frozenset(
    {"steps", "val_every", "save_every", "log_every", "preview_every", "workers", "resume", "device"}
)


def _check_type(name: str, value: Any, where: str) -> Any:
    expected = FIELD_TYPES[name]
    ok = (
        isinstance(value, (int, float)) and not isinstance(value, bool)
        if expected is float
        else isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    )
    if not ok:
        raise InpaintError(f"{where}: {name} must be a {expected.__name__}, got {value!r}")
    return float(value) if expected is float else value


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML training config: keys mirror the flags (`val-list` or `val_list`), plus [model_config]
    and [recipe_config] tables. Relative paths are relative to the file's folder. Returns TrainConfig field
    names → values; unknown keys and wrong types are an InpaintError naming the file and key."""
    config_path = Path(path)
    parsed = read_toml(config_path, "the config", "; check --config")
    values: dict[str, Any] = {}
    for key, value in parsed.items():
        name = key.replace("-", "_")
        if name not in FIELD_TYPES:
            known = ", ".join(k.replace("_", "-") for k in FIELD_TYPES)
            raise InpaintError(f"{config_path}: unknown key {key!r}; known keys: {known}")
        value = _check_type(name, value, str(config_path))
        if name in PATH_FIELDS:
            value = str((config_path.parent / Path(value).expanduser()).resolve())
        values[name] = value
    return values


def config_to_toml(config: TrainConfig | dict[str, Any]) -> str:
    """The config as TOML that `load_config` reads back (flat keys, None omitted, the tables last)."""
    values = dataclasses.asdict(config) if isinstance(config, TrainConfig) else dict(config)
    lines = ["# inpaint train: the resolved configuration of this run (`inpaint train --config` reads it)"]
    for name in FIELD_TYPES:
        value = values.get(name)
        if value is None or name in (*TABLE_FIELDS, "resume"):
            continue
        lines.append(f"{name.replace('_', '-')} = {toml_value(value)}")
    for table in TABLE_FIELDS:
        settings = values.get(table) or {}
        if settings:
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in settings.items())
    return "\n".join(lines) + "\n"


_RECIPE_LOOP_ARGUMENTS = frozenset({"generator", "lr", "total_steps", "image_size"})  # what the loop passes


def recipe_settings_of(recipe_cls: Any) -> dict[str, Any]:
    """The keyword settings a recipe takes beyond what the loop passes (name → default): its own and those
    every recipe inherits from `TrainingRecipe` (recon_steps, hole_weight, ema, warmup_steps)."""
    from ..registry import constructor_defaults

    settings: dict[str, Any] = {}
    for cls in reversed(recipe_cls.__mro__):
        if "__init__" in vars(cls) and cls is not object:
            settings.update(constructor_defaults(cls, skip=_RECIPE_LOOP_ARGUMENTS))
    return settings


def recipe_settings(arch: str) -> dict[str, Any]:
    """`--recipe` settings of an architecture's training recipe (name → default)."""
    from ..registry import get_recipe

    return recipe_settings_of(get_recipe(arch))


def _resolve(config: TrainConfig, recipe_cls: Any) -> TrainConfig:
    """Fill in defaults, absolutise paths and check values (UsageError naming the flag)."""
    values = dataclasses.asdict(config)
    for name in ("model", "data", "out"):
        if not values[name]:
            raise UsageError(f"--{name} is required")
    for name, default in DEFAULTS.items():
        if values[name] is None:
            values[name] = default
    if values["size"] is None:
        values["size"] = recipe_cls.default_size
    if values["batch"] is None:
        values["batch"] = recipe_cls.default_batch
    values["lr"] = float(values["lr"] if values["lr"] is not None else recipe_cls.default_lr)
    if values["preview_every"] is None:
        values["preview_every"] = values["val_every"]
    values["model_config"] = dict(values["model_config"] or {})
    values["recipe_config"] = dict(values["recipe_config"] or {})
    known = recipe_settings_of(recipe_cls)
    unknown = sorted(set(values["recipe_config"]) - set(known))
    if unknown:
        raise UsageError(
            f"--recipe {unknown[0]}: not a setting of the {values['model']} recipe; known: {', '.join(known) or 'none'}"
        )
    for name in PATH_FIELDS:
        if values[name]:
            values[name] = str(Path(values[name]).expanduser().resolve())
    for name in ("size", "batch", "steps", "val_every", "save_every", "log_every", "preview_every"):
        if int(values[name]) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {values[name]})")
    if values["short_side"] is not None and values["short_side"] < values["size"]:
        raise UsageError(f"--short-side {values['short_side']} is below --size {values['size']}; crops would not fit")
    for name in ("workers", "val_count"):
        if int(values[name]) < 0:
            raise UsageError(f"--{name.replace('_', '-')} cannot be negative (got {values[name]})")
    if not values["lr"] > 0:
        raise UsageError(f"--lr must be positive (got {values['lr']})")
    if values["masks"] not in train_data.MASK_KINDS:
        raise UsageError(f"--masks {values['masks']}: expected one of {', '.join(train_data.MASK_KINDS)}")
    if values["val"] and values["val_list"]:
        raise UsageError("--val and --val-list are exclusive; pass a folder or a list, not both")
    return TrainConfig(**values)


def _merge_for_resume(saved: TrainConfig, given: TrainConfig, state_path: Path) -> TrainConfig:
    """The saved config with the changes a resume may make; anything else that differs is refused."""
    merged = dataclasses.asdict(saved)
    for name, value in dataclasses.asdict(given).items():
        if value is None or name == "resume":
            continue
        if name in PATH_FIELDS:
            value = str(Path(value).expanduser().resolve())
        if name == "out":  # the run directory may have been moved; it is where the state was found
            merged[name] = value
            continue
        if name == "lr":
            value = float(value)
        if name in RESUME_MUTABLE:
            merged[name] = value
        elif value != merged[name]:
            flag = FLAG_NAMES.get(name, name.replace("_", "-"))
            raise UsageError(
                f"--resume: --{flag} {value!r} differs from {merged[name]!r} in {state_path}; a resumed run "
                f"keeps its config (only steps, workers, device and the val/save/log/preview intervals may "
                f"change) — drop --{flag} or start a new run with another --out"
            )
    merged["resume"] = True
    return TrainConfig(**merged)


# ------------------------------------------------------------------------------------- distributed


@dataclass
class _Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    created_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()


def _init_distributed(device: str) -> _Distributed:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return _Distributed()
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        created = True
    return _Distributed(rank, world_size, local_rank, created)


def _average_gradients_hook(parameters: list[nn.Parameter], world_size: int) -> Callable[..., None]:
    """An optimiser step pre-hook averaging the gradients of `parameters` over every rank.

    Every rank runs the same recipe code, so the same parameters have gradients (or None) everywhere."""
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = _flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= world_size
        for grad, averaged in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
            grad.copy_(averaged)

    return hook


# --------------------------------------------------------------------------------------- state file


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu", copy=True).contiguous()


def _flatten_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state_dict as tensors + a JSON-able remainder (param_groups, non-tensor values)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{name}.{index}.{key}"] = _cpu_copy(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"optimizer.{name}."
    for key, tensor in tensors.items():
        if key.startswith(prefix):
            index, entry = key[len(prefix) :].split(".", 1)
            state.setdefault(int(index), {})[entry] = tensor
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for saved, live in zip(meta["param_groups"], optimizer.param_groups, strict=True):
        # JSON turned tuples (Adam's betas) into lists: give them back the live optimiser's types.
        groups.append({k: tuple(v) if isinstance(live.get(k), tuple) else v for k, v in saved.items()})
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ----------------------------------------------------------------------------------------- the run


class _Interrupted(Exception):
    """Raised inside the loop when every rank agreed to stop after a Ctrl-C."""


class _Trainer:
    def __init__(self, config: TrainConfig, *, progress: bool, step_hook: Callable[[int], None] | None) -> None:
        from ..devices import pick_device
        from ..registry import get_arch, get_recipe

        self.show_progress = progress
        self.step_hook = step_hook
        self.out = Path(config.out).expanduser().resolve() if config.out else None
        if self.out is None:
            raise UsageError("--out is required (the run directory)")
        self.state_path = self.out / STATE_FILE
        self.saved_state: dict[str, Any] | None = None

        if config.resume:
            if not self.state_path.is_file():
                raise UsageError(
                    f"--resume: {self.state_path} does not exist; start the run without --resume "
                    f"or pass the --out of an existing run"
                )
            self.saved_state = _read_state(self.state_path)
            saved_config = TrainConfig(**json.loads(self.saved_state["meta"]["config"]))
            self.config = _merge_for_resume(saved_config, config, self.state_path)
            self.recipe_cls = get_recipe(self.config.model)
        else:
            if self.state_path.exists():
                raise UsageError(
                    f"{self.out} already holds a run ({STATE_FILE}); pass --resume to continue it or choose "
                    f"another --out"
                )
            if not config.model:
                raise UsageError("--model is required")
            self.recipe_cls = get_recipe(config.model)
            self.config = _resolve(config, self.recipe_cls)
        cfg = self.config
        self.arch = cfg.model
        self.contract = get_arch(self.arch).contract
        multiple = self.contract.fixed_size or self.contract.pad_multiple
        if cfg.size % multiple:
            raise UsageError(f"--size {cfg.size}: {self.arch} needs a multiple of {multiple}")

        cfg.device = pick_device(cfg.device)  # "auto" is stored as what it chose, so a resume keeps it
        self.dist = _init_distributed(cfg.device)
        device_name = cfg.device
        if self.dist.enabled and device_name.startswith("cuda"):
            device_name = f"cuda:{self.dist.local_rank}"  # one GPU per process
            torch.cuda.set_device(self.dist.local_rank)
        self.device = torch.device(device_name)
        self.metrics_path = self.out / METRICS_FILE
        self.stopped_cleanly = False

    # -- setup -------------------------------------------------------------------------------------

    def setup(self) -> None:
        cfg = self.config
        data_dir = Path(cfg.data)
        val_files: list[Path] = []
        if cfg.val_list:
            val_files = train_data.read_val_list(cfg.val_list, data_dir)
        elif cfg.val:
            val_files = train_data.find_images(cfg.val)
            if not val_files:
                raise InpaintError(f"{cfg.val} holds no images; pass a folder of validation images to --val")
        # Never train on held-out files: the validation images (a --val folder may sit inside --data) and the
        # report split named by DATA/test.txt, which `inpaint benchmark` scores and nothing may select on.
        test_files = (
            train_data.read_val_list(data_dir / TEST_LIST, data_dir) if (data_dir / TEST_LIST).is_file() else []
        )
        train_files = train_data.find_images(data_dir, exclude=[*val_files, *test_files])
        if not train_files:
            raise InpaintError(
                f"{data_dir} holds no training images (jpg, png, webp, bmp, tif; searched recursively) once the "
                f"held-out files (validation, {TEST_LIST}) are left out; check --data"
            )
        if test_files and self.dist.is_main:
            log.info("leaving out the %d report-split files of %s", len(test_files), data_dir / TEST_LIST)
        self.folder = train_data.ImageFolder(train_files, short_side=cfg.short_side)

        # Identical initial weights on every rank; rank-specific randomness (latents, interpolates) after.
        torch.manual_seed(cfg.seed)
        generator = self._build_generator()
        try:
            self.recipe = self.recipe_cls(
                generator, lr=cfg.lr, total_steps=cfg.steps, image_size=cfg.size, **(cfg.recipe_config or {})
            )
        except (ValueError, TypeError) as e:
            raise UsageError(f"--model {self.arch}: {e}") from None
        from ..models.base import TrainingRecipe

        if type(self.recipe).prepare is not TrainingRecipe.prepare:  # decoding 64 photos is not free
            self.recipe.prepare(self.folder.sample_images(PREPARE_IMAGES))
        self.raw_networks: dict[str, nn.Module] = dict(self.recipe.networks)
        self.generator = self.raw_networks["generator"]
        seed_rank = np.random.SeedSequence([cfg.seed, self.dist.rank, 1]).generate_state(1)[0]
        torch.manual_seed(int(seed_rank))

        # Convolutions prefer NHWC on GPUs; on CPUs only some architectures gain (the recipe says).
        self.channels_last = self.device.type == "cuda" or (
            self.device.type == "cpu" and type(self.recipe).channels_last_on_cpu
        )
        for module in self.raw_networks.values():
            module.to(self.device)
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            module.train()

        # The averaged generator (`--recipe ema=D`): validated and exported instead of the raw weights.
        self.ema_generator: nn.Module | None = None
        if self.recipe.ema:
            self.ema_generator = copy.deepcopy(self.generator).requires_grad_(False)
        self.start_step = 0
        self.best: dict[str, Any] | None = None
        self.wall_before = 0.0
        if self.saved_state is not None:
            self._restore(self.saved_state)
        if self.dist.enabled:
            self._distribute()

        self.mask_sampler = train_data.make_mask_sampler(cfg.masks, self.recipe, warmup_seed=cfg.seed)
        self.batches = train_data.TrainBatches(
            self.folder,
            self.mask_sampler,
            size=cfg.size,
            batch=cfg.batch,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
        )
        self.val_cases: list[train_data.ValCase] = []
        if self.dist.is_main:
            if not val_files and cfg.val_count:
                log.warning(
                    "no --val or --val-list: validating on %d training images (this measures fit, not generalisation)",
                    min(cfg.val_count, len(train_files)),
                )
            # Validation holes are the kind the model trains on, so "best" means best at its task.
            self.val_cases = train_data.make_val_cases(
                val_files or train_files, cfg.size, self.mask_sampler, count=cfg.val_count, short_side=cfg.short_side
            )

    def _build_generator(self) -> nn.Module:
        from ..registry import create_model

        cfg = self.config
        if self.saved_state is not None:
            # Resuming: the state holds the weights; rebuild from the saved arch config, so the --init file
            # need not exist any more.
            return create_model(self.arch, **json.loads(self.saved_state["meta"]["generator_config"]))
        if not cfg.init:
            return create_model(self.arch, **cfg.model_config)
        checkpoint = read_checkpoint(cfg.init)
        if checkpoint.arch != self.arch:
            raise UsageError(f"--init {cfg.init} is a {checkpoint.arch} checkpoint; --model is {self.arch}")
        generator = create_model(self.arch, **{**checkpoint.config, **cfg.model_config})
        load_state_strict(generator, checkpoint.state_dict, source=str(cfg.init))
        return generator

    def _distribute(self) -> None:
        """DDP for the networks in DDP_NETWORK_NAMES, gradient all-reduce before the optimiser step for the rest."""
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DDP_NETWORK_NAMES
        ddp_parameters: set[int] = set()
        self.sync_plan: dict[str, str] = {}
        for name, module in self.raw_networks.items():
            if name in wrapped:
                device_ids = [self.device.index] if self.device.type == "cuda" else None
                self.recipe.networks[name] = DistributedDataParallel(module, device_ids=device_ids)
                ddp_parameters.update(id(p) for p in module.parameters())
                self.sync_plan[name] = "DistributedDataParallel"
            else:
                for tensor in [*module.parameters(), *module.buffers()]:  # DDP does this for its own
                    torch.distributed.broadcast(tensor.data, src=0)
                self.sync_plan[name] = "all_reduce before optimizer step"
        for optimizer in self.recipe.optimizers.values():
            manual = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in ddp_parameters]
            if manual:
                optimizer.register_step_pre_hook(_average_gradients_hook(manual, self.dist.world_size))
        if self.dist.is_main:
            log.info("distributed over %d ranks: %s", self.dist.world_size, self.sync_plan)

    @property
    def shipped_generator(self) -> nn.Module:
        """What is validated and exported: the weight average when `ema` is set, else the raw generator."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    @torch.no_grad()
    def _update_ema(self, done: int) -> None:
        """ema ← d·ema + (1 − d)·weights with d = min(ema, (1 + done)/(10 + done)): the ramp keeps the
        random init from dominating a short run (at step 1000 it would still weigh 0.999¹⁰⁰⁰ = 37 %).
        Floating buffers (batch-norm running statistics) are averaged the same way: the live network's
        statistics do not fit averaged weights (measured: a Context Encoder's EMA scored 16.4 dB with
        copied statistics where its raw generator scored 19.3). Integer buffers are copied."""
        if self.ema_generator is None:
            return
        decay = min(self.recipe.ema, (1.0 + done) / (10.0 + done))
        averaged = list(self.ema_generator.parameters())
        live = [p.detach() for p in self.generator.parameters()]
        for average, buffer in zip(self.ema_generator.buffers(), self.generator.buffers(), strict=True):
            if buffer.is_floating_point():
                averaged.append(average)
                live.append(buffer)
            else:
                average.copy_(buffer)
        torch._foreach_lerp_(averaged, live, 1.0 - decay)

    # -- state -------------------------------------------------------------------------------------

    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        """Every rank's RNG states (a collective under DDP: all ranks must call it)."""
        states = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.device)
        if not self.dist.enabled:
            return {f"rng.{kind}.0": state for kind, state in states.items()}
        comm_device = self.device if self.device.type == "cuda" else torch.device("cpu")
        gathered = {}
        for kind, state in states.items():
            mine = state.to(comm_device)
            parts = [torch.empty_like(mine) for _ in range(self.dist.world_size)]
            torch.distributed.all_gather(parts, mine)
            gathered.update({f"rng.{kind}.{rank}": part.cpu() for rank, part in enumerate(parts)})
        return gathered

    def _save(self, step: int, wall: float) -> None:
        """Write the training state, then the generator export (rank 0; every rank must call it)."""
        from safetensors.torch import save

        rng = self._rng_tensors()
        if not self.dist.is_main:
            return
        tensors: dict[str, torch.Tensor] = dict(rng)
        for name, module in self.raw_networks.items():
            tensors.update({f"network.{name}.{key}": _cpu_copy(v) for key, v in module.state_dict().items()})
        if self.ema_generator is not None:
            tensors.update({f"ema.generator.{k}": _cpu_copy(v) for k, v in self.ema_generator.state_dict().items()})
        optimizers = {}
        for name, optimizer in self.recipe.optimizers.items():
            flat, meta = _flatten_optimizer(name, optimizer)
            tensors.update(flat)
            optimizers[name] = meta
        schedulers = {name: s.state_dict() for name, s in getattr(self.recipe, "schedulers", {}).items()}
        metadata = {
            "format": STATE_FORMAT,
            "step": str(step),
            "world_size": str(self.dist.world_size),
            "config": json.dumps(dataclasses.asdict(self.config)),
            "networks": json.dumps(sorted(self.raw_networks)),
            "generator_config": json.dumps(self.generator.arch_config),
            "optimizers": json.dumps(optimizers),
            "schedulers": json.dumps(schedulers),
            "best": json.dumps(self.best),
            "wall_seconds": repr(wall),
        }
        write_atomic(self.state_path, save(tensors, metadata=metadata))
        provenance = self._provenance(step, wall, self.last_val)
        save_checkpoint(self.out / LAST_FILE, self.shipped_generator, provenance=provenance)

    def _restore(self, state: dict[str, Any]) -> None:
        meta, tensors = state["meta"], state["tensors"]
        saved_world = int(meta.get("world_size", "1"))
        if saved_world != self.dist.world_size:
            raise UsageError(
                f"--resume: {self.state_path} was written by {saved_world} process(es), this run has "
                f"{self.dist.world_size}; resume with the same --nproc-per-node"
            )
        names = json.loads(meta["networks"])
        if sorted(names) != sorted(self.raw_networks):
            raise InpaintError(f"{self.state_path} holds networks {names}, the recipe has {sorted(self.raw_networks)}")
        for name, module in self.raw_networks.items():
            prefix = f"network.{name}."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise InpaintError(f"{self.state_path}: {name} does not fit ({str(e).splitlines()[0]})") from None
        if self.ema_generator is not None:
            prefix = "ema.generator."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                self.ema_generator.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise InpaintError(
                    f"{self.state_path}: the EMA generator does not fit ({str(e).splitlines()[0]})"
                ) from None
        optimizers = json.loads(meta["optimizers"])
        for name, optimizer in self.recipe.optimizers.items():
            _restore_optimizer(name, optimizer, tensors, optimizers[name])
        for name, scheduler in getattr(self.recipe, "schedulers", {}).items():
            scheduler.load_state_dict(json.loads(meta["schedulers"])[name])
        torch.set_rng_state(tensors[f"rng.torch.{self.dist.rank}"])
        if self.device.type == "cuda" and f"rng.cuda.{self.dist.rank}" in tensors:
            torch.cuda.set_rng_state(tensors[f"rng.cuda.{self.dist.rank}"], self.device)
        self.start_step = int(meta["step"])
        self.best = json.loads(meta.get("best", "null"))
        self.wall_before = float(meta.get("wall_seconds", "0"))
        self._reconcile_best()

    def _reconcile_best(self) -> None:
        """best.safetensors may be newer than the state (a crash between the two writes): trust the file."""
        best_path = self.out / BEST_FILE
        if not best_path.is_file():
            return
        with contextlib.suppress(InpaintError, ValueError):
            provenance = json.loads(read_checkpoint_metadata(best_path).get("provenance", "{}"))
            on_disk = provenance.get("val") or {}
            if "psnr" in on_disk and (self.best is None or on_disk["psnr"] > self.best["psnr"]):
                self.best = {**on_disk, "step": provenance.get("steps")}

    def _provenance(self, step: int, wall: float, val: dict[str, float] | None) -> dict[str, Any]:
        cfg = self.config
        # Folder and file names only: the absolute paths of the training machine mean nothing elsewhere.
        config = {k: (Path(v).name if k in PATH_FIELDS and v else v) for k, v in dataclasses.asdict(cfg).items()}
        return {
            "trained_by": "inpaint train",
            "arch": self.arch,
            "steps": step,
            "data": config["data"],
            "images": len(self.folder),
            "seed": cfg.seed,
            "wall_seconds": round(wall, 3),
            "world_size": self.dist.world_size,
            "val": val,
            "ema": self.recipe.ema or None,
            "config": config,
            "torch": torch.__version__,
        }

    # -- observability -----------------------------------------------------------------------------

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=float) + "\n")

    def _trim_metrics(self) -> None:
        """On resume, drop lines a crashed run logged after its last checkpoint (they will be redone)."""
        if not self.metrics_path.is_file():
            return
        kept = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                if json.loads(line).get("step", 0) <= self.start_step:
                    kept.append(line)
        write_atomic(self.metrics_path, ("\n".join(kept) + "\n" if kept else "").encode())

    def _score(self, fill: Callable[[torch.Tensor, torch.Tensor], Any]) -> tuple[dict[str, float], list[Any]]:
        """Fill every val case with `fill(images, masks)` → (predictions, coarse or None); mean hole metrics."""
        psnrs, ssims, l1s, outputs = [], [], [], []
        for start in range(0, len(self.val_cases), VAL_BATCH):
            cases = self.val_cases[start : start + VAL_BATCH]
            images = torch.from_numpy(np.stack([c.image for c in cases])).permute(0, 3, 1, 2).to(self.device)
            holes = torch.from_numpy(np.stack([c.mask for c in cases])[:, None].astype(np.float32)).to(self.device)
            known = images * (1.0 - holes)  # nothing under the hole reaches the model
            prediction, coarse = fill(known, holes)
            for index, case in enumerate(cases):
                pred = prediction[index].float().permute(1, 2, 0).cpu().numpy()
                output = np.where(case.mask[..., None], pred, case.image).astype(np.float32)
                psnrs.append(min(metrics.psnr(output, case.image, case.mask), MAX_PSNR))
                ssims.append(metrics.ssim(output, case.image, case.mask))
                l1s.append(metrics.l1(output, case.image, case.mask))
                rough = None
                if coarse is not None:
                    rough = coarse[index].float().permute(1, 2, 0).cpu().numpy()
                    rough = np.where(case.mask[..., None], rough, case.image).astype(np.float32)
                outputs.append((output, rough))
        scores = {"psnr": float(np.mean(psnrs)), "ssim": float(np.mean(ssims)), "l1": float(np.mean(l1s))}
        return scores, outputs

    def _baseline(self) -> None:
        """Telea on the val cases, once per run start: the number a learned model has to beat."""
        if not self.dist.is_main or not self.val_cases:
            return
        from ..registry import create_model

        telea = create_model("telea")
        scores, _ = self._score(lambda images, holes: (telea.inpaint(images.cpu(), holes.cpu()), None))
        self._log({"kind": "baseline", "step": self.start_step, **{f"telea_{k}": v for k, v in scores.items()}})

    def _validate(self, step: int, *, final: bool) -> dict[str, float] | None:
        """Score the shipped generator (the EMA when set; the raw one's scores are logged beside it as raw_*)
        on the val cases (rank 0), maybe write a preview and best.safetensors."""
        if not self.dist.is_main or not self.val_cases:
            return None
        scores, outputs = self._evaluate(self.shipped_generator)
        record = dict(scores)
        if self.ema_generator is not None:
            raw, _ = self._evaluate(self.generator)
            record.update({f"raw_{k}": v for k, v in raw.items()})
        self.last_val = scores
        self._log({"kind": "val", "step": step, **record})
        if final or step % self.config.preview_every == 0:
            self._preview(step, outputs)
        if self.best is None or scores["psnr"] > self.best["psnr"]:
            self.best = {**scores, "step": step}
            provenance = self._provenance(step, self._wall(), scores)
            save_checkpoint(self.out / BEST_FILE, self.shipped_generator, provenance=provenance)
        return scores

    def _evaluate(self, generator: nn.Module) -> tuple[dict[str, float], list[Any]]:
        """`_score` of one generator in eval mode, without touching the training random streams."""
        captured: list[Any] = []
        hook = generator.register_forward_hook(lambda module, args, output: captured.append(output))
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.config.amp))
        # fork_rng: validation must not consume training randomness, or a resumed run would diverge.
        devices = [self.device] if self.device.type == "cuda" else []
        was_training = generator.training
        try:
            generator.eval()
            with torch.random.fork_rng(devices=devices), torch.inference_mode(), amp:
                sampler = torch.Generator(device=self.device).manual_seed(VAL_SAMPLE_SEED)

                def fill(images: torch.Tensor, holes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
                    captured.clear()
                    prediction = generator.inpaint(images, holes, generator=sampler)
                    output = captured[-1] if captured else None
                    # Two-stage models (DeepFill v1/v2, PiiGAN) return (coarse, refined) in [-1, 1].
                    is_pair = isinstance(output, tuple) and len(output) == 2
                    coarse = ((output[0].float() + 1.0) / 2.0).clamp(0.0, 1.0) if is_pair else None
                    return prediction, coarse

                return self._score(fill)
        finally:
            hook.remove()
            generator.train(was_training)

    def _preview(self, step: int, outputs: list[Any]) -> None:
        from ..grid import contact_sheet, masked_input
        from ..io import write_image

        has_coarse = any(rough is not None for _, rough in outputs)
        labels = ["masked input", *(["coarse"] if has_coarse else []), "output", "ground truth"]
        rows, captions = [], []
        for case, (output, rough) in list(zip(self.val_cases, outputs, strict=True))[:PREVIEW_ROWS]:
            row = [masked_input(case.image, case.mask), *([rough] if has_coarse else []), output, case.image]
            rows.append(row)
            psnr = metrics.psnr(output, case.image, case.mask)
            captions.append(["", *([""] if has_coarse else []), f"{psnr:.1f} dB", ""])
        cell = max(128, min(192, self.config.size))  # room for the column labels
        sheet = contact_sheet(rows, labels=labels, captions=captions, cell=cell)
        write_image(self.out / PREVIEW_DIR / f"step_{step:06d}.png", sheet)

    # -- the loop ----------------------------------------------------------------------------------

    def _wall(self) -> float:
        return self.wall_before + (time.perf_counter() - self.loop_start)

    def _stop_agreed(self, requested: bool) -> bool:
        """Whether any rank was asked to stop (all ranks then stop after the same step)."""
        if not self.dist.enabled:
            return requested
        flag = torch.tensor([1.0 if requested else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.last_val: dict[str, float] | None = None
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / CONFIG_FILE, config_to_toml(cfg).encode("utf-8"))
            if cfg.resume:
                self._trim_metrics()
            else:
                self.metrics_path.unlink(missing_ok=True)  # a run that died before its first checkpoint
        self._baseline()
        self.dist.barrier()

        loader = train_data.BatchLoader(self.batches, workers=cfg.workers, last_step=cfg.steps)
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(cfg.amp))
        stop = _StopRequest()
        self.loop_start = time.perf_counter()
        done = self.start_step
        in_step = False
        window: dict[str, list[float]] = {}
        window_start, window_steps = time.perf_counter(), 0
        try:
            with stop.installed(), _progress(self, enabled=self.show_progress and self.dist.is_main) as bar:
                for step in range(self.start_step, cfg.steps):
                    if self._stop_agreed(stop.requested):
                        raise _Interrupted
                    images, holes = loader.get(step)
                    images = images.to(self.device, non_blocking=True)
                    holes = holes.to(self.device, non_blocking=True)
                    if self.channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    in_step = True
                    self.recipe.set_learning_rates(step)
                    with amp:
                        losses = self.recipe.train_step(images, holes, step)
                    self._update_ema(step + 1)
                    in_step = False
                    done = step + 1
                    for key, value in losses.items():
                        window.setdefault(key, []).append(float(value))
                    window_steps += 1
                    if not all(math.isfinite(float(v)) for v in losses.values()):
                        log.warning("step %d: non-finite loss %s", done, losses)
                    bar.advance(losses)

                    if done % cfg.log_every == 0 or done == cfg.steps:
                        elapsed = time.perf_counter() - window_start
                        record = {
                            "kind": "train",
                            "step": done,
                            **{k: float(np.mean(v)) for k, v in window.items()},
                            "it_per_s": window_steps / elapsed if elapsed > 0 else None,
                            **{f"lr_{n}": o.param_groups[0]["lr"] for n, o in self.recipe.optimizers.items()},
                            "unreadable": self.folder.unreadable_count,
                        }
                        self._log(record)
                        window, window_start, window_steps = {}, time.perf_counter(), 0
                    if done % cfg.val_every == 0 or done == cfg.steps:
                        self._validate(done, final=done == cfg.steps)
                        self.dist.barrier()
                    if done % cfg.save_every == 0 or done == cfg.steps:
                        self._save(done, self._wall())
                        self.dist.barrier()
                    if self.step_hook is not None:
                        self.step_hook(done)
                if done == self.start_step:  # nothing left to do (a resume at or past --steps): re-export
                    self._save(done, self._wall())
        except (KeyboardInterrupt, _Interrupted) as interrupt:
            agreed = isinstance(interrupt, _Interrupted) or not self.dist.enabled
            if in_step or not agreed or stop.aborted:
                # Mid-step the networks may hold half an update; across ranks we could not agree on a step.
                log.warning("interrupted: not saving, the last checkpoint in %s is kept", self.out)
            else:
                self._save(done, self._wall())
                self.stopped_cleanly = True  # every rank is here: the process group can be left normally
                if self.dist.is_main:
                    log.warning("interrupted: saved step %d in %s; continue with --resume", done, self.out)
            raise KeyboardInterrupt from None
        finally:
            loader.close()
        seconds = time.perf_counter() - self.loop_start
        return self._summary(done, seconds)

    def _summary(self, done: int, seconds: float) -> dict[str, Any]:
        generator_sha256 = _fingerprint(self.shipped_generator.state_dict())  # what last.safetensors holds
        # Every parameter of every network (not batch-norm statistics, which are per rank outside DDP).
        parameters = {f"{n}.{k}": p for n, m in self.raw_networks.items() for k, p in m.named_parameters()}
        weights_sha256 = _fingerprint(parameters)
        if self.dist.enabled:  # every rank must end with the same weights; cheap to prove
            digest = torch.tensor(list(bytes.fromhex(weights_sha256)), dtype=torch.uint8)
            comm = digest.to(self.device) if self.device.type == "cuda" else digest
            parts = [torch.empty_like(comm) for _ in range(self.dist.world_size)]
            torch.distributed.all_gather(parts, comm)
            if any(not torch.equal(part, comm) for part in parts):
                raise InpaintError("distributed training diverged: the ranks' weights differ; please report it")
        trained = done - self.start_step
        paths = {"run": str(self.out), "last": str(self.out / LAST_FILE), "state": str(self.state_path)}
        if (self.out / BEST_FILE).is_file():
            paths["best"] = str(self.out / BEST_FILE)
        return {
            "arch": self.arch,
            "steps": done,
            "start_step": self.start_step,
            "seconds": seconds,
            "steps_per_second": trained / seconds if seconds > 0 else 0.0,
            "best": self.best,
            "last_val": self.last_val,
            "images": len(self.folder),
            "unreadable": self.folder.unreadable_count,
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
            "generator_sha256": generator_sha256,
            "weights_sha256": weights_sha256,
            "paths": paths,
        }

    def close(self, *, success: bool) -> None:
        """Leave the process group we joined. DDP wrappers go first: their reducers keep the group and its
        gloo threads alive, and threads still running at interpreter exit abort the process (SIGABRT).
        After a failure the group is left alone: destroying it while other ranks sit in a collective can
        hang, and torchrun tears the job down anyway."""
        if not self.dist.created_group or not torch.distributed.is_initialized():
            return
        recipe = getattr(self, "recipe", None)
        if recipe is not None:
            recipe.networks.update(self.raw_networks)
        gc.collect()
        if success or self.stopped_cleanly:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def _fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over named tensors (names, shapes, dtypes, bytes): equal iff the tensors are equal."""
    digest = hashlib.sha256()
    for key, value in sorted(tensors.items()):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key} {tuple(value.shape)} {value.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class _StopRequest:
    """First Ctrl-C: stop after the current step (then save). Second: KeyboardInterrupt right away."""

    def __init__(self) -> None:
        self.requested = False
        self.aborted = False

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            self.aborted = True
            raise KeyboardInterrupt
        self.requested = True
        log.warning("Ctrl-C: stopping after this step and saving (press again to abort without saving)")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set from the main thread
            return
        previous = signal.signal(signal.SIGINT, self._handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _ProgressBar:
    """Rich progress on stderr: step/total, it/s, ETA and the main losses."""

    MAIN_LOSSES = ("g", "d", "ae", "mse", "l2", "l1")

    def __init__(self, trainer: _Trainer, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self.task = self.progress.add_task(
            f"train {trainer.arch}",
            total=trainer.config.steps,
            completed=trainer.start_step,
            speed="",
            losses="",
        )
        self.started = time.perf_counter()
        self.count = 0

    def advance(self, losses: dict[str, float]) -> None:
        self.count += 1
        speed = self.count / max(time.perf_counter() - self.started, 1e-9)
        shown = " ".join(f"{k} {float(v):.4g}" for k, v in losses.items() if k in self.MAIN_LOSSES)
        self.progress.update(self.task, advance=1, speed=f"{speed:.2f} it/s", losses=shown)


@contextlib.contextmanager
def _progress(trainer: _Trainer, *, enabled: bool) -> Iterator[_ProgressBar]:
    bar = _ProgressBar(trainer, enabled)
    with bar.progress:
        yield bar


def _read_state(path: Path) -> dict[str, Any]:
    """The state file's tensors and metadata (an InpaintError if it is not one)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = read_checkpoint_metadata(path)
    if meta.get("format") != STATE_FORMAT:
        raise InpaintError(f"{path} is not an inpaint training state ({STATE_FORMAT}); was it renamed?")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise InpaintError(f"{path} is damaged ({str(e).splitlines()[0]}); delete the run or restore it") from None
    return {"meta": meta, "tensors": tensors}


def train(
    config: TrainConfig, *, progress: bool = True, step_hook: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Train `config.model` with its paper's recipe; returns a summary (steps, seconds, steps_per_second,
    best and last val metrics, paths, generator_sha256).

    progress: show the rich progress bar on stderr (rank 0). step_hook: called with the number of
    completed steps after each step's logging/validation/checkpointing (tests use it to interrupt).
    Ctrl-C saves the state (at a step boundary) and re-raises KeyboardInterrupt.
    """
    trainer = _Trainer(config, progress=progress, step_hook=step_hook)
    success = False
    try:
        trainer.setup()
        summary = trainer.run()
        success = True
        return summary
    finally:
        trainer.close(success=success)

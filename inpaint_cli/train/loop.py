"""The generic training loop behind `inpaint train`: every model's recipe, on one process or many.

The recipe (next to each model, `TrainingRecipe`) owns networks, optimisers, losses and the paper's
schedule; this loop owns data, masks, device, AMP, the EMA generator, the step schedule (log, validate,
save) and what Ctrl-C does to it. The rest lives beside it: `config.py` (what a run is asked to do),
`state.py` (the run directory: training state, checkpoint provenance, metrics lines), `distributed.py`
(torchrun), `validate.py` (scores and previews), `data.py` (images, crops and masks) and `progress.py` (the
progress bar, the Ctrl-C handler).

Exact resume: data and masks are pure functions of (seed, step, rank, sample) (see `data.py`), the state
file restores weights, optimiser moments, schedulers and RNG states (see `state.py`), and validation
never touches the training random streams (see `validate.py`). N steps in one go and N/2 + resume N/2
give the same weights on CPU. Ctrl-C asks the loop to stop after the current step (a second Ctrl-C
aborts at once, without saving); it then saves and raises KeyboardInterrupt, which the CLI turns into
exit code 130.

AMP: `--amp` runs `train_step` under bf16 autocast (CPU and CUDA). fp16 is not offered for training:
it needs a GradScaler, which would have to reach inside every recipe's backward/step pairs; bf16 has
fp32's exponent range and needs none. Known issue (torch 2.13, CPU): oneDNN's bf16 convolution weight
gradient can contain NaN when a layer's input is smaller than its padded kernel window (1×1 maps into a
5×5 conv), which DeepFill v2's SN-PatchGAN reaches at crops below 128²; fp32, or --amp at ≥ 128², is fine.
Non-finite losses are logged as warnings, training is not stopped.

Resuming with a different --steps is allowed, but recipes that scale their schedule with the run length
(GLCIC's phases) then follow the new length from the resumed step on.
"""

from __future__ import annotations

import copy
import gc
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config_values import building
from ..errors import UsageError, first_line
from ..io import write_atomic
from ..weights import load_state_strict, read_checkpoint, save_checkpoint
from . import data as train_data
from . import state as train_state
from . import validate
from .config import TrainConfig, config_to_toml, merge_for_resume, resolve_config
from .distributed import distribute, init_distributed
from .progress import ProgressBar, StopRequest, progress_bar
from .state import BEST_FILE, CONFIG_FILE, LAST_FILE, METRICS_FILE, PREVIEW_DIR, SNAPSHOT_DIR, STATE_FILE, LossWindow

log = logging.getLogger("inpaint_cli")

PREPARE_IMAGES = 64  # images handed to `recipe.prepare` (e.g. GLCIC's mean colour)


class _Interrupted(Exception):
    """Raised inside the loop when every rank agreed to stop after a Ctrl-C."""


class _Trainer:
    """One training run: `setup()`, then `run()`, then always `close()` (as `train` does)."""

    def __init__(self, config: TrainConfig, *, progress: bool, step_hook: Callable[[int], None] | None) -> None:
        from ..devices import pick_device
        from ..registry import get_arch

        self.show_progress = progress
        self.step_hook = step_hook
        self.out = Path(config.out).expanduser().resolve() if config.out else None
        if self.out is None:
            raise UsageError("--out is required (the run directory)")
        self.state_path = self.out / STATE_FILE
        self.saved_state: train_state.SavedState | None = None

        self.config, self.recipe_cls = self._settle_config(config)
        cfg = self.config
        self.arch = cfg.model
        self.contract = get_arch(self.arch).contract
        multiple = self.contract.fixed_size or self.contract.pad_multiple
        if cfg.size % multiple:
            raise UsageError(f"--size {cfg.size}: {self.arch} needs a multiple of {multiple}")

        cfg.device = pick_device(cfg.device)  # "auto" is stored as what it chose, so a resume keeps it
        self.dist = init_distributed(cfg.device)
        self.device = self.dist.device
        self.metrics_path = self.out / METRICS_FILE
        self.stopped_cleanly = False

    def _settle_config(self, config: TrainConfig) -> tuple[TrainConfig, Any]:
        """(the config this run trains with, its recipe class): on --resume the saved config with the changes
        `config` may make (the state is read here), else `config` resolved for a new run in `out`."""
        from ..registry import get_recipe

        if config.resume:
            if not self.state_path.is_file():
                raise UsageError(
                    f"--resume: {self.state_path} does not exist; start the run without --resume "
                    f"or pass the --out of an existing run"
                )
            self.saved_state = train_state.read_state(self.state_path)
            merged = merge_for_resume(self.saved_state.config, config, self.state_path)
            return merged, get_recipe(merged.model)
        if self.state_path.exists():
            raise UsageError(
                f"{self.out} already holds a run ({STATE_FILE}); pass --resume to continue it or choose another --out"
            )
        if not config.model:
            raise UsageError("--model is required")
        recipe_cls = get_recipe(config.model)
        return resolve_config(config, recipe_cls), recipe_cls

    # -- setup -------------------------------------------------------------------------------------

    def setup(self) -> None:
        """Find the data, build the recipe and its networks (restored on resume), the batches and val cases."""
        cfg = self.config
        data_dir = Path(cfg.data)
        train_files, val_files, test_files = train_data.split_files(data_dir, val=cfg.val, val_list=cfg.val_list)
        if test_files and self.dist.is_main:
            log.info(
                "leaving out the %d held-out test images listed in %s", len(test_files), data_dir / train_data.TEST_LIST
            )
        self.folder = train_data.ImageFolder(train_files, short_side=cfg.short_side)

        # Identical initial weights on every rank; rank-specific randomness (latents, interpolates) after.
        torch.manual_seed(cfg.seed)
        generator = self._build_generator()
        recipe_settings = cfg.recipe_config or {}
        try:
            with building(recipe_settings, flag="--recipe", owner=f"the {self.arch} recipe"):
                self.recipe = self.recipe_cls(
                    generator, lr=cfg.lr, total_steps=cfg.steps, image_size=cfg.size, **recipe_settings
                )
        except (ValueError, TypeError) as e:  # not a --recipe setting: the size, steps or lr
            raise UsageError(f"--model {self.arch}: {first_line(e)}") from None
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
            resumed = self.saved_state.restore(
                recipe=self.recipe, networks=self.raw_networks, ema_generator=self.ema_generator, dist=self.dist
            )
            self.start_step, self.best, self.wall_before = resumed.step, resumed.best, resumed.wall_seconds
            self._rescale_learning_rates(float(self.saved_state.config.lr), float(cfg.lr))
        if self.dist.enabled:
            distribute(self.recipe, self.raw_networks, self.dist)

        self.mask_sampler = train_data.make_mask_sampler(cfg.masks, self.recipe, warmup_seed=cfg.seed)
        self.batches = train_data.TrainBatches(
            self.folder,
            self.mask_sampler,
            size=cfg.size,
            batch=cfg.batch,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            groups=train_data.folder_groups(train_files, data_dir) if cfg.balance else None,
            synthetic=cfg.synthetic or 0.0,  # None: a run saved before the setting existed
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
        from ..registry import create_configured, create_model

        cfg = self.config
        if self.saved_state is not None:
            # Resuming: the state holds the weights; rebuild from the saved arch config, so the --init file
            # need not exist any more.
            return create_model(self.arch, **self.saved_state.generator_config)
        if not cfg.init:
            return create_configured(self.arch, {}, cfg.model_config)
        checkpoint = read_checkpoint(cfg.init)
        if checkpoint.arch != self.arch:
            raise UsageError(f"--init {cfg.init} is a {checkpoint.arch} checkpoint; --model is {self.arch}")
        generator = create_configured(self.arch, checkpoint.config, cfg.model_config)
        load_state_strict(generator, checkpoint.state_dict, source=str(cfg.init))
        return generator

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

    # -- files -------------------------------------------------------------------------------------

    def _save(self, step: int, wall: float) -> None:
        """Write the training state, then the generator export (rank 0; every rank must call it)."""
        rng = train_state.rng_tensors(self.dist)
        if not self.dist.is_main:
            return
        train_state.write_state(
            self.state_path,
            step=step,
            config=self.config,
            recipe=self.recipe,
            networks=self.raw_networks,
            ema_generator=self.ema_generator,
            rng=rng,
            world_size=self.dist.world_size,
            best=self.best,
            wall=wall,
        )
        provenance = self._provenance_of(step, wall, self.last_val)
        save_checkpoint(self.out / LAST_FILE, self.shipped_generator, provenance=provenance)

    def _provenance_of(self, step: int, wall: float, val: dict[str, float] | None) -> dict[str, Any]:
        return train_state.provenance(
            self.config, step, wall, val, images=len(self.folder), world_size=self.dist.world_size, ema=self.recipe.ema
        )

    def _rescale_learning_rates(self, saved_lr: float, lr: float) -> None:
        """`--resume --lr X`: scale every optimiser's rate (and its warm-up base) by X / the run's old lr, so
        recipes with several rates (e.g. a slower discriminator) keep their ratios."""
        if lr == saved_lr:
            return
        factor = lr / saved_lr
        for optimizer in self.recipe.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] *= factor
                if "base_lr" in group:
                    group["base_lr"] *= factor
        log.info("--lr %g: every learning rate scaled by %g from step %d on", lr, factor, self.start_step)

    def _log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            train_state.append_metrics(self.metrics_path, record)

    # -- validation --------------------------------------------------------------------------------

    def _baseline(self) -> None:
        """Telea on the val cases, once per run start: the number a learned model has to beat."""
        if not self.dist.is_main or not self.val_cases:
            return
        scores = validate.telea_scores(self.val_cases, self.device)
        self._log({"kind": "baseline", "step": self.start_step, **{f"telea_{k}": v for k, v in scores.items()}})

    def _validate(self, step: int, *, final: bool) -> dict[str, float] | None:
        """Score the shipped generator (the EMA when set; the raw one's scores are logged beside it as raw_*)
        on the val cases (rank 0), maybe write a preview and best.safetensors."""
        if not self.dist.is_main or not self.val_cases:
            return None
        amp = bool(self.config.amp)
        scores, outputs = validate.evaluate(self.shipped_generator, self.val_cases, self.device, amp=amp)
        record = dict(scores)
        if self.ema_generator is not None:
            raw, _ = validate.evaluate(self.generator, self.val_cases, self.device, amp=amp)
            record.update({f"raw_{k}": v for k, v in raw.items()})
        self.last_val = scores
        self._log({"kind": "val", "step": step, **record})
        if final or step % self.config.preview_every == 0:
            path = self.out / PREVIEW_DIR / f"step_{step:06d}.png"
            validate.write_preview(path, self.val_cases, outputs, size=self.config.size)
        snapshot_every = self.config.snapshot_every
        if snapshot_every and (step % snapshot_every == 0 or final):
            path = self.out / SNAPSHOT_DIR / f"step_{step:06d}.safetensors"
            path.parent.mkdir(exist_ok=True)
            save_checkpoint(path, self.shipped_generator, provenance=self._provenance_of(step, self._wall(), scores))
        if self.best is None or scores["psnr"] > self.best["psnr"]:
            self.best = {**scores, "step": step}
            provenance = self._provenance_of(step, self._wall(), scores)
            save_checkpoint(self.out / BEST_FILE, self.shipped_generator, provenance=provenance)
        return scores

    # -- the loop ----------------------------------------------------------------------------------

    def _wall(self) -> float:
        return self.wall_before + (time.perf_counter() - self.loop_start)

    def run(self) -> dict[str, Any]:
        """Train from `start_step` to `config.steps`; returns the summary (see `train`)."""
        cfg = self.config
        self._begin()
        loader = train_data.BatchLoader(self.batches, workers=cfg.workers, last_step=cfg.steps)
        stop = StopRequest()
        self.loop_start = time.perf_counter()
        self.done = self.start_step
        self.in_step = False
        if self.start_step >= cfg.steps and self.dist.is_main:
            log.warning(
                "already at step %d ≥ --steps %d: nothing to train; pass a larger --steps to continue",
                self.start_step,
                cfg.steps,
            )
        try:
            show = self.show_progress and self.dist.is_main and self.start_step < cfg.steps
            bar_context = progress_bar(self.arch, total=cfg.steps, completed=self.start_step, enabled=show)
            with stop.installed(), bar_context as bar:
                self._steps(loader, stop, bar)
        except (KeyboardInterrupt, _Interrupted) as interrupt:
            agreed = isinstance(interrupt, _Interrupted) or not self.dist.enabled
            self._stop(save=agreed and not self.in_step and not stop.aborted)
            raise KeyboardInterrupt from None
        finally:
            loader.close()
        seconds = time.perf_counter() - self.loop_start
        return self._summary(self.done, seconds)

    def _begin(self) -> None:
        """Write the config, start (or, on resume, trim) the metrics log and log the baseline."""
        self.last_val: dict[str, float] | None = None
        logged: list[dict[str, Any]] = []
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / CONFIG_FILE, config_to_toml(self.config).encode("utf-8"))
            if self.config.resume:
                logged = train_state.trim_metrics(self.metrics_path, self.start_step)
            else:
                self.metrics_path.unlink(missing_ok=True)  # a run that died before its first checkpoint
        if not any(record.get("kind") == "baseline" for record in logged):  # the val cases do not change
            self._baseline()
        self.dist.barrier()

    def _steps(self, loader: train_data.BatchLoader, stop: StopRequest, bar: ProgressBar) -> None:
        """The step loop; `self.done` counts the finished steps, `self.in_step` is set while one runs."""
        cfg = self.config
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(cfg.amp))
        window = LossWindow()
        for step in range(self.start_step, cfg.steps):
            if self.dist.any_rank(stop.requested):
                raise _Interrupted
            images, holes = self._batch(loader, step)
            self.in_step = True
            losses = self._train_step(images, holes, step, amp)
            self.in_step = False
            self.done = step + 1
            self._after_step(self.done, losses, window, bar)
        if self.done == self.start_step:  # nothing left to do (a resume at or past --steps): re-export
            self._save(self.done, self._wall())

    def _batch(self, loader: train_data.BatchLoader, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Step `step`'s (images, holes) on the training device, in the networks' memory format."""
        images, holes = loader.get(step)
        images = images.to(self.device, non_blocking=True)
        holes = holes.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images, holes

    def _train_step(
        self, images: torch.Tensor, holes: torch.Tensor, step: int, amp: torch.autocast
    ) -> dict[str, float]:
        """One update of every network (the recipe's step at this step's learning rates), then the EMA."""
        self.recipe.set_learning_rates(step)
        with amp:
            losses = self.recipe.train_step(images, holes, step)
        self._update_ema(step + 1)
        return losses

    def _after_step(self, done: int, losses: dict[str, float], window: LossWindow, bar: ProgressBar) -> None:
        """What follows step `done`: the progress bar and, when due, the metrics line, validation and
        checkpoints (all three at the last step), then the step hook."""
        cfg = self.config
        window.add(losses)
        if not all(math.isfinite(float(v)) for v in losses.values()):
            log.warning("step %d: non-finite loss %s", done, losses)
        bar.advance(losses)
        last = done == cfg.steps
        if done % cfg.log_every == 0 or last:
            record = {"kind": "train", "step": done, **window.take()}  # the losses, then it_per_s
            record.update({f"lr_{n}": o.param_groups[0]["lr"] for n, o in self.recipe.optimizers.items()})
            record["unreadable"] = self.folder.unreadable_count
            self._log(record)
        if done % cfg.val_every == 0 or last:
            self._validate(done, final=last)
            self.dist.barrier()
        if done % cfg.save_every == 0 or last:
            self._save(done, self._wall())
            self.dist.barrier()
        if self.step_hook is not None:
            self.step_hook(done)

    def _stop(self, *, save: bool) -> None:
        """After a Ctrl-C: save the last finished step, unless it came mid-step (the networks may hold half
        an update), was the second one, or the ranks could not agree on a step."""
        if not save:
            log.warning("interrupted: not saving, the last checkpoint in %s is kept", self.out)
            return
        self._save(self.done, self._wall())
        self.stopped_cleanly = True  # every rank is here: the process group can be left normally
        if self.dist.is_main:
            log.warning("interrupted: saved step %d in %s; continue with --resume", self.done, self.out)

    def _summary(self, done: int, seconds: float) -> dict[str, Any]:
        generator_sha256 = train_state.fingerprint(self.shipped_generator.state_dict())  # what last.safetensors holds
        # Every parameter of every network (not batch-norm statistics, which are per rank outside DDP).
        parameters = {f"{n}.{k}": p for n, m in self.raw_networks.items() for k, p in m.named_parameters()}
        weights_sha256 = train_state.fingerprint(parameters)
        self.dist.check_in_lockstep(weights_sha256)  # every rank must end with the same weights; cheap to prove
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
        """Leave the process group we joined (see `Distributed.leave`). DDP wrappers go first: their reducers
        keep the group and its gloo threads alive, and threads still running at interpreter exit abort the
        process (SIGABRT)."""
        if not self.dist.created_group:
            return
        recipe = getattr(self, "recipe", None)
        if recipe is not None:
            recipe.networks.update(self.raw_networks)
        gc.collect()
        self.dist.leave(cleanly=success or self.stopped_cleanly)


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

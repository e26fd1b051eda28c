"""The run directory on disk, and the training state that makes `--resume` exact.

Run directory (`--out`):
  config.toml              the resolved config (every key mirrors a flag; `--config` reads the same format)
  last.safetensors         the generator alone, in the format `inpaint fill --model` loads, with its arch
                           config and training provenance in the metadata
  best.safetensors         the same, at the best validation PSNR so far
  last.state.safetensors   everything `--resume` needs (below)
  metrics.jsonl            one JSON object per line: kind "train" (losses averaged since the last line,
                           it/s, lr), "val" (PSNR/SSIM/L1 over the hole), "baseline" (Telea on the same cases)
  previews/step_XXXXXX.png masked input / coarse (two-stage models) / output / ground truth

Training state (`last.state.safetensors`, STATE_FORMAT, no pickles anywhere): every network of
`recipe.networks` ("network.NAME.KEY"), the EMA generator if any ("ema.generator.KEY"), every optimiser's
tensors ("optimizer.NAME.INDEX.KEY") with the rest of its state_dict (param_groups, non-tensor values) as
JSON in the metadata, LR schedulers' state_dicts (JSON), the torch RNG state of every rank
("rng.torch.RANK", "rng.cuda.RANK"), the step, the world size, the resolved config, the generator's arch
config, the best validation result and the wall time so far. Each file is written atomically (temp file
+ fsync + os.replace). The state is written before last.safetensors: a resume reads only the state file
(it holds the generator too), so a crash between the two writes loses nothing and cannot pair mismatched
files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InpaintError, UsageError
from ..io import write_atomic
from ..weights import read_checkpoint_metadata
from .config import PATH_FIELDS, TrainConfig
from .distributed import Distributed

STATE_FORMAT = "inpaint-cli-train-state/1"
CONFIG_FILE = "config.toml"
LAST_FILE = "last.safetensors"
BEST_FILE = "best.safetensors"
STATE_FILE = "last.state.safetensors"
METRICS_FILE = "metrics.jsonl"
PREVIEW_DIR = "previews"
SNAPSHOT_DIR = "snapshots"  # --snapshot-every: the shipped generator at chosen validation steps


def cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    """A detached, contiguous CPU copy: what a safetensors file stores, whatever the training device."""
    return tensor.detach().to("cpu", copy=True).contiguous()


def flatten_optimizer(name: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimiser state_dict as tensors + a JSON-able remainder (param_groups, non-tensor values)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{name}.{index}.{key}"] = cpu_copy(value)
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def restore_optimizer(
    name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Load what `flatten_optimizer` wrote (the state file's tensors, this optimiser's metadata) back."""
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


def fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over named tensors (names, shapes, dtypes, bytes): equal iff the tensors are equal."""
    digest = hashlib.sha256()
    for key, value in sorted(tensors.items()):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{key} {tuple(value.shape)} {value.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def rng_tensors(dist: Distributed) -> dict[str, torch.Tensor]:
    """Every rank's RNG states, named as the state file stores them (a collective: all ranks must call it)."""
    states = {"torch": torch.get_rng_state()}
    if dist.device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(dist.device)
    if not dist.enabled:
        return {f"rng.{kind}.0": state for kind, state in states.items()}
    gathered = {}
    for kind, state in states.items():
        gathered.update({f"rng.{kind}.{rank}": part.cpu() for rank, part in enumerate(dist.all_gather(state))})
    return gathered


def write_state(
    path: Path,
    *,
    step: int,
    config: TrainConfig,
    recipe: Any,
    networks: dict[str, nn.Module],
    ema_generator: nn.Module | None,
    rng: dict[str, torch.Tensor],
    world_size: int,
    best: dict[str, Any] | None,
    wall: float,
) -> None:
    """Write the training state file (STATE_FORMAT) atomically. `networks` are the bare modules (not their
    DDP wrappers), `rng` is `rng_tensors`' result; the optimisers and schedulers are the recipe's."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = dict(rng)
    for name, module in networks.items():
        tensors.update({f"network.{name}.{key}": cpu_copy(v) for key, v in module.state_dict().items()})
    if ema_generator is not None:
        tensors.update({f"ema.generator.{k}": cpu_copy(v) for k, v in ema_generator.state_dict().items()})
    optimizers = {}
    for name, optimizer in recipe.optimizers.items():
        flat, meta = flatten_optimizer(name, optimizer)
        tensors.update(flat)
        optimizers[name] = meta
    schedulers = {name: s.state_dict() for name, s in getattr(recipe, "schedulers", {}).items()}
    metadata = {
        "format": STATE_FORMAT,
        "step": str(step),
        "world_size": str(world_size),
        "config": json.dumps(dataclasses.asdict(config)),
        "networks": json.dumps(sorted(networks)),
        "generator_config": json.dumps(networks["generator"].arch_config),
        "optimizers": json.dumps(optimizers),
        "schedulers": json.dumps(schedulers),
        "best": json.dumps(best),
        "wall_seconds": repr(wall),
    }
    write_atomic(path, save(tensors, metadata=metadata))


@dataclass
class ResumePoint:
    """Where a restored run continues: the next step's index, the best validation so far, the wall time."""

    step: int
    best: dict[str, Any] | None
    wall_seconds: float


@dataclass
class SavedState:
    """A training state file as read (`read_state`): its metadata and tensors."""

    path: Path
    meta: dict[str, str]
    tensors: dict[str, torch.Tensor]

    @property
    def config(self) -> TrainConfig:
        """The resolved config the run was started with (as last saved)."""
        return TrainConfig(**json.loads(self.meta["config"]))

    @property
    def generator_config(self) -> dict[str, Any]:
        """The generator's arch config: what rebuilds it without the --init file."""
        return json.loads(self.meta["generator_config"])

    def restore(
        self, *, recipe: Any, networks: dict[str, nn.Module], ema_generator: nn.Module | None, dist: Distributed
    ) -> ResumePoint:
        """Load weights, optimiser moments, schedulers and this rank's RNG states into the live run (built
        from the same config); an error names what does not fit."""
        meta, tensors = self.meta, self.tensors
        saved_world = int(meta.get("world_size", "1"))
        if saved_world != dist.world_size:
            raise UsageError(
                f"--resume: {self.path} was written by {saved_world} process(es), this run has "
                f"{dist.world_size}; resume with the same --nproc-per-node"
            )
        names = json.loads(meta["networks"])
        if sorted(names) != sorted(networks):
            raise InpaintError(f"{self.path} holds networks {names}, the recipe has {sorted(networks)}")
        for name, module in networks.items():
            prefix = f"network.{name}."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                module.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise InpaintError(f"{self.path}: {name} does not fit ({str(e).splitlines()[0]})") from None
        if ema_generator is not None:
            prefix = "ema.generator."
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            try:
                ema_generator.load_state_dict(own, strict=True)
            except RuntimeError as e:
                raise InpaintError(f"{self.path}: the EMA generator does not fit ({str(e).splitlines()[0]})") from None
        optimizers = json.loads(meta["optimizers"])
        for name, optimizer in recipe.optimizers.items():
            restore_optimizer(name, optimizer, tensors, optimizers[name])
        for name, scheduler in getattr(recipe, "schedulers", {}).items():
            scheduler.load_state_dict(json.loads(meta["schedulers"])[name])
        torch.set_rng_state(tensors[f"rng.torch.{dist.rank}"])
        if dist.device.type == "cuda" and f"rng.cuda.{dist.rank}" in tensors:
            torch.cuda.set_rng_state(tensors[f"rng.cuda.{dist.rank}"], dist.device)
        best = reconcile_best(json.loads(meta.get("best", "null")), self.path.parent / BEST_FILE)
        return ResumePoint(step=int(meta["step"]), best=best, wall_seconds=float(meta.get("wall_seconds", "0")))


def read_state(path: Path) -> SavedState:
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
    return SavedState(path, meta, tensors)


def reconcile_best(best: dict[str, Any] | None, best_path: Path) -> dict[str, Any] | None:
    """The best validation result of a resumed run. best.safetensors may be newer than the state (a crash
    between the two writes): trust the file."""
    if not best_path.is_file():
        return best
    with contextlib.suppress(InpaintError, ValueError):
        provenance = json.loads(read_checkpoint_metadata(best_path).get("provenance", "{}"))
        on_disk = provenance.get("val") or {}
        if "psnr" in on_disk and (best is None or on_disk["psnr"] > best["psnr"]):
            best = {**on_disk, "step": provenance.get("steps")}
    return best


def provenance(
    config: TrainConfig,
    step: int,
    wall: float,
    val: dict[str, float] | None,
    *,
    images: int,
    world_size: int,
    ema: float,
) -> dict[str, Any]:
    """The training provenance saved in the metadata of last/best.safetensors and the snapshots."""
    # Folder and file names only: the absolute paths of the training machine mean nothing elsewhere.
    settings = {k: (Path(v).name if k in PATH_FIELDS and v else v) for k, v in dataclasses.asdict(config).items()}
    return {
        "trained_by": "inpaint train",
        "arch": config.model,
        "steps": step,
        "data": settings["data"],
        "images": images,
        "seed": config.seed,
        "wall_seconds": round(wall, 3),
        "world_size": world_size,
        "val": val,
        "ema": ema or None,
        "config": settings,
        "torch": torch.__version__,
    }


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Add one JSON line to metrics.jsonl."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=float) + "\n")


def trim_metrics(path: Path, step: int) -> list[dict[str, Any]]:
    """Keep only the metrics lines up to `step` (a resume drops what a crashed run logged after its last
    checkpoint: those steps are redone); returns the records kept."""
    if not path.is_file():
        return []
    kept, records = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            record = json.loads(line)
            if record.get("step", 0) <= step:
                kept.append(line)
                records.append(record)
    write_atomic(path, ("\n".join(kept) + "\n" if kept else "").encode())
    return records


class LossWindow:
    """The losses since the last "train" line of metrics.jsonl, and the time they took."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.losses: dict[str, list[float]] = {}
        self.start, self.steps = time.perf_counter(), 0

    def add(self, losses: dict[str, Any]) -> None:
        for key, value in losses.items():
            self.losses.setdefault(key, []).append(float(value))
        self.steps += 1

    def take(self) -> dict[str, Any]:
        """Each loss averaged over the window, then it_per_s; starts the next window."""
        elapsed = time.perf_counter() - self.start
        record = {k: float(np.mean(v)) for k, v in self.losses.items()}
        record["it_per_s"] = self.steps / elapsed if elapsed > 0 else None
        self._reset()
        return record

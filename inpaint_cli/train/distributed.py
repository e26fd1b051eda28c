"""Training on several processes (torchrun, WORLD_SIZE > 1): the process group and gradient averaging.

gloo on CPU, nccl on CUDA (one GPU per process, that of its LOCAL_RANK); each rank draws its own samples
(the rank is part of every seed tuple and of the sharded file order, see `data.py`), so the global batch
is batch × world. Rank 0 alone logs, validates and writes files; the others wait at a barrier. Gradients
are averaged across ranks in one of two ways, by network role, which the recipe names
(`TrainingRecipe.generator_networks`):
- `DistributedDataParallel` for the generator side: "generator" and the networks its optimiser also trains
  (PiiGAN's "extractor"). Their gradients come from one backward per step, and DDP overlaps the all-reduce
  with it.
- Every other network — the discriminators and critics — is not wrapped; an optimiser step pre-hook
  all-reduces (averages) its gradients in one flat buffer right before each of its optimiser steps.
  Why: recipes backpropagate the generator's loss through the discriminator too, and under DDP that
  backward would all-reduce the discriminator's gradients a second time per step only for them to be
  zeroed; and the WGAN-GP critics (DeepFill v1, PiiGAN) take `torch.autograd.grad(create_graph=True)`
  and run several forwards per backward, which DDP's documentation does not support. Averaging at the
  step communicates each gradient exactly once and needs no support from DDP at all.
Checked with torch 2.13 on CPU (gloo, 2 processes, 3 steps of every recipe): this split, DDP on every
network and the all-reduce hook on every network gave bitwise-identical weights, and every run ends by
comparing a hash of all parameters across ranks (`Distributed.check_in_lockstep`). Batch-norm running
statistics are per rank (DDP broadcasts rank 0's before each forward, the unwrapped networks keep their
own); rank 0's are saved. Only GLCIC and the Context Encoder have batch norm.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import InpaintError

log = logging.getLogger("inpaint_cli")


@dataclass
class Distributed:
    """This process's place in the run: its device, rank and the number of ranks (1: not distributed)."""

    device: torch.device
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

    @property
    def comm_device(self) -> torch.device:
        """Where collectives run: the GPU under nccl, the CPU under gloo."""
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def any_rank(self, flag: bool) -> bool:
        """Whether `flag` is set on any rank (a collective: every rank must call it)."""
        if not self.enabled:
            return flag
        reduced = torch.tensor([1.0 if flag else 0.0], device=self.comm_device)
        torch.distributed.all_reduce(reduced, op=torch.distributed.ReduceOp.MAX)
        return bool(reduced.item())

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's `tensor`, in rank order, on `comm_device` (a collective)."""
        mine = tensor.to(self.comm_device)
        parts = [torch.empty_like(mine) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, mine)
        return parts

    def check_in_lockstep(self, sha256: str) -> None:
        """An InpaintError unless every rank passes the same hex digest (of its weights; a collective)."""
        if not self.enabled:
            return
        mine = torch.tensor(list(bytes.fromhex(sha256)), dtype=torch.uint8)
        parts = self.all_gather(mine)
        if any(not torch.equal(part, parts[self.rank]) for part in parts):
            raise InpaintError("distributed training diverged: the ranks' weights differ; please report it")

    def leave(self, *, cleanly: bool) -> None:
        """Leave the process group if this process created it. After a failure it is left alone: destroying
        it while other ranks sit in a collective can hang, and torchrun tears the job down anyway."""
        if not self.created_group or not torch.distributed.is_initialized():
            return
        if cleanly:
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def init_distributed(device: str) -> Distributed:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK), if any,
    and settle this process's device: `device`, or under torchrun on CUDA the GPU of the local rank."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Distributed(torch.device(device))
    import torch.distributed as dist

    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    created = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        created = True
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"  # one GPU per process
        torch.cuda.set_device(local_rank)
    return Distributed(torch.device(device), rank, world_size, local_rank, created)


def average_gradients_hook(parameters: list[nn.Parameter], world_size: int) -> Callable[..., None]:
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


def distribute(recipe: Any, networks: dict[str, nn.Module], dist: Distributed) -> dict[str, str]:
    """Wrap the recipe's `generator_networks` in DistributedDataParallel (in `recipe.networks`; `networks`
    keeps the bare modules), give every other network rank 0's weights and hook its gradient average into
    the optimisers, right before each step (see the module docstring for why). Returns how each network is
    kept in sync (name → method)."""
    from torch.nn.parallel import DistributedDataParallel

    ddp_names = set(recipe.generator_networks)
    if not ddp_names <= set(networks):
        missing = ", ".join(sorted(ddp_names - set(networks)))
        raise ValueError(f"{type(recipe).__name__}.generator_networks names networks it does not have: {missing}")
    ddp_parameters: set[int] = set()
    sync_plan: dict[str, str] = {}
    for name, module in networks.items():
        if name in ddp_names:
            device_ids = [dist.device.index] if dist.device.type == "cuda" else None
            recipe.networks[name] = DistributedDataParallel(module, device_ids=device_ids)
            ddp_parameters.update(id(p) for p in module.parameters())
            sync_plan[name] = "DistributedDataParallel"
        else:
            for tensor in [*module.parameters(), *module.buffers()]:  # DDP does this for its own
                torch.distributed.broadcast(tensor.data, src=0)
            sync_plan[name] = "all_reduce before optimizer step"
    for optimizer in recipe.optimizers.values():
        manual = [p for group in optimizer.param_groups for p in group["params"] if id(p) not in ddp_parameters]
        if manual:
            optimizer.register_step_pre_hook(average_gradients_hook(manual, dist.world_size))
    if dist.is_main:
        log.info("distributed over %d ranks: %s", dist.world_size, sync_plan)
    return sync_plan

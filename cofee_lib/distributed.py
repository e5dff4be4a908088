"""Data-parallel helpers for the training engine (torch DDP; nccl on GPU, gloo on CPU).

``torchrun --nproc_per_node N -m cofee_lib train ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` then joins the process group.
Without those variables (or with ``WORLD_SIZE=1``) everything here is a no-op
and the engine runs as a single process.

Conventions the engine relies on:

* every rank sees the same global batches (same seed); each rank takes a
  contiguous shard of every global batch (see :func:`shard_batch`);
* only rank 0 writes files; the other ranks wait at :func:`barrier`;
* objects (metrics, relabelled records, RNG states) travel with
  :func:`broadcast_object` / :func:`all_gather_object`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank, the number of processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        """True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes files and prints (rank 0)."""
        return self.rank == 0


def pick_device(local_rank: int = 0) -> torch.device:
    """``cuda:LOCAL_RANK`` when a GPU is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup(backend: str | None = None) -> DistContext:
    """Join the process group described by torchrun's environment, if any; return the context.

    The backend is nccl when CUDA is available, gloo otherwise (CPU data parallel).
    Calling it again, or with no torchrun environment, is harmless.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = pick_device(local_rank)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend or ("nccl" if device.type == "cuda" else "gloo"))
    return context()


def context() -> DistContext:
    """The context of this process: from the initialised process group, or single-process."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
        return DistContext(rank, world, local_rank, pick_device(local_rank))
    return DistContext(0, 1, 0, pick_device(0))


def cleanup() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        try:  # every rank leaves together: a rank tearing down gloo while another still talks can abort
            dist.barrier()
        except RuntimeError:
            pass
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    """Wait until every rank gets here (no-op for a single process)."""
    if ctx.enabled:
        dist.barrier()


def broadcast_object(obj, ctx: DistContext, src: int = 0):
    """Return rank ``src``'s ``obj`` on every rank (pickled; fine for records and metrics)."""
    if not ctx.enabled:
        return obj
    box = [obj if ctx.rank == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj, ctx: DistContext) -> list:
    """A list with every rank's ``obj``, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Element-wise sum of a short list of numbers over the ranks (float64)."""
    if not ctx.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return t.tolist()


def average_gradients(params, ctx: DistContext) -> None:
    """All-reduce and average the gradients of parameters that DDP does not own (hook heads).

    A parameter without a gradient on this rank contributes zeros, so every
    rank takes part in every reduction.
    """
    if not ctx.enabled:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad.div_(ctx.world_size)


def shard_batch(batch: list[int], rank: int, world_size: int, grad_accum: int) -> list[list[int]]:
    """This rank's micro-batches of one global batch.

    The global batch (feature indices, sorted by length when bucketing) is cut
    into ``world_size`` contiguous parts (sizes differ by at most one); this
    rank's part is cut into at most ``grad_accum`` contiguous micro-batches.
    Empty micro-batches are dropped; the engine guarantees every global batch
    has at least ``world_size`` features, so every rank gets at least one.
    """
    parts = np.array_split(np.asarray(batch, dtype=np.int64), world_size)
    mine = parts[rank]
    return [m.tolist() for m in np.array_split(mine, grad_accum) if len(m)]

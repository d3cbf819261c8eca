"""Training on several processes with DistributedDataParallel, as started by ``torchrun``.

``torchrun --nproc_per_node N -m training ...`` sets ``WORLD_SIZE``, ``RANK`` and
``LOCAL_RANK``; each process then trains on its share of every batch and DDP averages
the gradients, so N processes with a batch of B pairs take the same steps as one
process with B pairs (the learning rate needs no change). NCCL on CUDA, gloo on the CPU.

Rank 0 alone writes checkpoints and reports progress. A cancel on any rank (Ctrl-C
reaches all of them) is agreed on by an all-reduce every step, so every process stops
at the same step and the checkpoint is consistent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Context()


def from_environment(device: torch.device) -> tuple[Context, torch.device]:
    """Join the process group torchrun describes, or run alone when it describes none.

    On CUDA each process takes the GPU of its ``LOCAL_RANK``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE, device
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world, local), device


def shutdown(context: Context) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def wrap(net: nn.Module, context: Context, device: torch.device) -> nn.Module:
    """``net`` inside DDP when there are several processes, else ``net`` itself.

    ``find_unused_parameters`` because tasks may freeze layers (SiamRPN section 5.1).
    """
    if not context.active:
        return net
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids, find_unused_parameters=True)


def share(indices: range, context: Context) -> range:
    """This process's part of one global batch: every ``world_size``-th pair."""
    return indices[context.rank :: context.world_size]


def any_rank(flag: bool, context: Context, device: torch.device) -> bool:
    """True on every process when ``flag`` is True on at least one (cancel, stop)."""
    if not context.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def barrier(context: Context) -> None:
    if context.active:
        dist.barrier()

"""Distributed data parallel helpers: process group from torchrun's environment, a resumable seeded
sampler, and gathering of evaluation outputs over all ranks.

Launch: `torchrun --nproc-per-node N -m trainer run ...` (multi-node: add `--nnodes`,
`--node-rank`, `--rdzv-endpoint`). The backend is NCCL on GPU and gloo on CPU. `--batch` is the
global batch: each rank takes `batch / world_size` clips per optimiser step. Only rank 0 logs and
writes files; metrics are computed on predictions gathered from every rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from trainer.errors import DistributedError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job: rank, world size, and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """`auto` -> CUDA when available else CPU; `cuda` without a GPU is an error."""
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise DistributedError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def init_distributed(device_preference: str = "auto") -> DistContext:
    """Join the process group torchrun describes (RANK/WORLD_SIZE/LOCAL_RANK), or run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=pick_device(device_preference))
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError):
        raise DistributedError("WORLD_SIZE is set but RANK is missing or not a number; launch with torchrun") from None
    device = pick_device(device_preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def shutdown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a tensor over ranks (returns the tensor itself when running alone)."""
    if ctx.distributed:
        values = values.to(ctx.device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's `obj` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_outputs(indices: torch.Tensor, outputs: torch.Tensor, ctx: DistContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Collect `(indices (N,), outputs (N, C))` from every rank, drop padding duplicates, sort by index.

    The evaluation sampler pads the last rank by repeating clips; keeping the first row per index
    makes the gathered set exactly the dataset, in dataset order.
    """
    if ctx.distributed:
        box: list = [None] * ctx.world_size
        dist.all_gather_object(box, (indices.cpu(), outputs.cpu()))
        indices = torch.cat([b[0] for b in box])  # (sum N_r,)
        outputs = torch.cat([b[1] for b in box])  # (sum N_r, C)
    order = torch.argsort(indices, stable=True)
    indices, outputs = indices[order], outputs[order]
    keep = torch.ones_like(indices, dtype=torch.bool)
    keep[1:] = indices[1:] != indices[:-1]
    return indices[keep], outputs[keep]


class EpochSampler(Sampler[int]):
    """A seeded, shardable, resumable sampler.

    The order of epoch `e` is a permutation drawn from a generator seeded with `(seed, e)` only,
    never from global RNG state, so a resumed run sees the same order. Rank `r` of `W` takes
    positions `r, r+W, ...` of the (truncated or padded) order, so the union of the ranks' k-th
    micro-batches is the same set of clips a single process would take as its k-th global batch.
    Resuming mid-epoch skips this rank's first items in the loader's `EpochTagged` wrapper
    (`dataset.set_epoch(epoch, start_index)`), not here.

    With `weights` (one per clip, e.g. 1 / clips of its class for class-balanced sampling) a
    shuffled epoch is `n` draws with replacement in proportion to the weights, from the same
    `(seed, epoch)` generator, so it shards and resumes exactly like the permutation.
    """

    def __init__(self, n: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 drop_last_multiple: int | None = None, weights: Sequence[float] | None = None) -> None:
        if n < 1:
            raise DistributedError("cannot sample from an empty set of clips")
        if weights is not None and (len(weights) != n or min(weights) < 0 or sum(weights) <= 0):
            raise DistributedError(f"sampling weights must be {n} non-negative numbers with a positive sum")
        self.weights = torch.tensor(list(weights), dtype=torch.float64) if weights is not None else None
        self.n = n
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last_multiple = drop_last_multiple
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _total(self) -> int:
        if self.drop_last_multiple:
            return (self.n // self.drop_last_multiple) * self.drop_last_multiple
        return -(-self.n // self.world_size) * self.world_size

    def order(self) -> list[int]:
        """This epoch's global order (before sharding), truncated or padded to the sharded length."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed * 1_000_003 + self.epoch)
            if self.weights is not None:
                perm = torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist()
            else:
                perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        total = self._total()
        while len(perm) < total:
            perm += perm[: total - len(perm)]
        return perm[:total]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.rank :: self.world_size])

    def __len__(self) -> int:
        return self._total() // self.world_size

"""Data-parallel helpers on `torch.distributed`, for runs started by `torchrun`.

    torchrun --nproc_per_node 8 train.py --task squad ...

torchrun starts one process per GPU and tells each its place in the environment
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); `setup` joins them into one
process group. Started without torchrun, every helper here is a no-op for one process
(rank 0 of 1), so the same script runs either way.

How a run splits its work (see training/loop.py for the update):
- each rank takes a contiguous `shard` of the examples (so a SQuAD question's windows stay
  on one rank) and caches the frozen states of those only;
- `Shard.of(states)` places those items in the global order: rank 0's items first, then
  rank 1's, ..., which is the order one process would have cached them in;
- every step, the ranks' gradients are summed (`all_reduce_gradients`), so every rank
  applies the same update to its own identical copy of the head;
- predictions are collected on rank 0 (`gather_objects`), which alone writes files.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterable, Sequence, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def setup(backend: str | None = None) -> None:
    """Join the process group torchrun describes in the environment; without torchrun, do nothing.

    `backend`: "nccl" for CUDA tensors (the default when a GPU is present), "gloo" for CPU.
    With NCCL each process uses the GPU of its LOCAL_RANK, so `torch.device("cuda")` means that GPU.
    """
    if "RANK" not in os.environ or dist.is_initialized():
        return
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend)  # reads RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT


def teardown() -> None:
    """Leave the process group (at the end of a torchrun process); a no-op without one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0: the process that prints progress and writes files."""
    return rank() == 0


def say(message: str) -> None:
    """Print on rank 0 only (every rank computes the same values)."""
    if is_main():
        print(message, flush=True)


def shard_bounds(n: int, rank_: int, world: int) -> tuple[int, int]:
    """[start, end) of rank `rank_`'s slice of n items: contiguous, in rank order, sizes differing by at most one."""
    return rank_ * n // world, (rank_ + 1) * n // world


def shard(items: Sequence[T]) -> list[T]:
    """This rank's contiguous slice of `items`; the slices of ranks 0, 1, ... concatenate to `items`.

    Shard examples, not the items made from them (windows): an example's windows are then
    made, cached and answered on one rank.
    """
    start, end = shard_bounds(len(items), rank(), world_size())
    return list(items[start:end])


def _device() -> torch.device:
    """Where collectives run: NCCL reduces CUDA tensors on this rank's GPU, gloo CPU tensors."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def sum_scalar(value: float) -> float:
    """The sum of `value` over all ranks (float64), the same on every rank."""
    if world_size() == 1:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=_device())
    dist.all_reduce(total)
    return total.item()


def sum_each(values: torch.Tensor) -> list[float]:
    """Each entry of the 1-d `values` summed over all ranks (float64), read back to the host in one sync."""
    if world_size() == 1:
        return values.tolist()
    total = values.to(_device(), torch.float64)
    dist.all_reduce(total)
    return total.tolist()


def all_reduce_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Replace every parameter's `.grad` by the sum of its gradients over all ranks (one collective).

    A rank whose share of the batch was empty ran no backward (`.grad` is None); it adds zeros.
    """
    if world_size() == 1:
        return
    params = list(params)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.flatten() for g in grads]).to(_device())  # (sum of numels,)
    dist.all_reduce(flat)
    for p, summed in zip(params, flat.split([p.numel() for p in params])):
        p.grad = summed.view_as(p).to(p.device)


def all_gather_objects(obj: Any) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank (pickled; for small Python values)."""
    if world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def gather_objects(obj: Any) -> list[Any] | None:
    """[obj of rank 0, obj of rank 1, ...] on rank 0, None on the others (e.g. prediction rows)."""
    if world_size() == 1:
        return [obj]
    gathered: list[Any] | None = [None] * world_size() if is_main() else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered


@dataclasses.dataclass(frozen=True)
class Shard:
    """This rank's part of a global list of cached items: global indices offset .. offset + len(states) - 1.

    `states` is what the task's operations index with local positions 0 .. len - 1 (the
    task's own states object, made from this rank's `shard` of the examples); `total`
    counts the items of all ranks. The training loop draws batches of global indices in
    0 .. total - 1, exactly as one process would, and `local` keeps the ones held here.
    """

    states: Any
    offset: int
    total: int

    @classmethod
    def of(cls, states: Any) -> "Shard":
        """Place this rank's `states` after those of the lower ranks (a collective: every rank calls it)."""
        counts = all_gather_objects(len(states))
        return cls(states, offset=sum(counts[:rank()]), total=sum(counts))

    def __len__(self) -> int:
        return len(self.states)

    def local(self, indices: Iterable[int]) -> list[int]:
        """The global `indices` held by this rank, as local positions, in their given order."""
        end = self.offset + len(self.states)
        return [i - self.offset for i in indices if self.offset <= i < end]

"""The plain PyTorch loop that trains a head on cached states, with per-epoch checkpoints.

The batch order of epoch e depends only on (seed, e), so a run resumed from the
checkpoint of epoch e-1 replays exactly what an uninterrupted run would have done.

Three things are off by default (without them the loop computes exactly what it always did):
- averaging: the head that is validated and kept is the running mean of the head after every
  optimizer step so far (Polyak averaging), which cancels most of the step-to-step noise of a
  constant learning rate; the steps themselves are unchanged;
- validation: after every epoch, the mean loss on held-out validation states; the head of
  the epoch with the lowest one is kept and restored at the end, and training stops early
  once it has not improved for `patience` epochs;
- data parallel (torchrun): every rank holds the cached states of its own items (a
  `distributed.Shard`), draws the same global batches as one process, and contributes its
  items' share of the batch loss; the summed gradient is the one-process gradient, so every
  rank applies the same update (training/distributed.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

from data.progress import Progress
from errors import UserError
from heads import FrozenBackboneHead
from tasks import Task

from . import distributed
from .atomic import write_bytes


@dataclasses.dataclass
class TrainSettings:
    epochs: int
    lr: float
    batch_size: int
    seed: int
    weight_decay: float = 0.0
    warmup_ratio: float = 0.0
    schedule: str = "linear"  # "linear": warm up, then decay to 0 (HF Trainer's default); "constant"
    max_grad_norm: float = 1.0
    average: bool = False  # validate and keep the mean of every step's head, not the last step's


class HeadAverage:
    """The running mean of the head's tensors over every optimizer step (Polyak-Ruppert averaging).

    With a constant learning rate the head keeps jumping around the loss minimum by about one
    step; the mean of its positions sits much closer to it. It is a head of the same shape,
    so it is validated, kept and saved like any other.
    """

    def __init__(self, model: FrozenBackboneHead, state: dict | None = None) -> None:
        self.model = model
        current = model.head.state_dict()  # on the head's device: no host copy per step
        self.mean = {k: (state["mean"][k].to(v.device) if state else v.detach().clone()) for k, v in current.items()}
        self.count = state["count"] if state else 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the head's current tensors into the mean (the first update replaces the init)."""
        self.count += 1
        for name, value in self.model.head.state_dict().items():
            self.mean[name].lerp_(value, 1 / self.count)

    def state_dict(self) -> dict:
        return {"mean": {k: v.cpu().clone() for k, v in self.mean.items()}, "count": self.count}

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Within the block, the model's head holds the mean; the trained head is put back after."""
        current = {k: v.detach().clone() for k, v in self.model.head.state_dict().items()}
        self.model.head.load_state_dict(self.mean)
        try:
            yield
        finally:
            self.model.head.load_state_dict(current)


def lr_lambda(settings: TrainSettings, total_steps: int) -> Callable[[int], float]:
    warmup = int(settings.warmup_ratio * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if settings.schedule == "constant":
            return 1.0
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def train_head(model: FrozenBackboneHead, task: Task, states, settings: TrainSettings,
               checkpoint: Path | None = None, resume: bool = False, *, val_states=None,
               patience: int | None = None, quiet: bool = False, settings_sha256: str | None = None) -> list[dict]:
    """AdamW on the head's own parameters over the cached `states`; returns the per-epoch history.

    The frozen base never runs here: each step is the task's loss on a batch of cached states.
    `states` (and `val_states`) are the task's states object, or under torchrun this
    rank's `distributed.Shard` of them. Pass only training and validation states: the test
    split must never reach this function, or the selected epoch would be chosen on the test set.

    With `settings.average`, "the head" below is the running mean of every step's head
    (`HeadAverage`): it is what is validated, kept and returned in the model.
    With `val_states`, the head of the epoch with the lowest validation loss is restored at
    the end; with `patience` too, training stops after `patience` epochs without improvement.
    The learning-rate schedule always spans `settings.epochs` (the cap): a run stopped early
    ends before a linear schedule reaches 0.

    History rows: epoch, mean_loss (the mean training loss of the epoch's steps), step_losses,
    lr (of the epoch's last step), seconds; with validation also val_loss and best_epoch
    (1-based, the best so far). A checkpoint after every epoch, written by rank 0, holds what
    an exact resume needs: head, optimizer, schedule, history, the average, and the best epoch's head.
    `quiet` drops the per-epoch lines (readout selection trains many heads). `settings_sha256`, the
    hash of the run's settings, goes into the checkpoint so that --resume can refuse another run's.
    """
    log = (lambda message: None) if quiet else distributed.say
    if patience is not None and (val_states is None or patience < 1):
        raise ValueError("early stopping needs validation states and a patience of at least 1 epoch")
    train, val = as_shard(states), as_shard(val_states) if val_states is not None else None
    params = list(model.head.parameters())
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(train.total / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(settings, settings.epochs * steps_per_epoch))
    history: list[dict] = []
    best_head: dict[str, torch.Tensor] | None = None
    saved_average: dict | None = None
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # every rank reads it
        model.load_head_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best_head, saved_average = state["history"], state.get("best_head"), state.get("average")
        log(f"resumed after epoch {len(history)} from {checkpoint}")
    average = HeadAverage(model, saved_average) if settings.average else None
    while len(history) < settings.epochs and not stalled(history, patience):
        row = train_epoch(model, task, train, optimizer, scheduler, settings, epoch=len(history), average=average)
        if val is not None:
            with average.swapped_in() if average else contextlib.nullcontext():
                row["val_loss"] = validation_loss(model, task, val, settings.batch_size)
                best_epoch = history[-1]["best_epoch"] if history else None
                if best_epoch is None or row["val_loss"] < history[best_epoch - 1]["val_loss"]:
                    best_head, best_epoch = model.head_state_dict(), row["epoch"]
            row["best_epoch"] = best_epoch
        history.append(row)
        log(f"epoch {row['epoch']}/{settings.epochs}  loss {row['mean_loss']:.4f}  "
            + (f"val {row['val_loss']:.4f} (best epoch {row['best_epoch']})  " if val is not None else "")
            + f"lr {row['lr']:.3g}  {row['seconds']:.1f}s")
        if checkpoint is not None and distributed.is_main():
            buffer = io.BytesIO()  # serialised first, so a full disk is a plain OSError from one write
            torch.save({"head": model.head_state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "history": history, "settings_sha256": settings_sha256,
                        **({"average": average.state_dict()} if average else {}),
                        **({"best_head": best_head} if best_head is not None else {})}, buffer)
            write_bytes(checkpoint, buffer.getvalue())
    if best_head is not None:
        if stalled(history, patience) and len(history) < settings.epochs:
            log(f"stopped early: no better validation loss for {patience} epochs")
        log(f"restoring the head of epoch {history[-1]['best_epoch']} (lowest validation loss)")
        model.load_head_state_dict(best_head)
    elif average is not None:
        log(f"keeping the mean of the head over all {average.count} steps")
        model.head.load_state_dict(average.mean)
    return history


def as_shard(states) -> distributed.Shard:
    """A task's states as the one shard holding every item; under torchrun, a Shard is required."""
    if isinstance(states, distributed.Shard):
        return states
    if distributed.world_size() > 1:
        raise ValueError("under torchrun, pass each rank's states as distributed.Shard.of(states)")
    return distributed.Shard(states, offset=0, total=len(states))


def stalled(history: list[dict], patience: int | None) -> bool:
    """True once the validation loss has not improved for `patience` epochs."""
    return patience is not None and bool(history) and history[-1]["epoch"] - history[-1]["best_epoch"] >= patience


def train_epoch(model: FrozenBackboneHead, task: Task, train: distributed.Shard, optimizer: torch.optim.Optimizer,
                scheduler: torch.optim.lr_scheduler.LRScheduler, settings: TrainSettings, epoch: int,
                average: HeadAverage | None = None) -> dict:
    """One pass over the global batches of `epoch`; every rank takes the same steps (and `average`s them).

    A rank's loss is its items' mean times their share of the batch: summed over ranks, the mean over
    the whole batch (exact when every item weighs the same in the task's loss). In one process the
    factor is 1.0, which changes no bit of the loss or its gradient.
    """
    params = [p for group in optimizer.param_groups for p in group["params"]]
    started, shares = time.perf_counter(), []  # this rank's share of each step's loss, left on the device
    no_share = torch.zeros((), device=params[0].device)
    batches = epoch_batches(train.total, settings.batch_size, settings.seed, epoch)
    bar = Progress(len(batches), f"epoch {epoch + 1}/{settings.epochs}", "batch") if distributed.is_main() else None
    shown = time.monotonic()
    for batch in bar.iterate(batches) if bar else batches:
        lr = scheduler.get_last_lr()[0]
        mine = train.local(batch)  # this rank's items of the global batch (all of them in one process)
        loss = None
        if mine:
            # SST-2: inputs (B, C) pooled states, targets (B,) labels; SQuAD: inputs (B, T, C) token states and
            # their (B, T) mask, targets (B,) answer starts and (B,) ends
            inputs, targets = task.batch(train.states, mine)
            loss = task.loss(model, inputs, targets) * (len(mine) / len(batch))  # this rank's share of the mean
        optimizer.zero_grad(set_to_none=True)
        if loss is not None:
            loss.backward()
        distributed.all_reduce_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update()
        shares.append(loss.detach() if loss is not None else no_share)
        if bar and distributed.world_size() == 1 and time.monotonic() - shown >= 1.0:  # one host sync a second
            bar.set_postfix(loss=f"{float(torch.stack(shares).mean()):.4f}")
            shown = time.monotonic()
    # Each step's mean loss over the whole batch, read back once per epoch (summed over ranks: the same everywhere).
    losses = distributed.sum_each(torch.stack(shares))
    bad = next((step for step, value in enumerate(losses) if not math.isfinite(value)), None)
    if bad is not None:  # every rank sees the same values: all stop together
        raise UserError(f"training loss became {losses[bad]} at epoch {epoch + 1} step {bad + 1}; "
                        "lower --lr or use --dtype float32")
    return {"epoch": epoch + 1, "mean_loss": sum(losses) / len(losses), "step_losses": losses, "lr": lr,
            "seconds": round(time.perf_counter() - started, 3)}


@torch.no_grad()
def validation_loss(model: FrozenBackboneHead, task: Task, val: distributed.Shard, batch_size: int) -> float:
    """The mean loss over every validation item of every rank, computed in batches of this rank's items."""
    sizes, losses = [], []  # per batch of this rank's items; the losses stay on the device until the end
    for first in range(0, len(val), batch_size):
        local = list(range(first, min(first + batch_size, len(val))))
        sizes.append(len(local))
        losses.append(task.batch_loss(model, val.states, local))
    total = 0.0
    for size, loss in zip(sizes, torch.stack(losses).tolist() if losses else []):  # one host sync
        total += loss * size
    mean = distributed.sum_scalar(total) / val.total
    if not math.isfinite(mean):
        raise UserError(f"validation loss became {mean}: the validation states hold non-finite values")
    return mean

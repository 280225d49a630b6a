"""The plain PyTorch loop that trains a head on cached features, with per-epoch checkpoints.

The batch order of epoch e depends only on (seed, e), so a run resumed from the
checkpoint of epoch e-1 replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from errors import UserError
from heads import FrozenBackboneHead
from tasks import Task

from .atomic import atomic_path


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


def train_head(model: FrozenBackboneHead, task: Task, features, settings: TrainSettings,
               checkpoint: Path | None = None, resume: bool = False) -> list[dict]:
    """AdamW on the head's own parameters over the cached `features`; returns the per-epoch history.

    The frozen base never runs here: each step is the task's loss on a batch of cached items.
    A checkpoint (head, optimizer, schedule, history) is written after every epoch.
    """
    params = list(model.head.parameters())
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(features) / settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(settings, settings.epochs * steps_per_epoch))
    history: list[dict] = []
    if resume and checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        model.load_head_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
        print(f"resumed after epoch {len(history)} from {checkpoint}")
    for epoch in range(len(history), settings.epochs):
        started, losses = time.perf_counter(), []
        bar = tqdm(epoch_batches(len(features), settings.batch_size, settings.seed, epoch),
                   desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch", leave=False, disable=None)
        for step, batch in enumerate(bar):
            loss = task.batch_loss(model, features, batch)
            if not torch.isfinite(loss):
                raise UserError(f"training loss became {loss.item()} at epoch {epoch + 1} step {step + 1}; "
                                "lower --lr or use --dtype float32")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        history.append({"epoch": epoch + 1, "mean_loss": sum(losses) / len(losses), "step_losses": losses,
                        "seconds": round(time.perf_counter() - started, 3)})
        print(f"epoch {epoch + 1}/{settings.epochs}  loss {history[-1]['mean_loss']:.4f}  "
              f"lr {scheduler.get_last_lr()[0]:.3g}  {history[-1]['seconds']:.1f}s")
        if checkpoint is not None:
            with atomic_path(checkpoint) as tmp:
                torch.save({"head": model.head_state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "history": history}, tmp)
    return history

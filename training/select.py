"""--block auto (or a list of blocks): choose what the head reads, on the validation slice.

Each candidate readout (a block, echo, a pooling) gets a fresh head with the run's seeded
init, trained exactly as the final head will be (same settings, validation-selected epoch), and
is judged by its validation loss, a smoother judge than accuracy on a few hundred examples.
The test split never enters: only training and validation states come here.
"""

from __future__ import annotations

import dataclasses

import torch

from heads import FrozenBackboneHead
from tasks import Task

from . import distributed
from .loop import TrainSettings, train_head
from .outputs import lookup
from .scoring import evaluate


def choose_readout(task: Task, model: FrozenBackboneHead, train_states, val_states, val_examples: list,
                   all_val_examples: list, settings: TrainSettings, patience: int | None) -> tuple[object, list[dict]]:
    """(the readout with the lowest validation loss, one score row per candidate)."""
    rows = []
    for readout in train_states.readouts:
        torch.manual_seed(settings.seed)
        model.reset_head()
        train, val = train_states.only(readout), val_states.only(readout)
        if distributed.world_size() > 1:
            train, val = distributed.Shard.of(train), distributed.Shard.of(val)
        history = train_head(model, task, train, settings, val_states=val, patience=patience, quiet=True)
        best = history[-1]["best_epoch"]
        metrics, _ = evaluate(task, model, val_states.only(readout), val_examples, all_val_examples)
        row = {**dataclasses.asdict(readout), "val_loss": history[best - 1]["val_loss"], "best_epoch": best,
               "val_metric": lookup(metrics, task.main_metric)}
        rows.append(row)
        if metrics is not None:  # rank 0, which holds the scores
            print(f"readout {dataclasses.asdict(readout)}: validation loss {row['val_loss']:.4f}, "
                  f"{task.main_metric} {row['val_metric']:.4f} (epoch {best})", flush=True)
    chosen = min(range(len(rows)), key=lambda i: rows[i]["val_loss"])
    return train_states.readouts[chosen], rows

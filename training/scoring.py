"""Scoring a head on cached states, in one process or many: each rank predicts, rank 0 scores."""

from __future__ import annotations

from heads import FrozenBackboneHead
from tasks import Task

from . import distributed


def evaluate(task: Task, model: FrozenBackboneHead, states, examples: list,
             all_examples: list) -> tuple[dict, list[dict]] | tuple[None, None]:
    """Score the head on cached states: each rank predicts its examples, rank 0 scores them all.

    `examples` are this rank's (all of them in one process), `all_examples` every rank's in rank
    order. Ranks other than 0 get (None, None).
    """
    return score_on_main(task, task.predict(model, states, examples), all_examples)


def score_on_main(task: Task, predictions: list, all_examples: list) -> tuple[dict, list[dict]] | tuple[None, None]:
    """Gather every rank's predictions (in rank order) to rank 0 and score them there."""
    parts = distributed.gather_objects(predictions)
    if parts is None:
        return None, None
    return task.score(all_examples, [p for part in parts for p in part])

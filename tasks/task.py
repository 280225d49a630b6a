"""The record that describes one task to train.py and eval.py.

Everything that differs between SST-2 and SQuAD lives in one `Task` value per task
(`tasks/sst2.py`, `tasks/squad.py`), so the scripts and the loop never ask which task
they run: they call its operations, in this order:

    readouts -> prepare (tokens, cheap) -> frozen_pass (states) -> batch_loss (training)
    -> predict -> decision_rule (on validation) -> score;  prompt_predict -> score for the LM's own answers.

A *readout* says which frozen state the head reads (the block, echo, the pooling): a
`heads.readout` dataclass, recorded in the head file so eval.py rebuilds the same.
`predict` returns one JSON-able prediction per example, so ranks of a data-parallel run can
send theirs to rank 0, which alone scores them.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

import torch

from errors import UserError
from heads import FrozenBackboneHead
from llama import LlamaConfig, LlamaForCausalLM, Tokenizer

Scores = tuple[dict, list[dict]]  # (metrics, one report row per test example)
BLOCK_FRACTIONS = (1 / 2, 2 / 3, 5 / 6, 1)  # --block auto: the blocks tried, as fractions of the depth


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    head_class: type[FrozenBackboneHead]
    label_names: tuple[str, ...]  # what the head's output rows mean (classes, or span start/end)
    defaults: dict[str, Any]  # defaults of the data flags (data set, window sizes)
    # Defaults of the training flags per --recipe: "converged" (validation-selected, the default) and
    # "report" (the original report's hyperparameters, last block, no validation slice).
    recipes: dict[str, dict[str, Any]]
    own_flags: tuple[str, ...]  # flags that only this task takes
    per_token: bool  # caches every token's state (SQuAD) rather than one vector per example (SST-2)
    main_metric: str  # the key path of the score that judges readouts on validation (and the plots show)
    # The candidate readouts the flags allow (one, or several for validation to choose from).
    readouts: Callable[[argparse.Namespace, LlamaConfig], list]
    readout_from: Callable[[dict], Any]  # a readout back from the head file's metadata
    # Token sequences for the frozen pass, (tokenizer, examples, args, readouts) -> prepared; `.lengths`.
    prepare: Callable[[Tokenizer, list, argparse.Namespace, list], Any]
    # The frozen pass: (head, prepared, readouts, place, progress label) -> states with `.only(readout)`.
    frozen_pass: Callable[[FrozenBackboneHead, Any, list, str, str], Any]
    # The loss of one batch of cached training items: (head, one readout's states, indices) -> scalar.
    batch_loss: Callable[[FrozenBackboneHead, Any, list[int]], torch.Tensor]
    # The head's prediction per example: (head, one readout's states, examples, args).
    predict: Callable[[FrozenBackboneHead, Any, list, argparse.Namespace], list]
    # The language model's own zero-shot prediction per example: (lm, tokenizer, examples, args).
    prompt_predict: Callable[[LlamaForCausalLM, Tokenizer, list, argparse.Namespace], list]
    score: Callable[[list, list, argparse.Namespace], Scores]  # (examples, predictions, args)
    # The prediction rule's free settings, chosen on the validation slice after training (SQuAD 2.0: the no-answer
    # threshold): (args, a call scoring the validation slice) -> {flag: value}; {} when nothing is left to choose.
    # The call runs only when something is (on every rank: it is collective; it gives None on ranks other than 0).
    decision_rule: Callable[[argparse.Namespace, Callable[[], dict | None]], dict]
    headline: Callable[[dict], str]  # the one line of scores printed after each evaluation
    metric_rows: Callable[[dict], list[tuple[str, str]]]  # report.md rows: (label, key path into metrics)


def candidate_blocks(flag: str, depth: int) -> list[int]:
    """--block: "last" -> [depth]; "K" -> [K]; "auto" -> a few blocks from half the depth to the last."""
    if flag == "last":
        return [depth]
    if flag == "auto":
        return sorted({round(depth * f) for f in BLOCK_FRACTIONS})
    if not flag.isdigit() or not 1 <= int(flag) <= depth:
        raise UserError(f"--block {flag}: expected auto, last or a block number from 1 to {depth}")
    return [int(flag)]

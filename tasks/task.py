"""The record that describes one task to train.py and eval.py.

Everything that differs between SST-2 and SQuAD lives in one `Task` value per task
(`tasks/sst2.py`, `tasks/squad.py`), so the scripts and the loop never ask which task
they run: they call its operations.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

import torch

from heads import FrozenBackboneHead
from llama import LlamaForCausalLM, Tokenizer

Scores = tuple[dict, list[dict]]  # (metrics, one prediction row per test example)


@dataclasses.dataclass(frozen=True)
class Task:
    name: str
    head_class: type[FrozenBackboneHead]
    label_names: tuple[str, ...]  # what the head's output rows mean (classes, or span start/end)
    defaults: dict[str, Any]  # flag defaults; lr, batch_size, epochs are the original report's protocol
    own_flags: tuple[str, ...]  # flags that only this task takes
    # What to cache from the frozen base: (head, tokenizer, examples, args, progress label) -> features.
    extract: Callable[[FrozenBackboneHead, Tokenizer, list, argparse.Namespace, str], Any]
    # The loss of one batch of cached training items: (head, features, indices) -> scalar.
    batch_loss: Callable[[FrozenBackboneHead, Any, list[int]], torch.Tensor]
    # The head's scores on cached test features: (head, features, examples, args).
    evaluate: Callable[[FrozenBackboneHead, Any, list, argparse.Namespace], Scores]
    # The language model's own zero-shot answers: (lm, tokenizer, examples, args).
    zero_shot_prompt: Callable[[LlamaForCausalLM, Tokenizer, list, argparse.Namespace], Scores]
    headline: Callable[[dict], str]  # the one line of scores printed after each evaluation
    metric_rows: Callable[[dict], list[tuple[str, str]]]  # report.md rows: (label, key path into metrics)

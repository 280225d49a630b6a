"""What every task gives train.py and eval.py: the `Task` class, and the readout choice the flags make.

Everything that differs between SST-2 and SQuAD lives in one `Task` subclass per task
(`tasks/classification.py`, `tasks/squad.py`), so the scripts and the loop never ask which task they
run: they call its methods, in this order:

    readouts -> prepare (tokens, cheap) -> frozen_pass (states; merge) -> batch, loss (training)
    -> predict -> decision_rule (on validation) -> score;  prompt_predict -> score for the LM's own answers.

A task is a frozen dataclass: what a run configures (SQuAD's version, window sizes and
no-answer threshold) and what a task is about (its label names, its data format) are fields
of the instance, so a third task over other files is one more instance or a small subclass.
A *readout* says which frozen state the head reads (`heads.readout`); it is recorded in the
head file so eval.py rebuilds the same. `predict` returns one JSON-able prediction per
example, so ranks of a data-parallel run can send theirs to rank 0, which alone scores them.
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar

import torch

from errors import UserError
from heads import FrozenBackboneHead
from heads.store import StateStore
from llama import LlamaConfig, LlamaForCausalLM, LlamaModel, Tokenizer

Scores = tuple[dict, list[dict]]  # (metrics, one report row per test example)
RECIPES = ("converged", "report")
FILE_FLAGS = ("train_file", "validation_file", "test_file")  # the user's own files (classification, qa)


@dataclasses.dataclass(frozen=True)
class ReadoutChoice:
    """What the flags say about the readout: `block` "auto", "last", a number or a comma-separated list of
    numbers (the candidates validation chooses among); `echo`; `pool` "last" or "mean" (classification only)."""

    block: str
    echo: bool
    pool: str | None = None


@dataclasses.dataclass(frozen=True)
class Task(abc.ABC):
    """One task; a subclass also gives `data_format` (a `data.formats.DataFormat`: how its files are
    named and read) and `default_data` (--data when none is given), as fields or properties."""

    name: str  # the --task name
    label_names: tuple[str, ...]  # what the head's output rows mean (classes, or span start/end)

    head_class: ClassVar[type[FrozenBackboneHead]]
    # --block auto: the blocks tried, as fractions of the depth: only those that won on tuning data (RESULTS.md),
    # so the frozen pass stops at the deepest of them.
    auto_blocks: ClassVar[tuple[float, ...]]
    per_token: ClassVar[bool]  # caches every token's state (SQuAD) rather than one vector per example (SST-2)
    main_metric: ClassVar[str]  # the key path of the score that judges readouts on validation (and the plots show)
    own_flags: ClassVar[tuple[str, ...]]  # flags that only this task takes
    # Defaults of the recipe flags per --recipe: "converged" (validation-selected, the default) and
    # "report" (the original report's hyperparameters, last block, no validation slice).
    recipes: ClassVar[dict[str, dict[str, Any]]]

    @abc.abstractmethod
    def readouts(self, choice: ReadoutChoice, config: LlamaConfig) -> list:
        """The candidate readouts the choice allows: one, or several for validation to choose from."""

    def new_head(self, config: LlamaConfig, backbone: LlamaModel | None = None) -> FrozenBackboneHead:
        """The task's head on `backbone` (None: a new base), one output row per label where that varies."""
        return self.head_class(config, backbone=backbone)

    def read_files(self, paths: list[Path | None]) -> list[list | None]:
        """Examples of the user's (train, validation, test) files, None where not given; a task over the
        user's files (`FILE_FLAGS` in its own_flags) says how it reads them."""
        raise UserError(f"--task {self.name} reads its data set through --data, not --train-file")

    def with_labels_from(self, train_file: Path | None) -> "Task":
        """This task with the label set of the user's training file, where the labels come from the data."""
        return self

    @abc.abstractmethod
    def prepare(self, tokenizer: Tokenizer, examples: list, candidates: list, batch_tokens: int,
                context_tokens: int | None = None):
        """Token sequences for the frozen pass (cheap: no model runs); `.lengths`, `.cached_lengths`.
        A sequence longer than `context_tokens` (the model's context) is cut to it where the task can."""

    @abc.abstractmethod
    def frozen_pass(self, head: FrozenBackboneHead, prepared, candidates: list, place: str, desc: str,
                    store: StateStore | None = None):
        """Run the frozen base over `prepared` once and cache every candidate's states in `place`;
        the result has `.only(readout)` and `len()`, and is what `batch_loss` and `predict` read.
        With a `store`, the states it holds are reused and the rest computed and kept there."""

    @abc.abstractmethod
    def merge(self, first, second, in_first: list[bool]):
        """One readout's states of two disjoint parts of some examples, from two frozen passes, as the states
        of all of them in their order: example i's are the next of `first` if `in_first[i]`, else of `second`."""

    @abc.abstractmethod
    def batch(self, states, indices: list[int]) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """The cached items `indices` of one readout's states: (the head's input tensors, the targets)."""

    @abc.abstractmethod
    def loss(self, head: FrozenBackboneHead, inputs: tuple[torch.Tensor, ...],
             targets: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The mean loss of one batch (`batch`'s tensors): a scalar."""

    def batch_loss(self, head: FrozenBackboneHead, states, indices: list[int]) -> torch.Tensor:
        """`loss` of the cached items `indices` (validation, and tests)."""
        return self.loss(head, *self.batch(states, indices))

    @abc.abstractmethod
    def predict(self, head: FrozenBackboneHead, states, examples: list) -> list:
        """The head's JSON-able prediction per example, from one readout's cached states."""

    @abc.abstractmethod
    def prompt_predict(self, lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list, batch_tokens: int) -> list:
        """The language model's own zero-shot prediction per example."""

    @abc.abstractmethod
    def score(self, examples: list, predictions: list) -> Scores:
        """Metrics over all examples, and one report row per example."""

    def decision_rule(self, validation_metrics: Callable[[], dict | None]) -> dict:
        """The prediction rule's settings left to choose on the validation slice after training, as
        {field: value} for `with_decision`; {} when there is nothing to choose. `validation_metrics`
        scores the slice (on every rank: it is collective; None on ranks other than 0): call it only
        when something is to be chosen."""
        return {}

    def use_settings(self) -> dict:
        """What a user of the trained head must apply as training did, beyond the readout (the head
        file's `use`, which `heads.load` reads); {} when nothing."""
        return {}

    def with_decision(self, decision: dict) -> "Task":
        """This task with the fields left at "auto" set to the values chosen on validation."""
        return dataclasses.replace(self, **{k: v for k, v in decision.items() if getattr(self, k) == "auto"})

    @abc.abstractmethod
    def headline(self, metrics: dict) -> str:
        """The one line of scores printed after each evaluation."""

    @abc.abstractmethod
    def metric_rows(self, metrics: dict) -> list[tuple[str, str]]:
        """report.md rows: (label, key path into metrics)."""


def candidate_blocks(flag: str, depth: int, fractions: tuple[float, ...]) -> list[int]:
    """--block: "last" -> [depth]; "K" -> [K]; "auto" -> the blocks at `fractions` of the depth."""
    if flag == "last":
        return [depth]
    if flag == "auto":
        return sorted({round(depth * f) for f in fractions})
    numbers = flag.split(",")
    if not all(n.isdigit() and 1 <= int(n) <= depth for n in numbers):
        raise UserError(f"--block {flag}: expected auto, last, or block numbers from 1 to {depth} (e.g. 15 or 15,20)")
    return sorted({int(n) for n in numbers})

"""What a run loads before any training: its examples (with the validation slice), the frozen base, the head."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

import llama
from data.sources import load_task_data
from data.splits import holdout_split, take
from errors import UserError
from heads.store import StateStore, open_store
from tasks import Task

from . import distributed


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Which examples a run reads: `data` (a path, a canonical name or "sample"), `split` ("holdout":
    80:20 of the training file; "dev": the official dev file as test), the seed, the --limit /
    --eval-limit sizes and the share of training examples held out for validation (0: none)."""

    data: str | None
    split: str = "holdout"
    seed: int = 1
    limit: int | None = None
    eval_limit: int | None = None
    val_fraction: float = 0.0
    # The user's own files (classification, qa) instead of `data`: the test file defaults to a seeded
    # 80:20 split of the training file, the validation file to the val_fraction slice.
    train_file: Path | None = None
    validation_file: Path | None = None
    test_file: Path | None = None


def load_data(task: Task, settings: DataSettings) -> tuple[list, list, list]:
    """(train, validation, test) examples of the task's data set; bad files fail here, in one line.

    The validation slice (`val_fraction` of the training examples, seeded) is carved out of the
    training part, never the test split, and chooses the epoch and the readout. With a limit of N the
    head still trains on N examples: the slice (the fraction of N) comes from the rest of the part.
    A validation file is the slice instead.
    """
    s = settings
    group = task.data_format.group
    if s.train_file is None and (s.validation_file or s.test_file):
        raise UserError("--validation-file and --test-file go with --train-file")
    if s.train_file is not None:
        if s.data is not None:
            raise UserError("--data and --train-file both name the data: give one")
        part, val, test = task.read_files([s.train_file, s.validation_file, s.test_file])
        if test is None:
            part, test = holdout_split(part, 0.2, s.seed)
        test = take(test, s.eval_limit, s.seed, group)
        if val is not None:
            if not s.val_fraction:
                raise UserError("--validation-file chooses the epoch and readout, which this recipe does not: "
                                "drop it, or use --recipe converged (or a --val-fraction above 0)")
            return take(part, s.limit, s.seed, group), val, test
    else:
        part, test = load_task_data(task.data_format, s.data, s.split, seed=s.seed,
                                    limit=None if s.val_fraction else s.limit, eval_limit=s.eval_limit)
    if not s.val_fraction:
        return take(part, s.limit, s.seed, group), [], test
    n_train = len(part) if s.limit is None else min(s.limit, len(part))
    n_val = round(s.val_fraction * n_train)
    if n_val < 1 or (s.limit is None or s.limit >= len(part)) and n_val >= len(part) - 1:
        raise UserError(f"--val-fraction {s.val_fraction} of {len(part)} training examples leaves no validation or "
                        "no training examples: use more data or another --val-fraction (0 turns it off)")
    rest, val = holdout_split(part, n_val / len(part), s.seed + 7919)  # a seed of its own
    limit = None if s.limit is None or s.limit >= len(part) else min(s.limit, len(rest))
    return take(rest, limit, s.seed, task.data_format.group), val, test


def load_base(model: str, revision: str | None, device: torch.device, dtype: torch.dtype) -> llama.LlamaForCausalLM:
    lm = llama.load_pretrained(model, dtype=dtype, device=device, revision=revision)
    distributed.say(f"{model}: device {device}, base dtype {str(dtype).removeprefix('torch.')}")
    return lm


def open_states(cache_dir: str, limit_gib: float, model: str, revision: str | None, device: torch.device,
                dtype: torch.dtype) -> StateStore | None:
    """The persistent store of frozen states for this base, dtype and device type (None: --cache-dir none)."""
    if limit_gib <= 0:
        raise UserError("--cache-limit must be positive (GiB); --cache-dir none stores nothing")
    return open_store(cache_dir, llama.resolve_checkpoint(model, revision=revision), dtype, device, limit_gib)


def build_head(task: Task, lm: llama.LlamaForCausalLM, seed: int):
    """The task's head on the frozen base, with its seeded Hugging Face init, on the base's device.

    The head trains in float32 whatever the base's dtype: its states are cast up to it.
    """
    torch.manual_seed(seed)
    model = task.new_head(lm.config, backbone=lm.model)
    model.reset_head()
    return model.to(lm.lm_head.weight.device)

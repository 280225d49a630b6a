"""The steps train.py and eval.py share: the flags, loading data (with the validation slice) and base, scoring.

Every task-dependent choice and default comes from the task's record (`tasks.TASKS`).
"""

from __future__ import annotations

import argparse

import torch

import llama
from data.sources import FORMATS, load_task_data
from data.splits import holdout_split, take
from errors import ArgumentParser, UserError
from heads.store import DEFAULT_LIMIT_GIB, StateStore, open_store
from tasks import TASKS, Task

from . import distributed
from .devices import DTYPES, resolve_device
from .plan import MODES

ZERO_SHOT = ("all", "head", "prompt", "none")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default in --help only when it has one (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


RECIPES = ("converged", "report")


def task_defaults(flag: str) -> str:
    """'(default: sst2 X, squad Y)' for a flag whose default depends on the task (and the recipe)."""
    def value(task: Task) -> str:
        if flag in task.defaults:
            return str(task.defaults[flag])
        return " / ".join(str(task.recipes[r].get(flag, "-")) for r in RECIPES)

    recipes = "" if any(flag in t.defaults for t in TASKS.values()) else " with --recipe " + " / ".join(RECIPES)
    return "(default" + recipes + ": " + ", ".join(f"{t.name} {value(t)}" for t in TASKS.values()) + ")"


def probability_or_auto(text: str) -> str | float:
    """A flag's value: auto, or a probability (--no-answer-threshold)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a probability, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def common_parser(description: str) -> ArgumentParser:
    p = ArgumentParser(description=description, formatter_class=DefaultsHelp)
    p.add_argument("--task", required=True, choices=list(TASKS), help="which task head")
    p.add_argument("--model", default="meta-llama/Llama-3.2-1B",
                   help="Hub id, checkpoint directory, .gguf file, or smollm2-135m (bundled, offline)")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model")
    p.add_argument("--data", help="a path, a canonical name to download (sst2, squad, squad_v2), or 'sample' "
                                  f"(bundled offline samples) {task_defaults('data')}")
    p.add_argument("--split", choices=["holdout", "dev"], default="holdout",
                   help="holdout: 80:20 split of the training file with --seed (the original protocol); "
                        "dev: train on the training file, test on the official dev file")
    p.add_argument("--squad-version", choices=["1.1", "2.0"], help=f"SQuAD version {task_defaults('squad_version')}")
    p.add_argument("--seed", type=int, default=1, help="split, shuffling and head initialisation seed")
    p.add_argument("--limit", type=int, help="use only N training examples (seeded, class-balanced for SST-2)")
    p.add_argument("--eval-limit", type=int, help="use only N test examples (seeded, class-balanced for SST-2)")
    p.add_argument("--max-length", type=int, help=f"tokens per SQuAD window {task_defaults('max_length')}; "
                                                  "SST-2 sentences are never truncated")
    p.add_argument("--doc-stride", type=int, help=f"overlap between the windows of a SQuAD context "
                                                  f"{task_defaults('doc_stride')}")
    p.add_argument("--block", help="the block whose output the head reads: a number, last, or auto (chosen "
                                   f"on the validation slice among a few blocks) {task_defaults('block')}")
    p.add_argument("--echo", action=argparse.BooleanOptionalAction,
                   help="feed the input twice (SST-2: the sentence; SQuAD: question and context) and read the head "
                        "on the second copy; SST-2 left unset with --pool auto: chosen on validation "
                        f"{task_defaults('echo')}")
    p.add_argument("--pool", choices=["auto", "last", "mean"],
                   help="SST-2: the sentence's last token, the mean of its tokens (of the second copy with --echo), "
                        f"or auto (chosen on validation) {task_defaults('pool')}")
    p.add_argument("--no-answer-threshold", type=probability_or_auto, metavar="auto|P",
                   help="SQuAD 2.0: answer '' where the no-answer probability is above P (0.5: where the slot "
                        "outscores the best span); auto: the threshold with the best F1 on the validation slice "
                        f"{task_defaults('no_answer_threshold')}")
    p.add_argument("--zero-shot", choices=ZERO_SHOT, default="all",
                   help="baselines: the untrained head (head), the LM prompted (prompt), both, or none")
    p.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                   help="dtype of the frozen base; auto: bfloat16 on CUDA (float16 if unsupported) and on CPUs "
                        "with native bf16 matrix units, else float32")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-tokens", type=int, default=4096,
                   help="tokens (padding included) per forward pass of the frozen base")
    p.add_argument("--cache", choices=MODES, default="auto",
                   help="where the frozen states go: auto (the first of accelerator memory, RAM, disk that holds "
                        "them, else stream), memory, disk (a memmap under $TMPDIR), or stream (recompute each epoch)")
    p.add_argument("--cache-dir", default="auto",
                   help="where the frozen states are kept between runs, so a rerun on the same data and base skips "
                        "the frozen pass: a directory, auto (~/.cache/llama-heads/states or $LLAMA_HEADS_STATES), "
                        "or none (keep nothing)")
    p.add_argument("--cache-limit", type=float, default=DEFAULT_LIMIT_GIB,
                   help="GiB the --cache-dir may hold; the least recently used states are evicted first")
    p.add_argument("--output", help="output directory (default runs/<task>)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the head, config, metrics and card")
    return p


def apply_task_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill every flag left unset with the task's (and recipe's) default; refuse another task's own flags."""
    task = TASKS[args.task]
    for other in TASKS.values():
        for flag in set(other.own_flags) - set(task.own_flags):
            if getattr(args, flag, None) is not None:
                raise UserError(f"--{flag.replace('_', '-')} is a {other.name} setting, not one of {task.name}")
    recipe = task.recipes[args.recipe] if hasattr(args, "recipe") else {}
    for flag, value in {**task.defaults, **recipe}.items():
        if getattr(args, flag, None) is None:
            setattr(args, flag, value)
    return args


def load_data(args: argparse.Namespace) -> tuple[list, list, list]:
    """(train, validation, test) examples of the task's data set; bad files fail here, in one line.

    The validation slice (`--val-fraction` of the training examples, seeded) is carved out of the
    training part, never the test split, and chooses the epoch and the readout. With `--limit N` the
    head still trains on N examples: the slice (the fraction of N) comes from the rest of the part.
    """
    fraction = getattr(args, "val_fraction", 0.0) or 0.0
    part, test = load_task_data(args.task, args.data, args.split, seed=args.seed,
                                limit=None if fraction else args.limit, eval_limit=args.eval_limit,
                                squad_version=args.squad_version or "1.1")
    if not fraction:
        return part, [], test
    n_train = len(part) if args.limit is None else min(args.limit, len(part))
    n_val = round(fraction * n_train)
    if n_val < 1 or (args.limit is None or args.limit >= len(part)) and n_val >= len(part) - 1:
        raise UserError(f"--val-fraction {fraction} of {len(part)} training examples leaves no validation or no "
                        "training examples: use more data or another --val-fraction (0 turns it off)")
    rest, val = holdout_split(part, n_val / len(part), args.seed + 7919)  # a seed of its own
    limit = None if args.limit is None or args.limit >= len(part) else min(args.limit, len(rest))
    return take(rest, limit, args.seed, FORMATS[args.task].group), val, test


def load_base(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> llama.LlamaForCausalLM:
    lm = llama.load_pretrained(args.model, dtype=dtype, device=device, revision=args.revision)
    distributed.say(f"{args.model}: device {device}, base dtype {str(dtype).removeprefix('torch.')}")
    return lm


def load_base_and_data(args: argparse.Namespace) -> tuple[llama.LlamaForCausalLM, llama.Tokenizer, list, list]:
    """The frozen base, its tokenizer, and the (train, test) examples; each fails with one clear line."""
    train, _, test = load_data(args)
    lm = load_base(args, *resolve_device(args.device, args.dtype))
    return lm, llama.load_tokenizer(args.model, revision=args.revision), train, test


def open_states(args: argparse.Namespace, device: torch.device, dtype: torch.dtype) -> StateStore | None:
    """The persistent store of frozen states for this base, dtype and device type (None: --cache-dir none)."""
    if args.cache_limit <= 0:
        raise UserError("--cache-limit must be positive (GiB); --cache-dir none stores nothing")
    return open_store(args.cache_dir, llama.resolve_checkpoint(args.model, revision=args.revision), dtype, device,
                      args.cache_limit)


def build_head(task: Task, lm: llama.LlamaForCausalLM, seed: int):
    """The task's head on the frozen base, with its seeded Hugging Face init, on the base's device.

    The head trains in float32 whatever the base's dtype: its states are cast up to it.
    """
    torch.manual_seed(seed)
    model = task.head_class(lm.config, backbone=lm.model)
    model.reset_head()
    return model.to(lm.lm_head.weight.device)


def evaluate(task: Task, model, states, examples: list, all_examples: list,
             args: argparse.Namespace) -> tuple[dict, list[dict]] | tuple[None, None]:
    """Score the head on cached states: each rank predicts its examples, rank 0 scores them all.

    `examples` are this rank's (all of them in one process), `all_examples` every rank's in rank
    order. Ranks other than 0 get (None, None).
    """
    return score_on_main(task, task.predict(model, states, examples, args), all_examples, args)


def apply_decision(args: argparse.Namespace, decision: dict) -> None:
    """Fill the flags left at auto with the prediction rule's settings chosen on validation
    (`Task.decision_rule`); a value given on the command line stays."""
    for flag, value in decision.items():
        if getattr(args, flag) == "auto":
            setattr(args, flag, value)


def score_on_main(task: Task, predictions: list, all_examples: list,
                  args: argparse.Namespace) -> tuple[dict, list[dict]] | tuple[None, None]:
    """Gather every rank's predictions (in rank order) to rank 0 and score them there."""
    parts = distributed.gather_objects(predictions)
    if parts is None:
        return None, None
    return task.score(all_examples, [p for part in parts for p in part], args)

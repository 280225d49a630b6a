"""The command line that train.py and eval.py share: the flags, where each default lives, and the
typed settings the flags become. Only the scripts (and this module, which they import) parse flags;
everything below them takes settings.

A default lives in one place: a flag every task reads the same way has it here; a flag whose
default depends on the task is a field of the task instance (SQuAD's window sizes, `tasks`) or a
row of the task's `recipes` (learning rate, readout, ...). The parser is built for the task (and
recipe) on the command line, so `--task squad --help` prints SQuAD's own defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from errors import ArgumentParser, UserError
from heads.store import DEFAULT_LIMIT_GIB
from tasks import RECIPES, TASKS, ReadoutChoice, Task
from training.devices import DTYPES
from training.loading import DataSettings
from training.loop import TrainSettings
from training.plan import MODES

ZERO_SHOT = ("all", "head", "prompt", "none")
PER_TASK = "(default: depends on --task; see --task NAME --help)"


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default in --help only when it has one (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def probability_or_auto(text: str) -> str | float:
    """A flag's value: auto, or a probability (--no-answer-threshold)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, or a probability, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def chosen_task(argv: list[str] | None, recipe_default: str) -> tuple[Task | None, str]:
    """The --task and --recipe on the command line, read before the full parser is built for them.

    A flag that only another task takes is refused in one line that says whose it is.
    """
    pre = ArgumentParser(add_help=False)
    pre.add_argument("--task", choices=list(TASKS))
    pre.add_argument("--recipe", choices=RECIPES, default=recipe_default)
    known, _ = pre.parse_known_args(argv)
    task = TASKS.get(known.task)
    if task is not None:
        given = {a.split("=")[0] for a in argv or []}
        for other in TASKS.values():
            for flag in set(other.own_flags) - set(task.own_flags):
                if option(flag) in given:
                    raise UserError(f"{option(flag)} is a {other.name} setting, not one of {task.name}")
    return task, known.recipe


def option(field: str) -> str:
    return "--" + field.replace("_", "-")


def task_default(task: Task | None, recipe: str, field: str):
    """The default of a task-dependent flag: the recipe's row, else the task instance's field."""
    if task is None:
        return None
    recipe_row = task.recipes.get(recipe, {})
    return recipe_row[field] if field in recipe_row else getattr(task, field, None)


def common_parser(description: str, task: Task | None, recipe: str,
                  output_help: str = "output directory (default runs/<task>)") -> ArgumentParser:
    """The flags of both scripts, with `task`'s defaults (under `recipe`) where they depend on it, in
    --help groups the scripts add to (`p.groups[title]`): data, model, readout, training, output (an
    empty group is not shown)."""
    p = ArgumentParser(description=description, formatter_class=DefaultsHelp)
    p.groups = {title: p.add_argument_group(title) for title in ("data", "model", "readout", "training", "output")}
    data, model, readout, _, output = p.groups.values()
    per_task = "" if task else " " + PER_TASK

    def default(field: str):
        return task_default(task, recipe, field)

    data.add_argument("--task", required=True, choices=list(TASKS), help="which task head")
    model.add_argument("--model", default="meta-llama/Llama-3.2-1B",
                       help="Hub id, checkpoint directory, .gguf file, or smollm2-135m (bundled, offline)")
    model.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model")
    data.add_argument("--data", default=task.default_data if task else None,
                      help="a path, a canonical name to download (sst2, squad, squad_v2), or 'sample' (bundled "
                           "offline samples)" + per_task)
    if task is None or "train_file" in task.own_flags:
        data.add_argument("--train-file", type=Path,
                          help="classification / qa: your training file (.csv, .tsv, .jsonl; qa: SQuAD .json or "
                               "squad-layout .jsonl); without --test-file, a seeded 80:20 split of it")
        data.add_argument("--validation-file", type=Path, help="classification / qa: the examples that choose the "
                                                               "epoch and readout (default: --val-fraction of training)")
        data.add_argument("--test-file", type=Path, help="classification / qa: the examples scored at the end")
    if task is None or "text_column" in task.own_flags:
        data.add_argument("--text-column", default=default("text_column"),
                          help="classification: the column (JSONL key) of the text" + per_task)
        data.add_argument("--text-pair-column", help="classification: the column of a second text (sentence pairs), "
                                                     "fed after the first and a line break")
        data.add_argument("--label-column", default=default("label_column"),
                          help="classification: the column of the label, a string or an integer" + per_task)
    if task is None or "prompt" in task.own_flags:
        data.add_argument("--prompt", default=default("prompt"),
                          help="sentence tasks: the zero-shot prompt, with {text} (and {text_pair}, {labels}); each "
                               "label's words are scored after it (classification default: 'Text: {text}\\nLabel "
                               "({labels}):', with '\\nSecond text: {text_pair}' for pairs)" + per_task)
    data.add_argument("--split", choices=["holdout", "dev"], default="holdout",
                      help="holdout: 80:20 split of the training file with --seed (the original protocol); "
                           "dev: train on the training file, test on the official dev file")
    data.add_argument("--seed", type=int, default=1, help="split, shuffling and head initialisation seed")
    data.add_argument("--limit", type=int, help="use only N training examples (seeded, class-balanced)")
    data.add_argument("--eval-limit", type=int, help="use only N test examples (seeded, class-balanced)")
    readout.add_argument("--block", default=default("block"),
                         help="the block whose output the head reads: a number, last, several numbers (15,20: "
                              "chosen on the validation slice), or auto (the task's candidates, chosen likewise)"
                              + per_task)
    readout.add_argument("--echo", action=argparse.BooleanOptionalAction, default=default("echo"),
                         help="feed the input twice (a sentence; a question and its context) and read the head on "
                              "the second copy" + per_task)
    if task is None or "pool" in task.own_flags:
        readout.add_argument("--pool", choices=["last", "mean"], default=default("pool"),
                             help="sentence tasks: the sentence's last token, or the mean of its tokens (of the "
                                  "second copy with --echo)" + per_task)
    if task is None or "squad_version" in task.own_flags:
        data.add_argument("--squad-version", choices=["1.1", "2.0"], default=default("squad_version"),
                          help="SQuAD version" + per_task)
        data.add_argument("--max-length", type=int, default=default("max_length"),
                          help="tokens per SQuAD window (sentences are never truncated)" + per_task)
        data.add_argument("--doc-stride", type=int, default=default("doc_stride"),
                          help="overlap between the windows of a SQuAD context" + per_task)
        readout.add_argument("--no-answer-threshold", type=probability_or_auto, metavar="auto|P",
                             default=default("no_answer_threshold"),
                             help="SQuAD 2.0: answer '' where the no-answer probability is above P (0.5: where the "
                                  "slot outscores the best span); auto: the threshold with the best F1 on the "
                                  "validation slice" + per_task)
    output.add_argument("--zero-shot", choices=ZERO_SHOT, default="all",
                        help="baselines: the untrained head (head), the LM prompted (prompt), both, or none")
    model.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                       help="dtype of the frozen base; auto: bfloat16 on CUDA (float16 if unsupported) and on CPUs "
                            "with native bf16 matrix units, else float32")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    model.add_argument("--batch-tokens", type=int, default=4096,
                       help="tokens (padding included) per forward pass of the frozen base")
    model.add_argument("--cache", choices=MODES, default="auto",
                       help="where the frozen states go: auto (the first of accelerator memory, RAM, disk that "
                            "holds them, else stream), memory, disk (a memmap under $TMPDIR), or stream (recompute "
                            "each epoch)")
    model.add_argument("--cache-dir", default="auto",
                       help="where the frozen states are kept between runs, so a rerun on the same data and base "
                            "skips the frozen pass: a directory, auto (~/.cache/llama-heads/states or "
                            "$LLAMA_HEADS_STATES), or none (keep nothing)")
    model.add_argument("--cache-limit", type=float, default=DEFAULT_LIMIT_GIB,
                       help="GiB the --cache-dir may hold; the least recently used states are evicted first")
    output.add_argument("--output", help=output_help)
    output.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the head, config, metrics and card")
    return p


def configured_task(args: argparse.Namespace) -> Task:
    """The task instance with the run's own settings (SQuAD: version, window sizes, no-answer threshold;
    classification of your files: the columns, the prompt, and the training file's label set)."""
    task = TASKS[args.task]
    fields = {f.name for f in dataclasses.fields(task)}
    task = dataclasses.replace(task, **{f: getattr(args, f) for f in task.own_flags if f in fields})
    return task.with_labels_from(args.train_file) if "train_file" in task.own_flags else task


def readout_choice(args: argparse.Namespace) -> ReadoutChoice:
    return ReadoutChoice(block=str(args.block), echo=args.echo, pool=getattr(args, "pool", None))


def data_settings(args: argparse.Namespace) -> DataSettings:
    return DataSettings(data=args.data, split=args.split, seed=args.seed, limit=args.limit,
                        eval_limit=args.eval_limit, val_fraction=getattr(args, "val_fraction", 0.0) or 0.0,
                        train_file=getattr(args, "train_file", None),
                        validation_file=getattr(args, "validation_file", None),
                        test_file=getattr(args, "test_file", None))


def train_settings(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                         weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio, schedule=args.schedule,
                         max_grad_norm=args.max_grad_norm, average=args.average)


def flag_values(args: argparse.Namespace, leave_out: tuple[str, ...] = ()) -> dict:
    """The flags as JSON values (train_config.json), paths as strings."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in leave_out}

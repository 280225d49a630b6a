"""How the converged recipe's head settings were chosen: on a tuning set, never on the test split.

For the run `train.py` would make with the same flags, this caches every candidate readout's
states for the run's training and validation examples and for `--tuning` other examples of
the training part (outside the run, so a head never trained or validated on them), then trains
one head per readout and per setting of a small grid (`--average`, `--weight-decays`) exactly as
train.py does: same init, same loop, validation-selected epoch. Each row prints the best epoch,
its validation loss and the head's score on the tuning set. A setting earns its place in the
recipe when it helps across readouts there, not on the test split.

    python bench/tune_head.py --task sst2 --model smollm2-135m --data ../shared/data/sst2 --split dev \\
        --limit 2000 --tuning 3000
    python bench/tune_head.py --task squad --model smollm2-135m --data ../shared/data/squad/dev-v1.1.json \\
        --limit 400 --eval-limit 200 --tuning 600
    python bench/tune_head.py --task squad --squad-version 2.0 --model smollm2-135m \\
        --data ../shared/data/squad/dev-v2.0.json --limit 400 --eval-limit 200 --tuning 600 --block 20 \\
        --averages on --weight-decays 0 --no-answer-thresholds 0,0.5,0.9,auto,1
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import llama  # noqa: E402
import train as train_script  # noqa: E402
from data.sources import load_task_data  # noqa: E402
from data.splits import take  # noqa: E402
from errors import UserError, exit_on_user_error  # noqa: E402
from flags import configured_task, data_settings, readout_choice  # noqa: E402
from tasks import Task  # noqa: E402
from training.devices import resolve_device  # noqa: E402
from training.loading import build_head, load_base, load_data  # noqa: E402
from training.loop import TrainSettings, train_head  # noqa: E402
from training.outputs import lookup  # noqa: E402
from training.scoring import evaluate  # noqa: E402


def tuning_examples(task: Task, args: argparse.Namespace, run: list, n: int) -> list:
    """n examples of the training part that the run neither trains nor validates on (seeded)."""
    part, _ = load_task_data(task.data_format, args.data, args.split, seed=args.seed)
    used = {repr(e) for e in run}
    outside = [e for e in part if repr(e) not in used]
    return take(outside, n, args.seed + 5, task.data_format.group)


@exit_on_user_error
def main() -> None:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--tuning", type=int, default=1000, help="tuning examples outside the run")
    p.add_argument("--weight-decays", default="0,1", help="comma-separated AdamW weight decays to try")
    p.add_argument("--averages", default="off,on", help="comma-separated: head averaging off and/or on")
    p.add_argument("--no-answer-thresholds", default="",
                   help="SQuAD 2.0: comma-separated thresholds (P, or auto: chosen on validation) to score at")
    own, rest = p.parse_known_args()
    args = train_script.parse_args(rest)
    task = configured_task(args)
    thresholds = [t for t in own.no_answer_thresholds.split(",") if t]
    if thresholds and getattr(args, "squad_version", None) != "2.0":
        raise UserError("--no-answer-thresholds needs --task squad --squad-version 2.0")
    train, val, _ = load_data(task, data_settings(args))
    tuning = tuning_examples(task, args, train + val, own.tuning)
    print(f"{len(train)} training, {len(val)} validation, {len(tuning)} tuning examples", flush=True)
    lm = load_base(args.model, args.revision, *resolve_device(args.device, args.dtype))
    tokenizer = llama.load_tokenizer(args.model, revision=args.revision)
    model = build_head(task, lm, args.seed)
    candidates = task.readouts(readout_choice(args), lm.config)
    states = {name: task.frozen_pass(model, task.prepare(tokenizer, part, candidates, args.batch_tokens), candidates,
                                     "ram", name)
                for name, part in (("train", train), ("val", val), ("tuning", tuning))}
    grid = [(average == "on", float(decay)) for average in own.averages.split(",")
            for decay in own.weight_decays.split(",")]
    columns = [f"tuning {task.main_metric}" + (f" at {t}" if t else "") for t in thresholds or [""]]
    print("| readout | average | weight decay | best epoch | validation loss | " + " | ".join(columns) + " |")
    print("|---|---|---:|---:|---:|" + "---:|" * len(columns))
    for readout in candidates:
        for average, decay in grid:
            torch.manual_seed(args.seed)
            model.reset_head()
            settings = TrainSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                                     schedule=args.schedule, weight_decay=decay, average=average)
            history = train_head(model, task, states["train"].only(readout), settings,
                                 val_states=states["val"].only(readout), patience=args.patience, quiet=True)
            best = history[-1]["best_epoch"]
            scores = [tuning_score(task, model, states, readout, val, tuning, t) for t in thresholds or [None]]
            print(f"| {dataclasses.asdict(readout)} | {'on' if average else 'off'} | {decay:g} | {best} | "
                  f"{history[best - 1]['val_loss']:.4f} | " + " | ".join(scores) + " |", flush=True)


def tuning_score(task: Task, model, states: dict, readout, val: list, tuning: list, threshold: str | None) -> str:
    """The trained head's score on the tuning set; SQuAD 2.0 at a no-answer `threshold` (auto: chosen on
    validation, as train.py --no-answer-threshold auto does, and shown in brackets)."""
    if threshold is not None:
        task = dataclasses.replace(task, no_answer_threshold=threshold if threshold == "auto" else float(threshold))
    if threshold == "auto":
        task = task.with_decision(task.decision_rule(
            lambda: evaluate(task, model, states["val"].only(readout), val, val)[0]))
    metrics, _ = evaluate(task, model, states["tuning"].only(readout), tuning, tuning)
    chosen = f" ({float(task.no_answer_threshold):.3f})" if threshold == "auto" else ""
    return f"{lookup(metrics, task.main_metric):.4f}{chosen}"


if __name__ == "__main__":
    main()

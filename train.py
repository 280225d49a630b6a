"""Train a task head on a frozen Llama and report zero-shot vs fine-tuned scores.

    python train.py --task sst2 --model smollm2-135m --data sample     # offline demo
    python train.py --task squad                                       # the original protocol, Llama-3.2-1B

The base runs once over the data; its outputs are cached, so every epoch after that
only runs the few-thousand-weight head. Read `main` top to bottom; --help lists every setting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from errors import UserError, exit_on_user_error
from heads import parameter_counts
from tasks import TASKS
from training import atomic
from training.hub import push_head
from training.loop import TrainSettings, train_head
from training.outputs import HEAD_FILE, render_report, save_head
from training.steps import (apply_task_defaults, build_head, cache_features, common_parser, load_base_and_data,
                            task_defaults)

RUN_FLAGS = ("resume", "overwrite", "push_to_hub")  # may differ between a run and its resumption


def parse_args(argv: list[str] | None):
    p = common_parser(__doc__.split("\n\n")[0])
    p.add_argument("--lr", type=float, help=f"AdamW learning rate {task_defaults('lr')}")
    p.add_argument("--batch-size", type=int, help=f"head training batch {task_defaults('batch_size')}")
    p.add_argument("--epochs", type=int, help=f"epochs {task_defaults('epochs')}")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    p.add_argument("--schedule", choices=["linear", "constant"], default="linear",
                   help="learning rate after warm-up: linear decay to 0, or constant")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm")
    p.add_argument("--examples", type=int, default=8, help="example predictions shown in report.md")
    p.add_argument("--overwrite", action="store_true", help="replace the output of an earlier run")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    args = apply_task_defaults(p.parse_args(argv))
    if args.lr <= 0 or args.batch_size <= 0 or args.epochs <= 0:
        raise UserError("--lr, --batch-size and --epochs must be positive")
    args.output = Path(args.output or f"runs/{args.task}")
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    task = TASKS[args.task]
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in RUN_FLAGS}
    check_output_dir(args.output, config, resume=args.resume, overwrite=args.overwrite)

    # 1. The frozen base, its tokenizer and the data (each fails in one line; nothing is written yet).
    lm, tokenizer, train, test = load_base_and_data(args)
    # 2. The task's trainable head on the frozen base, seeded.
    model = build_head(task, lm, args.seed)
    # 3. Run the base once over both splits and cache what the head needs.
    train_features, train_seconds = cache_features(task, model, tokenizer, train, args, "train features")
    test_features, test_seconds = cache_features(task, model, tokenizer, test, args, "test features")
    timings = {"train_features_seconds": train_seconds, "test_features_seconds": test_seconds}
    # 4. Zero-shot baselines: the untrained head, and the language model prompted.
    metrics = {}
    if args.zero_shot in ("all", "head"):
        metrics["zero_shot_head"], _ = task.evaluate(model, test_features, test, args)
        print(f"zero-shot (untrained head): {task.headline(metrics['zero_shot_head'])}")
    if args.zero_shot in ("all", "prompt"):
        metrics["zero_shot_prompt"], _ = task.zero_shot_prompt(lm, tokenizer, test, args)
        print(f"zero-shot (prompt):         {task.headline(metrics['zero_shot_prompt'])}")
    # 5. Train only the head, on the cached features; a checkpoint after every epoch.
    start_output_dir(args.output, config, overwrite=args.overwrite and not args.resume)
    settings = TrainSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                             weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                             schedule=args.schedule, max_grad_norm=args.max_grad_norm)
    try:
        history = train_head(model, task, train_features, settings, checkpoint=args.output / "checkpoint.pt",
                             resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {args.output}; "
              "rerun the same command with --resume", file=sys.stderr)
        sys.exit(130)
    # 6. Evaluate the trained head and write everything.
    metrics["fine_tuned"], predictions = task.evaluate(model, test_features, test, args)
    print(f"fine-tuned:                 {task.headline(metrics['fine_tuned'])}")
    save_head(args.output / HEAD_FILE, model.head_state_dict(), base_model=args.model, config=lm.config,
              task=task.name, label_names=task.label_names, revision=args.revision)
    params = parameter_counts(model)
    atomic.write_json(args.output / "metrics.json", {**metrics, "timings": timings, "parameters": params})
    atomic.write_jsonl(args.output / "predictions.jsonl", predictions)
    shown = ("lr", "batch_size", "epochs", "seed", "split", "limit", "data")
    atomic.write_text(args.output / "report.md", render_report(
        task=task, model=args.model, metrics=metrics, params=params, history=history,
        examples=predictions[:args.examples], settings={k: config[k] for k in shown}))
    print(f"wrote {args.output}/: {HEAD_FILE}, metrics.json, predictions.jsonl, report.md")
    if args.push_to_hub:
        url = push_head(args.output, args.push_to_hub, base_model=args.model, task=task.name)
        print(f"pushed to {url}")


def check_output_dir(output: Path, config: dict, *, resume: bool, overwrite: bool) -> None:
    """Refuse, before any work, to mix two runs in one directory (reads only)."""
    if resume:
        if not (output / "checkpoint.pt").is_file():
            raise UserError(f"nothing to resume in {output}: no checkpoint.pt")
        earlier = json.loads((output / "train_config.json").read_text())
        changed = sorted(k for k in set(config) | set(earlier) if config.get(k) != earlier.get(k))
        if changed:
            raise UserError(f"--resume with other settings than the run in {output}: {', '.join(changed)}")
    elif output.exists() and {p.name for p in output.iterdir()} - {"train_config.json"} and not overwrite:
        # (a directory holding only train_config.json is a run stopped before its first epoch)
        raise UserError(f"{output} holds another run; pass --overwrite to replace it, "
                        "--resume to continue it, or another --output")


def start_output_dir(output: Path, config: dict, *, overwrite: bool) -> None:
    """Record this run's settings once its inputs have proved good; --overwrite drops the old checkpoint."""
    if overwrite:
        (output / "checkpoint.pt").unlink(missing_ok=True)
    atomic.write_json(output / "train_config.json", config)


if __name__ == "__main__":
    main()

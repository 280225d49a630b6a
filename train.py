"""Train a task head on a frozen Llama and report zero-shot vs fine-tuned scores.

    python train.py --task sst2 --model smollm2-135m --data sample     # offline demo
    python train.py --task squad                                       # the original protocol, Llama-3.2-1B

The base runs once over the data; its outputs are cached, so every epoch after that
only runs the few-thousand-weight head. See --help for every setting.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from errors import UserError, exit_on_user_error
from tasks.sst2 import LABEL_NAMES
from training import atomic
from training.hub import push_head
from training.loop import TrainSettings, train_head
from training.outputs import HEAD_FILE, render_report, save_head
from training.session import (common_parser, evaluate_head, evaluate_prompt, extract_features,
                              fill_task_defaults, headline, open_session)

TASK_DEFAULTS = {"sst2": {"lr": 2e-5, "batch_size": 16, "epochs": 3},
                 "squad": {"lr": 5e-5, "batch_size": 32, "epochs": 2}}
RUN_FLAGS = ("resume", "overwrite", "push_to_hub")  # may differ between a run and its resumption


def parse_args(argv: list[str] | None):
    p = common_parser(__doc__.split("\n\n")[0])
    p.add_argument("--lr", type=float, help="AdamW learning rate (default: sst2 2e-5, squad 5e-5)")
    p.add_argument("--batch-size", type=int, help="head training batch (default: sst2 16, squad 32)")
    p.add_argument("--epochs", type=int, help="epochs (default: sst2 3, squad 2)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    p.add_argument("--schedule", choices=["linear", "constant"], default="linear",
                   help="learning rate after warm-up: linear decay to 0, or constant")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm")
    p.add_argument("--examples", type=int, default=8, help="example predictions shown in report.md")
    p.add_argument("--overwrite", action="store_true", help="replace the output of an earlier run")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    args = fill_task_defaults(p.parse_args(argv))
    for key, value in TASK_DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.lr <= 0 or args.batch_size <= 0 or args.epochs <= 0:
        raise UserError("--lr, --batch-size and --epochs must be positive")
    args.output = Path(args.output or f"runs/{args.task}")
    return args


def prepare_output(args) -> dict:
    """Refuse to mix two runs in one directory; record this run's settings first."""
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in RUN_FLAGS}
    config_path = args.output / "train_config.json"
    if args.resume:
        if not (args.output / "checkpoint.pt").is_file():
            raise UserError(f"nothing to resume in {args.output}: no checkpoint.pt")
        earlier = json.loads(config_path.read_text())
        changed = sorted(k for k in set(config) | set(earlier) if config.get(k) != earlier.get(k))
        if changed:
            raise UserError(f"--resume with other settings than the run in {args.output}: {', '.join(changed)}")
    elif args.output.exists() and {p.name for p in args.output.iterdir()} - {"train_config.json"}:
        # (a directory holding only train_config.json is a run stopped before its first epoch)
        if not args.overwrite:
            raise UserError(f"{args.output} holds another run; pass --overwrite to replace it, "
                            "--resume to continue it, or another --output")
        (args.output / "checkpoint.pt").unlink(missing_ok=True)
    atomic.write_json(config_path, config)
    return config


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = prepare_output(args)
    session = open_session(args)
    train_features = extract_features(session, session.train, "train features")
    test_features = extract_features(session, session.test, "test features")
    metrics = {}
    if args.zero_shot in ("all", "head"):
        metrics["zero_shot_head"], _ = evaluate_head(session, test_features)
        print(f"zero-shot (untrained head): {headline(args.task, metrics['zero_shot_head'])}")
    if args.zero_shot in ("all", "prompt"):
        metrics["zero_shot_prompt"], _ = evaluate_prompt(session)
        print(f"zero-shot (prompt):         {headline(args.task, metrics['zero_shot_prompt'])}")
    settings = TrainSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                             weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                             schedule=args.schedule, max_grad_norm=args.max_grad_norm)
    try:
        history = train_head(session.head_model, len(train_features),
                             lambda batch: session.task.batch_loss(session.head_model, train_features, batch),
                             settings, checkpoint=args.output / "checkpoint.pt", resume=args.resume)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the last finished epoch is saved in {args.output}; "
              "rerun the same command with --resume", file=sys.stderr)
        sys.exit(130)
    metrics["fine_tuned"], predictions = evaluate_head(session, test_features)
    print(f"fine-tuned:                 {headline(args.task, metrics['fine_tuned'])}")
    write_outputs(session, config, metrics, predictions, history)
    if args.push_to_hub:
        url = push_head(args.output, args.push_to_hub, base_model=args.model, task=args.task)
        print(f"pushed to {url}")


def write_outputs(session, config: dict, metrics: dict, predictions: list[dict], history: list[dict]) -> None:
    args = session.args
    labels = LABEL_NAMES if args.task == "sst2" else ["start", "end"]
    save_head(args.output / HEAD_FILE, session.head_model.head_state_dict(), base_model=args.model,
              config=session.lm.config, task=args.task, label_names=labels, revision=args.revision)
    atomic.write_json(args.output / "metrics.json", {**metrics, "timings": session.timings,
                                                      "parameters": session.params})
    atomic.write_jsonl(args.output / "predictions.jsonl", predictions)
    shown = ("lr", "batch_size", "epochs", "seed", "split", "limit", "data")
    report = render_report(task=args.task, model=args.model, metrics=metrics, params=session.params,
                           history=history, examples=predictions[:args.examples],
                           settings={k: config[k] for k in shown})
    atomic.write_text(args.output / "report.md", report)
    print(f"wrote {args.output}/: {HEAD_FILE}, metrics.json, predictions.jsonl, report.md")


if __name__ == "__main__":
    main()

"""Train a task head on a frozen Llama and report zero-shot vs fine-tuned scores.

    python train.py --task sst2 --model smollm2-135m --data sample     # offline demo
    python train.py --task squad                                       # Llama-3.2-1B, SQuAD v1.1
    torchrun --nproc-per-node 8 train.py --task squad                  # data parallel, one process per GPU

The base runs once over the data; its outputs are cached, so every epoch after that
only runs the few-thousand-weight head. Read `main` top to bottom; --help lists every setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

import llama
from data.splits import take
from errors import UserError, exit_on_user_error
from flags import PER_TASK, chosen_task, common_parser, configured_task, data_settings, flag_values, readout_choice, \
    train_settings
from heads import parameter_counts
from heads.cache import size_text
from tasks import RECIPES, Task
from training import atomic, distributed, plots, run_dir
from training.devices import free_space, resolve_device
from training.hub import push_head
from training.loading import build_head, load_base, load_data, open_states
from training.loop import train_head
from training.outputs import HEAD_FILE, SELECTION_SCORES, render_report, save_head
from training.plan import free_after_loading, plan_cache
from training.scoring import evaluate, score_on_main
from training.select import choose_readout

# may differ between a run and its resumption
RUN_FLAGS = ("resume", "overwrite", "push_to_hub", "dry_run", "cache_dir", "cache_limit")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    task, recipe = chosen_task(argv, "converged")

    per_task = "" if task else " " + PER_TASK

    def default(field: str):
        return task.recipes[recipe].get(field) if task else None

    p = common_parser(__doc__.split("\n\n")[0], task, recipe)
    training, output = p.groups["training"], p.groups["output"]
    training.add_argument("--recipe", choices=RECIPES, default="converged",
                          help="converged: train until the validation loss stops improving and keep the best "
                               "epoch; report: the original report's hyperparameters, no validation slice; --task T "
                               "--recipe R --help shows R's defaults for T")
    training.add_argument("--lr", type=float, default=default("lr"), help="AdamW learning rate" + per_task)
    training.add_argument("--batch-size", type=int, default=default("batch_size"),
                          help="head training batch" + per_task)
    training.add_argument("--epochs", type=int, default=default("epochs"),
                          help="epochs (the cap, with a validation slice)" + per_task)
    training.add_argument("--val-fraction", type=float, default=default("val_fraction"),
                          help="seeded share of the training examples held out to choose the epoch and readout "
                               "(0: none)" + per_task)
    training.add_argument("--patience", type=int, default=default("patience"),
                          help="stop after this many epochs without a better validation loss" + per_task)
    training.add_argument("--select-limit", type=int, default=default("select_limit"),
                          help="training examples (a seeded subset) the candidate readouts are trained on when one "
                               "is chosen; the rest then run through the chosen readout only" + per_task)
    training.add_argument("--average", action=argparse.BooleanOptionalAction, default=default("average"),
                          help="validate and keep the running mean of every step's head (Polyak averaging)"
                               + per_task)
    training.add_argument("--weight-decay", type=float, default=default("weight_decay"),
                          help="AdamW weight decay" + per_task)
    training.add_argument("--warmup-ratio", type=float, default=0.0, help="fraction of steps of linear warm-up")
    training.add_argument("--schedule", choices=["linear", "constant"], default=default("schedule"),
                          help="learning rate after warm-up: linear decay to 0, or constant" + per_task)
    training.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping norm")
    output.add_argument("--examples", type=int, default=8, help="example predictions shown in report.md")
    output.add_argument("--dry-run", action="store_true", help="print the plan (sizes, FLOPs, cache place) and exit")
    output.add_argument("--overwrite", action="store_true", help="replace the output of an earlier run")
    output.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    args = p.parse_args(argv)
    if args.lr <= 0 or args.batch_size <= 0 or args.epochs <= 0:
        raise UserError("--lr, --batch-size and --epochs must be positive")
    if not 0 <= args.val_fraction < 1 or args.patience is not None and args.patience < 1:
        raise UserError("--val-fraction must be in [0, 1) and --patience at least 1")
    if args.val_fraction == 0:
        args.patience = None  # nothing to be patient about without a validation slice
    args.output = Path(args.output or f"runs/{args.task}")
    return args


@exit_on_user_error
@run_dir.holding
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    task = configured_task(args)
    distributed.setup("gloo" if args.device == "cpu" else None)  # a no-op without torchrun
    config = flag_values(args, leave_out=RUN_FLAGS)
    # The output directory, before any work: locked for the whole run, checked, test-written (rank 0).
    run_dir.claim(args.output, config, resume=args.resume, overwrite=args.overwrite,
                  write=distributed.is_main() and not args.dry_run)
    timings, lap = {}, stopwatch()

    # 1. The data, the frozen base and its tokenizer (each fails in one line; nothing is written yet). A seeded
    #    validation slice of the training examples chooses the epoch and the readout; the test split never does.
    #    --dry-run loads no weights: it sizes the job from the config alone.
    train, val, test = load_data(task, data_settings(args))
    mine = {name: distributed.shard(part) for name, part in (("train", train), ("val", val), ("test", test))}
    device, dtype = resolve_device(args.device, args.dtype)
    lm = None if args.dry_run else load_base(args.model, args.revision, device, dtype)
    store = None if args.dry_run else open_states(args.cache_dir, args.cache_limit, args.model, args.revision,
                                                   device, dtype)
    tokenizer = llama.load_tokenizer(args.model, revision=args.revision)
    base_config = lm.config if lm else llama.load_config(args.model, revision=args.revision)
    free = free_space(device) if lm else free_after_loading(free_space(device), base_config, dtype, device)
    timings["load_seconds"] = lap()
    # 2. The readouts the flags allow, the token sequences, and the plan: sizes, FLOPs, where the states go.
    candidates = task.readouts(readout_choice(args), base_config)
    if len(candidates) > 1 and not val:
        raise UserError("several candidate blocks (--block auto, or a list) are chosen among on the validation "
                        "slice: give --val-fraction above 0, or one --block")
    context = base_config.max_position_embeddings  # a longer text is cut to it
    # With a choice of readout, the candidates are trained on a seeded subset of up to --select-limit training
    # examples; the rest of the training part (if any) then runs only through the chosen readout (step 5).
    in_subset = [True] * len(mine["train"])  # per training example of this rank
    if len(candidates) > 1:
        subset = set(take(range(len(train)), args.select_limit, args.seed))
        in_subset = distributed.shard([i in subset for i in range(len(train))])
    parts = {"train": [e for e, s in zip(mine["train"], in_subset) if s],
             "rest": [e for e, s in zip(mine["train"], in_subset) if not s], "val": mine["val"], "test": mine["test"]}
    prepared = {name: task.prepare(tokenizer, part, candidates, args.batch_tokens, context)
                for name, part in parts.items() if part or name != "rest"}
    training_part = [prepared[name] for name in ("train", "rest", "val") if name in prepared]  # what step 7 reads
    selection_cache = None  # with a choice of readout: what step 4 caches
    if len(candidates) > 1:
        tables = len({r.block for r in candidates}) if task.per_token else len(candidates)  # per block / readout
        selection_cache = (prepared["train"].cached_lengths + prepared["val"].cached_lengths, tables)
    plan = plan_cache([n for part in training_part for n in part.lengths], prepared["test"].lengths, base_config,
                      free, mode=args.cache, per_token=task.per_token,
                      examples=(len(mine["train"]) + len(mine["val"]), len(mine["test"])),
                      cached_lengths=([n for part in training_part for n in part.cached_lengths],
                                      prepared["test"].cached_lengths),
                      depth=max(r.block for r in candidates), selection=selection_cache)
    distributed.say(f"{len(train):,} training, {len(val):,} validation and {len(test):,} test examples"
                    + (f" ({distributed.world_size()} ranks; the plan is rank 0's share)"
                       if distributed.world_size() > 1 else ""))
    distributed.say(plan.render())
    if args.dry_run:
        return
    distributed.say(states_line(store, plan.place))
    # 3. The task's trainable head on the frozen base (seeded).
    model = build_head(task, lm, args.seed)
    settings = train_settings(args)
    # 4. When the flags leave a choice of readout (block, echo, pooling), make it on the validation slice:
    #    one frozen pass over up to --select-limit training examples caches every candidate's state.
    #    Only the chosen readout's states are kept: the head trains on them in step 7.
    readout, selection, states = candidates[0], [], {}
    if len(candidates) > 1:
        candidate_states = {"train": task.frozen_pass(model, prepared["train"], candidates, plan.place,
                                                      "selection states", store),
                            "val": task.frozen_pass(model, prepared["val"], candidates, plan.place, "val states",
                                                    store)}
        timings["selection_frozen_pass_seconds"] = lap()
        readout, selection = choose_readout(task, model, candidate_states["train"], candidate_states["val"],
                                            mine["val"], val, settings, args.patience)
        distributed.say(f"chosen readout: {dataclasses.asdict(readout)}")
        torch.manual_seed(args.seed)
        model.reset_head()  # the init every candidate started from
        states = {name: s.only(readout) for name, s in candidate_states.items()}
        del candidate_states  # the other candidates' tables: freed before step 5 caches the rest
        timings["readout_selection_seconds"] = lap()
    # 5. Run the base once over every split and cache the chosen readout's states (the training examples
    #    the candidates were not trained on, if any, join those of the subset they were).
    for name in ("train", "val", "test"):
        if name not in states and (name != "val" or val):
            states[name] = task.frozen_pass(model, prepared[name], [readout], plan.place, f"{name} states", store)
    if "rest" in prepared:
        rest = task.frozen_pass(model, prepared["rest"], [readout], plan.place, "train states", store)
        states["train"] = task.merge(states["train"], rest, in_subset)
    timings["frozen_pass_seconds"] = lap()
    test_part = states["test"]
    # 6. Zero-shot baselines: the untrained head, and the language model prompted.
    metrics = {}
    if args.zero_shot in ("all", "head"):
        metrics["zero_shot_head"], _ = evaluate(task, model, test_part, mine["test"], test)
        show(task, "zero-shot (untrained head)", metrics["zero_shot_head"])
    if args.zero_shot in ("all", "prompt"):
        prompted = task.prompt_predict(lm, tokenizer, mine["test"], args.batch_tokens)
        metrics["zero_shot_prompt"], _ = score_on_main(task, prompted, test)
        show(task, "zero-shot (prompt)", metrics["zero_shot_prompt"])
    timings["zero_shot_seconds"] = lap()
    # 7. Train only the head on the cached states; a checkpoint after every epoch.
    train_part, val_part = states["train"], states.get("val")
    if distributed.world_size() > 1:
        train_part = distributed.Shard.of(train_part)
        val_part = distributed.Shard.of(val_part) if val else None
    if distributed.is_main():
        run_dir.start(args.output, config, overwrite=args.overwrite and not args.resume)
    try:
        history = train_head(model, task, train_part, settings, checkpoint=args.output / "checkpoint.pt",
                             resume=args.resume, val_states=val_part, patience=args.patience,
                             settings_sha256=run_dir.settings_hash(config))
    except KeyboardInterrupt as stop:
        print(f"\n{'stopped by SIGTERM' if isinstance(stop, run_dir.Terminated) else 'interrupted'}: the last "
              f"finished epoch is saved in {args.output}; rerun the same command with --resume", file=sys.stderr)
        sys.exit(143 if isinstance(stop, run_dir.Terminated) else 130)
    timings["training_seconds"] = lap()
    # 8. What the prediction rule leaves open (SQuAD 2.0: when to answer ""), chosen on the validation slice.
    decision = {}
    if val:  # only a task with something to choose scores the slice; ranks other than 0 get {} and never score
        decision = task.decision_rule(lambda: evaluate(task, model, states["val"], mine["val"], val)[0])
        task = task.with_decision(decision)
        if decision:
            distributed.say(f"chosen on the validation slice: {decision}")
    # 9. Evaluate the trained head on the test split and write everything (rank 0).
    metrics["fine_tuned"], predictions = evaluate(task, model, test_part, mine["test"], test)
    show(task, "fine-tuned", metrics["fine_tuned"])
    timings["evaluation_seconds"] = lap()
    if distributed.is_main():
        write_outputs(args, task, model, lm.config, config, metrics, predictions, history,
                      dataclasses.asdict(readout), selection, decision, timings)
    distributed.teardown()


def stopwatch():
    """A function returning the seconds since its previous call (the first call: since the stopwatch began)."""
    last = time.perf_counter()

    def lap() -> float:
        nonlocal last
        now = time.perf_counter()
        seconds, last = round(now - last, 2), now
        return seconds

    return lap


def show(task: Task, label: str, metrics: dict | None) -> None:
    """One line of the scores that matter most (rank 0 holds the metrics)."""
    if metrics is not None:
        print(f"{label + ':':<28}{task.headline(metrics)}")


def write_outputs(args: argparse.Namespace, task: Task, model, base_config, config: dict, metrics: dict,
                  predictions: list[dict], history: list[dict], readout: dict, selection: list[dict],
                  decision: dict, timings: dict) -> None:
    """The head, metrics, predictions, pictures and report.md, each written atomically; optionally pushed."""
    out = args.output
    save_head(out / HEAD_FILE, model.head_state_dict(), base_model=args.model, config=base_config,
              task=task.name, label_names=task.label_names, revision=args.revision, readout=readout,
              decision=decision, use=task.use_settings(), base_dtype=model.model.embed_tokens.weight.dtype)
    params = parameter_counts(model)
    atomic.write_json(out / "metrics.json", {**metrics, "readout": readout, "selection": selection,
                                             "decision": decision,
                                             "history": [{k: v for k, v in h.items() if k != "step_losses"}
                                                         for h in history],
                                             "timings": timings, "parameters": params})
    atomic.write_jsonl(out / "predictions.jsonl", predictions)
    pictures = [("Training and validation loss", "curves.png")]
    plots.loss_curves(history, out / "curves.png", averaged=args.average)
    if "confusion_matrix" in metrics["fine_tuned"]:
        plots.confusion(metrics["fine_tuned"]["confusion_matrix"], task.label_names, out / "confusion.png")
        pictures.append(("Confusion matrix", "confusion.png"))
    if selection:
        plots.block_scores(selection_curves(selection), task.main_metric, out / "blocks.png")
        pictures.append(("Validation score per block", "blocks.png"))
    shown = ("recipe", "lr", "batch_size", "epochs", "schedule", "weight_decay", "average", "val_fraction",
             "patience", "seed", "split", "limit", "data", "dtype")
    atomic.write_text(out / "report.md", render_report(
        task=task, model=args.model, metrics=metrics, params=params, history=history,
        examples=predictions[:args.examples], settings={**{k: config[k] for k in shown}, **decision}, readout=readout,
        selection=selection, pictures=pictures))
    print(f"wrote {out}/: {HEAD_FILE}, metrics.json, predictions.jsonl, report.md, "
          + ", ".join(name for _, name in pictures))
    if args.push_to_hub:
        print(f"pushed to {push_head(out, args.push_to_hub)}")


def selection_curves(selection: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Validation scores by block, one line per combination of the other readout fields."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in selection:
        name = ", ".join(f"{k}={v}" for k, v in row.items() if k != "block" and k not in SELECTION_SCORES) or "head"
        curves.setdefault(name, []).append((row["block"], row["val_metric"]))
    return curves


def states_line(store, place: str) -> str:
    """The plan's line on the persistent states store: where it is, what it holds, what a pass will reuse."""
    if place == "stream":
        return "plan: states are streamed, so none are stored"
    if store is None:
        return "plan: states store off (--cache-dir none): every pass computes its states"
    return (f"plan: states store {store.root} ({store.usage()} of --cache-limit {size_text(store.limit)}): "
            "each pass below reuses the states it holds for this base and data, and computes the rest")


if __name__ == "__main__":
    main()

"""Evaluate a trained head, or the zero-shot baselines, on a task's test split.

    python eval.py --task sst2 --head runs/sst2          # the saved head, on the split it was trained with
    python eval.py --task sst2 --model smollm2-135m --data sample   # zero-shot baselines only

With --head, the data, split, seed, model and window settings default to those the
head was trained with (its train_config.json), so the scores reproduce its metrics.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import llama
from errors import UserError, exit_on_user_error
from flags import chosen_task, common_parser, configured_task, data_settings, readout_choice
from heads.head_file import head_kind, locate_head, read_head_task, readout_from_fields
from training import atomic
from training.devices import free_space, resolve_device
from training.hub import push_head
from training.outputs import load_head
from training.plan import plan_cache
from training.loading import build_head, load_base, load_data, open_states
from training.scoring import evaluate, score_on_main

INHERITED = ("model", "revision", "data", "split", "squad_version", "seed", "limit", "eval_limit",
             "max_length", "doc_stride", "dtype", "no_answer_threshold", "train_file", "test_file", "text_column",
             "text_pair_column", "label_column", "prompt")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    task, recipe = chosen_task(argv, "report")  # the readout of a baseline without --head: the report's
    p = common_parser(__doc__.split("\n\n")[0], task, recipe,
                      output_help="directory for metrics.json and predictions.jsonl (default: none, print only)")
    p.groups["model"].add_argument("--head", help="output directory of a train.py run (holds head.safetensors), "
                                                  "or the Hub repo a run was pushed to")
    known, _ = p.parse_known_args(argv)
    if known.head is not None:
        known.head = locate_head(known.head)
        config_path = known.head / "train_config.json"
        if not config_path.is_file():
            raise UserError(f"{config_path} not found: --head needs the output directory of a train.py run")
        head_task = read_head_task(known.head)
        if head_task is not None and head_task != task.name:
            raise UserError(f"{known.head} holds a {head_task!r} head, not {task.name!r}: pass --task {head_task}")
        p.set_defaults(zero_shot="none", **inherited_settings(p, config_path))
    args = p.parse_args(argv)
    args.head = known.head
    if args.push_to_hub and args.head is None:
        raise UserError("--push-to-hub needs --head (the trained head to upload)")
    return args


def inherited_settings(p: argparse.ArgumentParser, config_path: Path) -> dict:
    """The run's settings eval.py inherits from its train_config.json, each checked as its flag would be."""
    try:
        trained = json.loads(config_path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{config_path} is unreadable ({getattr(err, 'strerror', None) or 'not JSON: truncated?'}); "
                        "restore it, or pass the settings as flags without --head") from None
    if not isinstance(trained, dict):
        raise UserError(f"{config_path} holds no settings (a JSON object was expected); restore it")
    settings = {}
    for action in p._actions:
        value = trained.get(action.dest)
        if action.dest not in INHERITED or value is None:
            continue
        try:
            value = action.type(str(value)) if action.type else value
            if action.choices is not None and value not in action.choices:
                raise ValueError
        except (ValueError, argparse.ArgumentTypeError):
            raise UserError(f"{config_path}: {action.dest} {trained[action.dest]!r} is not a valid "
                            f"{action.option_strings[0]}; fix the file or give the flag") from None
        settings[action.dest] = value
    return settings


@exit_on_user_error
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    task = configured_task(args)
    _, _, test = load_data(task, data_settings(args))
    device, dtype = resolve_device(args.device, args.dtype)
    lm = load_base(args.model, args.revision, device, dtype)
    tokenizer = llama.load_tokenizer(args.model, revision=args.revision)
    store = open_states(args.cache_dir, args.cache_limit, args.model, args.revision, device, dtype)
    readout = None
    if args.head is not None:  # check before the slow part: a mismatched head fails fast
        tensors, metadata = load_head(args.head, config=lm.config, task=task.name)
        if metadata["base_model"] != args.model:
            print(f"warning: the head was trained on {metadata['base_model']}, evaluated on {args.model} "
                  "(same architecture)", file=sys.stderr)
        if json.loads(metadata["label_names"]) != list(task.label_names):
            raise UserError(f"{args.head} was trained for the labels {json.loads(metadata['label_names'])}, this data "
                            f"has {list(task.label_names)}: pass the training file the head was trained with")
        if "readout" in metadata:  # the block, echo and pooling the head was trained on
            readout = readout_from_fields(head_kind(tensors), json.loads(metadata["readout"]), Path(args.head))
    if readout is None:
        candidates = task.readouts(readout_choice(args), lm.config)
        if len(candidates) > 1:
            raise UserError("eval.py reads one readout: give --block as a number or last (not auto), and no auto pool")
        readout = candidates[0]
    model = build_head(task, lm, args.seed)
    metrics, predictions = {}, []
    if args.head is not None or args.zero_shot in ("all", "head"):
        prepared = task.prepare(tokenizer, test, [readout], args.batch_tokens, lm.config.max_position_embeddings)
        plan = plan_cache([], prepared.lengths, lm.config, free_space(lm.lm_head.weight.device),
                          cached_lengths=([], prepared.cached_lengths), mode=args.cache, per_token=task.per_token)
        print(plan.render())
        states = task.frozen_pass(model, prepared, [readout], plan.place, "test states", store)
        if args.zero_shot in ("all", "head"):
            metrics["zero_shot_head"], predictions = evaluate(task, model, states, test, test)
            print(f"zero-shot (untrained head): {task.headline(metrics['zero_shot_head'])}")
        if args.head is not None:
            model.load_head_state_dict(tensors, readout=readout)
            task = task.with_decision(json.loads(metadata.get("decision", "{}")))  # e.g. the no-answer threshold
            metrics["fine_tuned"], predictions = evaluate(task, model, states, test, test)
            print(f"head from {args.head} (base {metadata['base_model']}): {task.headline(metrics['fine_tuned'])}")
    if args.zero_shot in ("all", "prompt"):
        metrics["zero_shot_prompt"], prompt_predictions = score_on_main(
            task, task.prompt_predict(lm, tokenizer, test, args.batch_tokens), test)
        predictions = predictions or prompt_predictions
        print(f"zero-shot (prompt):         {task.headline(metrics['zero_shot_prompt'])}")
    if args.output:
        atomic.write_json(Path(args.output) / "metrics.json", metrics)
        atomic.write_jsonl(Path(args.output) / "predictions.jsonl", predictions)
        print(f"wrote {args.output}/: metrics.json, predictions.jsonl")
    if args.push_to_hub:
        print(f"pushed to {push_head(args.head, args.push_to_hub)}")
    return metrics


if __name__ == "__main__":
    main()

"""Print the per-module parameter table of a Llama, optionally with a task head.

The model is built on the `meta` device from its config alone, so counting the
1B or 3B model allocates nothing and downloads nothing for the built-in presets.

    python count_params.py                       # Llama-3.2-1B, base model
    python count_params.py --task sst2           # + the 4,096-weight `score` head
    python count_params.py --task classification --num-labels 48   # + a 48 x 2048 `score` head
    python count_params.py --model meta-llama/Llama-3.2-3B --by-layer --json
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import OrderedDict

import torch
from torch import nn

import llama
from errors import ArgumentParser, UserError, exit_on_user_error
from heads import parameter_counts
from tasks import TASKS

LAYER_INDEX = re.compile(r"\.layers\.(\d+)\.")


def build(model_name: str, task: str | None, num_labels: int | None = None) -> nn.Module:
    """The base LM (or the task model, with `num_labels` outputs for a classifier) on `meta`: shapes only."""
    config = llama.load_config(model_name)
    labels = TASKS[task].label_names if task else ()
    if num_labels is not None:
        labels = tuple(str(k) for k in range(num_labels))
    elif task and not labels:
        raise UserError(f"--task {task} takes its labels from your training file: give --num-labels N")
    with torch.device("meta"):
        if task:
            return dataclasses.replace(TASKS[task], label_names=labels).new_head(config)
        return llama.LlamaForCausalLM(config).requires_grad_(False)


def module_rows(model: nn.Module, by_layer: bool) -> list[dict]:
    """One row per parameter, or per parameter name across layers with `by_layer`."""
    rows: OrderedDict[str, dict] = OrderedDict()
    for name, param in model.named_parameters():
        key = LAYER_INDEX.sub(".layers.*.", name) if by_layer else name
        row = rows.setdefault(key, {"name": key, "shape": list(param.shape), "count": 0, "layers": 0,
                                    "trainable": param.requires_grad})
        row["count"] += param.numel()
        row["layers"] += 1
    for row in rows.values():
        if by_layer and row["layers"] > 1:
            row["name"] = row["name"].replace(".*.", f".[0-{row['layers'] - 1}].")
        if not by_layer:
            del row["layers"]
    return list(rows.values())


def summary(model_name: str, task: str | None, by_layer: bool, num_labels: int | None = None) -> dict:
    model = build(model_name, task, num_labels)
    tied = model.config.tie_word_embeddings and not task
    return {"model": model_name, "task": task, **parameter_counts(model), "tied_embeddings": bool(tied),
            "modules": module_rows(model, by_layer)}


def print_table(facts: dict) -> None:
    rows = facts["modules"]
    width = max(len(r["name"]) for r in rows)
    print(f"{'module':<{width}}  {'shape':>14}  {'count':>13}")
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        suffix = f"  (x{r['layers']} layers)" if r.get("layers", 1) > 1 else ""
        print(f"{r['name']:<{width}}  {shape:>14}  {r['count']:>13,}{suffix}")
    if facts["tied_embeddings"]:
        print(f"{'lm_head.weight':<{width}}  {'(tied to model.embed_tokens.weight)':>29}")
    print()
    print(f"model:     {facts['model']}" + (f" + {facts['task']} head" if facts["task"] else ""))
    print(f"total:     {facts['total']:,}")
    print(f"trainable: {facts['trainable']:,}")
    print(f"frozen:    {facts['frozen']:,}")


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="meta-llama/Llama-3.2-1B",
                        help="preset (meta-llama/Llama-3.2-1B, -3B, smollm2-135m), Hub id, directory or .gguf")
    parser.add_argument("--task", choices=list(TASKS), help="add that task's trainable head")
    parser.add_argument("--num-labels", type=int, help="classification: the number of labels (default: the task's)")
    parser.add_argument("--by-layer", action="store_true", help="group the repeated decoder layers")
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON")
    args = parser.parse_args(argv)
    if args.num_labels is not None and (args.num_labels < 2 or args.task is None or TASKS[args.task].per_token):
        raise UserError("--num-labels takes 2 or more, with a classification task (--task classification or sst2)")
    facts = summary(args.model, args.task, args.by_layer, args.num_labels)
    if args.json:
        print(json.dumps(facts, indent=2))
    else:
        print_table(facts)


if __name__ == "__main__":
    main()

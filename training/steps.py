"""The steps train.py and eval.py share: the flags, the device, loading base and data, caching features.

Every task-dependent choice and default comes from the task's record (`tasks.TASKS`).
"""

from __future__ import annotations

import argparse
import time

import torch

import llama
from data.sources import load_task_data
from errors import ArgumentParser, UserError
from tasks import TASKS, Task

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ZERO_SHOT = ("all", "head", "prompt", "none")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default in --help only when it has one (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def task_defaults(flag: str) -> str:
    """'(default: sst2 X, squad Y)' for a flag whose default depends on the task."""
    return "(default: " + ", ".join(f"{t.name} {t.defaults[flag]}" for t in TASKS.values()
                                     if flag in t.defaults) + ")"


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
    p.add_argument("--zero-shot", choices=ZERO_SHOT, default="all",
                   help="baselines: the untrained head (head), the LM prompted (prompt), both, or none")
    p.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                   help="dtype of the frozen base; auto: bfloat16 on CUDA (float16 if unsupported), float32 on CPU")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--batch-tokens", type=int, default=4096,
                   help="tokens (padding included) per forward pass of the frozen base")
    p.add_argument("--feature-budget-gb", type=float, default=2.0,
                   help="SQuAD: keep cached token features in memory up to this size, else on disk")
    p.add_argument("--output", help="output directory (default runs/<task>)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the head, config, metrics and card")
    return p


def apply_task_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill every flag left unset with the task's default; refuse another task's own flags."""
    task = TASKS[args.task]
    for other in TASKS.values():
        for flag in set(other.own_flags) - set(task.own_flags):
            if getattr(args, flag, None) is not None:
                raise UserError(f"--{flag.replace('_', '-')} is a {other.name} setting, not one of {task.name}")
    for flag, value in task.defaults.items():
        if getattr(args, flag, None) is None:
            setattr(args, flag, value)
    return args


def resolve_device(device_flag: str, dtype_flag: str) -> tuple[torch.device, torch.dtype]:
    device = torch.device("cuda" if device_flag == "auto" and torch.cuda.is_available() else
                          "cpu" if device_flag == "auto" else device_flag)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but no CUDA GPU is available; use --device cpu")
    if dtype_flag != "auto":
        return device, DTYPES[dtype_flag]
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


def load_base_and_data(args: argparse.Namespace) -> tuple[llama.LlamaForCausalLM, llama.Tokenizer, list, list]:
    """The frozen base, its tokenizer, and the (train, test) examples; each fails with one clear line."""
    device, dtype = resolve_device(args.device, args.dtype)
    train, test = load_task_data(args.task, args.data, args.split, seed=args.seed, limit=args.limit,
                                 eval_limit=args.eval_limit, squad_version=args.squad_version or "1.1")
    lm = llama.load_pretrained(args.model, dtype=dtype, device=device, revision=args.revision)
    tokenizer = llama.load_tokenizer(args.model, revision=args.revision)
    print(f"{args.model}: {len(train):,} training and {len(test):,} test examples, "
          f"device {device}, base dtype {str(dtype).removeprefix('torch.')}")
    return lm, tokenizer, train, test


def build_head(task: Task, lm: llama.LlamaForCausalLM, seed: int):
    """The task's head on the frozen base, with its seeded Hugging Face init."""
    torch.manual_seed(seed)
    model = task.head_class(lm.config, backbone=lm.model)
    model.reset_head()
    return model


def cache_features(task: Task, model, tokenizer: llama.Tokenizer, examples: list, args: argparse.Namespace,
                   desc: str) -> tuple[object, float]:
    """The frozen base's outputs for `examples`, computed once, and the seconds it took."""
    started = time.perf_counter()
    features = task.extract(model, tokenizer, examples, args, desc)
    seconds = round(time.perf_counter() - started, 2)
    print(f"{desc}: {len(features):,} sequences cached in {seconds:.1f}s, padding {features.padding_fraction:.1%}")
    return features, seconds

"""What train.py and eval.py share: flags, loading the base and data, caching features, evaluating."""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

import llama
from data.sources import load_task_data
from errors import ArgumentParser, UserError
from heads import QuestionAnswerer, SequenceClassifier
from tasks import squad as squad_task
from tasks import sst2 as sst2_task


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
ZERO_SHOT = ("all", "head", "prompt", "none")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Show a flag's default in --help only when it has one (not None / False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def common_parser(description: str) -> ArgumentParser:
    p = ArgumentParser(description=description, formatter_class=DefaultsHelp)
    p.add_argument("--task", required=True, choices=["sst2", "squad"], help="which task head")
    p.add_argument("--model", default="meta-llama/Llama-3.2-1B",
                   help="Hub id, checkpoint directory, .gguf file, or smollm2-135m (bundled, offline)")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit) of --model")
    p.add_argument("--data", help="a path, a canonical name to download (sst2, squad, squad_v2), or 'sample' "
                                  "(bundled offline samples); default: the task's canonical name")
    p.add_argument("--split", choices=["holdout", "dev"], default="holdout",
                   help="holdout: 80:20 split of the training file with --seed (the original protocol); "
                        "dev: train on the training file, test on the official dev file")
    p.add_argument("--squad-version", choices=["1.1", "2.0"], default="1.1", help="SQuAD version")
    p.add_argument("--seed", type=int, default=1, help="split, shuffling and head initialisation seed")
    p.add_argument("--limit", type=int, help="use only N training examples (seeded, class-balanced for SST-2)")
    p.add_argument("--eval-limit", type=int, help="use only N test examples (seeded, class-balanced for SST-2)")
    p.add_argument("--max-length", type=int, help="tokens per sequence (SQuAD window; default 384 for SQuAD, "
                                                  "no limit for SST-2)")
    p.add_argument("--doc-stride", type=int, default=128, help="SQuAD: overlap between windows of a context")
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


def fill_task_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Defaults that depend on --task: the canonical data set and the SQuAD window length."""
    if args.max_length is not None and args.task == "sst2":
        raise UserError("--max-length is for SQuAD windows; SST-2 sentences are never truncated")
    if args.max_length is None and args.task == "squad":
        args.max_length = 384
    if args.data is None:
        args.data = {"sst2": "sst2", "squad": "squad" if args.squad_version == "1.1" else "squad_v2"}[args.task]
    return args


def resolve_device(args: argparse.Namespace) -> tuple[torch.device, torch.dtype]:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda, but no CUDA GPU is available; use --device cpu")
    if args.dtype != "auto":
        return device, DTYPES[args.dtype]
    if device.type == "cuda":
        return device, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return device, torch.float32


@dataclasses.dataclass
class Session:
    """A loaded base, its tokenizer, the task's data and the head model wrapping the base."""

    args: argparse.Namespace
    lm: llama.LlamaForCausalLM
    tokenizer: llama.Tokenizer
    train: list
    test: list
    head_model: SequenceClassifier | QuestionAnswerer
    timings: dict

    @property
    def params(self) -> dict:
        total = sum(p.numel() for p in self.head_model.parameters())
        trainable = sum(p.numel() for p in self.head_model.head.parameters())
        return {"total": total, "trainable": trainable, "frozen": total - trainable}

    @property
    def task(self):
        """The task's module: extract, batch_loss, evaluate, zero_shot_prompt."""
        return {"sst2": sst2_task, "squad": squad_task}[self.args.task]


def open_session(args: argparse.Namespace) -> Session:
    """Load base, tokenizer and data, and build the head with its seeded random init."""
    device, dtype = resolve_device(args)
    started = time.perf_counter()
    lm = llama.load_pretrained(args.model, dtype=dtype, device=device, revision=args.revision)
    tokenizer = llama.load_tokenizer(args.model, revision=args.revision)
    train, test = load_task_data(args.task, args.data, args.split, seed=args.seed, limit=args.limit,
                                 eval_limit=args.eval_limit, squad_version=args.squad_version)
    timings = {"load_seconds": round(time.perf_counter() - started, 2)}
    torch.manual_seed(args.seed)
    if args.task == "sst2":
        head_model = SequenceClassifier(lm.config, 2, backbone=lm.model)
    else:
        head_model = QuestionAnswerer(lm.config, backbone=lm.model)
    for name, param in head_model.head.named_parameters():  # HF's init: N(0, 0.02), zero bias
        torch.nn.init.normal_(param, std=0.02) if name == "weight" else torch.nn.init.zeros_(param)
    print(f"{args.model}: {len(train):,} training and {len(test):,} test examples, "
          f"device {device}, base dtype {str(dtype).removeprefix('torch.')}")
    return Session(args, lm, tokenizer, train, test, head_model, timings)


def extract_features(session: Session, examples: list, desc: str):
    """The frozen base's cached outputs for `examples` (one pass, timed)."""
    args, started = session.args, time.perf_counter()
    if args.task == "sst2":
        features = sst2_task.extract(session.head_model, session.tokenizer, examples, args.batch_tokens, desc)
    else:
        features = squad_task.extract(session.head_model, session.tokenizer, examples, max_length=args.max_length,
                                      doc_stride=args.doc_stride, batch_tokens=args.batch_tokens,
                                      budget_bytes=int(args.feature_budget_gb * 2**30), desc=desc)
    session.timings[f"{desc}_seconds"] = round(time.perf_counter() - started, 2)
    print(f"{desc}: {len(features):,} sequences cached in {session.timings[f'{desc}_seconds']:.1f}s, "
          f"padding {features.padding_fraction:.1%}")
    return features


def evaluate_head(session: Session, features) -> tuple[dict, list[dict]]:
    extra = () if session.args.task == "sst2" else (session.args.squad_version,)
    return session.task.evaluate(session.head_model, features, session.test, *extra)


def evaluate_prompt(session: Session) -> tuple[dict, list[dict]]:
    """The LM's own zero-shot answer (label-word log-probs for SST-2, greedy generation for SQuAD)."""
    started = time.perf_counter()
    if session.args.task == "sst2":
        result = sst2_task.zero_shot_prompt(session.lm, session.tokenizer, session.test, session.args.batch_tokens)
    else:
        result = squad_task.zero_shot_prompt(session.lm, session.tokenizer, session.test, session.args.squad_version)
    session.timings["zero_shot_prompt_seconds"] = round(time.perf_counter() - started, 2)
    return result


def headline(task: str, metrics: dict) -> str:
    """One line of the scores that matter most for a task."""
    if task == "sst2":
        return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}"
    s = metrics["squad"]
    return f"exact {s['exact']:.2f}  f1 {s['f1']:.2f}  (0-100)"

"""Text classification, any labels: pooled frozen states (last token or mean, plain or echoed), the `score` head, a prompt baseline.

`classification` reads the user's own files (`data.labelled`: CSV / TSV / JSONL, a text, an
optional second text, a label); its label set is the training file's, so `score` is
Linear(C, N) and `args.label_names[k]` names output row k. `sst2` is the same task with
SST-2's files, its label names (0 negative, 1 positive) and a sentiment prompt.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.labelled import Columns, label_names_of, read_labelled_file, to_examples
from data.progress import Progress
from data.sst2 import SentenceExample, encode_sentences
from errors import UserError
from heads import ClassifierReadout, SequenceClassifier
from llama import LlamaConfig, LlamaForCausalLM, LlamaModel, Tokenizer
from llama.label_scoring import label_log_likelihoods
from metrics import classification

from .task import FILE_FLAGS, Task, candidate_blocks

SST2_LABELS = ("negative", "positive")
SST2_PROMPT = "Review: {text}\nSentiment (positive or negative):"
# The prompt baseline's default: the label set in the prompt, each label's words scored after it.
PROMPT = "Text: {text}\nLabel ({labels}):"
PAIR_PROMPT = "Text: {text}\nSecond text: {text_pair}\nLabel ({labels}):"
# --pool auto with --echo unset: the sentence's last token (the report's protocol), the mean over its
# tokens, and the mean over the second copy of the sentence fed twice (echo, pool); --echo / --no-echo
# and --pool keep those that match them.
AUTO_POOLINGS = ((False, "last"), (False, "mean"), (True, "mean"))


@dataclasses.dataclass
class Sentences:
    """Token sequences of one pass (plain, or echoed) and where each one's mean pooling starts."""

    sequences: list[list[int]]
    starts: list[int]


@dataclasses.dataclass
class Prepared:
    passes: dict[bool, Sentences]  # echo -> the sequences of that pass
    labels: list[int]
    pad_id: int
    batch_tokens: int

    @property
    def lengths(self) -> list[int]:
        """Tokens per sequence in the frozen passes."""
        return [len(s) for p in self.passes.values() for s in p.sequences]

    @property
    def cached_lengths(self) -> list[int]:
        """One cached vector per sentence (the plan counts sequences, not tokens, for SST-2)."""
        return [1] * len(self.labels)


@dataclasses.dataclass
class PooledStates:
    """Pooled frozen states, (N, R, C) float32 for R readouts, and labels (N,)."""

    vectors: torch.Tensor
    labels: torch.Tensor
    readouts: list[ClassifierReadout]
    padding_fraction: float

    def __len__(self) -> int:
        return len(self.labels)

    def only(self, readout: ClassifierReadout) -> "PooledStates":
        r = self.readouts.index(readout)
        return PooledStates(self.vectors[:, r:r + 1], self.labels, [readout], self.padding_fraction)


def readouts(args: argparse.Namespace, config: LlamaConfig) -> list[ClassifierReadout]:
    poolings = [(echo, pool) for echo, pool in AUTO_POOLINGS
                if args.echo in (None, echo) and args.pool in ("auto", pool)] or [(args.echo, args.pool)]
    return [ClassifierReadout(k, echo, pool) for k in candidate_blocks(str(args.block), config.num_hidden_layers)
            for echo, pool in poolings]


def readout_from(fields: dict) -> ClassifierReadout:
    return ClassifierReadout(int(fields["block"]), bool(fields["echo"]), str(fields["pool"]))


def prepare(tokenizer: Tokenizer, examples: list[SentenceExample], args: argparse.Namespace,
            candidates: list[ClassifierReadout], config: LlamaConfig) -> Prepared:
    """The plain sentences (a pair as one: `text "\\n" text_pair`), and the echoed ones if a readout needs
    them; a sequence longer than the model's context is cut to it, with a count on stderr."""
    texts = [e.text for e in examples]
    pairs = [e.text_pair or "" for e in examples] if any(e.text_pair is not None for e in examples) else None
    passes = {}
    for echo in sorted({r.echo for r in candidates}):
        sequences, starts, cut = encode_sentences(tokenizer, texts, echo=echo, pairs=pairs,
                                                  max_tokens=config.max_position_embeddings)
        if cut:
            print(f"note: {cut:,} of {len(texts):,} texts cut to the model's context of "
                  f"{config.max_position_embeddings:,} tokens{' (echoed: half each copy)' if echo else ''}",
                  file=sys.stderr)
        passes[echo] = Sentences(sequences, starts)
    return Prepared(passes, [e.label for e in examples], tokenizer.pad_id, args.batch_tokens)


def frozen_pass(classifier: SequenceClassifier, prepared: Prepared, candidates: list[ClassifierReadout], place: str,
                desc: str) -> PooledStates:
    """Run the base once per pass over every sentence and keep only the pooled vectors of each readout."""
    if place in ("disk", "stream"):
        raise UserError(f"--cache {place}: SST-2 caches one vector per sentence and readout, which always "
                        "fits in memory; use --cache auto or memory")
    device = classifier.model.embed_tokens.weight.device
    vectors = torch.empty(len(prepared.labels), len(candidates), classifier.config.hidden_size,
                          device=device if place == "accelerator" else "cpu")
    all_batches, all_lengths = [], []  # every pass's batches, for the padding fraction
    for echo, sentences in prepared.passes.items():
        wanted = [(i, r) for i, r in enumerate(candidates) if r.echo == echo]
        if not wanted:  # `prepared` may hold a pass only other readouts needed
            continue
        blocks = sorted({r.block for _, r in wanted})
        pools = sorted({r.pool for _, r in wanted})
        lengths = [len(s) for s in sentences.sequences]
        batches = token_budget_batches(lengths, prepared.batch_tokens)
        for batch, input_ids, attention_mask in padded_batches(sentences.sequences, batches, prepared.pad_id,
                                                               device, desc):
            start = torch.tensor([sentences.starts[i] for i in batch], device=device) if "mean" in pools else None
            states = classifier.pooled_states(input_ids, attention_mask, blocks, pools, start)  # (B, P, L, C)
            for i, r in wanted:
                vectors[batch, i] = states[:, pools.index(r.pool), blocks.index(r.block)].float().to(vectors.device)
        all_batches += [[i + len(all_lengths) for i in b] for b in batches]
        all_lengths += lengths
    return PooledStates(vectors, torch.tensor(prepared.labels, device=vectors.device), candidates,
                          padding_fraction(all_batches, all_lengths))


def batch_loss(classifier: SequenceClassifier, states: PooledStates, indices: list[int]) -> torch.Tensor:
    device = classifier.score.weight.device  # the vectors may wait in RAM while the head trains on a GPU
    return F.cross_entropy(classifier.logits(states.vectors[indices, 0].to(device)),
                           states.labels[indices].to(device))


def predict(classifier: SequenceClassifier, states: PooledStates, examples: list[SentenceExample],
            args: argparse.Namespace) -> list[list[float]]:
    """Class probabilities per sentence, from the head on cached states."""
    with torch.no_grad():
        vectors = states.vectors[:, 0].to(classifier.score.weight.device)
        return classifier.logits(vectors).softmax(-1).cpu().tolist()


def prompt_predict(lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[SentenceExample],
                   args: argparse.Namespace) -> list[list[float]]:
    """Ask the LM itself: each label's likelihood after a prompt, normalised over the labels.

    The label's words are `" " + name`, scored in full (all their tokens); the prompt runs once
    per example and every label is scored from its KV cache (`llama.label_scoring`). Prompts
    go in length-sorted batches of about --batch-tokens / N prompt tokens, since the cache is
    repeated once per label. `--prompt` may use {text}, {text_pair} and {labels}.
    """
    names = args.label_names
    paired = any(e.text_pair is not None for e in examples)
    template = args.prompt or (PAIR_PROMPT if paired else PROMPT)
    try:
        prompts = [template.format(text=e.text, text_pair=e.text_pair or "", labels=", ".join(names))
                   for e in examples]
    except (KeyError, IndexError, ValueError) as err:
        raise UserError(f"--prompt {template!r}: {type(err).__name__} {err}; it may use {{text}}, {{text_pair}} "
                        "and {labels} (write a literal brace as {{ or }})") from None
    sequences = tokenizer.encode_batch(prompts)
    room = lm.config.max_position_embeddings - max(len(w) for w in tokenizer.encode_batch(
        [f" {n}" for n in names], add_bos=False))
    sequences = [s[-room:] if len(s) > room else s for s in sequences]  # keep the end: the question to answer
    label_ids = tokenizer.encode_batch([f" {n}" for n in names], add_bos=False)
    batches = token_budget_batches([len(s) for s in sequences], max(1, args.batch_tokens // len(names)))
    log_likelihoods = torch.empty(len(examples), len(names))
    with Progress(len(examples), "zero-shot prompt", "text") as progress:
        for batch in batches:
            log_likelihoods[batch] = label_log_likelihoods(lm, [sequences[i] for i in batch], label_ids,
                                                           pad_id=tokenizer.pad_id).cpu()
            progress.update(len(batch))
    return log_likelihoods.softmax(-1).tolist()


def score(examples: list[SentenceExample], probs: list[list[float]],
          args: argparse.Namespace) -> tuple[dict, list[dict]]:
    """Accuracy, macro and weighted P/R/F1, per-class rows and the confusion matrix (binary: also the second
    label's P/R/F1, sklearn's pos_label=1), and one row per text with the predicted label's probability."""
    names = args.label_names
    predictions = [max(range(len(p)), key=p.__getitem__) for p in probs]
    labels = [e.label for e in examples]
    rows = [{"text": e.text, **({"text_pair": e.text_pair} if e.text_pair is not None else {}),
             "label": names[e.label], "prediction": names[y], "score": round(p[y], 6)}
            for e, y, p in zip(examples, predictions, probs)]
    metrics = classification.report(predictions, labels, list(range(len(names))),
                                    positive_label=1 if len(names) == 2 else None)
    metrics["per_class"] = [{"label": names[row["class"]], **row} for row in metrics["per_class"]]
    return metrics, rows


def decision_rule(args: argparse.Namespace, validation_metrics: Callable[[], dict | None]) -> dict:
    """Nothing to choose (the predicted class is the likelier one), so the validation slice is not scored."""
    return {}


def headline(metrics: dict) -> str:
    if "f1" in metrics:  # binary
        return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  macro-f1 {metrics['macro_f1']:.4f}"
    return f"accuracy {metrics['accuracy']:.4f}  macro-f1 {metrics['macro_f1']:.4f}"


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    binary = "f1" in metrics.get("fine_tuned", {})
    return ([("Accuracy", "accuracy")]
            + ([("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")] if binary else [])
            + [("Macro precision", "macro_precision"), ("Macro recall", "macro_recall"), ("Macro F1", "macro_f1"),
               ("Weighted F1", "weighted_f1")])


def read_files(paths: list[Path | None], args: argparse.Namespace) -> tuple[list[list | None], tuple[str, ...]]:
    """The user's (train, validation, test) files, None where not given, and the training file's label set."""
    columns = Columns(text=args.text_column, label=args.label_column, text_pair=args.text_pair_column)
    rows = [read_labelled_file(path, columns) if path else None for path in paths]
    names = label_names_of(rows[0], paths[0])
    return [to_examples(r, names, path) if r is not None else None for r, path in zip(rows, paths)], names


def new_head(config: LlamaConfig, backbone: LlamaModel | None, label_names: tuple[str, ...]) -> SequenceClassifier:
    """`score` = Linear(C, N), one output row per label."""
    return SequenceClassifier(config, num_labels=len(label_names), backbone=backbone)


RECIPES = {"converged": {"lr": 1e-3, "batch_size": 32, "epochs": 100, "schedule": "constant",
                         "weight_decay": 0.0, "average": True,
                         "val_fraction": 0.1, "patience": 10, "block": "auto", "pool": "auto", "echo": None},
           "report": {"lr": 2e-5, "batch_size": 16, "epochs": 3, "schedule": "linear",
                      "weight_decay": 0.0, "average": False,
                      "val_fraction": 0.0, "block": "last", "pool": "last", "echo": False}}

CLASSIFICATION = Task(
    name="classification", head_class=SequenceClassifier, label_names=(),  # the training file's
    defaults={"text_column": "text", "label_column": "label"}, recipes=RECIPES,
    own_flags=("pool", "prompt", "text_column", "text_pair_column", "label_column", *FILE_FLAGS), per_token=False,
    main_metric="accuracy", new_head=new_head, read_files=read_files,
    readouts=readouts, readout_from=readout_from, prepare=prepare, frozen_pass=frozen_pass, batch_loss=batch_loss,
    predict=predict, prompt_predict=prompt_predict, score=score, decision_rule=decision_rule,
    headline=headline, metric_rows=metric_rows,
)
SST2 = dataclasses.replace(CLASSIFICATION, name="sst2", label_names=SST2_LABELS,
                           defaults={"data": "sst2", "prompt": SST2_PROMPT}, own_flags=("pool", "prompt"))

"""SST-2 sentiment: pooled frozen states (last token or mean, plain or echoed), the `score` head, a prompt baseline."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.sst2 import SentenceExample, encode_sentences
from errors import UserError
from heads import ClassifierReadout, SequenceClassifier, pool_last_token
from heads.store import StateStore, chunked_pass, digest
from llama import LlamaConfig, LlamaForCausalLM, Tokenizer
from metrics import classification

from .task import Task, candidate_blocks

LABEL_NAMES = ("negative", "positive")
PROMPT = "Review: {text}\nSentiment (positive or negative):"
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
            candidates: list[ClassifierReadout]) -> Prepared:
    """The plain sentences, and the echoed ones, as the readouts need them."""
    texts = [e.text for e in examples]
    passes = {echo: Sentences(*encode_sentences(tokenizer, texts, echo=echo))
              for echo in sorted({r.echo for r in candidates})}
    return Prepared(passes, [e.label for e in examples], tokenizer.pad_id, args.batch_tokens)


def frozen_pass(classifier: SequenceClassifier, prepared: Prepared, candidates: list[ClassifierReadout], place: str,
                desc: str, store: StateStore | None = None) -> PooledStates:
    """Run the base once per pass over every sentence and keep only the pooled vectors of each readout.

    With a `store`, each readout's (N, C) vectors are kept there and only sentences it lacks are computed.
    """
    if place in ("disk", "stream"):
        raise UserError(f"--cache {place}: SST-2 caches one vector per sentence and readout, which always "
                        "fits in memory; use --cache auto or memory")
    device = classifier.model.embed_tokens.weight.device
    n, dim = len(prepared.labels), classifier.config.hidden_size
    columns: dict[int, np.ndarray] = {}  # readout -> (N, C) float32, a store entry or in memory
    all_batches, all_lengths = [], []  # every pass's batches, for the padding fraction
    for echo, sentences in prepared.passes.items():
        wanted = [(i, r) for i, r in enumerate(candidates) if r.echo == echo]
        if not wanted:  # `prepared` may hold a pass only other readouts needed
            continue
        blocks = sorted({r.block for _, r in wanted})
        pools = sorted({r.pool for _, r in wanted})
        inputs = digest(sentences.sequences, sentences.starts)
        entries = {i: store.entry({"states": "pooled", "block": r.block, "pool": r.pool}, n, n, dim, np.float32,
                                  inputs) if store else None for i, r in wanted}
        columns.update({i: e.states if e else np.zeros((n, dim), np.float32) for i, e in entries.items()})
        lengths = [len(s) for s in sentences.sequences]
        batches = token_budget_batches(lengths, prepared.batch_tokens)
        for batch, input_ids, attention_mask in chunked_pass(sentences.sequences, batches, prepared.pad_id,
                                                             device, desc, list(entries.values())):
            start = torch.tensor([sentences.starts[i] for i in batch], device=device) if "mean" in pools else None
            states = classifier.pooled_states(input_ids, attention_mask, blocks, pools, start)  # (B, P, L, C)
            for i, r in wanted:
                columns[i][batch] = states[:, pools.index(r.pool), blocks.index(r.block)].float().cpu().numpy()
        all_batches += [[i + len(all_lengths) for i in b] for b in batches]
        all_lengths += lengths
    vectors = torch.from_numpy(np.stack([columns[i] for i in range(len(candidates))], axis=1))  # (N, R, C)
    vectors = vectors.to(device if place == "accelerator" else "cpu")
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
    """Ask the LM itself: the softmax over the next-token logits of " negative" and " positive" after a prompt."""
    label_ids = []
    for name in LABEL_NAMES:
        ids = tokenizer.encode(f" {name}", add_bos=False)
        if len(ids) != 1:
            raise UserError(f"label word ' {name}' is {len(ids)} tokens for this tokenizer; "
                            "the prompt baseline needs single-token label words (use --zero-shot head)")
        label_ids.append(ids[0])
    sequences = tokenizer.encode_batch([PROMPT.format(text=e.text) for e in examples])
    batches = token_budget_batches([len(s) for s in sequences], args.batch_tokens)
    label_rows = lm.lm_head.weight[label_ids]  # (2, C): only two vocabulary logits are needed
    logits = torch.empty(len(examples), len(label_ids))
    for batch, input_ids, attention_mask in padded_batches(sequences, batches, tokenizer.pad_id, label_rows.device,
                                                           "zero-shot prompt"):
        logits[batch] = next_token_logits(lm, input_ids, attention_mask, label_rows).float().cpu()
    return logits.softmax(-1).tolist()


@torch.inference_mode()
def next_token_logits(lm: LlamaForCausalLM, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      rows: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, len(rows)): the logits of a few vocabulary rows after each sequence's last token."""
    return pool_last_token(lm.model(input_ids, attention_mask), attention_mask) @ rows.T


def score(examples: list[SentenceExample], probs: list[list[float]],
          args: argparse.Namespace) -> tuple[dict, list[dict]]:
    """Accuracy/precision/recall/F1 and the confusion matrix, and one row per sentence."""
    predictions = [max(range(len(p)), key=p.__getitem__) for p in probs]
    labels = [e.label for e in examples]
    rows = [{"text": e.text, "label": LABEL_NAMES[e.label], "prediction": LABEL_NAMES[y],
             "prob_positive": round(p[1], 6)} for e, y, p in zip(examples, predictions, probs)]
    return classification.scores(predictions, labels, positive_label=1), rows


def decision_rule(args: argparse.Namespace, validation_metrics: Callable[[], dict | None]) -> dict:
    """Nothing to choose (the predicted class is the likelier one), so the validation slice is not scored."""
    return {}


def headline(metrics: dict) -> str:
    return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}"


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    return [("Accuracy", "accuracy"), ("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")]


SST2 = Task(
    name="sst2", head_class=SequenceClassifier, label_names=LABEL_NAMES,
    defaults={"data": "sst2"},
    recipes={"converged": {"lr": 1e-3, "batch_size": 32, "epochs": 100, "schedule": "constant",
                           "weight_decay": 0.0, "average": True,
                           "val_fraction": 0.1, "patience": 10, "block": "auto", "pool": "auto", "echo": None},
             "report": {"lr": 2e-5, "batch_size": 16, "epochs": 3, "schedule": "linear",
                        "weight_decay": 0.0, "average": False,
                        "val_fraction": 0.0, "block": "last", "pool": "last", "echo": False}},
    own_flags=("pool",), per_token=False, main_metric="accuracy",
    readouts=readouts, readout_from=readout_from, prepare=prepare, frozen_pass=frozen_pass, batch_loss=batch_loss,
    predict=predict, prompt_predict=prompt_predict, score=score, decision_rule=decision_rule,
    headline=headline, metric_rows=metric_rows,
)

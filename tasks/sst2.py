"""SST-2 sentiment: pooled frozen features, the `score` head, and a prompt zero-shot baseline."""

from __future__ import annotations

import argparse
import dataclasses

import torch
import torch.nn.functional as F

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.sst2 import SentenceExample
from errors import UserError
from heads import SequenceClassifier, pool_last_token
from llama import LlamaForCausalLM, Tokenizer
from metrics import classification

from .task import Task

LABEL_NAMES = ("negative", "positive")
PROMPT = "Review: {text}\nSentiment (positive or negative):"


@dataclasses.dataclass
class PooledFeatures:
    """The frozen base's last-token hidden state per sentence, (N, C) float32, and labels (N,)."""

    pooled: torch.Tensor
    labels: torch.Tensor
    padding_fraction: float

    def __len__(self) -> int:
        return len(self.labels)


def extract(classifier: SequenceClassifier, tokenizer: Tokenizer, examples: list[SentenceExample],
            args: argparse.Namespace, desc: str) -> PooledFeatures:
    """Run the base once over every sentence and keep only the pooled vector."""
    sequences = tokenizer.encode_batch([e.text for e in examples])
    lengths = [len(s) for s in sequences]
    batches = token_budget_batches(lengths, args.batch_tokens)
    pooled = torch.empty(len(examples), classifier.config.hidden_size)
    device = classifier.model.embed_tokens.weight.device
    for batch, input_ids, attention_mask in padded_batches(sequences, batches, tokenizer.pad_id, device, desc):
        pooled[batch] = classifier.features(input_ids, attention_mask).float().cpu()
    return PooledFeatures(pooled, torch.tensor([e.label for e in examples]), padding_fraction(batches, lengths))


def batch_loss(classifier: SequenceClassifier, features: PooledFeatures, indices: list[int]) -> torch.Tensor:
    return F.cross_entropy(classifier.logits(features.pooled[indices]), features.labels[indices])


def evaluate(classifier: SequenceClassifier, features: PooledFeatures, examples: list[SentenceExample],
             args: argparse.Namespace) -> tuple[dict, list[dict]]:
    """Accuracy/precision/recall/F1 of the head on cached features, and per-sentence predictions."""
    with torch.no_grad():
        probs = classifier.logits(features.pooled).softmax(-1)
    return score(probs, examples)


def zero_shot_prompt(lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[SentenceExample],
                     args: argparse.Namespace) -> tuple[dict, list[dict]]:
    """Ask the LM itself: compare the next-token logits of " negative" and " positive" after a prompt."""
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
    return score(logits.softmax(-1), examples)


@torch.inference_mode()
def next_token_logits(lm: LlamaForCausalLM, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      rows: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, len(rows)): the logits of a few vocabulary rows after each sequence's last token."""
    return pool_last_token(lm.model(input_ids, attention_mask), attention_mask) @ rows.T


def score(probs: torch.Tensor, examples: list[SentenceExample]) -> tuple[dict, list[dict]]:
    predictions = probs.argmax(-1).tolist()
    labels = [e.label for e in examples]
    rows = [{"text": e.text, "label": LABEL_NAMES[e.label], "prediction": LABEL_NAMES[p],
             "prob_positive": round(float(q[1]), 6)} for e, p, q in zip(examples, predictions, probs)]
    return classification.scores(predictions, labels, positive_label=1), rows


def headline(metrics: dict) -> str:
    return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}"


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    return [("Accuracy", "accuracy"), ("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")]


SST2 = Task(
    name="sst2", head_class=SequenceClassifier, label_names=LABEL_NAMES,
    defaults={"data": "sst2", "lr": 2e-5, "batch_size": 16, "epochs": 3}, own_flags=(),
    extract=extract, batch_loss=batch_loss, evaluate=evaluate, zero_shot_prompt=zero_shot_prompt,
    headline=headline, metric_rows=metric_rows,
)

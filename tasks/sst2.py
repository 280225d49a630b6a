"""SST-2 sentiment: pooled frozen features, the `score` head, and a prompt zero-shot baseline."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from data.sst2 import SentenceExample
from errors import UserError
from heads import SequenceClassifier, pool_last_token
from llama import LlamaForCausalLM, Tokenizer
from metrics import classification
from training.features import run_frozen

LABEL_NAMES = ["negative", "positive"]
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
            batch_tokens: int, desc: str) -> PooledFeatures:
    """Run the base once over every sentence and keep only the pooled vector."""
    sequences = tokenizer.encode_batch([e.text for e in examples])
    pooled = torch.empty(len(examples), classifier.config.hidden_size)
    device = classifier.model.embed_tokens.weight.device

    def compute(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return pool_last_token(classifier.backbone_hidden(ids, mask), mask)

    def store(index: int, row: torch.Tensor) -> None:
        pooled[index] = row.float()

    padding = run_frozen(sequences, tokenizer.pad_id, batch_tokens, device, compute, store, desc)
    return PooledFeatures(pooled, torch.tensor([e.label for e in examples]), padding)


def batch_loss(classifier: SequenceClassifier, features: PooledFeatures, indices: list[int]) -> torch.Tensor:
    return F.cross_entropy(classifier.score(features.pooled[indices]), features.labels[indices])


def evaluate(classifier: SequenceClassifier, features: PooledFeatures,
             examples: list[SentenceExample]) -> tuple[dict, list[dict]]:
    """Accuracy/precision/recall/F1 of the head on cached features, and per-sentence predictions."""
    with torch.no_grad():
        probs = classifier.score(features.pooled).softmax(-1)
    return _score(probs, examples)


def zero_shot_prompt(lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[SentenceExample],
                     batch_tokens: int) -> tuple[dict, list[dict]]:
    """Ask the LM itself: compare the next-token logits of " negative" and " positive" after a prompt."""
    label_ids = []
    for name in LABEL_NAMES:
        ids = tokenizer.encode(f" {name}", add_bos=False)
        if len(ids) != 1:
            raise UserError(f"label word ' {name}' is {len(ids)} tokens for this tokenizer; "
                            "the prompt baseline needs single-token label words (use --zero-shot head)")
        label_ids.append(ids[0])
    sequences = tokenizer.encode_batch([PROMPT.format(text=e.text) for e in examples])
    label_rows = lm.lm_head.weight[label_ids]  # (2, C): only two vocabulary logits are needed
    logits = torch.empty(len(examples), len(label_ids))

    @torch.inference_mode()
    def compute(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return pool_last_token(lm.model(ids, mask), mask) @ label_rows.T

    def store(index: int, row: torch.Tensor) -> None:
        logits[index] = row.float()

    run_frozen(sequences, tokenizer.pad_id, batch_tokens, label_rows.device, compute, store, "zero-shot prompt")
    return _score(logits.softmax(-1), examples)


def _score(probs: torch.Tensor, examples: list[SentenceExample]) -> tuple[dict, list[dict]]:
    predictions = probs.argmax(-1).tolist()
    labels = [e.label for e in examples]
    rows = [{"text": e.text, "label": LABEL_NAMES[e.label], "prediction": LABEL_NAMES[p],
             "prob_positive": round(float(q[1]), 6)} for e, p, q in zip(examples, predictions, probs)]
    return classification.scores(predictions, labels, positive_label=1), rows

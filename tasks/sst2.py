"""Sentence classification (SST-2 sentiment): pooled frozen states, the `score` head, a prompt baseline.

`SentenceClassification` is the task; `SST2` is its instance for GLUE's SST-2: the label names,
the data format and the prompt are the instance's data, so another labelled-sentence data set
is another instance.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
import torch.nn.functional as F

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.formats import DataFormat
from data.sst2 import SST2_FORMAT, SentenceExample, encode_sentences
from errors import UserError
from heads import ClassifierReadout, SequenceClassifier, pool_last_token
from heads.cache import device_index
from llama import LlamaConfig, LlamaForCausalLM, Tokenizer
from metrics import classification

from .task import ReadoutChoice, Task, candidate_blocks



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
        # a copy, not a view: the other readouts' vectors can then be freed
        return PooledStates(self.vectors[:, r:r + 1].clone(), self.labels, [readout], self.padding_fraction)


@dataclasses.dataclass(frozen=True)
class SentenceClassification(Task):
    """One label per sentence, from a linear `score` on one pooled state of it."""

    data_format: DataFormat
    default_data: str
    prompt: str  # the zero-shot prompt, with {text}; the label names must follow it as single tokens

    head_class: ClassVar = SequenceClassifier
    auto_blocks: ClassVar = (1 / 2, 2 / 3)  # blocks 15 and 20 of SmolLM2's 30: the best two on SST-2 tuning data
    per_token: ClassVar = False
    main_metric: ClassVar = "accuracy"
    own_flags: ClassVar = ("pool",)
    recipes: ClassVar = {
        "converged": {"lr": 1e-3, "batch_size": 32, "epochs": 100, "schedule": "constant", "weight_decay": 0.0,
                      "average": True, "val_fraction": 0.1, "patience": 10, "block": "auto", "pool": "mean",
                      "echo": True},
        "report": {"lr": 2e-5, "batch_size": 16, "epochs": 3, "schedule": "linear", "weight_decay": 0.0,
                   "average": False, "val_fraction": 0.0, "block": "last", "pool": "last", "echo": False}}

    def readouts(self, choice: ReadoutChoice, config: LlamaConfig) -> list[ClassifierReadout]:
        blocks = candidate_blocks(choice.block, config.num_hidden_layers, self.auto_blocks)
        return [ClassifierReadout(k, choice.echo, choice.pool) for k in blocks]

    def readout_from(self, fields: dict) -> ClassifierReadout:
        return ClassifierReadout(int(fields["block"]), bool(fields["echo"]), str(fields["pool"]))

    def prepare(self, tokenizer: Tokenizer, examples: list[SentenceExample], candidates: list[ClassifierReadout],
                batch_tokens: int) -> Prepared:
        """The plain sentences, and the echoed ones, as the readouts need them."""
        texts = [e.text for e in examples]
        passes = {echo: Sentences(*encode_sentences(tokenizer, texts, echo=echo))
                  for echo in sorted({r.echo for r in candidates})}
        return Prepared(passes, [e.label for e in examples], tokenizer.pad_id, batch_tokens)

    def frozen_pass(self, classifier: SequenceClassifier, prepared: Prepared, candidates: list[ClassifierReadout],
                    place: str, desc: str) -> PooledStates:
        """Run the base once per pass over every sentence and keep only the pooled vectors of each readout."""
        if place in ("disk", "stream"):
            raise UserError(f"--cache {place}: a sentence task caches one vector per sentence and readout, which "
                            "always fits in memory; use --cache auto or memory")
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
            for batch, states in classifier.pooled_batches(sentences.sequences, sentences.starts, batches, blocks,
                                                           pools, prepared.pad_id, desc):  # (B, P, L, C)
                for i, r in wanted:
                    vectors[batch, i] = states[:, pools.index(r.pool), blocks.index(r.block)].float().to(vectors.device)
            all_batches += [[i + len(all_lengths) for i in b] for b in batches]
            all_lengths += lengths
        return PooledStates(vectors, torch.tensor(prepared.labels, device=vectors.device), candidates,
                            padding_fraction(all_batches, all_lengths))

    def batch(self, states: PooledStates, indices: list[int]) -> tuple[tuple[torch.Tensor], tuple[torch.Tensor]]:
        """((B, C) pooled states,), ((B,) labels,)"""
        index = device_index(indices, states.vectors.device)
        return (states.vectors[index, 0],), (states.labels[index],)

    def loss(self, classifier: SequenceClassifier, inputs: tuple[torch.Tensor],
             targets: tuple[torch.Tensor]) -> torch.Tensor:
        device = classifier.score.weight.device  # the vectors may wait in RAM while the head trains on a GPU
        (vectors,), (labels,) = inputs, targets
        return F.cross_entropy(classifier.logits(vectors.to(device, non_blocking=True)),
                               labels.to(device, non_blocking=True))

    def predict(self, classifier: SequenceClassifier, states: PooledStates,
                examples: list[SentenceExample]) -> list[list[float]]:
        """Class probabilities per sentence, from the head on cached states."""
        return classifier.probabilities(states.vectors[:, 0]).tolist()

    def prompt_predict(self, lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[SentenceExample],
                       batch_tokens: int) -> list[list[float]]:
        """Ask the LM itself: the softmax over the next-token logits of each " label" after the prompt."""
        label_ids = []
        for name in self.label_names:
            ids = tokenizer.encode(f" {name}", add_bos=False)
            if len(ids) != 1:
                raise UserError(f"label word ' {name}' is {len(ids)} tokens for this tokenizer; "
                                "the prompt baseline needs single-token label words (use --zero-shot head)")
            label_ids.append(ids[0])
        sequences = tokenizer.encode_batch([self.prompt.format(text=e.text) for e in examples])
        batches = token_budget_batches([len(s) for s in sequences], batch_tokens)
        label_rows = lm.lm_head.weight[label_ids]  # (labels, C): only these vocabulary logits are needed
        logits = torch.empty(len(examples), len(label_ids))
        for batch, input_ids, attention_mask in padded_batches(sequences, batches, tokenizer.pad_id,
                                                               label_rows.device, "zero-shot prompt"):
            logits[batch] = next_token_logits(lm, input_ids, attention_mask, label_rows).float().cpu()
        return logits.softmax(-1).tolist()

    def score(self, examples: list[SentenceExample], probs: list[list[float]]) -> tuple[dict, list[dict]]:
        """Accuracy/precision/recall/F1 and the confusion matrix, and one row per sentence."""
        predictions = [max(range(len(p)), key=p.__getitem__) for p in probs]
        labels = [e.label for e in examples]
        rows = [{"text": e.text, "label": self.label_names[e.label], "prediction": self.label_names[y],
                 "prob_positive": round(p[1], 6)} for e, y, p in zip(examples, predictions, probs)]
        return classification.scores(predictions, labels, positive_label=1), rows

    def headline(self, metrics: dict) -> str:
        return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}"

    def metric_rows(self, metrics: dict) -> list[tuple[str, str]]:
        return [("Accuracy", "accuracy"), ("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")]


@torch.inference_mode()
def next_token_logits(lm: LlamaForCausalLM, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      rows: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, len(rows)): the logits of a few vocabulary rows after each sequence's last token."""
    return pool_last_token(lm.model(input_ids, attention_mask), attention_mask) @ rows.T



SST2 = SentenceClassification(name="sst2", label_names=("negative", "positive"), data_format=SST2_FORMAT,
                              default_data="sst2", prompt="Review: {text}\nSentiment (positive or negative):")

"""Text classification, any labels: pooled frozen states, the `score` head, a prompt baseline.

`SentenceClassification` is the task; `SST2` is its instance for GLUE's SST-2: the label names,
the data format and the prompt are the instance's data. `CLASSIFICATION` (`OwnClassification`)
reads the user's own files (`data.labelled`: a text, an optional second text, a label) and takes
its label set from the training file, so `score` is Linear(C, N). A pair of texts is one
sequence, `text "\\n" text_pair` (`data.sst2.encode_sentences`), for every readout.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from data.batching import padding_fraction, token_budget_batches
from data.formats import DataFormat
from data.labelled import LABELLED_FORMAT, Columns, label_names_of, read_labelled_file, to_examples
from data.progress import Progress
from data.sst2 import SST2_FORMAT, SentenceExample, encode_sentences
from errors import UserError
from heads import ClassifierReadout, SequenceClassifier
from heads.cache import device_index
from heads.classification import pooled_entries
from heads.store import StateStore
from llama import LlamaConfig, LlamaForCausalLM, LlamaModel, Tokenizer
from llama.label_scoring import label_log_likelihoods
from metrics import classification

from .task import FILE_FLAGS, ReadoutChoice, Task, candidate_blocks

# The prompt baseline's default for the user's files: the label set in the prompt, each label's words after it.
PROMPT = "Text: {text}\nLabel ({labels}):"
PAIR_PROMPT = "Text: {text}\nSecond text: {text_pair}\nLabel ({labels}):"


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
    prompt: str | None  # the zero-shot prompt, with {text} ({text_pair}, {labels}); each label's words follow it

    head_class: ClassVar = SequenceClassifier
    auto_blocks: ClassVar = (1 / 2, 2 / 3)  # blocks 15 and 20 of SmolLM2's 30: the best two on SST-2 tuning data
    per_token: ClassVar = False
    main_metric: ClassVar = "accuracy"
    own_flags: ClassVar = ("pool", "prompt")
    recipes: ClassVar = {
        "converged": {"lr": 1e-3, "batch_size": 32, "epochs": 100, "schedule": "constant", "weight_decay": 0.0,
                      "average": True, "val_fraction": 0.1, "patience": 10, "select_limit": 500, "block": "auto",
                      "pool": "mean", "echo": True},
        "report": {"lr": 2e-5, "batch_size": 16, "epochs": 3, "schedule": "linear", "weight_decay": 0.0,
                   "average": False, "val_fraction": 0.0, "select_limit": 500, "block": "last", "pool": "last",
                   "echo": False}}

    def readouts(self, choice: ReadoutChoice, config: LlamaConfig) -> list[ClassifierReadout]:
        blocks = candidate_blocks(choice.block, config.num_hidden_layers, self.auto_blocks)
        return [ClassifierReadout(k, choice.echo, choice.pool) for k in blocks]

    def prepare(self, tokenizer: Tokenizer, examples: list[SentenceExample], candidates: list[ClassifierReadout],
                batch_tokens: int, context_tokens: int | None = None) -> Prepared:
        """The plain sentences (a pair as one), and the echoed ones, as the readouts need them; a sequence
        longer than `context_tokens` is cut to it, with a count on stderr."""
        texts = [e.text for e in examples]
        pairs = [e.text_pair or "" for e in examples] if any(e.text_pair is not None for e in examples) else None
        passes = {}
        for echo in sorted({r.echo for r in candidates}):
            sequences, starts, cut = encode_sentences(tokenizer, texts, echo=echo, pairs=pairs, max_tokens=context_tokens)
            if cut:
                print(f"note: {cut:,} of {len(texts):,} texts cut to the model's context of {context_tokens:,} "
                      f"tokens{' (echoed: half each copy)' if echo else ''}", file=sys.stderr)
            passes[echo] = Sentences(sequences, starts)
        return Prepared(passes, [e.label for e in examples], tokenizer.pad_id, batch_tokens)

    def frozen_pass(self, classifier: SequenceClassifier, prepared: Prepared, candidates: list[ClassifierReadout],
                    place: str, desc: str, store: StateStore | None = None) -> PooledStates:
        """Run the base once per pass over every sentence and keep only the pooled vectors of each readout.

        With a `store`, each readout's (N, C) vectors are kept there and only sentences it lacks are computed.
        """
        if place in ("disk", "stream"):
            raise UserError(f"--cache {place}: a sentence task caches one vector per sentence and readout, which "
                            "always fits in memory; use --cache auto or memory")
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
            entries = dict(zip([i for i, _ in wanted], pooled_entries(store, [r for _, r in wanted],
                                                                      sentences.sequences, sentences.starts, dim)))
            columns.update({i: e.states if e else np.zeros((n, dim), np.float32) for i, e in entries.items()})
            lengths = [len(s) for s in sentences.sequences]
            batches = token_budget_batches(lengths, prepared.batch_tokens)
            for batch, states in classifier.pooled_batches(sentences.sequences, sentences.starts, batches, blocks,
                                                           pools, prepared.pad_id, desc, list(entries.values())):
                for i, r in wanted:  # states: (B, P, L, C)
                    columns[i][batch] = states[:, pools.index(r.pool), blocks.index(r.block)].float().cpu().numpy()
            all_batches += [[i + len(all_lengths) for i in b] for b in batches]
            all_lengths += lengths
        vectors = torch.from_numpy(np.stack([columns[i] for i in range(len(candidates))], axis=1))  # (N, R, C)
        vectors = vectors.to(device if place == "accelerator" else "cpu")
        return PooledStates(vectors, torch.tensor(prepared.labels, device=vectors.device), candidates,
                            padding_fraction(all_batches, all_lengths))

    def merge(self, first: PooledStates, second: PooledStates, in_first: list[bool]) -> PooledStates:
        """Two parts' pooled states as one, in the examples' order (`Task.merge`)."""
        where = torch.tensor(in_first, device=first.vectors.device)
        vectors = first.vectors.new_empty(len(in_first), *first.vectors.shape[1:])
        labels = first.labels.new_empty(len(in_first))
        vectors[where], vectors[~where] = first.vectors, second.vectors
        labels[where], labels[~where] = first.labels, second.labels
        padding = (first.padding_fraction * len(first) + second.padding_fraction * len(second)) / len(in_first)
        return PooledStates(vectors, labels, first.readouts, padding)

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
        """Ask the LM itself: each label's likelihood after the prompt, normalised over the labels.

        The label's words are `" " + name`, scored in full (every token); the prompt runs once per
        example and every label is scored from its KV cache (`llama.label_scoring`). Prompts go in
        length-sorted batches of about batch_tokens / N prompt tokens, as the cache is repeated once
        per label. The prompt may use {text}, {text_pair} and {labels}.
        """
        names = self.label_names
        template = self.prompt or (PAIR_PROMPT if any(e.text_pair is not None for e in examples) else PROMPT)
        try:
            prompts = [template.format(text=e.text, text_pair=e.text_pair or "", labels=", ".join(names))
                       for e in examples]
        except (KeyError, IndexError, ValueError) as err:
            raise UserError(f"--prompt {template!r}: {type(err).__name__} {err}; it may use {{text}}, {{text_pair}} "
                            "and {labels} (write a literal brace as {{ or }})") from None
        label_ids = tokenizer.encode_batch([f" {name}" for name in names], add_bos=False)
        room = lm.config.max_position_embeddings - max(len(ids) for ids in label_ids)
        sequences = [s[-room:] for s in tokenizer.encode_batch(prompts)]  # a long prompt keeps its end
        batches = token_budget_batches([len(s) for s in sequences], max(1, batch_tokens // len(names)))
        log_likelihoods = torch.empty(len(examples), len(names))
        with Progress(len(examples), "zero-shot prompt", "text") as progress:
            for batch in batches:
                log_likelihoods[batch] = label_log_likelihoods(lm, [sequences[i] for i in batch], label_ids,
                                                               pad_id=tokenizer.pad_id).cpu()
                progress.update(len(batch))
        return log_likelihoods.softmax(-1).tolist()

    def score(self, examples: list[SentenceExample], probs: list[list[float]]) -> tuple[dict, list[dict]]:
        """Accuracy, macro and weighted P/R/F1, per-class rows and the confusion matrix (binary: also the second
        label's P/R/F1, scikit-learn's pos_label=1), and one row per text with its predicted label's probability."""
        names = self.label_names
        predictions = [max(range(len(p)), key=p.__getitem__) for p in probs]
        rows = [{"text": e.text, **({"text_pair": e.text_pair} if e.text_pair is not None else {}),
                 "label": names[e.label], "prediction": names[y], "score": round(p[y], 6)}
                for e, y, p in zip(examples, predictions, probs)]
        metrics = classification.report(predictions, [e.label for e in examples], list(range(len(names))),
                                        positive_label=1 if len(names) == 2 else None)
        metrics["per_class"] = [{"label": names[row["class"]], **row} for row in metrics["per_class"]]
        return metrics, rows

    def headline(self, metrics: dict) -> str:
        if "f1" in metrics:  # binary
            return f"accuracy {metrics['accuracy']:.4f}  f1 {metrics['f1']:.4f}  macro-f1 {metrics['macro_f1']:.4f}"
        return f"accuracy {metrics['accuracy']:.4f}  macro-f1 {metrics['macro_f1']:.4f}"

    def metric_rows(self, metrics: dict) -> list[tuple[str, str]]:
        binary = "f1" in metrics.get("fine_tuned", {})
        return ([("Accuracy", "accuracy")]
                + ([("Precision", "precision"), ("Recall", "recall"), ("F1", "f1")] if binary else [])
                + [("Macro precision", "macro_precision"), ("Macro recall", "macro_recall"),
                   ("Macro F1", "macro_f1"), ("Weighted F1", "weighted_f1")])

    def new_head(self, config: LlamaConfig, backbone: LlamaModel | None = None) -> SequenceClassifier:
        """`score` = Linear(C, N), one output row per label."""
        return SequenceClassifier(config, num_labels=len(self.label_names), backbone=backbone)


@dataclasses.dataclass(frozen=True)
class OwnClassification(SentenceClassification):
    """Classification of the user's files (`data.labelled`: CSV / TSV / JSONL with named columns): the label
    set is the training file's (`with_labels_from`), so the head has a row per label; `--data` is not taken."""

    data_format: DataFormat = LABELLED_FORMAT
    default_data: str | None = None
    prompt: str | None = None  # None: PROMPT, or PAIR_PROMPT for pairs
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"

    own_flags: ClassVar = SentenceClassification.own_flags + ("text_column", "text_pair_column", "label_column",
                                                              *FILE_FLAGS)

    @property
    def columns(self) -> Columns:
        return Columns(text=self.text_column, label=self.label_column, text_pair=self.text_pair_column)

    def with_labels_from(self, train_file: Path | None) -> "OwnClassification":
        if train_file is None:
            raise UserError(f"--task {self.name} reads your files: give --train-file (and --validation-file, "
                            "--test-file as you have them)")
        return dataclasses.replace(self, label_names=label_names_of(read_labelled_file(train_file, self.columns),
                                                                    train_file))

    def read_files(self, paths: list[Path | None]) -> list[list[SentenceExample] | None]:
        return [to_examples(read_labelled_file(path, self.columns), self.label_names, path) if path else None
                for path in paths]


SST2 = SentenceClassification(name="sst2", label_names=("negative", "positive"), data_format=SST2_FORMAT,
                              default_data="sst2", prompt="Review: {text}\nSentiment (positive or negative):")
CLASSIFICATION = OwnClassification(name="classification", label_names=())  # the training file's labels

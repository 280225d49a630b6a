"""A trained head on new text: `heads.load(run directory or Hub repo)` -> `.classify` / `.answer`.

    head = heads.load("runs/sst2")                # the base is loaded from the id the head records
    head.classify(["I loved it.", "Dull."])     # [{"label": "positive", "score": 0.97}, ...]
    qa = heads.load("runs/squad")
    qa.answer(question="Who?", context="...")   # {"answer", "score", "start", "end"}

The head applies its own readout (block, echo, pooling) and, for SQuAD, the windows and the
no-answer threshold it was trained with. It runs the same functions training runs on the test
split (the encoding, `pooled_batches`, `window_states`, `span_logits_of`, `best_spans`, `abstains`)
in the same token-budget batches, so on the test split's texts it reproduces the run's
predictions.jsonl. Every sentence is encoded whole, as in training, unless it is longer than the
model's context: then it is cut, with a warning.

With a `store` (`heads.store`; `training.loading.open_states` opens one) the states go through it
as in training's frozen pass, under the same keys: texts a run already passed (its test split, say)
are read back, not recomputed, and new ones are kept for the next call.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import torch

import llama
from data.batching import token_budget_batches
from data.qa_answers import abstains, best_spans
from data.qa_windows import make_windows
from data.squad import QAExample
from data.sst2 import encode_sentences
from errors import UserError

from .classification import SequenceClassifier, pooled_entries
from .head_file import HeadFile, locate_head, read_head_file, transformers_class
from .qa import QuestionAnswerer
from .readout import ClassifierReadout, SpanReadout
from .store import StateStore, base_identity
from .windows import echo_view, span_logits_of, window_states

BATCH_TOKENS = 4096  # train.py's --batch-tokens default: the same batches give the same numbers


def load(head: str | Path, base: str | llama.LlamaForCausalLM | None = None, *,
         tokenizer: llama.Tokenizer | None = None, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None, batch_tokens: int = BATCH_TOKENS,
         token: str | None = None, store: StateStore | None = None) -> "TrainedClassifier | TrainedAnswerer":
    """The head of a run directory (or of a Hub repo a run was pushed to) on its frozen base.

    `base`: None loads the base the head records (its id and revision); a name or path loads that
    one; a loaded `LlamaForCausalLM` is used as is (its tokenizer then comes from `tokenizer` or
    the recorded id). A base of another architecture is refused. `device`: default CUDA if there is
    one. `dtype`: default the dtype the head's frozen pass ran in, which reproduces its run. `store`: frozen
    states kept between calls and runs, opened for this base, dtype and device type (checked when the base
    is loaded here; a loaded `base` must be the one the store was opened for).
    """
    info = read_head_file(locate_head(head, token=token))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    name, revision, dtype = base_settings(info, base if isinstance(base, str) else None, device, dtype)
    if base is None or isinstance(base, str):
        base = llama.load_pretrained(name, dtype=dtype, device=device, revision=revision, token=token)
        if store is not None and store.base != base_identity(llama.resolve_checkpoint(name, revision=revision),
                                                             dtype, device):
            raise UserError(f"the states store was opened for another base, dtype or device type than {name} "
                            f"({str(dtype).removeprefix('torch.')}, {device.type}): open it for the base the head "
                            "runs on")
    info.check_base(base.config)
    if name != info.base_model:
        warnings.warn(f"the head was trained on {info.base_model}, loaded onto {name} (same architecture)")
    if tokenizer is None:
        tokenizer = llama.load_tokenizer(name, revision=revision)
    if isinstance(info.readout, ClassifierReadout):
        return TrainedClassifier(info, base.model, tokenizer, batch_tokens, store)
    return TrainedAnswerer(info, base.model, tokenizer, batch_tokens, store)


def base_settings(info: HeadFile, base: str | None, device: torch.device,
                  dtype: torch.dtype | None) -> tuple[str, str | None, torch.dtype]:
    """The base `load` puts the head on: (name, revision, dtype), from `base` or the head's record, and `dtype` or
    the one the head's frozen pass ran in (else bfloat16 on CUDA, float32 on a CPU)."""
    if dtype is None:
        dtype = getattr(torch, info.base_dtype) if info.base_dtype else (
            torch.bfloat16 if device.type == "cuda" else torch.float32)
    return (base, None, dtype) if base else (info.base_model, info.base_revision, dtype)


class TrainedHead:
    """What both kinds share: the head file, the frozen base with the head on it, the tokenizer."""

    def __init__(self, info: HeadFile, head: SequenceClassifier | QuestionAnswerer, tokenizer: llama.Tokenizer,
                 batch_tokens: int, store: StateStore | None) -> None:
        head.load_head_state_dict(info.tensors, readout=info.readout)
        self.info = info
        self.head = head.to(head.model.embed_tokens.weight.device).eval()
        self.tokenizer = tokenizer
        self.batch_tokens = batch_tokens
        self.device = head.model.embed_tokens.weight.device
        self.store = store  # None: every call runs the frozen pass

    @property
    def readout(self) -> ClassifierReadout | SpanReadout:
        return self.info.readout

    @property
    def transformers_class(self) -> str:
        """The transformers class that reproduces this head's logits, "" when none does."""
        if self.info.transformers_class is not None:
            return self.info.transformers_class
        return transformers_class(self.readout, self.head.config.num_hidden_layers)

    @property
    def place(self) -> str:
        return "accelerator" if self.device.type != "cpu" else "ram"


class TrainedClassifier(TrainedHead):
    """A sentence classifier: `classify(texts)` -> [{"label", "score"}] (score: the label's probability)."""

    def __init__(self, info: HeadFile, backbone: llama.LlamaModel, tokenizer: llama.Tokenizer,
                 batch_tokens: int, store: StateStore | None = None) -> None:
        classifier = SequenceClassifier(backbone.config, num_labels=len(info.label_names), backbone=backbone)
        super().__init__(info, classifier, tokenizer, batch_tokens, store)
        self.label_names = info.label_names

    def classify(self, texts: str | list[str]) -> list[dict]:
        probs = self.probabilities(texts)
        best = probs.argmax(-1).tolist()
        return [{"label": self.label_names[k], "score": float(p[k])} for k, p in zip(best, probs)]

    def probabilities(self, texts: str | list[str]) -> torch.Tensor:
        """(N, labels) class probabilities, from the same frozen pass and pooling training ran."""
        return self.head.probabilities(self.pooled(texts))

    def pooled(self, texts: str | list[str]) -> torch.Tensor:
        """(N, C) float32: each text's state as the readout reads it (block, echo, pooling), what the head scores."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise UserError(f"text {i + 1} is empty: give a sentence to classify")
        readout: ClassifierReadout = self.readout
        context = self.head.config.max_position_embeddings
        sequences, starts, cut = encode_sentences(self.tokenizer, texts, echo=readout.echo, max_tokens=context)
        if cut:  # the same cut as training's (data.sst2.encode_sentences)
            warnings.warn(f"{cut:,} of {len(texts):,} texts do not fit the model's context of {context:,} tokens"
                          f"{' (read twice)' if readout.echo else ''}: each is cut to its first tokens that fit")
        batches = token_budget_batches([len(s) for s in sequences], self.batch_tokens)
        dim = self.head.config.hidden_size
        with self.store.holding() if self.store else contextlib.nullcontext():
            (entry,) = pooled_entries(self.store, [readout], sequences, starts, dim)
            vectors = entry.states if entry else np.zeros((len(texts), dim), np.float32)  # (N, C), as training's
            for batch, states in self.head.pooled_batches(sequences, starts, batches, [readout.block], [readout.pool],
                                                          self.tokenizer.pad_id, "frozen pass", [entry]):
                vectors[batch] = states[:, 0, 0].float().cpu().numpy()  # states: (B, 1, 1, C)
            return torch.tensor(vectors, device=self.device if self.place == "accelerator" else "cpu")


class TrainedAnswerer(TrainedHead):
    """An extractive QA head: `answer(question=..., context=...)` -> {"answer", "score", "start", "end"}.

    `start`/`end` are character offsets into the context (`context[start:end] == answer`). A SQuAD 2.0
    head answers "" (start = end = 0) where its no-answer probability is above its stored threshold;
    `score` is the probability of what is returned: 1 - P(no answer) for a span, P(no answer) for "".
    """

    def __init__(self, info: HeadFile, backbone: llama.LlamaModel, tokenizer: llama.Tokenizer,
                 batch_tokens: int, store: StateStore | None = None) -> None:
        super().__init__(info, QuestionAnswerer(backbone.config, backbone=backbone), tokenizer, batch_tokens, store)
        self.max_length = int(info.use.get("max_length", 384))
        self.doc_stride = int(info.use.get("doc_stride", 128))
        self.no_answer_threshold = info.use.get("no_answer_threshold")  # None: the head always answers

    def answer(self, question: str, context: str, *, tokens: bool = False) -> dict:
        return self.answer_batch([question], [context], tokens=tokens)[0]

    def answer_batch(self, questions: list[str], contexts: list[str], *, tokens: bool = False) -> list[dict]:
        """One answer per (question, context) pair, all windows in token-budget batches; `tokens`: also each
        context token's characters and start/end probabilities in the window the answer comes from."""
        if len(questions) != len(contexts):
            raise UserError(f"{len(questions)} questions but {len(contexts)} contexts")
        for i, (question, context) in enumerate(zip(questions, contexts)):
            for name, text in (("question", question), ("context", context)):
                if not isinstance(text, str) or not text.strip():
                    raise UserError(f"pair {i + 1}: the {name} is empty")
        examples = [QAExample(str(i), "", q, c, [], [], True) for i, (q, c) in enumerate(zip(questions, contexts))]
        readout: SpanReadout = self.readout
        windows = make_windows(examples, self.tokenizer, max_length=self.max_length, doc_stride=self.doc_stride,
                               echo=readout.echo)
        kept, views = echo_view(windows) if readout.echo else (None, windows)
        with self.store.holding() if self.store else contextlib.nullcontext():
            stores, _ = window_states(self.head, windows, kept, [readout.block], self.place, self.tokenizer.pad_id,
                                      self.batch_tokens, "frozen pass", self.store)
        start_logits, end_logits = span_logits_of(self.head, stores[readout.block], views)
        spans = best_spans(examples, views, start_logits, end_logits)
        answers = []
        for example in examples:
            span = spans[example.id]
            empty = self.no_answer_threshold is not None and abstains(span.no_answer_prob, self.no_answer_threshold)
            answer = ({"answer": "", "score": span.no_answer_prob, "start": 0, "end": 0} if empty else
                      {"answer": span.text, "score": 1.0 - span.no_answer_prob, "start": span.start, "end": span.end})
            if tokens:
                window = span.window if span.window >= 0 else next(i for i, v in enumerate(views)
                                                                   if v.example_id == example.id)
                answer["tokens"] = token_probabilities(views[window].offsets, start_logits[window], end_logits[window])
            answers.append(answer)
        return answers


def token_probabilities(offsets: list, start_logits: np.ndarray, end_logits: np.ndarray) -> list[dict]:
    """Each context token of one window: its characters and its start / end probability (softmax over the window)."""
    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x.astype(np.float64) - x.max())
        return e / e.sum()

    p_start, p_end = softmax(start_logits), softmax(end_logits)
    return [{"start": span[0], "end": span[1], "p_start": float(p_start[i]), "p_end": float(p_end[i])}
            for i, span in enumerate(offsets) if span is not None]

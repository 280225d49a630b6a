"""Extractive QA (SQuAD): windows (plain or echoed), the token states the head reads, the span head, a generation
baseline. `SQUAD` is the instance with the flags' defaults; a run replaces its version, window sizes and
no-answer threshold (`dataclasses.replace`)."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from pathlib import Path
from typing import Callable, ClassVar

import torch

from data.progress import Progress
from data.qa_answers import abstains, answer_questions
from data.qa_windows import QAWindow, make_windows
from data.formats import DataFormat
from data.qa_jsonl import read_qa_file
from data.squad import QAExample, squad_format
from heads import QuestionAnswerer, SpanReadout, StreamedStates, TokenStateTable, qa_loss
from heads.cache import MergedTable, device_index
from heads.store import StateStore
from heads.windows import echo_view, span_logits_of, window_states
from llama import LlamaConfig, LlamaForCausalLM, Tokenizer
from llama.chat import chat_prompt
from llama.generate import generate
from metrics import squad

from .task import FILE_FLAGS, ReadoutChoice, Task, candidate_blocks

PROMPT = ("Answer the question with a short phrase copied from the context{no_answer}.\n\n"
          "Context: {context}\n\nQuestion: {question}\nAnswer:")
NO_ANSWER_HINT = ", or with 'unanswerable' if the context does not contain the answer"
NO_ANSWER_WORD = "unanswerable"


@dataclasses.dataclass
class Windows:
    """Every window of every question, ready for the frozen pass, and the positions the head reads.

    With echo the head reads only the no-answer slot and the context tokens of the second copy
    (`kept`), so only those states are cached: about half of the window's tokens. `views` are
    the windows as the head sees them, those positions only, with the labels and offsets
    renumbered accordingly; without echo they are the windows themselves.
    """

    windows: list[QAWindow]
    kept: list[list[int]] | None  # per window, its positions the head reads (None: all)
    views: list[QAWindow]
    pad_id: int
    batch_tokens: int

    @property
    def lengths(self) -> list[int]:
        """Tokens per window in the frozen pass."""
        return [len(w.input_ids) for w in self.windows]

    @property
    def cached_lengths(self) -> list[int]:
        """Token states per window in the cache."""
        return [len(v.input_ids) for v in self.views]


@dataclasses.dataclass
class WindowStates:
    """The hidden states of every window, per block (a table, or a stream), with their span targets."""

    stores: dict[int, TokenStateTable | StreamedStates | MergedTable]
    windows: list[QAWindow]
    starts: torch.Tensor
    ends: torch.Tensor
    readouts: list[SpanReadout]
    padding_fraction: float

    def __len__(self) -> int:
        return len(self.windows)

    def only(self, readout: SpanReadout) -> "WindowStates":
        return dataclasses.replace(self, stores={readout.block: self.stores[readout.block]}, readouts=[readout])

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) states and (B, T) mask of one batch of windows, for the single readout these states hold."""
        (readout,) = self.readouts
        return self.stores[readout.block].batch(indices)


def windows_by_example(windows: list[QAWindow]) -> list[list[int]]:
    """The window indices of each example, in order (an example's windows are consecutive)."""
    return [list(group) for _, group in itertools.groupby(range(len(windows)), key=lambda i: windows[i].example_id)]


@dataclasses.dataclass(frozen=True)
class ExtractiveQA(Task):
    """An answer span per question, from start/end logits of a linear `qa_outputs` on every token's state."""

    squad_version: str = "1.1"  # "2.0" adds unanswerable questions and the no-answer rule
    max_length: int = 384  # tokens per window (one copy, with echo)
    doc_stride: int = 128  # overlap between the windows of one context
    no_answer_threshold: float | str = 0.5  # SQuAD 2.0: answer "" above this no-answer probability; or "auto"
    default_data: str = "squad"

    head_class: ClassVar = QuestionAnswerer
    auto_blocks: ClassVar = (1 / 2, 2 / 3)  # blocks 15 and 20 of SmolLM2's 30: 25 and 30 lost on SQuAD tuning data
    per_token: ClassVar = True
    main_metric: ClassVar = "squad.f1"
    own_flags: ClassVar = ("squad_version", "max_length", "doc_stride", "no_answer_threshold")
    recipes: ClassVar = {
        "converged": {"lr": 1e-3, "batch_size": 16, "epochs": 60, "schedule": "constant", "weight_decay": 0.0,
                      "average": True, "val_fraction": 0.1, "patience": 5, "select_limit": 200, "block": "auto",
                      "echo": True},
        "report": {"lr": 5e-5, "batch_size": 32, "epochs": 2, "schedule": "linear", "weight_decay": 0.0,
                   "average": False, "val_fraction": 0.0, "select_limit": 200, "block": "last",
                   "echo": False}}

    @property
    def data_format(self) -> DataFormat:
        return squad_format(self.squad_version)

    def readouts(self, choice: ReadoutChoice, config: LlamaConfig) -> list[SpanReadout]:
        blocks = candidate_blocks(choice.block, config.num_hidden_layers, self.auto_blocks)
        return [SpanReadout(k, choice.echo) for k in blocks]

    def prepare(self, tokenizer: Tokenizer, examples: list[QAExample], candidates: list[SpanReadout],
                batch_tokens: int, context_tokens: int | None = None) -> Windows:
        """Cut every context into windows (echoed if the readouts ask for it); --max-length bounds them."""
        windows = make_windows(examples, tokenizer, max_length=self.max_length, doc_stride=self.doc_stride,
                               echo=candidates[0].echo)
        if not candidates[0].echo:
            return Windows(windows, None, windows, tokenizer.pad_id, batch_tokens)
        kept, views = echo_view(windows)
        return Windows(windows, kept, views, tokenizer.pad_id, batch_tokens)

    def frozen_pass(self, qa: QuestionAnswerer, prepared: Windows, candidates: list[SpanReadout], place: str,
                    desc: str, store: StateStore | None = None) -> WindowStates:
        """Run the base once over every window and store every token's state of each readout's block.

        `place` is where the states go ("accelerator", "ram", "disk"), or "stream": store nothing and
        rerun the frozen pass for each training batch. With a `store`, the states it holds are reused.
        """
        blocks = sorted({r.block for r in candidates})
        device = qa.model.embed_tokens.weight.device
        stores, padding = window_states(qa, prepared.windows, prepared.kept, blocks, place, prepared.pad_id,
                                        prepared.batch_tokens, desc, store)
        views = prepared.views
        return WindowStates(stores, views, torch.tensor([v.start_position for v in views], device=device),
                              torch.tensor([v.end_position for v in views], device=device), candidates, padding)

    def merge(self, first: WindowStates, second: WindowStates, in_first: list[bool]) -> WindowStates:
        """Two parts' window states as one, in the examples' order (`Task.merge`): an example's windows
        stay together, and a disk table is read where it is (`MergedTable`)."""
        (readout,) = first.readouts
        parts = (first, second)
        per_example = [iter(windows_by_example(part.windows)) for part in parts]
        where = [(p, w) for f in in_first for p in [0 if f else 1] for w in next(per_example[p])]
        if len(where) != len(first) + len(second):
            raise ValueError("merge: the parts hold windows of other examples than `in_first` says")
        windows = [parts[p].windows[w] for p, w in where]
        device = first.starts.device
        padding = (first.padding_fraction * len(first) + second.padding_fraction * len(second)) / len(windows)
        table = MergedTable([part.stores[readout.block] for part in parts], where)
        return WindowStates({readout.block: table}, windows, torch.tensor([v.start_position for v in windows],
                                                                          device=device),
                            torch.tensor([v.end_position for v in windows], device=device), [readout], padding)

    def batch(self, states: WindowStates, indices: list[int]) -> tuple[tuple[torch.Tensor, torch.Tensor],
                                                                       tuple[torch.Tensor, torch.Tensor]]:
        """((B, T, C) token states, (B, T) mask), ((B,) answer starts, (B,) answer ends)"""
        index = device_index(indices, states.starts.device)
        return states.batch(indices), (states.starts[index], states.ends[index])

    def loss(self, qa: QuestionAnswerer, inputs: tuple[torch.Tensor, torch.Tensor],
             targets: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        start_logits, end_logits = qa.span_logits(*inputs)
        return qa_loss(start_logits, end_logits, *targets)

    def predict(self, qa: QuestionAnswerer, states: WindowStates, examples: list[QAExample],
                batch_size: int = 64) -> list[dict]:
        """Head logits -> the best span per question (and, for SQuAD 2.0, its no-answer probability:
        sigmoid(null score - best span score), 0.5 where the two are equal)."""
        (readout,) = states.readouts
        start_logits, end_logits = span_logits_of(qa, states.stores[readout.block], states.windows,
                                                  batch_size=batch_size)
        spans, no_answer_probs = answer_questions(examples, states.windows, start_logits, end_logits)
        if self.squad_version != "2.0":
            return [{"text": spans[e.id]} for e in examples]
        # The best span is kept even where the no-answer slot wins: `score` abstains by the threshold.
        return [{"text": spans[e.id], "no_answer_prob": no_answer_probs[e.id]} for e in examples]

    def prompt_predict(self, lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[QAExample], batch_tokens: int,
                       batch_size: int = 8, max_new_tokens: int = 24) -> list[dict]:
        """Ask the LM to answer by greedy generation; the first line of its reply is the answer.

        Instruct models with ChatML tokens (SmolLM2) get the prompt as a user turn.
        """
        hint = NO_ANSWER_HINT if self.squad_version == "2.0" else ""
        prompts = [PROMPT.format(no_answer=hint, context=e.context, question=e.question) for e in examples]
        if tokenizer.token_to_id("<|im_start|>") is not None:
            prompts = [chat_prompt(p) for p in prompts]
        newline = tokenizer.encode("\n", add_bos=False)
        stop_ids = tokenizer.eos_ids + (newline if len(newline) == 1 else [])
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
        answers = [""] * len(examples)
        with Progress(len(order), "zero-shot prompt", "question") as progress:
            for first in range(0, len(order), batch_size):
                batch = order[first:first + batch_size]
                replies = generate(lm, tokenizer, [prompts[i] for i in batch], max_new_tokens=max_new_tokens,
                                   stop_ids=stop_ids)
                for i, reply in zip(batch, replies):
                    answer = reply.strip().split("\n")[0].strip()
                    answers[i] = "" if answer.lower().strip(" .") == NO_ANSWER_WORD else answer
                progress.update(len(batch))
        return [{"text": answer} for answer in answers]

    def score(self, examples: list[QAExample], predictions: list[dict]) -> tuple[dict, list[dict]]:
        """Official SQuAD scores over all questions; BLEU/ROUGE over the answerable ones.

        With no-answer probabilities (the SQuAD 2.0 head) a question is answered "" where its
        probability is above `--no-answer-threshold`; they also give the official best_* keys.
        """
        with_probs = bool(predictions) and all("no_answer_prob" in p for p in predictions)
        no_answer_probs = {e.id: p["no_answer_prob"] for e, p in zip(examples, predictions)} if with_probs else None
        spans = {e.id: p["text"] for e, p in zip(examples, predictions)}
        threshold = self.threshold() if with_probs else 1.0
        answers = {i: "" if with_probs and abstains(no_answer_probs[i], threshold) else text
                   for i, text in spans.items()}
        references = {e.id: ([] if e.is_impossible else e.answers) for e in examples}
        results = {"squad": squad.scores(spans, references, no_answer_probs=no_answer_probs,
                                         no_answer_threshold=threshold)}
        answerable = [e for e in examples if not e.is_impossible]
        if answerable:
            from metrics import bleu, rouge  # imported here: reading the head class (count_params.py) needs neither
            texts = [answers[e.id] for e in answerable]
            golds = [e.answers for e in answerable]
            results["bleu"] = bleu.corpus_bleu(texts, golds)
            results["rouge"] = rouge.scores(texts, golds)
        rows = [{"id": e.id, "question": e.question, "prediction": answers[e.id], "answers": references[e.id],
                 **({"no_answer_prob": round(no_answer_probs[e.id], 6)} if no_answer_probs else {})}
                for e in examples]
        return results, rows

    def threshold(self) -> float:
        """The no-answer threshold as a probability; auto before the validation slice has chosen it (or
        without one): 0.5, where the no-answer slot's score and the best span's are equal."""
        return 0.5 if self.no_answer_threshold == "auto" else float(self.no_answer_threshold)

    def use_settings(self) -> dict:
        """The windows of a context, and when to answer "" (None: a SQuAD 1.1 head, which always answers)."""
        threshold = self.threshold() if self.squad_version == "2.0" else None
        return {"max_length": self.max_length, "doc_stride": self.doc_stride, "no_answer_threshold": threshold}

    def decision_rule(self, validation_metrics: Callable[[], dict | None]) -> dict:
        """SQuAD 2.0, --no-answer-threshold auto: the threshold with the best validation F1.

        It is the official script's `best_f1_thresh` (BERT's tuned null threshold), found on the
        validation slice instead of the test split. The default is 0.5, not auto: with 40
        validation questions (`--limit 400`) the chosen threshold cost 9 F1 points on 600 other
        training-part questions (README, SQuAD v2.0); it needs a validation slice of hundreds.
        """
        if self.no_answer_threshold != "auto" or self.squad_version != "2.0":
            return {}  # v1.1 never abstains
        metrics = validation_metrics()
        return {} if metrics is None else {"no_answer_threshold": metrics["squad"]["best_f1_thresh"]}

    def headline(self, metrics: dict) -> str:
        s = metrics["squad"]
        return f"exact {s['exact']:.2f}  f1 {s['f1']:.2f}  (0-100)"

    def metric_rows(self, metrics: dict) -> list[tuple[str, str]]:
        """Official EM/F1 (plus the v2.0 no-answer rows when the run has them), BLEU and ROUGE."""
        rows = [("Exact match (0-100)", "squad.exact"), ("Token F1 (0-100)", "squad.f1")]
        if "NoAns_total" in metrics.get("fine_tuned", {}).get("squad", {}):
            rows += [("HasAns F1 (0-100)", "squad.HasAns_f1"), ("NoAns exact (0-100)", "squad.NoAns_exact"),
                     ("Best F1, threshold fitted on the test split (0-100)", "squad.best_f1")]
        return rows + [("BLEU (0-1)", "bleu.bleu"), ("ROUGE-1 (0-1)", "rouge.rouge1"),
                       ("ROUGE-2 (0-1)", "rouge.rouge2"), ("ROUGE-L (0-1)", "rouge.rougeL")]




@dataclasses.dataclass(frozen=True)
class OwnQA(ExtractiveQA):
    """Extractive QA on the user's files (--train-file, --validation-file, --test-file): SQuAD JSON or
    JSONL rows in the Hugging Face squad layout (`data.qa_jsonl`); `--data` is not taken."""

    default_data: str | None = None
    own_flags: ClassVar = ExtractiveQA.own_flags + FILE_FLAGS

    def read_files(self, paths: list[Path | None]) -> list[list[QAExample] | None]:
        return [read_qa_file(path, self.squad_version) if path else None for path in paths]


SQUAD = ExtractiveQA(name="squad", label_names=("start", "end"))
QA = OwnQA(name="qa", label_names=("start", "end"))

"""SQuAD: per-token frozen features of every window, the start/end head, and a generation baseline."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.qa_answers import answer_questions
from data.qa_features import QAFeature, make_qa_features
from data.squad import QAExample
from heads import QuestionAnswerer, TokenFeatureTable, qa_loss
from llama import LlamaForCausalLM, Tokenizer
from llama.chat import chat_prompt
from llama.generate import generate
from metrics import bleu, rouge, squad

from .task import Task

PROMPT = ("Answer the question with a short phrase copied from the context{no_answer}.\n\n"
          "Context: {context}\n\nQuestion: {question}\nAnswer:")
NO_ANSWER_HINT = ", or with 'unanswerable' if the context does not contain the answer"
NO_ANSWER_WORD = "unanswerable"


@dataclasses.dataclass
class WindowFeatures:
    """Hidden states of every window (a TokenFeatureTable) with their span targets."""

    table: TokenFeatureTable
    windows: list[QAFeature]
    starts: torch.Tensor
    ends: torch.Tensor
    padding_fraction: float

    def __len__(self) -> int:
        return len(self.windows)


def extract(qa: QuestionAnswerer, tokenizer: Tokenizer, examples: list[QAExample], args: argparse.Namespace,
            desc: str) -> WindowFeatures:
    """Window the contexts and run the base once over every window, storing all token states."""
    windows = make_qa_features(examples, tokenizer, max_length=args.max_length, doc_stride=args.doc_stride)
    sequences = [w.input_ids for w in windows]
    lengths = [len(s) for s in sequences]
    batches = token_budget_batches(lengths, args.batch_tokens)
    table = TokenFeatureTable(lengths, qa.config.hidden_size, int(args.feature_budget_gb * 2**30))
    device = qa.model.embed_tokens.weight.device
    for batch, input_ids, attention_mask in padded_batches(sequences, batches, tokenizer.pad_id, device, desc):
        hidden = qa.features(input_ids, attention_mask).cpu()  # one transfer per batch
        for row, index in enumerate(batch):
            table.write(index, hidden[row, :lengths[index]])
    return WindowFeatures(table, windows, torch.tensor([w.start_position for w in windows]),
                          torch.tensor([w.end_position for w in windows]), padding_fraction(batches, lengths))


def batch_loss(qa: QuestionAnswerer, features: WindowFeatures, indices: list[int]) -> torch.Tensor:
    hidden, mask = features.table.batch(indices)
    start_logits, end_logits = qa.span_logits(hidden, mask)
    return qa_loss(start_logits, end_logits, features.starts[indices], features.ends[indices])


def evaluate(qa: QuestionAnswerer, features: WindowFeatures, examples: list[QAExample], args: argparse.Namespace,
             batch_size: int = 64) -> tuple[dict, list[dict]]:
    """Head logits -> best span per question -> SQuAD EM/F1 (+ v2 thresholds), BLEU and ROUGE."""
    start_logits: list[np.ndarray] = []
    end_logits: list[np.ndarray] = []
    with torch.no_grad():
        for first in range(0, len(features), batch_size):
            indices = list(range(first, min(first + batch_size, len(features))))
            hidden, mask = features.table.batch(indices)
            s, e = qa.span_logits(hidden, mask)
            for row, index in enumerate(indices):
                T = len(features.windows[index].input_ids)
                start_logits.append(s[row, :T].numpy())
                end_logits.append(e[row, :T].numpy())
    with_no_answer = args.squad_version == "2.0"
    predictions, no_answer_probs = answer_questions(
        examples, features.windows, start_logits, end_logits, allow_no_answer=with_no_answer)
    return score(examples, predictions, no_answer_probs if with_no_answer else None)


def zero_shot_prompt(lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[QAExample], args: argparse.Namespace,
                     batch_size: int = 8, max_new_tokens: int = 24) -> tuple[dict, list[dict]]:
    """Ask the LM to answer by greedy generation; the first line of its reply is the answer.

    Instruct models with ChatML tokens (SmolLM2) get the prompt as a user turn.
    """
    hint = NO_ANSWER_HINT if args.squad_version == "2.0" else ""
    prompts = [PROMPT.format(no_answer=hint, context=e.context, question=e.question) for e in examples]
    if tokenizer.token_to_id("<|im_start|>") is not None:
        prompts = [chat_prompt(p) for p in prompts]
    newline = tokenizer.encode("\n", add_bos=False)
    stop_ids = tokenizer.eos_ids + (newline if len(newline) == 1 else [])
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # similar lengths share a batch
    predictions = {}
    for first in tqdm(range(0, len(order), batch_size), desc="zero-shot prompt", unit="batch", disable=None):
        batch = order[first:first + batch_size]
        replies = generate(lm, tokenizer, [prompts[i] for i in batch], max_new_tokens=max_new_tokens,
                           stop_ids=stop_ids)
        for i, reply in zip(batch, replies):
            answer = reply.strip().split("\n")[0].strip()
            predictions[examples[i].id] = "" if answer.lower().strip(" .") == NO_ANSWER_WORD else answer
    return score(examples, predictions, None)


def score(examples: list[QAExample], predictions: dict[str, str],
          no_answer_probs: dict[str, float] | None) -> tuple[dict, list[dict]]:
    """Official SQuAD scores over all questions; BLEU/ROUGE over the answerable ones."""
    references = {e.id: ([] if e.is_impossible else e.answers) for e in examples}
    results = {"squad": squad.scores(predictions, references, no_answer_probs=no_answer_probs)}
    answerable = [e for e in examples if not e.is_impossible]
    if answerable:
        texts = [predictions.get(e.id, "") for e in answerable]
        golds = [e.answers for e in answerable]
        results["bleu"] = bleu.corpus_bleu(texts, golds)
        results["rouge"] = rouge.scores(texts, golds)
    rows = [{"id": e.id, "question": e.question, "prediction": predictions.get(e.id, ""),
             "answers": references[e.id],
             **({"no_answer_prob": round(no_answer_probs[e.id], 6)} if no_answer_probs else {})}
            for e in examples]
    return results, rows


def headline(metrics: dict) -> str:
    s = metrics["squad"]
    return f"exact {s['exact']:.2f}  f1 {s['f1']:.2f}  (0-100)"


def metric_rows(metrics: dict) -> list[tuple[str, str]]:
    """Official EM/F1 (plus the v2.0 no-answer rows when the run has them), BLEU and ROUGE."""
    rows = [("Exact match (0-100)", "squad.exact"), ("Token F1 (0-100)", "squad.f1")]
    if "NoAns_total" in metrics.get("fine_tuned", {}).get("squad", {}):
        rows += [("HasAns F1 (0-100)", "squad.HasAns_f1"), ("NoAns exact (0-100)", "squad.NoAns_exact"),
                 ("Best F1 (0-100)", "squad.best_f1")]
    return rows + [("BLEU (0-1)", "bleu.bleu"), ("ROUGE-1 (0-1)", "rouge.rouge1"),
                   ("ROUGE-2 (0-1)", "rouge.rouge2"), ("ROUGE-L (0-1)", "rouge.rougeL")]


SQUAD = Task(
    name="squad", head_class=QuestionAnswerer, label_names=("start", "end"),
    defaults={"data": "squad", "lr": 5e-5, "batch_size": 32, "epochs": 2, "squad_version": "1.1",
              "max_length": 384, "doc_stride": 128},
    own_flags=("squad_version", "max_length", "doc_stride"),
    extract=extract, batch_loss=batch_loss, evaluate=evaluate, zero_shot_prompt=zero_shot_prompt,
    headline=headline, metric_rows=metric_rows,
)

"""SQuAD: per-token frozen features of every window, the start/end head, and a generation baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm import tqdm

from data.qa_answers import answer_questions
from data.qa_features import QAFeature, make_qa_features
from data.squad import QAExample
from heads import QuestionAnswerer, qa_loss
from llama import LlamaForCausalLM, Tokenizer
from llama.chat import chat_prompt
from llama.generate import generate
from metrics import bleu, rouge, squad
from training.features import TokenFeatureTable, run_frozen

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


def extract(qa: QuestionAnswerer, tokenizer: Tokenizer, examples: list[QAExample], *, max_length: int,
            doc_stride: int, batch_tokens: int, budget_bytes: int, desc: str) -> WindowFeatures:
    """Window the contexts and run the base once over every window, storing all token states."""
    windows = make_qa_features(examples, tokenizer, max_length=max_length, doc_stride=doc_stride)
    table = TokenFeatureTable([len(w.input_ids) for w in windows], qa.config.hidden_size, budget_bytes)
    device = qa.model.embed_tokens.weight.device
    padding = run_frozen([w.input_ids for w in windows], tokenizer.pad_id, batch_tokens, device,
                         qa.backbone_hidden, table.write, desc)
    return WindowFeatures(table, windows, torch.tensor([w.start_position for w in windows]),
                          torch.tensor([w.end_position for w in windows]), padding)


def batch_loss(qa: QuestionAnswerer, features: WindowFeatures, indices: list[int]) -> torch.Tensor:
    hidden, mask = features.table.batch(indices)
    start_logits, end_logits = qa.span_logits(hidden, mask)
    return qa_loss(start_logits, end_logits, features.starts[indices], features.ends[indices])


def evaluate(qa: QuestionAnswerer, features: WindowFeatures, examples: list[QAExample],
             version: str, batch_size: int = 64) -> tuple[dict, list[dict]]:
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
    predictions, no_answer_probs = answer_questions(
        examples, features.windows, start_logits, end_logits, allow_no_answer=version == "2.0")
    return score(examples, predictions, no_answer_probs if version == "2.0" else None)


def zero_shot_prompt(lm: LlamaForCausalLM, tokenizer: Tokenizer, examples: list[QAExample],
                     version: str, batch_size: int = 8, max_new_tokens: int = 24) -> tuple[dict, list[dict]]:
    """Ask the LM to answer by greedy generation; the first line of its reply is the answer.

    Instruct models with ChatML tokens (SmolLM2) get the prompt as a user turn.
    """
    hint = NO_ANSWER_HINT if version == "2.0" else ""
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

"""SQuAD exact match and token F1 on a 0..100 scale, as the official scripts score them.

Published SQuAD numbers come from two official scripts whose edge cases differ:
v2.0 scores an empty answer against an empty gold as F1 1 and treats gold answers
that normalise to nothing as "no answer"; v1.1 gives F1 0 whenever no token is
shared. Both are reproduced here so our numbers can sit next to published ones.
Answers are normalised once per text instead of once per comparison, which is what
makes this faster than the official code.

Unlike the official v2.0 script, a question without a prediction is not a crash: it
scores 0, counts in every total, and is reported in `missing` and a warning.
Predictions for ids that are not in the references are ignored, as officially.
"""

from __future__ import annotations

import re
import string
import warnings
from collections import Counter
from typing import Mapping, Sequence

_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower-case, drop ASCII punctuation and the articles a/an/the, collapse white space."""
    return " ".join(answer_tokens(text))


def answer_tokens(text: str) -> list[str]:
    """The tokens of the normalised answer (the order of operations is the official one)."""
    return _ARTICLES.sub(" ", text.lower().translate(_DROP_PUNCTUATION)).split()


def scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
           no_answer_probs: Mapping[str, float] | None = None,
           no_answer_threshold: float = 1.0) -> dict:
    """Official SQuAD v2.0 results (0..100) for id -> answer predictions ("" = no answer).

    `references` maps each id to its gold answer texts; an empty list marks an
    unanswerable question. With `no_answer_probs`, a question whose probability is
    above `no_answer_threshold` counts as answered "" and the `best_*` keys give the
    threshold that would have scored highest. When every question is answerable the
    official v1.1 results are added under `"v1"`.
    """
    gold = _check(predictions, references)
    scored = [qid for qid in gold if qid in predictions]
    missing = _warn_missing(predictions, gold)
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw, f1_raw = {}, {}
    for qid in scored:
        exact_raw[qid], f1_raw[qid] = _v2_question(predictions[qid], gold[qid])

    probs = _probabilities(no_answer_probs, scored)
    exact = _thresholded(exact_raw, probs, has_answer, no_answer_threshold)
    f1 = _thresholded(f1_raw, probs, has_answer, no_answer_threshold)
    result = _summary(exact, f1, list(gold))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [qid for qid in gold if has_answer[qid] == wanted]
        if qids:
            for key, value in _summary(exact, f1, qids).items():
                result[f"{prefix}_{key}"] = value
    if no_answer_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = _best_threshold(raw, predictions, probs, has_answer, len(gold))
            result[f"best_{name}"], result[f"best_{name}_thresh"] = best, thresh
    result["missing"] = len(missing)
    if all(has_answer.values()):
        result["v1"] = _v1(predictions, gold)
    return result


def scores_v1(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict:
    """Official SQuAD v1.1 `exact_match` and `f1` (0..100); a missing id scores 0."""
    gold = _check(predictions, references)
    unanswerable = [qid for qid, answers in gold.items() if not answers]
    if unanswerable:
        raise ValueError(f"SQuAD v1.1 has no unanswerable questions but {len(unanswerable)} "
                         "have an empty answer list; use scores() for v2.0 data")
    _warn_missing(predictions, gold)
    return _v1(predictions, gold)


def _check(predictions: Mapping[str, str],
           references: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if not isinstance(predictions, Mapping) or not isinstance(references, Mapping):
        raise ValueError("predictions and references must be dicts keyed by question id")
    if not references:
        raise ValueError("references is empty: scores need at least one question")
    for qid, answer in predictions.items():
        if not isinstance(answer, str):
            raise ValueError(f"prediction for {qid!r} is {type(answer).__name__}, expected str")
    gold = {}
    for qid, answers in references.items():
        if isinstance(answers, str) or not isinstance(answers, (list, tuple)):
            raise ValueError(f"references[{qid!r}] must be a list of answer texts "
                             f"(empty if unanswerable), got {type(answers).__name__}")
        if not all(isinstance(a, str) for a in answers):
            raise ValueError(f"references[{qid!r}] holds a non-string answer")
        gold[qid] = list(answers)
    return gold


def _warn_missing(predictions: Mapping[str, str], gold: dict) -> list[str]:
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        warnings.warn(f"{len(missing)} of {len(gold)} questions have no prediction and score 0: "
                      + ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else ""),
                      stacklevel=3)
    return missing


def _v2_question(prediction: str, answers: list[str]) -> tuple[int, float]:
    """Best exact and F1 over gold answers; golds that normalise to "" mean "no answer"."""
    pred = answer_tokens(prediction)
    golds = [toks for toks in map(answer_tokens, answers) if toks] or [[]]
    exact = int(any(toks == pred for toks in golds))
    if not pred:
        return exact, exact
    pred_counts = Counter(pred)
    return exact, max(_f1(toks, pred, pred_counts) if toks else 0 for toks in golds)


def _f1(gold: list[str], pred: list[str], pred_counts: Counter) -> float:
    same = sum(min(n, pred_counts[tok]) for tok, n in Counter(gold).items() if tok in pred_counts)
    if same == 0:
        return 0
    precision = 1.0 * same / len(pred)
    recall = 1.0 * same / len(gold)
    return (2 * precision * recall) / (precision + recall)


def _probabilities(no_answer_probs: Mapping[str, float] | None, scored: list[str]) -> dict:
    if no_answer_probs is None:
        return {qid: 0.0 for qid in scored}
    lacking = [qid for qid in scored if qid not in no_answer_probs]
    if lacking:
        raise ValueError(f"no_answer_probs has no probability for {len(lacking)} predicted "
                         "questions: " + ", ".join(lacking[:5]))
    return dict(no_answer_probs)


def _thresholded(raw: dict, probs: dict, has_answer: dict, threshold: float) -> dict:
    """Questions the model would abstain on are right exactly when unanswerable."""
    return {qid: float(not has_answer[qid]) if probs[qid] > threshold else score
            for qid, score in raw.items()}


def _summary(exact: dict, f1: dict, qids: list[str]) -> dict:
    return {
        "exact": 100.0 * sum(exact.get(qid, 0) for qid in qids) / len(qids),
        "f1": 100.0 * sum(f1.get(qid, 0) for qid in qids) / len(qids),
        "total": len(qids),
    }


def _best_threshold(raw: dict, predictions: Mapping[str, str], probs: dict,
                    has_answer: dict, total: int) -> tuple[float, float]:
    """The official scan: start with every question abstained, answer in order of probability.

    Abstaining is right on unanswerable questions; answering one instead costs a
    point unless the raw prediction is the empty string. Missing ids never score.
    """
    score = sum(1 for qid in raw if not has_answer[qid])
    best, best_thresh = score, 0.0
    for qid in sorted(probs, key=probs.__getitem__):
        if qid not in raw:
            continue
        if has_answer[qid]:
            score += raw[qid]
        elif predictions[qid]:
            score -= 1
        if score > best:
            best, best_thresh = score, probs[qid]
    return 100.0 * best / total, best_thresh


def _v1(predictions: Mapping[str, str], gold: dict[str, list[str]]) -> dict:
    exact = f1 = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        pred = answer_tokens(predictions[qid])
        pred_counts = Counter(pred)
        golds = [answer_tokens(a) for a in answers]
        exact += max(toks == pred for toks in golds)
        f1 += max(_f1(toks, pred, pred_counts) for toks in golds)
    return {"exact_match": 100.0 * exact / len(gold), "f1": 100.0 * f1 / len(gold)}

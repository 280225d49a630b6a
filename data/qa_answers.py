"""Start/end logits of every window -> one answer string (or "") per question.

The reference post-processing of extractive QA, in four steps:

1. In each window, take the `n_best` highest start logits and the `n_best` highest end
   logits among the context tokens (those with offsets: in an echoed window, the second
   copy only), and score every pair as start + end.
2. Keep pairs that are a real span: start <= end and at most `max_answer_length` tokens.
3. The best pair over all windows of a question gives the answer: the context
   characters from its start token's first to its end token's last character, with
   surrounding whitespace trimmed (a byte-level token " word" covers its space too).
4. SQuAD v2: the null score is start[0] + end[0] (the no-answer slot), the smallest over
   the question's windows, since the window that sees the answer best is the one that
   least believes there is none. The answer is "" when null - best > `null_threshold`.

Choosing the n-best among context tokens only (the reference picks among all tokens and
then drops the invalid ones) never loses a valid span and always leaves one to return.

The no-answer probability is sigmoid(null - best): it crosses 0.5 where the two scores
are equal and grows with the null score's lead, so the official v2 script's
`best_f1_thresh` search over it is a search over the score difference.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Sequence

import numpy as np

from .qa_windows import QAWindow
from .squad import QAExample


@dataclasses.dataclass
class SpanAnswer:
    """A question's best span: `text == context[start:end]` (characters), "" (0, 0) when no window has a
    valid span; `window` indexes the windows (-1: none); `null_margin`: null score - best span score
    (+inf when there is no span)."""

    text: str
    start: int
    end: int
    window: int
    null_margin: float

    @property
    def no_answer_prob(self) -> float:
        return _sigmoid(self.null_margin)


def answer_questions(examples: list[QAExample], windows: list[QAWindow],
                     start_logits: Sequence, end_logits: Sequence, n_best: int = 20,
                     max_answer_length: int = 30, null_threshold: float = 0.0,
                     allow_no_answer: bool = False) -> tuple[dict[str, str], dict[str, float]]:
    """(predictions, no_answer_probs), both keyed by question id.

    `start_logits[i]` / `end_logits[i]` are 1-D (numpy or torch) for windows[i], at least as
    long as its input_ids; anything beyond (right padding) is ignored. A question with no
    valid span in any window (only possible for an empty context) is answered "".
    """
    answers = best_spans(examples, windows, start_logits, end_logits, n_best, max_answer_length)
    predictions = {}
    for example in examples:
        answer = answers[example.id]
        null_wins = allow_no_answer and answer.null_margin > null_threshold
        predictions[example.id] = "" if null_wins else answer.text
    return predictions, {i: a.no_answer_prob for i, a in answers.items()}


def best_spans(examples: list[QAExample], windows: list[QAWindow], start_logits: Sequence, end_logits: Sequence,
               n_best: int = 20, max_answer_length: int = 30) -> dict[str, SpanAnswer]:
    """Steps 1-4 of the module docstring: each question's best span and its no-answer probability."""
    if not len(windows) == len(start_logits) == len(end_logits):
        raise ValueError(f"{len(windows)} windows but {len(start_logits)} start and "
                         f"{len(end_logits)} end logit rows")
    if hasattr(start_logits, "detach") or isinstance(start_logits, np.ndarray):  # one (N, T) block
        start_logits, end_logits = _numpy(start_logits), _numpy(end_logits)
    by_question = defaultdict(list)
    for index, (window, start, end) in enumerate(zip(windows, start_logits, end_logits)):
        n = len(window.input_ids)
        by_question[window.example_id].append((index, window, _numpy(start)[:n], _numpy(end)[:n]))
    answers = {}
    for example in examples:
        if example.id not in by_question:
            raise ValueError(f"question {example.id} has no windows")
        best_score, best, null_score = -math.inf, SpanAnswer("", 0, 0, -1, math.inf), math.inf
        for index, window, start, end in by_question[example.id]:
            null_score = min(null_score, float(start[0] + end[0]))
            span = _best_span(window, start, end, n_best, max_answer_length)
            if span is not None and span[0] > best_score:
                best_score = span[0]
                (first, _), (_, last) = window.offsets[span[1]], window.offsets[span[2]]
                raw = example.context[first:last]
                text = raw.strip()
                at = first + len(raw) - len(raw.lstrip())
                best = SpanAnswer(text, at, at + len(text), index, 0.0)
        best.null_margin = null_score - best_score  # +inf when no window has a valid span
        answers[example.id] = best
    return answers


def abstains(no_answer_prob: float, threshold: float) -> bool:
    """The no-answer rule of a SQuAD 2.0 head: answer "" where the no-answer probability is above the threshold."""
    return no_answer_prob > threshold


def _best_span(window: QAWindow, start: np.ndarray, end: np.ndarray, n_best: int,
               max_answer_length: int) -> tuple[float, int, int] | None:
    """(score, start token, end token) of the best valid span in one window, or None."""
    context = np.array([o is not None for o in window.offsets])
    positions = np.flatnonzero(context)
    if positions.size == 0:
        return None
    starts = positions[np.argsort(-start[positions], kind="stable")[:n_best]]  # (k,)
    ends = positions[np.argsort(-end[positions], kind="stable")[:n_best]]  # (k,)
    scores = start[starts][:, None] + end[ends][None, :]  # (k, k)
    length = ends[None, :] - starts[:, None] + 1
    scores = np.where((length >= 1) & (length <= max_answer_length), scores, -np.inf)
    s, e = np.unravel_index(np.argmax(scores), scores.shape)
    if scores[s, e] == -np.inf:
        return None
    return float(scores[s, e]), int(starts[s]), int(ends[e])


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _numpy(logits) -> np.ndarray:
    """A float64 array from a numpy array or a (possibly bf16, GPU) torch tensor."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float64)

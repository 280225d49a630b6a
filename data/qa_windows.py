"""SQuAD questions -> fixed-size token windows for a causal model, with answer labels.

Layout of one window (no padding; batches pad later). Plain, `echo=False`:

    [slot] question "\n" context-window

    position 0        a no-answer slot: the BOS id (the pad id if there is no BOS)
    1 .. q            the question's tokens (at most `max_question_tokens`), then "\n"
    q+1 .. end        a window of the context's tokens

Echo, `echo=True`: the same body twice, a blank line between the copies:

    [slot] question "\n" context-window "\n\n" question "\n" context-window
                                                             ^^^^^^^^^^^^^^ labels and offsets only here

The question comes first because attention is causal: a context token can only use what
precedes it, so putting the question there lets every context token know what is asked.
For the same reason, in the plain layout a token has not seen the text to its right, and
an end logit cannot tell where an answer stops. In the second copy every token has read
the whole window once already. The blank line ends the first copy as a paragraph ends, so
the repeated question does not read as part of the context's last sentence; the copies
are concatenated token lists, so both hold exactly the same tokens.

A context longer than the room left (`max_length` minus the prefix) is cut into windows
that overlap by `doc_stride` tokens, so every answer of up to `doc_stride` tokens lies
wholly inside some window. Both count ONE copy: an echoed window has about twice
`max_length` tokens, and the plain and echo layouts cut the same windows.

Labels: the token positions of the target answer's first and last character (see
`_answer_tokens`) in the window's (last) context copy when both are in the window; (0, 0),
the no-answer slot, when the answer is outside the window or the question is unanswerable.
`offsets` maps each token of that context copy back to its characters in the context
(every other token, the first copy included, has None and can never be predicted), which
is how `data.qa_answers` turns predicted positions into text.
"""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from errors import UserError
from metrics.squad import normalize_answer

from .squad import QAExample

if TYPE_CHECKING:
    from llama import Tokenizer

SEPARATOR = "\n"  # between the question and the context
ECHO_SEPARATOR = "\n\n"  # between the two copies


@dataclasses.dataclass
class QAWindow:
    """One window of one question; `offsets[i]` is the (start, end) characters in the context
    covered by token i of the labelled context copy, None for every other token (the no-answer
    slot, questions, separators and, with echo, the first copy)."""

    example_id: str
    input_ids: list[int]
    offsets: list[tuple[int, int] | None]
    start_position: int
    end_position: int


def make_windows(examples: list[QAExample], tokenizer: "Tokenizer", max_length: int = 384,
                     doc_stride: int = 128, max_question_tokens: int = 64, echo: bool = False) -> list[QAWindow]:
    """All windows of all examples, in example order (an example's windows left to right).

    `echo` feeds each window's question and context twice and labels the second copy
    (see the module docstring); `max_length` and `doc_stride` count one copy.
    """
    separator = tokenizer.encode(SEPARATOR, add_bos=False)
    echo_separator = tokenizer.encode(ECHO_SEPARATOR, add_bos=False)
    prefix_max = 1 + max_question_tokens + len(separator)
    if max_length - prefix_max <= doc_stride:
        raise UserError(f"max_length {max_length} leaves {max_length - prefix_max} context tokens "
                        f"after a {prefix_max}-token question prefix, not more than doc_stride "
                        f"{doc_stride}: raise max_length or lower doc_stride")
    no_answer_slot = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.pad_id
    # Several questions share a context: tokenise each distinct context once, in parallel.
    # backend.encode_batch(add_special_tokens=False) is encode_with_offsets(add_bos=False).
    contexts = list(dict.fromkeys(e.context for e in examples))
    encoded = tokenizer.backend.encode_batch(contexts, add_special_tokens=False)
    context_tokens = {c: (enc.ids, enc.offsets) for c, enc in zip(contexts, encoded)}
    for context, (_, offsets) in context_tokens.items():
        if any(start == end for start, end in offsets):
            raise UserError("the tokenizer gave zero-width character offsets (a known fault of some "
                            "`tokenizers` versions with Llama-3's tokenizer), so answers cannot be located: "
                            "upgrade it with `pip install -U tokenizers`")
    questions = tokenizer.backend.encode_batch([e.question.strip() for e in examples],
                                               add_special_tokens=False)
    windows = []
    for example, question in zip(examples, questions):
        asked = question.ids[:max_question_tokens] + separator  # question "\n"
        ids, offsets = context_tokens[example.context]
        answer = _answer_tokens(example, offsets)
        for lo, hi in _context_spans(len(ids), max_length - 1 - len(asked), doc_stride):
            body = asked + ids[lo:hi]
            input_ids = [no_answer_slot] + body + (echo_separator + body if echo else [])
            context_at = len(input_ids) - (hi - lo)  # the labelled context copy ends every layout
            start = end = 0
            if answer is not None and lo <= answer[0] and answer[1] < hi:
                start, end = (context_at + t - lo for t in answer)
            windows.append(QAWindow(example.id, input_ids, [None] * context_at + offsets[lo:hi], start, end))
    return windows


def _context_spans(n_tokens: int, room: int, overlap: int) -> list[tuple[int, int]]:
    """[lo, hi) token ranges of at most `room` tokens, each starting `room - overlap` after the last."""
    spans, lo = [], 0
    while True:
        hi = min(lo + room, n_tokens)
        spans.append((lo, hi))
        if hi == n_tokens:
            return spans
        lo += room - overlap


def _answer_tokens(example: QAExample, offsets: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Context-token indices of the target answer's first and last character, or None.

    The target is the first reference answer that its tokens cover exactly (up to SQuAD's
    answer normalisation), else the first answer: a dev question whose first reference
    is "Japan" inside the token "Japanese" has a later reference "Japanese" a model can
    point to. Training files have one answer per question, so this only changes dev labels.
    With byte-level BPE a token may also cover the space before a word (" word"), so the
    first token is the one whose span ends after the answer's first character, the last
    is the one that starts before the answer's end.
    """
    if example.is_impossible or not example.answers:
        return None
    ends, starts = [e for _, e in offsets], [s for s, _ in offsets]
    candidates = []
    for text, first in zip(example.answers, example.answer_starts):
        last = min(first + len(text), len(example.context))
        start, end = bisect_right(ends, first), bisect_left(starts, last) - 1
        if start < len(offsets) and start <= end:
            candidates.append((start, end))
            covered = example.context[offsets[start][0]:offsets[end][1]]
            if normalize_answer(covered) == normalize_answer(example.context[first:last]):
                return start, end
    return candidates[0] if candidates else None

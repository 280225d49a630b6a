"""ROUGE-1, -2, -L and -Lsum F-measures on a 0..1 scale, as Google's `rouge-score` computes them.

Tokens are what rouge-score makes: lower case, every run of characters outside
[a-z0-9] is a separator, and (optionally) words longer than three letters are
Porter-stemmed. ROUGE-Lsum splits both texts into sentences at newlines and
scores the union of per-sentence LCSs, as ROUGE-1.5.5 does for summaries.

The longest common subsequence uses the bit-parallel recurrence of Allison & Dix
(Hyyrö's form): one big-int row per reference token instead of a Python table of
len(ref) x len(pred) cells, which is what makes this faster than rouge-score.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from metrics import validate
from metrics.porter import stem

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
_ALNUM_RUN = re.compile(r"[a-z0-9]+")


def scores(predictions: Sequence[str], references: Sequence[str | Sequence[str]],
           use_stemmer: bool = False) -> dict[str, float]:
    """Mean F-measure over examples (0..1) for rouge1, rouge2, rougeL and rougeLsum.

    An example with several references takes, per ROUGE type, the best F-measure
    over them (rouge-score's `score_multi`).
    """
    predictions = validate.text_list("predictions", predictions)
    references = validate.reference_lists("references", references)
    validate.same_length(("predictions", "references"), predictions, references)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, references):
        pred = _Text(prediction, use_stemmer)
        per_ref = [pred.fmeasures(_Text(ref, use_stemmer)) for ref in refs]
        for k, rouge_type in enumerate(ROUGE_TYPES):
            totals[rouge_type] += max(f[k] for f in per_ref)
    return {rouge_type: total / len(predictions) for rouge_type, total in totals.items()}


def tokenize(text: str, use_stemmer: bool = False) -> list[str]:
    """rouge-score's tokens: lower-cased [a-z0-9] runs, stemmed if longer than 3 letters."""
    tokens = _ALNUM_RUN.findall(text.lower())
    if use_stemmer:
        tokens = [stem(t) if len(t) > 3 else t for t in tokens]
    return tokens


class _Text:
    """One text tokenised once: its sentences, all tokens, and n-gram counts."""

    def __init__(self, text: str, use_stemmer: bool):
        self.sentences = [tokenize(s, use_stemmer) for s in text.split("\n") if s]
        self.tokens = [t for sentence in self.sentences for t in sentence]
        self.unigrams = Counter(self.tokens)
        self.bigrams = Counter(zip(self.tokens, self.tokens[1:]))

    def fmeasures(self, ref: _Text) -> tuple[float, float, float, float]:
        """(rouge1, rouge2, rougeL, rougeLsum) F-measures of this prediction against `ref`."""
        return (
            _ngram_f(ref.unigrams, self.unigrams),
            _ngram_f(ref.bigrams, self.bigrams),
            _lcs_f(ref.tokens, self.tokens),
            _summary_lcs_f(ref, self),
        )


def _fmeasure(hits: int, n_pred: int, n_ref: int) -> float:
    precision = hits / n_pred
    recall = hits / n_ref
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngram_f(ref: Counter, pred: Counter) -> float:
    hits = sum(min(n, pred[g]) for g, n in ref.items() if g in pred)
    return _fmeasure(hits, max(pred.total(), 1), max(ref.total(), 1))


def _lcs_f(ref: list[str], pred: list[str]) -> float:
    if not ref or not pred:
        return 0.0
    final = _lcs_rows(ref, pred)[-1]
    return _fmeasure(len(pred) - final.bit_count(), len(pred), len(ref))


def _lcs_rows(ref: list[str], pred: list[str]) -> list[int]:
    """Bit-parallel LCS rows: the DP cell (i, j) equals j - popcount(rows[i] & (2**j - 1)).

    Bit j of a row is 0 where the LCS of ref[:i] and pred[:j+1] is one longer than
    that of ref[:i] and pred[:j]; one add and a few bit operations advance a row.
    """
    positions: dict[str, int] = {}
    for j, token in enumerate(pred):
        positions[token] = positions.get(token, 0) | (1 << j)
    full = (1 << len(pred)) - 1
    row = full
    rows = [row]
    for token in ref:
        match = row & positions.get(token, 0)
        row = ((row + match) | (row - match)) & full
        rows.append(row)
    return rows


def _lcs_positions(ref: list[str], pred: list[str]) -> list[int]:
    """Indices into `ref` of one LCS: the one rouge-score's backtrack picks, ties included."""
    rows = _lcs_rows(ref, pred)
    if rows[-1].bit_count() == len(pred):
        return []

    def cell(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    picked = []
    i, j = len(ref), len(pred)
    while i > 0 and j > 0:
        if ref[i - 1] == pred[j - 1]:
            picked.append(i - 1)
            i -= 1
            j -= 1
        elif cell(i, j - 1) > cell(i - 1, j):
            j -= 1
        else:
            i -= 1
    return picked


def _summary_lcs_f(ref: _Text, pred: _Text) -> float:
    """Summary-level union LCS; each token is credited at most as often as both texts hold it."""
    if not ref.tokens or not pred.tokens:
        return 0.0
    ref_left = Counter(ref.unigrams)
    pred_left = Counter(pred.unigrams)
    hits = 0
    for sentence in ref.sentences:
        union: set[int] = set()
        for candidate in pred.sentences:
            union.update(_lcs_positions(sentence, candidate))
        for i in union:
            token = sentence[i]
            if ref_left[token] > 0 and pred_left[token] > 0:
                hits += 1
                ref_left[token] -= 1
                pred_left[token] -= 1
    return _fmeasure(hits, len(pred.tokens), len(ref.tokens))

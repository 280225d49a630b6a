"""Corpus BLEU on a 0..1 scale, with the semantics of Hugging Face `evaluate`'s "bleu".

That metric is tensorflow/nmt's `compute_bleu` over mteval-v13a tokens, and two of
its choices differ from sacrebleu: the brevity penalty uses the *shortest*
reference of each prediction (sacrebleu takes the closest in length), and
`smooth=True` adds one to the matches and possible matches of every order
(Lin & Och 2004). Where the original divides by zero (no prediction or reference
text at all) the limits are returned instead: brevity penalty 0 for an empty
output, length ratio inf for empty references.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from functools import lru_cache
from typing import Sequence

from metrics import validate

# mteval-v13a pads the space and every ASCII symbol except ' , - . with spaces;
# "," "." and "-" are split off only in the digit contexts of the rules after it.
_SYMBOLS = " " + "".join(ch for ch in string.punctuation if ch not in "',-.")
_13A_RULES = [
    (re.compile(f"([{re.escape(_SYMBOLS)}])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),  # period/comma not after a digit
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),  # period/comma not before a digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),  # dash after a digit
]


@lru_cache(maxsize=1 << 16)
def tokenize_13a(line: str) -> tuple[str, ...]:
    """mteval-v13a tokens, as sacrebleu's and evaluate's `Tokenizer13a` produce them."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(entity, char)
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return tuple(line.split())


def corpus_bleu(predictions: Sequence[str], references: Sequence[str | Sequence[str]],
                max_order: int = 4, smooth: bool = False) -> dict:
    """BLEU (0..1), its n-gram precisions, brevity penalty and lengths, over the corpus."""
    predictions = validate.text_list("predictions", predictions)
    references = validate.reference_lists("references", references)
    validate.same_length(("predictions", "references"), predictions, references)
    if not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"max_order must be a positive integer, got {max_order!r}")
    matches = [0] * max_order
    possible = [0] * max_order
    translation_length = reference_length = 0
    for prediction, refs in zip(predictions, references):
        ref_tokens = [tokenize_13a(r) for r in refs]
        tokens = tokenize_13a(prediction)
        reference_length += min(len(r) for r in ref_tokens)
        translation_length += len(tokens)
        clip = Counter()
        for ref in ref_tokens:
            clip |= _ngrams(ref, max_order)
        for ngram, count in _ngrams(tokens, max_order).items():
            if ngram in clip:
                matches[len(ngram) - 1] += min(count, clip[ngram])
        for n in range(1, max_order + 1):
            possible[n - 1] += max(len(tokens) - n + 1, 0)

    if smooth:
        precisions = [(m + 1.0) / (p + 1.0) for m, p in zip(matches, possible)]
    else:
        precisions = [m / p if p > 0 else 0.0 for m, p in zip(matches, possible)]
    if min(precisions) > 0:
        geo_mean = math.exp(sum((1.0 / max_order) * math.log(p) for p in precisions))
    else:
        geo_mean = 0.0
    if reference_length:
        ratio = translation_length / reference_length
    else:
        ratio = math.inf if translation_length else 0.0
    if ratio > 1.0:
        brevity_penalty = 1.0
    else:
        brevity_penalty = math.exp(1 - 1.0 / ratio) if ratio > 0 else 0.0
    return {
        "bleu": geo_mean * brevity_penalty,
        "precisions": precisions,
        "brevity_penalty": brevity_penalty,
        "length_ratio": ratio,
        "translation_length": translation_length,
        "reference_length": reference_length,
    }


def _ngrams(tokens: tuple[str, ...], max_order: int) -> Counter:
    """Counts of every n-gram of order 1..max_order, keyed by token tuple."""
    counts = Counter()
    for n in range(1, max_order + 1):
        counts.update(tokens[i:i + n] for i in range(len(tokens) - n + 1))
    return counts

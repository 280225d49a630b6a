"""metrics.bleu agrees with sacrebleu (one reference) and with evaluate's rule (several).

sacrebleu and Hugging Face `evaluate` count the same n-grams but pick the brevity
reference differently once there are several references (closest vs shortest).
`nmt_bleu` restates tensorflow/nmt's `compute_bleu`, which `evaluate` wraps, over
sacrebleu's own 13a tokens; it is the oracle for the multi-reference cases.
"""

from __future__ import annotations

import collections
import math
import random

import pytest
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from metrics import bleu

TOL = 1e-6
_13A = Tokenizer13a()


def nmt_bleu(predictions, references, max_order=4, smooth=False):
    def grams(toks):
        return collections.Counter(tuple(toks[i:i + n]) for n in range(1, max_order + 1)
                                   for i in range(len(toks) - n + 1))

    matches, possible = [0] * max_order, [0] * max_order
    ref_len = hyp_len = 0
    for pred, refs in zip(predictions, references):
        ref_toks = [_13A(r).split() for r in refs]
        toks = _13A(pred).split()
        ref_len += min(len(r) for r in ref_toks)
        hyp_len += len(toks)
        merged = collections.Counter()
        for r in ref_toks:
            merged |= grams(r)
        for gram, count in (grams(toks) & merged).items():
            matches[len(gram) - 1] += count
        for n in range(1, max_order + 1):
            possible[n - 1] += max(0, len(toks) - n + 1)
    if smooth:
        precisions = [(m + 1.0) / (p + 1.0) for m, p in zip(matches, possible)]
    else:
        precisions = [m / p if p else 0.0 for m, p in zip(matches, possible)]
    geo = math.exp(sum(math.log(p) / max_order for p in precisions)) if min(precisions) > 0 else 0
    ratio = hyp_len / ref_len
    bp = 1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio)
    return {"bleu": geo * bp, "precisions": precisions, "brevity_penalty": bp,
            "length_ratio": ratio, "translation_length": hyp_len, "reference_length": ref_len}


WORDS = ["the", "The", "cat", "sat", "on", "mat", "a", "dog", "1.5", "3,000", "4-5", "x-ray",
         "don't", "U.S.", "café", "東京", "&amp;", "&quot;hi&quot;", "<skipped>", "e.g.,", "(b)",
         "$5", "50%", "a/b", "--", "...", "ß"]
SEPARATORS = [" ", " ", " ", "  ", "\t", "\n", "-\n", "", ",", ".", "!", "?", "\u00a0"]


def random_sentence(rng: random.Random, max_words: int) -> str:
    n = rng.choice([0, 1, 2, rng.randint(0, max_words)])
    parts = []
    for _ in range(n):
        parts.append(rng.choice(WORDS))
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


def near_copy(rng: random.Random, text: str) -> str:
    """A text sharing many n-grams with `text`, so higher orders match too."""
    words = text.split(" ")
    if rng.random() < 0.2:
        rng.shuffle(words)
    keep = [w for w in words if rng.random() < 0.85]
    return " ".join(keep + ([rng.choice(WORDS)] if rng.random() < 0.5 else []))


def random_corpus(rng: random.Random, n_refs: int) -> tuple[list[str], list[list[str]]]:
    preds, refs = [], []
    for _ in range(rng.randint(1, 8)):
        ref = [random_sentence(rng, 30) or "fallback words" for _ in range(n_refs)]
        pred = near_copy(rng, rng.choice(ref)) if rng.random() < 0.7 else random_sentence(rng, 30)
        preds.append(pred)
        refs.append(ref)
    return preds, refs


def assert_same(ours: dict, reference: dict) -> None:
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=TOL), key


def test_single_reference_matches_sacrebleu():
    rng = random.Random(0)
    compared = 0
    for _ in range(1500):
        preds, refs = random_corpus(rng, 1)
        if not any(_13A(r[0]).split() for r in refs):
            continue
        max_order = rng.choice([1, 2, 3, 4, 4, 4, 5])
        metric = sacrebleu.BLEU(smooth_method="none", tokenize="13a", max_ngram_order=max_order)
        ref = metric.corpus_score(preds, [[r[0] for r in refs]])
        # sacrebleu strips trailing white space before tokenising, evaluate does not:
        # they differ only on a trailing "-\n", which the rstrip removes from both.
        ours = bleu.corpus_bleu([p.rstrip() for p in preds], [r[0].rstrip() for r in refs],
                                max_order=max_order)
        assert_same(ours, {
            "bleu": ref.score / 100,
            "precisions": [p / 100 for p in ref.precisions],
            "brevity_penalty": ref.bp,
            "length_ratio": ref.ratio,
            "translation_length": ref.sys_len,
            "reference_length": ref.ref_len,
        })
        compared += 1
    assert compared > 1000


def test_several_references_use_the_shortest_for_brevity_like_evaluate():
    rng = random.Random(1)
    for _ in range(800):
        preds, refs = random_corpus(rng, rng.randint(1, 4))
        if not any(min(len(_13A(r).split()) for r in rs) for rs in refs):
            continue
        if not any(_13A(p).split() for p in preds):
            continue
        smooth = rng.random() < 0.3
        assert_same(bleu.corpus_bleu(preds, refs, smooth=smooth), nmt_bleu(preds, refs, smooth=smooth))


def test_brevity_reference_is_the_shortest_not_the_closest():
    result = bleu.corpus_bleu(["one two three four"], [["one two three four", "one"]])
    assert (result["reference_length"], result["length_ratio"]) == (1, 4.0)


def test_13a_tokens_match_sacrebleu_tokenizer():
    rng = random.Random(2)
    chars = list("ab 12.,-'\"&;<>\n\t/:!?()[]{}$%éß") + ["&quot;", "&amp;", "&lt;", "<skipped>",
                                                         "-\n", "\u00a0", "\u2028", "\u3000"]
    for _ in range(5000):
        line = "".join(rng.choice(chars) for _ in range(rng.randint(0, 30)))
        assert list(bleu.tokenize_13a(line)) == _13A(line).split(), repr(line)


def test_perfect_translation_scores_one():
    result = bleu.corpus_bleu(["The cat sat on the mat."], [["The cat sat on the mat."]])
    assert result["bleu"] == pytest.approx(1.0)
    assert result["precisions"] == [1.0, 1.0, 1.0, 1.0]


def test_no_fourgram_match_gives_zero_unless_smoothed():
    preds, refs = ["the cat sat"], [["the cat sat down"]]
    assert bleu.corpus_bleu(preds, refs)["bleu"] == 0.0
    smoothed = bleu.corpus_bleu(preds, refs, smooth=True)
    assert smoothed["precisions"] == [1.0, 1.0, 1.0, 1.0]  # (matches + 1) / (possible + 1)
    assert smoothed["bleu"] == pytest.approx(math.exp(1 - 4 / 3))


def test_degenerate_lengths_return_limits_instead_of_dividing_by_zero():
    empty_output = bleu.corpus_bleu([""], [["some words"]])
    assert (empty_output["bleu"], empty_output["brevity_penalty"], empty_output["length_ratio"]) == (0, 0, 0)
    empty_reference = bleu.corpus_bleu(["some words"], [[""]])
    assert (empty_reference["brevity_penalty"], empty_reference["length_ratio"]) == (1.0, math.inf)


def test_dash_newline_joins_words_as_evaluate_does():
    assert bleu.tokenize_13a("inter-\nnational") == ("international",)
    assert bleu.tokenize_13a("end-\n") == ("end",)


@pytest.mark.parametrize("preds, refs, kwargs, message", [
    (["a", "b"], ["a"], {}, "predictions has 2 items but references has 1"),
    ([], [], {}, "predictions is empty"),
    ([None], ["a"], {}, r"predictions\[0\] is NoneType"),
    ("a b", ["a b"], {}, "not one string"),
    (["a"], [[]], {}, r"references\[0\] is an empty list"),
    (["a"], [["a", 3]], {}, r"references\[0\]\[1\] is int"),
    (["a"], ["a"], {"max_order": 0}, "max_order must be a positive integer"),
])
def test_bad_input_raises_value_error_naming_the_problem(preds, refs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bleu.corpus_bleu(preds, refs, **kwargs)

"""metrics.rouge agrees with Google's rouge-score (RougeScorer.score / score_multi) to 1e-6."""

from __future__ import annotations

import random

import pytest
from rouge_score import rouge_scorer

from metrics import rouge

TOL = 1e-6
WORDS = ["the", "The", "cat", "cats", "running", "runs", "ran", "happiness", "happy", "relational",
         "generalization", "dogs", "dog's", "a", "on", "mat", "42", "3.14", "x", "café", "naïve",
         "\u212aelvin", "İstanbul", "東京", "e-mail", "U.S.A.", "flies", "flying", "conditional",
         "the", "the", "cat"]
SEPARATORS = [" ", " ", " ", "  ", "\t", ", ", ". ", "!", "-", "_", "\n", "\n\n", " \n ", "",
              "\u00a0", "\u2028"]


def random_text(rng: random.Random, max_words: int) -> str:
    n = rng.choice([0, 1, 2, rng.randint(0, max_words), rng.randint(0, max_words)])
    return "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(n))


def near_copy(rng: random.Random, text: str) -> str:
    """Shares long subsequences and sentences with `text`, so LCS ties and unions matter."""
    words = text.split(" ")
    out = [w for w in words if rng.random() < 0.8]
    for _ in range(rng.randint(0, 3)):
        out.insert(rng.randint(0, len(out)), rng.choice(WORDS + ["\n"]))
    return " ".join(out)


def random_example(rng: random.Random, max_words: int) -> tuple[str, list[str]]:
    refs = [random_text(rng, max_words) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    pred = near_copy(rng, rng.choice(refs)) if rng.random() < 0.7 else random_text(rng, max_words)
    return pred, refs


def reference_scores(scorer, pred: str, refs: list[str]) -> dict[str, float]:
    scored = scorer.score(refs[0], pred) if len(refs) == 1 else scorer.score_multi(refs, pred)
    return {k: s.fmeasure for k, s in scored.items()}


def assert_examples_match(rng: random.Random, n: int, max_words: int, use_stemmer: bool) -> None:
    scorer = rouge_scorer.RougeScorer(list(rouge.ROUGE_TYPES), use_stemmer=use_stemmer)
    examples = [random_example(rng, max_words) for _ in range(n)]
    for pred, refs in examples:
        ours = rouge.scores([pred], [refs], use_stemmer=use_stemmer)
        assert ours == pytest.approx(reference_scores(scorer, pred, refs), abs=TOL), (pred, refs)
    # The corpus score is the mean of the per-example F-measures.
    expected = [reference_scores(scorer, p, r) for p, r in examples]
    corpus = rouge.scores([p for p, _ in examples], [r for _, r in examples], use_stemmer=use_stemmer)
    for rouge_type in rouge.ROUGE_TYPES:
        mean = sum(e[rouge_type] for e in expected) / n
        assert corpus[rouge_type] == pytest.approx(mean, abs=TOL)


def test_short_texts_match_rouge_score():
    assert_examples_match(random.Random(0), 2500, 25, use_stemmer=False)


def test_short_texts_with_stemming_match_rouge_score():
    assert_examples_match(random.Random(1), 1500, 25, use_stemmer=True)


def test_long_multi_sentence_texts_match_rouge_score():
    assert_examples_match(random.Random(2), 40, 400, use_stemmer=True)


def test_lcs_rows_reproduce_the_dynamic_programming_table():
    rng = random.Random(3)
    for _ in range(500):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 15))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 70))]  # > 64 bits wide
        table = rouge_scorer._lcs_table(a, b)
        rows = rouge._lcs_rows(a, b)
        for i, row in enumerate(rows):
            assert [j - (row & ((1 << j) - 1)).bit_count() for j in range(len(b) + 1)] == table[i]


def test_curated_cases():
    assert rouge.scores(["the cat"], ["the cat"]) == dict.fromkeys(rouge.ROUGE_TYPES, 1.0)
    assert rouge.scores(["!!!"], ["the cat"]) == dict.fromkeys(rouge.ROUGE_TYPES, 0.0)
    assert rouge.scores(["cats running"], ["cat runs"], use_stemmer=True)["rouge1"] == 1.0
    assert rouge.scores(["cats running"], ["cat runs"])["rouge1"] == 0.0
    # Only words longer than three letters are stemmed, as in rouge-score: "cats" -> "cat".
    assert rouge.tokenize("Cats ran, flies!", use_stemmer=True) == ["cat", "ran", "fli"]
    # Best reference per example, chosen per ROUGE type.
    assert rouge.scores(["a b c"], [["x y z", "a b c"]])["rougeL"] == 1.0


@pytest.mark.parametrize("preds, refs, message", [
    (["a", "b"], ["a"], "predictions has 2 items but references has 1"),
    ([], [], "predictions is empty"),
    ([3], ["a"], r"predictions\[0\] is int"),
    ("a", ["a"], "not one string"),
    (["a"], [[]], r"references\[0\] is an empty list"),
    (["a"], [None], r"references\[0\] is NoneType"),
])
def test_bad_input_raises_value_error_naming_the_problem(preds, refs, message):
    with pytest.raises(ValueError, match=message):
        rouge.scores(preds, refs)

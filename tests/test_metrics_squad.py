"""metrics.squad agrees with the official SQuAD v2.0 and v1.1 evaluation logic.

`official_v2` and `official_v1` below restate the official scripts from their
specification, deliberately in their own shape: they walk a SQuAD-format dataset
and re-normalise both texts for every comparison. bench/bench_metrics.py times
`official_v2` as the reference, since no packaged copy of the script is installed.
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
from pathlib import Path

import pytest

from metrics import squad

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"


# ---- reference: the official scripts' logic, from their specification ----

def official_normalize(s: str) -> str:
    s = s.lower()
    exclude = set(string.punctuation)
    s = "".join(ch for ch in s if ch not in exclude)
    s = re.sub(r"\b(a|an|the)\b", " ", s, flags=re.UNICODE)
    return " ".join(s.split())


def official_v2_f1(gold: str, pred: str) -> float:
    gold_toks = official_normalize(gold).split() if gold else []
    pred_toks = official_normalize(pred).split() if pred else []
    same = sum((collections.Counter(gold_toks) & collections.Counter(pred_toks)).values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if same == 0:
        return 0
    p, r = 1.0 * same / len(pred_toks), 1.0 * same / len(gold_toks)
    return (2 * p * r) / (p + r)


def official_v2(dataset: list, preds: dict, na_probs: dict | None = None,
                thresh: float = 1.0) -> dict:
    """evaluate-v2.0.py's main(), on an in-memory dataset; a missing id raises like the script."""
    has_ans = {qa["id"]: bool(qa["answers"])
               for art in dataset for par in art["paragraphs"] for qa in par["qas"]}
    exact_raw, f1_raw = {}, {}
    for art in dataset:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                golds = [a["text"] for a in qa["answers"] if official_normalize(a["text"])] or [""]
                if qa["id"] not in preds:
                    continue
                pred = preds[qa["id"]]
                exact_raw[qa["id"]] = max(int(official_normalize(g) == official_normalize(pred))
                                          for g in golds)
                f1_raw[qa["id"]] = max(official_v2_f1(g, pred) for g in golds)
    probs = na_probs if na_probs is not None else {k: 0.0 for k in preds}

    def threshold(raw):
        return {k: float(not has_ans[k]) if probs[k] > thresh else v for k, v in raw.items()}

    def summary(ex, f1, qids=None):
        qids = qids or list(ex)
        return {"exact": 100.0 * sum(ex[k] for k in qids) / len(qids),
                "f1": 100.0 * sum(f1[k] for k in qids) / len(qids), "total": len(qids)}

    exact, f1 = threshold(exact_raw), threshold(f1_raw)
    out = summary(exact, f1)
    for name, qids in (("HasAns", [k for k, v in has_ans.items() if v]),
                       ("NoAns", [k for k, v in has_ans.items() if not v])):
        if qids:
            out.update({f"{name}_{k}": v for k, v in summary(exact, f1, qids).items()})
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            cur = best = sum(1 for v in has_ans.values() if not v)
            best_t = 0.0
            for k in sorted(na_probs, key=lambda q: na_probs[q]):
                if k not in raw:
                    continue
                cur += raw[k] if has_ans[k] else (-1 if preds[k] else 0)
                if cur > best:
                    best, best_t = cur, na_probs[k]
            out[f"best_{name}"], out[f"best_{name}_thresh"] = 100.0 * best / len(raw), best_t
    return out


def official_v1(dataset: list, preds: dict) -> dict:
    """evaluate-v1.1.py's evaluate(): a missing id scores 0 but counts in the total."""
    def f1(pred, gold):
        p_toks, g_toks = official_normalize(pred).split(), official_normalize(gold).split()
        same = sum((collections.Counter(p_toks) & collections.Counter(g_toks)).values())
        if same == 0:
            return 0
        p, r = 1.0 * same / len(p_toks), 1.0 * same / len(g_toks)
        return (2 * p * r) / (p + r)

    em = f = total = 0
    for art in dataset:
        for par in art["paragraphs"]:
            for qa in par["qas"]:
                total += 1
                if qa["id"] not in preds:
                    continue
                golds = [a["text"] for a in qa["answers"]]
                em += max(official_normalize(preds[qa["id"]]) == official_normalize(g)
                          for g in golds)
                f += max(f1(preds[qa["id"]], g) for g in golds)
    return {"exact_match": 100.0 * em / total, "f1": 100.0 * f / total}


def as_dataset(references: dict) -> list:
    """Our id -> answers dict in the official JSON layout."""
    qas = [{"id": k, "answers": [{"text": t} for t in v]} for k, v in references.items()]
    return [{"paragraphs": [{"qas": qas}]}]


# ---- generated cases ----

PIECES = ["a", "an", "the", "The", "A", "AN", "tHe", "cat", "Cat", "dog", "x", "42", "3.14",
          "don't", "e-mail", "théâtre", "naïve", "İstanbul", "ǅemal", "straße", "anthem",
          "theater", "ana", "«the»", "(a)", "the-cat", "_a_", "\u212a", "東京", "ça", "an'"]
SEPARATORS = [" ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "", ",", ".", "!", "?",
              "'", '"', "-", "…", "¿", "—"]


def random_text(rng: random.Random, max_pieces: int = 6) -> str:
    out = []
    for _ in range(rng.randint(0, max_pieces)):
        if rng.random() < 0.1:
            out.append("".join(chr(rng.randint(0x20, 0x2FF)) for _ in range(rng.randint(1, 4))))
        else:
            out.append(rng.choice(PIECES))
        out.append(rng.choice(SEPARATORS))
    return "".join(out)


def random_case(rng: random.Random, n: int) -> tuple[dict, dict]:
    references, predictions = {}, {}
    for i in range(n):
        qid = f"q{i}"
        answers = [random_text(rng) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
        references[qid] = answers
        roll = rng.random()
        if roll < 0.15:
            predictions[qid] = ""
        elif roll < 0.35 and answers:
            predictions[qid] = rng.choice(answers) + rng.choice(["", " ", ".", " the"])
        else:
            predictions[qid] = random_text(rng)
    return predictions, references


def assert_same(ours: dict, reference: dict, tol: float = 1e-9) -> None:
    for key, value in reference.items():
        assert ours[key] == pytest.approx(value, abs=tol), key
    extra = set(ours) - set(reference) - {"missing", "v1"}
    assert not extra, extra


def test_v2_matches_official_logic_on_generated_questions():
    rng = random.Random(0)
    for _ in range(400):
        predictions, references = random_case(rng, rng.randint(1, 12))
        assert_same(squad.scores(predictions, references), official_v2(as_dataset(references),
                                                                       predictions))


def test_no_answer_threshold_and_best_threshold_match_official_scan():
    rng = random.Random(1)
    for _ in range(400):
        predictions, references = random_case(rng, rng.randint(1, 12))
        # Coarse probabilities give ties, where the scan order decides best_thresh.
        probs = {k: rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, rng.random()]) for k in predictions}
        thresh = rng.choice([0.0, 0.5, 1.0, rng.random()])
        ours = squad.scores(predictions, references, probs, thresh)
        assert_same(ours, official_v2(as_dataset(references), predictions, probs, thresh))


def test_v1_results_match_official_v1_logic_when_all_questions_answerable():
    rng = random.Random(2)
    for _ in range(400):
        predictions, references = random_case(rng, rng.randint(1, 12))
        references = {k: v or ["fallback"] for k, v in references.items()}
        reference = official_v1(as_dataset(references), predictions)
        assert squad.scores(predictions, references)["v1"] == pytest.approx(reference, abs=1e-9)
        assert squad.scores_v1(predictions, references) == pytest.approx(reference, abs=1e-9)


def test_v1_and_v2_differ_where_the_official_scripts_do():
    # v2.0 gives F1 1 for an empty prediction against a gold that normalises to "";
    # v1.1 gives F1 0 whenever no token is shared.
    result = squad.scores({"q": "."}, {"q": ["The"]})
    assert (result["f1"], result["HasAns_total"]) == (100.0, 1)
    assert result["v1"] == {"exact_match": 100.0, "f1": 0.0}


def test_curated_normalisation_cases():
    cases = [
        ("The Cat!", ["cat"], 100.0, 100.0),
        ("theater", ["the ater"], 0.0, 0.0),  # articles only as whole words
        ("«cat»", ["cat"], 0.0, 0.0),  # non-ASCII punctuation is kept
        ("a cat a", ["cat"], 100.0, 100.0),
        ("cat cat dog", ["cat dog"], 0.0, 80.0),
        ("İstanbul", ["i̇stanbul"], 100.0, 100.0),  # str.lower of dotted capital I
        ("", [], 100.0, 100.0),
        ("anything", [], 0.0, 0.0),
    ]
    for pred, golds, exact, f1 in cases:
        result = squad.scores({"q": pred}, {"q": golds})
        assert (result["exact"], result["f1"]) == pytest.approx((exact, f1)), pred


def test_missing_prediction_scores_zero_is_counted_and_warned():
    references = {"q1": ["cat"], "q2": ["dog"], "q3": []}
    with pytest.warns(UserWarning, match="2 of 3 questions have no prediction.*q2, q3"):
        result = squad.scores({"q1": "cat"}, references, {"q1": 0.1})
    assert result["missing"] == 2
    assert result["exact"] == pytest.approx(100 / 3)
    assert (result["HasAns_total"], result["HasAns_exact"]) == (2, 50.0)
    assert (result["NoAns_total"], result["NoAns_exact"]) == (1, 0.0)
    assert result["best_exact"] == pytest.approx(100 / 3)


def test_missing_prediction_in_v1_matches_official_v1():
    references = {"q1": ["cat"], "q2": ["dog"]}
    with pytest.warns(UserWarning, match="1 of 2"):
        ours = squad.scores_v1({"q1": "the cat"}, references)
    assert ours == official_v1(as_dataset(references), {"q1": "the cat"})


def test_gold_answers_of_the_official_dev_set_score_100():
    path = DATA / "dev-v2.0.json"
    if not path.exists():
        pytest.skip(f"{path} not found")
    dataset = json.loads(path.read_text())["data"]
    references = {qa["id"]: [a["text"] for a in qa["answers"]]
                  for art in dataset for par in art["paragraphs"] for qa in par["qas"]}
    gold = {k: v[0] if v else "" for k, v in references.items()}
    result = squad.scores(gold, references)
    assert (result["exact"], result["f1"], result["total"]) == (100.0, 100.0, 11873)

    # Wrong-ish predictions on real text: another question's answer, or a gold with noise.
    rng = random.Random(3)
    answers = [a for v in references.values() for a in v]
    noisy = {k: rng.choice([rng.choice(answers), g + " the", "", g.upper()]) for k, g in gold.items()}
    probs = {k: rng.random() for k in references}
    assert_same(squad.scores(noisy, references, probs, 0.5),
                official_v2(dataset, noisy, probs, 0.5))


@pytest.mark.parametrize("predictions, references, probs, message", [
    ({"q": None}, {"q": ["a"]}, None, "prediction for 'q' is NoneType"),
    ({"q": "a"}, {}, None, "references is empty"),
    ({"q": "a"}, {"q": "a"}, None, "must be a list of answer texts"),
    ({"q": "a"}, {"q": [1]}, None, "non-string answer"),
    (["a"], {"q": ["a"]}, None, "dicts keyed by question id"),
    ({"q": "a"}, {"q": ["a"]}, {"other": 0.5}, "no probability for 1 predicted"),
])
def test_bad_input_raises_value_error_naming_the_problem(predictions, references, probs, message):
    with pytest.raises(ValueError, match=message):
        squad.scores(predictions, references, probs)


def test_v1_rejects_unanswerable_questions():
    with pytest.raises(ValueError, match="use scores"):
        squad.scores_v1({"q": ""}, {"q": []})

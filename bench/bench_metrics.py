"""How fast our SQuAD and ROUGE scoring is next to the reference code, on the same inputs.

SQuAD: 10,000 questions (a third unanswerable) with no-answer probabilities, scored
by `metrics.squad.scores` and by `official_v2` from tests/test_metrics_squad.py, the
test-side restatement of the official v2.0 script (no packaged copy of the script
is installed here). ROUGE: 10,000 summary-like pairs of 2-4 newline-separated
sentences, scored by `metrics.rouge.scores` and by rouge-score's `RougeScorer`
for rouge1/2/L/Lsum, without and with stemming. Inputs are seeded; each timing is
the best of `--repeats` runs, our caches cleared before every run; both sides'
results are checked to agree before the table is printed.

    python bench/bench_metrics.py [--n 10000 --repeats 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rouge_score import rouge_scorer  # noqa: E402

from metrics import porter, rouge, squad  # noqa: E402
from tests.test_metrics_squad import as_dataset, official_v2  # noqa: E402


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """Word-like strings with English suffixes, so stemming has work to do."""
    syllables = ["ka", "ro", "tem", "lin", "sa", "por", "ve", "mi", "dur", "en", "gal", "tho"]
    suffixes = ["", "", "s", "ing", "ed", "ation", "ness", "ly", "er", "al"]
    words = {"".join(rng.choice(syllables) for _ in range(rng.randint(1, 3))) + rng.choice(suffixes)
             for _ in range(size)}
    return sorted(words) + ["the", "a", "an", "of", "in", "and", "to", "is"] * 40


def squad_inputs(rng: random.Random, n: int) -> tuple[dict, dict, dict]:
    words = vocabulary(rng, 3000)
    references, predictions, probs = {}, {}, {}
    for i in range(n):
        qid = f"{i:024x}"
        if rng.random() < 1 / 3:
            answers = []
        else:
            first = [rng.choice(words) for _ in range(rng.randint(1, 8))]
            answers = [" ".join(first[rng.randint(0, len(first) - 1):]) for _ in range(rng.randint(1, 3))]
            answers = [a.capitalize() + rng.choice(["", ".", ","]) for a in answers]
        references[qid] = answers
        roll = rng.random()
        if roll < 0.2 or not answers:
            predictions[qid] = "" if roll < 0.6 else " ".join(rng.choices(words, k=3))
        else:
            predictions[qid] = "The " + rng.choice(answers) + rng.choice(["", " of it"])
        probs[qid] = rng.random()
    return predictions, references, probs


def rouge_inputs(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    words = vocabulary(rng, 3000)

    def sentence() -> list[str]:
        return [rng.choice(words) for _ in range(rng.randint(8, 20))]

    predictions, references = [], []
    for _ in range(n):
        ref = [sentence() for _ in range(rng.randint(2, 4))]
        pred = [[w for w in s if rng.random() < 0.8] + rng.choices(words, k=2) for s in ref]
        rng.shuffle(pred)
        references.append("\n".join(" ".join(s).capitalize() + "." for s in ref))
        predictions.append("\n".join(" ".join(s) + "." for s in pred[: rng.randint(1, len(pred))]))
    return predictions, references


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        porter.stem.cache_clear()
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def rouge_reference(predictions: list[str], references: list[str], use_stemmer: bool) -> dict:
    scorer = rouge_scorer.RougeScorer(list(rouge.ROUGE_TYPES), use_stemmer=use_stemmer)
    totals = dict.fromkeys(rouge.ROUGE_TYPES, 0.0)
    for pred, ref in zip(predictions, references):
        for rouge_type, score in scorer.score(ref, pred).items():
            totals[rouge_type] += score.fmeasure
    return {k: v / len(predictions) for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="questions / pairs per benchmark")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = []
    preds, refs, probs = squad_inputs(random.Random(0), args.n)
    ours_s, ours = best_time(lambda: squad.scores(preds, refs, probs, 0.5), args.repeats)
    ref_s, ref = best_time(lambda: official_v2(as_dataset(refs), preds, probs, 0.5), args.repeats)
    assert all(abs(ours[k] - v) < 1e-9 for k, v in ref.items()), (ours, ref)
    rows.append(("SQuAD v2.0 scores", "official-script logic (tests)", ours_s, ref_s))

    predictions, references = rouge_inputs(random.Random(1), args.n)
    for use_stemmer in (False, True):
        ours_s, ours = best_time(lambda: rouge.scores(predictions, references, use_stemmer),
                                 args.repeats)
        ref_s, ref = best_time(lambda: rouge_reference(predictions, references, use_stemmer),
                               args.repeats)
        assert all(abs(ours[k] - v) < 1e-6 for k, v in ref.items()), (ours, ref)
        rows.append((f"ROUGE 1/2/L/Lsum{', stemmed' if use_stemmer else ''}",
                     "rouge_score.rouge_scorer", ours_s, ref_s))

    print(f"{args.n} examples, best of {args.repeats} runs\n")
    print("| metric | reference | ours (s) | reference (s) | reference / ours |")
    print("|---|---|---:|---:|---:|")
    for name, reference, ours_s, ref_s in rows:
        print(f"| {name} | {reference} | {ours_s:.3f} | {ref_s:.3f} | {ref_s / ours_s:.1f}x |")


if __name__ == "__main__":
    main()

"""Accuracy, precision, recall and F1 on a 0..1 scale, as scikit-learn computes them.

`report` is what a run writes for any number of classes: accuracy, macro and weighted
averages, a per-class table and the confusion matrix, plus the positive class's
precision / recall / F1 when the task is binary (`scores` alone gives those).

Undefined ratios (no predicted positives, no true positives) are 0.0, which is
scikit-learn's `zero_division=0`: a run that never predicts a class gets no credit
for it instead of a NaN that poisons an average. The confusion matrix uses
scikit-learn's layout: rows are true labels, columns predicted labels, both in the
sorted order listed under `classes`.
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence


def scores(predictions: Sequence[Hashable], labels: Sequence[Hashable],
           positive_label: Hashable = 1) -> dict:
    """Binary scores for `positive_label` (0..1) plus accuracy and the confusion matrix."""
    preds, gold = _paired(predictions, labels)
    classes = _classes(preds, gold)
    if len(classes) > 2:
        raise ValueError(f"binary scores need at most two classes, found {len(classes)}: "
                         f"{classes}; use macro_scores")
    if len(classes) == 2 and positive_label not in classes:
        raise ValueError(f"positive_label={positive_label!r} is not one of the classes {classes}")
    pairs = Counter(zip(gold, preds))
    tp = pairs[(positive_label, positive_label)]
    predicted = sum(n for (_, p), n in pairs.items() if p == positive_label)
    actual = sum(n for (t, _), n in pairs.items() if t == positive_label)
    return {
        "accuracy": _accuracy(pairs, len(gold)),
        "precision": _ratio(tp, predicted),
        "recall": _ratio(tp, actual),
        "f1": _ratio(2 * tp, predicted + actual),
        "confusion_matrix": _matrix(pairs, classes),
        "classes": classes,
    }


def macro_scores(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> dict:
    """Unweighted mean over classes of per-class precision, recall and F1 (0..1).

    Every class seen in either labels or predictions counts, so a class the model
    invents lowers the average just as scikit-learn's `average="macro"` does.
    """
    preds, gold = _paired(predictions, labels)
    classes = _classes(preds, gold)
    pairs = Counter(zip(gold, preds))
    predicted = Counter(preds)
    actual = Counter(gold)
    per_class = [(pairs[(c, c)], predicted[c], actual[c]) for c in classes]
    n = len(classes)
    return {
        "accuracy": _accuracy(pairs, len(gold)),
        "precision": sum(_ratio(tp, p) for tp, p, _ in per_class) / n,
        "recall": sum(_ratio(tp, a) for tp, _, a in per_class) / n,
        "f1": sum(_ratio(2 * tp, p + a) for tp, p, a in per_class) / n,
        "confusion_matrix": _matrix(pairs, classes),
        "classes": classes,
    }


def report(predictions: Sequence[Hashable], labels: Sequence[Hashable], classes: Sequence[Hashable],
           positive_label: Hashable | None = None) -> dict:
    """Scores of an N-class classifier whose label set is `classes` (0..1).

    Per class (rows of `per_class`, in the order of `classes`, support = its true examples):
    precision, recall, F1. `macro_*` is their unweighted mean and `weighted_*` their mean
    weighted by support, both over the classes found in the labels or the predictions, as
    scikit-learn's `average="macro"` / `"weighted"` (so a class absent from a small test set
    does not count as a zero). The confusion matrix spans all of `classes`, rows true, columns
    predicted. With `positive_label`, `precision` / `recall` / `f1` are that class's
    (scikit-learn's `average="binary"`), and the keys of `scores` are all there.
    """
    preds, gold = _paired(predictions, labels)
    classes = list(classes.tolist() if hasattr(classes, "tolist") else classes)
    unknown = sorted({repr(x) for x in gold + preds if x not in classes})
    if unknown:
        raise ValueError(f"labels or predictions outside the classes {classes}: {', '.join(unknown[:5])}")
    if positive_label is not None and positive_label not in classes:
        raise ValueError(f"positive_label={positive_label!r} is not one of the classes {classes}")
    pairs = Counter(zip(gold, preds))
    predicted, actual = Counter(preds), Counter(gold)
    rows = [{"class": c, "precision": _ratio(pairs[(c, c)], predicted[c]), "recall": _ratio(pairs[(c, c)], actual[c]),
             "f1": _ratio(2 * pairs[(c, c)], predicted[c] + actual[c]), "support": actual[c]} for c in classes]
    present = [r for r in rows if r["class"] in predicted or r["class"] in actual]
    result = {"accuracy": _accuracy(pairs, len(gold))}
    if positive_label is not None:
        result.update({k: rows[classes.index(positive_label)][k] for k in ("precision", "recall", "f1")})
    for key in ("precision", "recall", "f1"):
        result[f"macro_{key}"] = sum(r[key] for r in present) / len(present)
        result[f"weighted_{key}"] = sum(r[key] * r["support"] for r in present) / len(gold)
    return {**result, "per_class": rows, "confusion_matrix": _matrix(pairs, classes), "classes": classes}


def _paired(predictions: Sequence[Hashable], labels: Sequence[Hashable]) -> tuple[list, list]:
    """Plain Python lists; `.tolist()` turns numpy/torch scalars into JSON-friendly ones."""
    if isinstance(predictions, str) or isinstance(labels, str):
        raise ValueError("predictions and labels must be sequences of labels, not one string")
    preds = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    gold = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    if len(preds) != len(gold):
        raise ValueError(f"predictions has {len(preds)} items but labels has {len(gold)}; "
                         "they must pair up one to one")
    if not gold:
        raise ValueError("labels is empty: scores need at least one example")
    return preds, gold


def _classes(preds: list, gold: list) -> list:
    try:
        return sorted(set(gold) | set(preds))
    except TypeError as err:
        raise ValueError(f"labels and predictions mix types that cannot be ordered: {err}") from None


def _accuracy(pairs: Counter, n: int) -> float:
    return sum(count for (t, p), count in pairs.items() if t == p) / n


def _matrix(pairs: Counter, classes: list) -> list[list[int]]:
    return [[pairs[(t, p)] for p in classes] for t in classes]


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0

"""metrics.classification agrees with scikit-learn (zero_division=0) to 1e-9."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
from sklearn import metrics as sk

from metrics import classification

TOL = 1e-9


def sklearn_scores(preds, gold, average, pos_label=1):
    kwargs = {"average": average, "zero_division": 0}
    if average == "binary":
        kwargs["pos_label"] = pos_label
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision, recall, f1, _ = sk.precision_recall_fscore_support(gold, preds, **kwargs)
        return {
            "accuracy": sk.accuracy_score(gold, preds),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "confusion_matrix": sk.confusion_matrix(gold, preds).tolist(),
        }


def assert_same(ours: dict, reference: dict) -> None:
    for key in ("accuracy", "precision", "recall", "f1"):
        assert ours[key] == pytest.approx(reference[key], abs=TOL), key
    assert ours["confusion_matrix"] == reference["confusion_matrix"]


def random_labels(rng: random.Random, classes: list, n: int, skew: float) -> list:
    """Labels that are often dominated by one class, so 0/0 ratios come up."""
    return [classes[0] if rng.random() < skew else rng.choice(classes) for _ in range(n)]


def test_binary_scores_match_sklearn_on_generated_labels():
    rng = random.Random(0)
    for _ in range(1000):
        classes = rng.choice([[0, 1], [1, 0], ["neg", "pos"], [True, False]])
        n = rng.randint(1, 40)
        gold = random_labels(rng, classes, n, rng.random())
        preds = random_labels(rng, classes, n, rng.random())
        pos = rng.choice(classes)
        assert_same(classification.scores(preds, gold, positive_label=pos),
                    sklearn_scores(preds, gold, "binary", pos))


def test_macro_scores_match_sklearn_on_generated_labels():
    rng = random.Random(1)
    for _ in range(1000):
        classes = list(range(rng.randint(1, 6)))
        n = rng.randint(1, 60)
        gold = random_labels(rng, classes, n, rng.random())
        # Predictions may invent a class the labels never hold.
        preds = random_labels(rng, classes + [99], n, rng.random())
        assert_same(classification.macro_scores(preds, gold), sklearn_scores(preds, gold, "macro"))


def test_numpy_inputs_give_plain_python_classes():
    result = classification.scores(np.array([1, 0, 1]), np.array([1, 1, 0]))
    assert result["classes"] == [0, 1] and type(result["classes"][0]) is int
    assert result["confusion_matrix"] == [[0, 1], [1, 1]]


def test_undefined_ratios_are_zero():
    result = classification.scores([0, 0, 0], [0, 0, 0])
    assert (result["accuracy"], result["precision"], result["recall"], result["f1"]) == (1, 0, 0, 0)


def test_binary_refuses_more_than_two_classes():
    with pytest.raises(ValueError, match="at most two classes.*macro_scores"):
        classification.scores([0, 1, 2], [0, 1, 1])


@pytest.mark.parametrize("preds, gold, kwargs, message", [
    ([0, 1], [0], {}, "predictions has 2 items but labels has 1"),
    ([], [], {}, "labels is empty"),
    ([0, 2], [2, 0], {}, "positive_label=1 is not one of the classes"),
    (["a", 1], [1, 1], {}, "mix types"),
])
def test_bad_input_raises_value_error_naming_the_problem(preds, gold, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classification.scores(preds, gold, **kwargs)


def sklearn_report(preds, gold, classes, pos_label=None) -> dict:
    """scikit-learn's answer for every key `classification.report` writes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = {"accuracy": sk.accuracy_score(gold, preds),
                     "confusion_matrix": sk.confusion_matrix(gold, preds, labels=classes).tolist()}
        for average in ("macro", "weighted"):
            p, r, f, _ = sk.precision_recall_fscore_support(gold, preds, average=average, zero_division=0)
            reference.update({f"{average}_precision": p, f"{average}_recall": r, f"{average}_f1": f})
        p, r, f, s = sk.precision_recall_fscore_support(gold, preds, labels=classes, average=None, zero_division=0)
        reference["per_class"] = [{"class": c, "precision": p[i], "recall": r[i], "f1": f[i], "support": s[i]}
                                  for i, c in enumerate(classes)]
        if pos_label is not None:
            p, r, f, _ = sk.precision_recall_fscore_support(gold, preds, average="binary", pos_label=pos_label,
                                                            zero_division=0)
            reference.update({"precision": p, "recall": r, "f1": f})
    return reference


def assert_same_report(ours: dict, reference: dict) -> None:
    assert ours.keys() - {"classes"} == reference.keys()
    for key, value in reference.items():
        if key == "per_class":
            for row, expected in zip(ours[key], value, strict=True):
                assert row["class"] == expected["class"] and row["support"] == expected["support"]
                for metric in ("precision", "recall", "f1"):
                    assert row[metric] == pytest.approx(expected[metric], abs=TOL), (row["class"], metric)
        elif key == "confusion_matrix":
            assert ours[key] == value
        else:
            assert ours[key] == pytest.approx(value, abs=TOL), key


def test_n_class_report_matches_sklearn_on_generated_labels():
    """Up to 48 classes, some absent from a small test set or never predicted (0/0 ratios)."""
    rng = random.Random(2)
    for _ in range(600):
        classes = rng.choice([list(range(rng.randint(2, 48))), ["cat", "dog", "emu"], ["entailment", "neutral"]])
        n = rng.randint(1, 80)
        gold = random_labels(rng, classes, n, rng.random())
        preds = random_labels(rng, classes, n, rng.random())
        ours = classification.report(preds, gold, classes)
        assert ours["classes"] == classes and len(ours["confusion_matrix"]) == len(classes)
        assert_same_report(ours, sklearn_report(preds, gold, classes))


def test_binary_report_keeps_the_positive_class_scores_and_adds_the_averages():
    rng = random.Random(3)
    for _ in range(300):
        classes = rng.choice([[0, 1], ["negative", "positive"]])
        n = rng.randint(1, 40)
        gold, preds = random_labels(rng, classes, n, rng.random()), random_labels(rng, classes, n, rng.random())
        pos = classes[1]
        ours = classification.report(preds, gold, classes, positive_label=pos)
        assert_same_report(ours, sklearn_report(preds, gold, classes, pos))
        if set(gold) | set(preds) == set(classes):  # else `scores` sees one class, `report` always both
            binary = classification.scores(preds, gold, positive_label=pos)
            assert {k: ours[k] for k in binary} == binary


def test_report_refuses_a_label_outside_the_classes():
    with pytest.raises(ValueError, match="outside the classes.*'bird'"):
        classification.report(["cat", "bird"], ["cat", "dog"], ["cat", "dog"])
    with pytest.raises(ValueError, match="positive_label='emu'"):
        classification.report(["cat"], ["dog"], ["cat", "dog"], positive_label="emu")

"""SQuAD 2.0: when to answer "" is chosen on the validation slice (the official best-F1 threshold),
applied to the test split, recorded in the head file, and never influenced by the test answers."""

from __future__ import annotations

import dataclasses
import json

import pytest
from safetensors import safe_open

import eval as eval_script
import train as train_script
from data.squad import QAExample
from metrics import squad
from tasks import TASKS
from test_train_e2e import SQUAD, metrics_of, run

TASK = TASKS["squad"]


def question(qid: str, answers: list[str]) -> QAExample:
    context = "Paris is the capital of France and Berlin is the capital of Germany."
    return QAExample(id=qid, title="t", context=context, question="q?", answers=answers,
                     answer_starts=[context.find(a) for a in answers], is_impossible=not answers)


EXAMPLES = [question("a", ["Paris"]), question("b", ["Berlin"]), question("c", []), question("d", []),
            question("e", ["France"])]
# The head's best span and no-answer probability per question: right spans on a, b; a wrong one on e.
PREDICTIONS = [{"text": "Paris", "no_answer_prob": 0.62}, {"text": "Berlin", "no_answer_prob": 0.91},
               {"text": "Germany", "no_answer_prob": 0.95}, {"text": "France", "no_answer_prob": 0.40},
               {"text": "Germany", "no_answer_prob": 0.70}]


def v2(threshold):
    return dataclasses.replace(TASK, squad_version="2.0", no_answer_threshold=threshold)


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.65, 0.92, 1.0])
def test_a_question_is_answered_empty_exactly_where_its_probability_is_above_the_threshold(threshold):
    metrics, rows = v2(threshold).score(EXAMPLES, PREDICTIONS)
    expected = {e.id: "" if p["no_answer_prob"] > threshold else p["text"] for e, p in zip(EXAMPLES, PREDICTIONS)}
    assert {r["id"]: r["prediction"] for r in rows} == expected
    plain = squad.scores(expected, {e.id: e.answers for e in EXAMPLES})  # the same answers, no probabilities
    assert metrics["squad"]["exact"] == pytest.approx(plain["exact"])
    assert metrics["squad"]["f1"] == pytest.approx(plain["f1"])


def test_auto_before_validation_abstains_where_the_no_answer_slot_outscores_the_best_span():
    _, rows = v2("auto").score(EXAMPLES, PREDICTIONS)
    assert [r["prediction"] for r in rows] == ["", "", "", "France", ""]  # probability > 0.5


def test_the_chosen_threshold_scores_the_best_f1_on_the_data_it_was_chosen_on():
    validation, _ = v2("auto").score(EXAMPLES, PREDICTIONS)
    decision = v2("auto").decision_rule(lambda: validation)
    assert decision == {"no_answer_threshold": 0.91}  # answer a and b, abstain on c; d and e are lost
    chosen, _ = v2(decision["no_answer_threshold"]).score(EXAMPLES, PREDICTIONS)
    assert chosen["squad"]["f1"] == pytest.approx(validation["squad"]["best_f1"]) == pytest.approx(60.0)
    for other in (0.0, 0.5, 0.65, 0.75, 1.0):
        assert v2(other).score(EXAMPLES, PREDICTIONS)[0]["squad"]["f1"] <= chosen["squad"]["f1"]


def test_nothing_is_chosen_for_a_given_threshold_without_validation_or_for_squad_1_1():
    def must_not_score():
        raise AssertionError("the validation slice was scored with nothing to choose")

    assert v2(0.3).decision_rule(must_not_score) == {}
    assert v2("auto").decision_rule(lambda: None) == {}  # a rank other than 0
    v1 = dataclasses.replace(TASK, squad_version="1.1", no_answer_threshold="auto")
    assert v1.decision_rule(must_not_score) == {}
    assert TASKS["sst2"].decision_rule(must_not_score) == {}


def test_a_threshold_given_on_the_command_line_is_kept():
    given = v2(0.3).with_decision({"no_answer_threshold": 0.9})
    auto = v2("auto").with_decision({"no_answer_threshold": 0.9})
    assert given.no_answer_threshold == 0.3 and auto.no_answer_threshold == 0.9


AUTO = [*SQUAD, "--no-answer-threshold", "auto", "--zero-shot", "none"]


@pytest.fixture(scope="module")
def v2_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("v2") / "run"
    assert run(train_script, [*AUTO, "--model", str(tiny), "--output", str(out)])[0] == 0
    return out


def test_the_threshold_is_chosen_on_validation_and_travels_in_the_head_file_to_eval(v2_run, tmp_path):
    metrics = metrics_of(v2_run)
    threshold = metrics["decision"]["no_answer_threshold"]
    assert 0 <= threshold <= 1
    with safe_open(str(v2_run / "head.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["decision"]) == metrics["decision"]
    assert f"no_answer_threshold={threshold}" in (v2_run / "report.md").read_text()
    assert run(eval_script, ["--task", "squad", "--head", str(v2_run), "--output", str(tmp_path / "eval")])[0] == 0
    assert metrics_of(tmp_path / "eval")["fine_tuned"] == metrics["fine_tuned"]


def test_the_test_answers_never_change_the_threshold(v2_run, tiny, tmp_path, monkeypatch):
    """Make every test question unanswerable: the threshold and the head must not move."""
    import data.sources
    import training.loading

    real = data.sources.load_task_data

    def unanswerable_test(*args, **kwargs):
        train, test = real(*args, **kwargs)
        return train, [dataclasses.replace(e, answers=[], answer_starts=[], is_impossible=True) for e in test]

    monkeypatch.setattr(training.loading, "load_task_data", unanswerable_test)
    out = tmp_path / "unanswerable"
    assert run(train_script, [*AUTO, "--model", str(tiny), "--output", str(out)])[0] == 0
    assert metrics_of(out)["decision"] == metrics_of(v2_run)["decision"]
    assert metrics_of(out)["history"][-1]["val_loss"] == metrics_of(v2_run)["history"][-1]["val_loss"]


def test_a_fixed_threshold_chooses_nothing_and_eval_inherits_it(tiny, tmp_path):
    out = tmp_path / "fixed"
    argv = [*SQUAD, "--no-answer-threshold", "0.8", "--zero-shot", "none", "--model", str(tiny), "--output", str(out)]
    assert run(train_script, argv)[0] == 0
    metrics = metrics_of(out)
    assert metrics["decision"] == {}
    assert run(eval_script, ["--task", "squad", "--head", str(out), "--output", str(tmp_path / "eval")])[0] == 0
    assert metrics_of(tmp_path / "eval")["fine_tuned"] == metrics["fine_tuned"]
    abstain = ["--task", "squad", "--head", str(out), "--no-answer-threshold", "0", "--output", str(tmp_path / "zero")]
    assert run(eval_script, abstain)[0] == 0  # a threshold given to eval.py wins: 0 abstains everywhere
    scores = metrics_of(tmp_path / "zero")["fine_tuned"]["squad"]
    assert scores["f1"] == pytest.approx(100 * scores["NoAns_total"] / scores["total"])

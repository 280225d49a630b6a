"""--task classification / qa on your own files, end to end on the tiny model: SST-2 as CSV with word labels
reproduces --task sst2 exactly, N classes and sentence pairs train with every readout and reload, QA from JSONL
equals QA from SQuAD JSON, and bad input is one line, exit 2, nothing written."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

import eval as eval_script
import train as train_script
from data.squad import read_squad_json, squad_format
from data.sst2 import SST2_FORMAT, read_sst2_tsv
from tasks import TASKS
from test_train_e2e import SQUAD, SST2, head_tensors, metrics_of, run

COMMON = ["--lr", "1e-2", "--epochs", "3", "--batch-size", "16"]
WORDS = ["good", "bad", "dull", "fine", "warm", "cold", "long", "short", "odd", "new"]


def without_timings(metrics: dict) -> dict:
    """metrics.json but its wall-clock seconds (the run's and each epoch's)."""
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in metrics["history"]]
    return {**{k: v for k, v in metrics.items() if k != "timings"}, "history": history}


def sst2_as_csv(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "label"])
        writer.writerows((e.text, ("negative", "positive")[e.label]) for e in read_sst2_tsv(SST2_FORMAT.sample))
    return path


def test_sst2_as_csv_with_word_labels_reproduces_the_sst2_task_exactly(tiny, tmp_path):
    """Same seed, same settings: the seeded holdout split, the readout choice, training, both baselines."""
    flags = [*COMMON, "--model", str(tiny), "--limit", "96", "--eval-limit", "40", "--block", "1,2",
             "--val-fraction", "0.2"]
    assert run(train_script, ["--task", "sst2", "--data", "sample", *flags, "--output", str(tmp_path / "sst2")])[0] == 0
    generic = ["--task", "classification", "--train-file", str(sst2_as_csv(tmp_path / "sst2.csv")),
               "--text-column", "sentence", "--prompt", TASKS["sst2"].prompt]
    assert run(train_script, [*generic, *flags, "--output", str(tmp_path / "csv")])[0] == 0
    assert without_timings(metrics_of(tmp_path / "csv")) == without_timings(metrics_of(tmp_path / "sst2"))
    assert (tmp_path / "csv" / "predictions.jsonl").read_text() == (tmp_path / "sst2" / "predictions.jsonl").read_text()


def three_class_pairs(path: Path, n: int, offset: int = 0) -> Path:
    """A JSONL of pairs whose label (a, b or c) is which word the second text repeats: learnable from the pair only."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(offset, offset + n):
            first = " ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(3 + i % 4))
            label = "abc"[i % 3]
            second = first.split()[0] if label == "a" else first.split()[-1] if label == "b" else "nothing here"
            f.write(json.dumps({"premise": first, "hypothesis": second, "gold": label, "id": i}) + "\n")
    return path


@pytest.fixture(scope="module")
def pairs_run(tiny, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pairs")
    out = tmp / "run"
    argv = ["--task", "classification", "--train-file", str(three_class_pairs(tmp / "train.jsonl", 90)),
            "--test-file", str(three_class_pairs(tmp / "test.jsonl", 30, offset=1000)),
            "--text-column", "premise", "--text-pair-column", "hypothesis", "--label-column", "gold",
            "--model", str(tiny), *COMMON, "--block", "1,2", "--val-fraction", "0.2",
            "--output", str(out)]
    assert run(train_script, argv)[0] == 0
    return out


def test_three_classes_of_pairs_train_with_a_head_row_per_label_and_each_block_as_a_candidate(pairs_run):
    metrics = metrics_of(pairs_run)
    assert {(r["block"], r["echo"], r["pool"]) for r in metrics["selection"]} == {(1, True, "mean"), (2, True, "mean")}
    fine = metrics["fine_tuned"]
    assert [r["label"] for r in fine["per_class"]] == ["a", "b", "c"] and sum(r["support"] for r in fine["per_class"]) == 30
    assert len(fine["confusion_matrix"]) == 3 and "f1" not in fine and 0 <= fine["macro_f1"] <= 1
    assert head_tensors(pairs_run)["score.weight"].shape == (3, 32)
    rows = [json.loads(line) for line in (pairs_run / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and {"text", "text_pair", "label", "prediction", "score"} == set(rows[0])
    assert (pairs_run / "confusion.png").is_file()
    report = (pairs_run / "report.md").read_text()
    assert "| Macro F1 |" in report and "## Per class" in report and "| c |" in report


def test_an_n_class_head_reloads_in_eval_and_reproduces_its_metrics(pairs_run, tmp_path):
    assert run(eval_script, ["--task", "classification", "--head", str(pairs_run), "--output", str(tmp_path)])[0] == 0
    assert metrics_of(tmp_path)["fine_tuned"] == metrics_of(pairs_run)["fine_tuned"]


def test_qa_from_squad_layout_jsonl_equals_qa_from_the_official_json(tiny, tmp_path):
    rows = [{"id": e.id, "title": e.title, "context": e.context, "question": e.question,
             "answers": {"text": e.answers, "answer_start": e.answer_starts}} for e in read_squad_json(squad_format("2.0").sample)]
    jsonl = tmp_path / "squad.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    flags = [a for a in SQUAD if a not in ("--task", "squad", "--data", "sample")] + ["--model", str(tiny)]
    assert run(train_script, ["--task", "squad", "--data", "sample", *flags, "--output", str(tmp_path / "a")])[0] == 0
    assert run(train_script, ["--task", "qa", "--train-file", str(jsonl), *flags, "--output", str(tmp_path / "b")])[0] == 0
    assert without_timings(metrics_of(tmp_path / "b")) == without_timings(metrics_of(tmp_path / "a"))


def test_a_text_longer_than_the_context_is_cut_with_a_count_in_the_log(tiny, tmp_path, capsys):
    train = three_class_pairs(tmp_path / "train.jsonl", 30)
    with open(train, "a", encoding="utf-8") as f:  # the tiny model's context is 1,024 tokens
        f.write(json.dumps({"premise": "good " * 5000, "hypothesis": "good", "gold": "a"}) + "\n")
    argv = ["--task", "classification", "--train-file", str(train), "--text-column", "premise", "--label-column",
            "gold", "--model", str(tiny), *COMMON, "--block", "last", "--echo", "--pool", "mean", "--recipe", "report",
            "--zero-shot", "none", "--output", str(tmp_path / "run")]
    code, err = run(train_script, argv, capsys)
    assert code == 0 and "note: 1 of 25 texts cut to the model's context of 1,024 tokens (echoed: half each copy)" in err


@pytest.mark.parametrize("argv, message", [
    (["--task", "classification"], "--task classification reads your files: give --train-file"),
    (["--task", "classification", "--train-file", "{train}", "--text-column", "premise", "--label-column", "label"],
     r"train\.jsonl:1: no column 'label' \(columns found: 'premise', 'hypothesis', 'gold', 'id'\); name the right one "
     "with --label-column"),
    (["--task", "classification", "--train-file", "{train}", "--text-column", "premise", "--label-column", "gold",
      "--test-file", "{unseen}"], r"unseen\.csv:2: label 'z' never occurs in the training file"),
    (["--task", "sst2", "--train-file", "{train}"], "--train-file is a classification setting, not one of sst2"),
    (["--task", "classification", "--train-file", "{train}", "--data", "sample", "--text-column", "premise",
      "--label-column", "gold"], "--data and --train-file both name the data"),
    (["--task", "qa", "--train-file", "{train}"], r"train\.jsonl:1: no 'context', 'question', 'answers'"),
    (["--task", "classification", "--train-file", "{train}", "--text-column", "premise", "--label-column", "gold",
      "--prompt", "{sentence}"], r"--prompt '\{sentence\}': KeyError 'sentence'"),
])
def test_bad_input_is_one_line_and_exit_2_with_nothing_written(tiny, tmp_path, capsys, argv, message):
    files = {"train": three_class_pairs(tmp_path / "train.jsonl", 30), "unseen": tmp_path / "unseen.csv"}
    files["unseen"].write_text("premise,gold\nsome text,z\n")
    out = tmp_path / "out"
    argv = [a.format(**files) if a.startswith("{") and "sentence" not in a else a for a in argv]
    code, err = run(train_script, [*argv, "--model", str(tiny), *COMMON, "--output", str(out)], capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert not out.exists()

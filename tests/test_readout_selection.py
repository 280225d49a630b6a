"""The converged recipe: the readout and the epoch are chosen on the validation slice, never on the test split,
and the choice travels with the head to eval.py."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors import safe_open

import eval as eval_script
import train as train_script
from tasks import TASKS, ReadoutChoice
from test_train_e2e import head_tensors, metrics_of, run

AUTO = ["--task", "sst2", "--data", "sample", "--lr", "1e-2", "--epochs", "4", "--limit", "120", "--eval-limit", "40",
        "--batch-size", "16", "--block", "1,2", "--zero-shot", "none", "--dtype", "float32"]


@pytest.fixture(scope="module")
def auto_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("auto") / "run"
    assert run(train_script, [*AUTO, "--model", str(tiny), "--output", str(out)])[0] == 0
    return out


def test_every_candidate_readout_is_scored_on_validation_and_the_lowest_loss_wins(auto_run):
    metrics = metrics_of(auto_run)
    rows = metrics["selection"]
    assert [(r["block"], r["echo"], r["pool"]) for r in rows] == [(1, True, "mean"), (2, True, "mean")]  # the recipe's
    best = min(rows, key=lambda r: r["val_loss"])
    assert metrics["readout"] == {"block": best["block"], "echo": best["echo"], "pool": best["pool"]}
    assert all(h["best_epoch"] <= h["epoch"] for h in metrics["history"])
    assert "blocks.png" in (auto_run / "report.md").read_text() and (auto_run / "blocks.png").stat().st_size > 0


def test_the_test_labels_never_change_the_choice_or_the_head(auto_run, tiny, tmp_path, monkeypatch):
    """Flip every test label: readout, epoch, losses and head must not move; only the test scores may."""
    import data.sources
    import training.loading

    real = data.sources.load_task_data

    def flipped_test_labels(*args, **kwargs):
        train, test = real(*args, **kwargs)
        return train, [dataclasses.replace(e, label=1 - e.label) for e in test]

    monkeypatch.setattr(training.loading, "load_task_data", flipped_test_labels)
    out = tmp_path / "flipped"
    assert run(train_script, [*AUTO, "--model", str(tiny), "--output", str(out)])[0] == 0
    original, flipped = metrics_of(auto_run), metrics_of(out)
    assert flipped["selection"] == original["selection"] and flipped["readout"] == original["readout"]
    assert flipped["history"] == [{**h, "seconds": f["seconds"]} for h, f in zip(original["history"],
                                                                                 flipped["history"])]
    for name, tensor in head_tensors(out).items():
        torch.testing.assert_close(tensor, head_tensors(auto_run)[name], rtol=0, atol=0)
    assert flipped["fine_tuned"]["accuracy"] == pytest.approx(1 - original["fine_tuned"]["accuracy"])


def test_the_chosen_readout_travels_in_the_head_file_to_eval(auto_run, tmp_path):
    with safe_open(str(auto_run / "head.safetensors"), framework="pt") as f:
        readout = json.loads(f.metadata()["readout"])
    assert readout == metrics_of(auto_run)["readout"]
    assert run(eval_script, ["--task", "sst2", "--head", str(auto_run), "--output", str(tmp_path)])[0] == 0
    assert metrics_of(tmp_path)["fine_tuned"] == metrics_of(auto_run)["fine_tuned"]


@pytest.mark.parametrize("name", ["sst2", "squad"])
def test_auto_tries_the_blocks_tuning_data_let_win_and_a_list_is_chosen_among(name):
    """SmolLM2 (30 blocks): blocks 15 and 20 won on both tasks' tuning data (RESULTS.md), so the pass stops at 20."""
    task, depth = TASKS[name], 30
    config = type("Config", (), {"num_hidden_layers": depth})
    choice = ReadoutChoice(block="auto", echo=True, pool="mean" if name == "sst2" else None)
    assert [r.block for r in task.readouts(choice, config)] == [15, 20]
    listed = ReadoutChoice(block="25,15,25", echo=True, pool=choice.pool)
    assert [r.block for r in task.readouts(listed, config)] == [15, 25]
    assert [r.block for r in task.readouts(ReadoutChoice("last", echo=False, pool=choice.pool), config)] == [30]


def test_an_auto_readout_without_a_validation_slice_is_one_line(tiny, tmp_path, capsys):
    code, err = run(train_script, [*AUTO, "--model", str(tiny), "--val-fraction", "0", "--output", str(tmp_path / "x")],
                    capsys)
    assert code == 2 and "--val-fraction" in err and err.count("\n") == 1

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


@pytest.mark.parametrize("argv", [[*AUTO, "--select-limit", "30"],
                                  ["--task", "squad", "--squad-version", "2.0", "--data", "sample", "--epochs", "3",
                                   "--limit", "24", "--eval-limit", "8", "--batch-size", "8", "--max-length", "192",
                                   "--doc-stride", "64", "--block", "1,2", "--select-limit", "10", "--zero-shot",
                                   "none", "--dtype", "float32"]], ids=["sst2", "squad"])
def test_choosing_on_a_subset_runs_each_training_example_through_the_base_once(argv, tiny, tmp_path, monkeypatch):
    """--select-limit K: the candidates see a subset of K training examples; the rest then run through the
    chosen block only, and the head trains on both as on the states of one pass over all of them."""
    passes: dict[str, int] = {}
    configured = train_script.configured_task

    def counting(args):
        task = configured(args)
        base = type(task)

        def frozen_pass(self, model, prepared, candidates, place, desc, store=None):
            passes[desc] = passes.get(desc, 0) + len(prepared.labels if hasattr(prepared, "labels") else
                                                     {w.example_id for w in prepared.windows})
            return base.frozen_pass(self, model, prepared, candidates, place, desc, store)

        spy = type("Counting", (base,), {"frozen_pass": frozen_pass})
        return spy(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)})

    monkeypatch.setattr(train_script, "configured_task", counting)
    chosen_on_subset = tmp_path / "subset"
    assert run(train_script, [*argv, "--model", str(tiny), "--output", str(chosen_on_subset)])[0] == 0
    limit, n_train = int(argv[argv.index("--select-limit") + 1]), int(argv[argv.index("--limit") + 1])
    n_val = round(n_train * 0.1)  # the converged recipe's validation slice, besides the --limit training examples
    assert passes == {"selection states": limit, "val states": n_val, "train states": n_train - limit,
                      "test states": int(argv[argv.index("--eval-limit") + 1])}
    whole = tmp_path / "whole"  # the candidates trained on every training example: one pass made all their states
    assert run(train_script, [*argv, "--model", str(tiny), "--select-limit", "1000", "--output", str(whole)])[0] == 0
    merged, one_pass = metrics_of(chosen_on_subset), metrics_of(whole)
    assert merged["readout"] == one_pass["readout"]  # (validation losses 0.01 apart on this tiny model)
    for a, b in zip(merged["history"], one_pass["history"], strict=True):  # states of other batches: float rounding
        assert a["mean_loss"] == pytest.approx(b["mean_loss"], rel=1e-6)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-6) and a["best_epoch"] == b["best_epoch"]
    for name, tensor in head_tensors(chosen_on_subset).items():
        torch.testing.assert_close(tensor, head_tensors(whole)[name], rtol=1e-5, atol=1e-6)

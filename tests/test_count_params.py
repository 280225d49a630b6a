"""count_params.py reproduces the original report's parameter summary, from configs alone."""

from __future__ import annotations

import json

import pytest

import count_params


def facts(capsys, *argv: str) -> dict:
    count_params.main([*argv, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("task, total, trainable", [
    (None, 1_235_814_400, 0), ("sst2", 1_235_818_496, 4_096), ("squad", 1_235_818_498, 4_098)])
def test_llama_3_2_1b_counts_match_the_original_report(capsys, task, total, trainable):
    result = facts(capsys, *(["--task", task] if task else []))
    assert (result["total"], result["trainable"]) == (total, trainable)
    assert result["frozen"] == 1_235_814_400
    assert sum(row["count"] for row in result["modules"]) == total


def test_llama_3_2_3b_base_count(capsys):
    assert facts(capsys, "--model", "meta-llama/Llama-3.2-3B")["total"] == 3_212_749_824


def test_module_names_are_checkpoint_keys_and_heads_come_last(capsys):
    names = [row["name"] for row in facts(capsys, "--task", "sst2")["modules"]]
    assert names[0] == "model.embed_tokens.weight" and names[-2] == "model.norm.weight"
    assert names[-1] == "score.weight" and "model.layers.15.mlp.down_proj.weight" in names
    assert len(names) == 1 + 16 * 9 + 1 + 1


def test_by_layer_groups_repeated_layers_with_the_same_total(capsys):
    result = facts(capsys, "--task", "squad", "--by-layer")
    rows = {row["name"]: row for row in result["modules"]}
    q_proj = rows["model.layers.[0-15].self_attn.q_proj.weight"]
    assert q_proj["layers"] == 16 and q_proj["count"] == 16 * 2048 * 2048
    assert rows["qa_outputs.bias"]["count"] == 2
    assert sum(row["count"] for row in rows.values()) == 1_235_818_498


def test_table_prints_the_summary(capsys):
    count_params.main(["--task", "sst2"])
    out = capsys.readouterr().out
    assert "total:     1,235,818,496" in out and "trainable: 4,096" in out and "score.weight" in out


def test_unknown_model_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        count_params.main(["--model", "./no/such/dir"])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_a_classifier_head_has_one_row_per_label(capsys):
    result = facts(capsys, "--task", "classification", "--num-labels", "48")
    assert result["trainable"] == 48 * 2048 and result["modules"][-1] == {
        "name": "score.weight", "shape": [48, 2048], "count": 48 * 2048, "trainable": True}


@pytest.mark.parametrize("argv, message", [
    (["--task", "classification"], "takes its labels from your training file: give --num-labels N"),
    (["--task", "squad", "--num-labels", "3"], "--num-labels takes 2 or more, with a classification task"),
    (["--task", "classification", "--num-labels", "1"], "--num-labels takes 2 or more"),
])
def test_num_labels_is_needed_for_classification_and_refused_elsewhere(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        count_params.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err

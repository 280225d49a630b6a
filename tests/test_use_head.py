"""heads.load: a trained head on new text reproduces its run's predictions, with the readout it was trained on."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import pytest
import torch

import heads
from errors import UserError
from flags import configured_task, data_settings
from training.loading import load_data


def split_examples(directory: Path) -> list:
    """The run's test split, loaded as train.py loaded it (its own train_config.json)."""
    args = argparse.Namespace(**json.loads((directory / "train_config.json").read_text()))
    return load_data(configured_task(args), data_settings(args))[2]


def predictions(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "predictions.jsonl").read_text().splitlines()]


def test_classify_on_the_test_split_equals_the_runs_predictions(runs):
    head = heads.load(runs["sst2"])
    assert head.readout == heads.readout.ClassifierReadout(block=1, echo=True, pool="mean")
    texts = [e.text for e in split_examples(runs["sst2"])]
    got = head.classify(texts)
    expected = predictions(runs["sst2"])
    assert [g["label"] for g in got] == [p["prediction"] for p in expected]
    probs = head.probabilities(texts)
    assert [round(p, 6) for p in probs.max(-1).values.tolist()] == [p["score"] for p in expected]
    assert [g["score"] for g in got] == probs.max(-1).values.tolist()


@pytest.mark.parametrize("name", ["squad_v1", "squad_v2"])
def test_answer_on_the_test_split_equals_the_runs_predictions(runs, name):
    head = heads.load(runs[name])
    examples = split_examples(runs[name])
    expected = predictions(runs[name])
    assert [e.question for e in examples] == [p["question"] for p in expected]
    got = head.answer_batch([e.question for e in examples], [e.context for e in examples])
    assert [g["answer"] for g in got] == [p["prediction"] for p in expected]
    for g, e in zip(got, examples):
        assert e.context[g["start"]:g["end"]] == g["answer"]
    if name == "squad_v2":
        assert head.no_answer_threshold == 0.4
        probs = [g["score"] if g["answer"] == "" else 1 - g["score"] for g in got]
        assert [round(p, 6) for p in probs] == pytest.approx([p["no_answer_prob"] for p in expected], abs=2e-6)
        assert any(g["answer"] == "" for g in got) or all(p <= 0.4 for p in probs)
    else:
        assert head.no_answer_threshold is None and all(g["answer"] for g in got)


def test_one_answer_equals_its_row_of_a_batch_and_reports_token_probabilities(runs):
    head = heads.load(runs["squad_v1"])
    example = split_examples(runs["squad_v1"])[0]
    alone = head.answer(question=example.question, context=example.context, tokens=True)
    batched = head.answer_batch([example.question], [example.context])[0]
    assert {k: alone[k] for k in ("answer", "start", "end")} == {k: batched[k] for k in ("answer", "start", "end")}
    tokens = alone["tokens"]
    assert sum(t["p_start"] for t in tokens) <= 1.0 + 1e-9 and all(0 <= t["p_end"] <= 1 for t in tokens)
    assert all(example.context[t["start"]:t["end"]] for t in tokens)


def test_a_text_longer_than_the_context_is_cut_with_a_warning(runs):
    head = heads.load(runs["sst2"])
    with pytest.warns(UserWarning, match="cut to its first"):
        (long,) = head.classify(["good " * 3000])
    assert long["label"] in ("negative", "positive")


def test_empty_text_is_refused_in_one_line(runs):
    head = heads.load(runs["sst2"])
    with pytest.raises(UserError, match="text 2 is empty"):
        head.classify(["fine", "  "])


def test_a_base_of_another_architecture_is_refused(runs, tmp_path, smollm2_checkpoint):
    from conftest import tiny_checkpoint

    other = tiny_checkpoint(tmp_path / "wide", smollm2_checkpoint, 64, seed=0)
    with pytest.raises(UserError, match="architecture differs"):
        heads.load(runs["sst2"], base=str(other))


def test_a_store_keeps_the_heads_states_and_one_of_another_base_is_refused(runs, tiny, tmp_path, capsys):
    from heads.store import list_entries, open_store

    plain = heads.load(runs["sst2"])
    dtype, cpu = plain.head.model.embed_tokens.weight.dtype, torch.device("cpu")
    store = open_store(str(tmp_path), tiny, dtype, cpu, 1.0)
    stored = heads.load(runs["sst2"], store=store)
    texts = ["fine", "dull and long"]
    for reused in (0, 2):  # computed and kept, then read back: the same numbers as without a store
        assert torch.equal(stored.probabilities(texts), plain.probabilities(texts))
        assert f"frozen pass: {reused} of 2 sequences reused from the store" in capsys.readouterr().out
    assert store.open_entries == [] and [e["done"] for e in list_entries(tmp_path)] == [2]  # let go after each call
    other = open_store(str(tmp_path), tiny, torch.float16 if dtype != torch.float16 else torch.float32, cpu, 1.0)
    with pytest.raises(UserError, match="states store was opened for another base, dtype or device type"):
        heads.load(runs["sst2"], store=other)


def test_head_file_has_the_mode_of_the_other_outputs(runs):
    umask = os.umask(0)
    os.umask(umask)
    for name in ("head.safetensors", "metrics.json"):
        assert stat.S_IMODE((runs["sst2"] / name).stat().st_mode) == 0o666 & ~umask


def test_a_state_dict_without_its_readout_is_refused(runs, tmp_path):
    from safetensors.torch import save_file

    bare = tmp_path / "bare"
    bare.mkdir()
    save_file(heads.load(runs["sst2"]).info.tensors, str(bare / "head.safetensors"))
    with pytest.raises(UserError, match="not a head written by train.py"):
        heads.load(bare)


def test_the_head_file_records_whether_transformers_reproduces_it(runs):
    assert heads.load(runs["sst2"]).transformers_class == ""  # block 1 of 2, echo
    assert heads.load(runs["sst2_report"]).transformers_class == "LlamaForSequenceClassification"
    assert heads.load(runs["squad_v1"]).transformers_class == "LlamaForQuestionAnswering"
    assert heads.load(runs["squad_v2"]).transformers_class == ""


def test_a_head_loaded_onto_a_given_base_module(runs, tiny):
    import llama

    base = llama.load_pretrained(str(tiny), dtype=torch.bfloat16)
    head = heads.load(runs["sst2"], base=base)
    assert head.head.model is base.model


def test_smollm2_sample_head_with_the_default_readout_reproduces_its_run(smollm2_checkpoint, tmp_path):
    """The bundled model with the default recipe's readout on SST-2 (block 15 of 30, echo, mean)."""
    import train as train_script
    from test_train_e2e import run

    out = tmp_path / "sst2"
    argv = ["--task", "sst2", "--model", "smollm2-135m", "--data", "sample", "--lr", "1e-3", "--recipe", "report",
            "--block", "15", "--echo", "--pool", "mean", "--zero-shot", "none", "--output", str(out)]
    assert run(train_script, argv)[0] == 0
    head = heads.load(out)
    assert head.readout == heads.readout.ClassifierReadout(block=15, echo=True, pool="mean")
    texts = [e.text for e in split_examples(out)]
    probs = head.probabilities(texts)
    expected = predictions(out)
    assert [head.label_names[k] for k in probs.argmax(-1).tolist()] == [p["prediction"] for p in expected]
    assert [round(p, 6) for p in probs.max(-1).values.tolist()] == [p["score"] for p in expected]


def test_eval_with_a_head_of_the_other_task_names_its_task(runs, capsys):
    import eval as eval_script
    from test_train_e2e import run

    code, err = run(eval_script, ["--task", "sst2", "--head", str(runs["squad_v2"])], capsys)
    assert code == 2 and err.count("\n") == 1 and "holds a 'squad' head, not 'sst2': pass --task squad" in err


def test_forward_refuses_a_readout_it_does_not_read_and_tensors_loaded_without_one(runs):
    from data.batching import pad_right
    from heads import SequenceClassifier

    echoed, report = heads.load(runs["sst2"]), heads.load(runs["sst2_report"])
    input_ids, mask = pad_right([echoed.tokenizer.encode("fine")], echoed.tokenizer.pad_id)
    with pytest.raises(UserError, match=r"this head reads ClassifierReadout\(block=1, echo=True.*heads.load"):
        echoed.head(input_ids, mask)
    bare = SequenceClassifier(echoed.head.config, backbone=echoed.head.model)
    bare.load_head_state_dict(echoed.info.tensors)
    with pytest.raises(UserError, match="loaded without their readout.*heads.load"):
        bare(input_ids, mask)
    torch.testing.assert_close(report.head(input_ids, mask), report.head.logits(report.pooled(["fine"])))


def test_smollm2_sample_squad_v2_head_with_the_default_readout_reproduces_its_run(smollm2_checkpoint, tmp_path):
    """The bundled model on SQuAD 2.0 windows, echoed, read after block 20 of 30 (the converged recipe's readout)."""
    import train as train_script
    from test_train_e2e import run

    out = tmp_path / "squad"
    argv = ["--task", "squad", "--squad-version", "2.0", "--model", "smollm2-135m", "--data", "sample",
            "--limit", "40", "--eval-limit", "16", "--lr", "1e-3", "--recipe", "report", "--block", "20", "--echo",
            "--zero-shot", "none", "--output", str(out)]
    assert run(train_script, argv)[0] == 0
    head = heads.load(out)
    assert head.readout == heads.readout.SpanReadout(block=20, echo=True) and head.no_answer_threshold == 0.5
    examples = split_examples(out)
    expected = predictions(out)
    got = head.answer_batch([e.question for e in examples], [e.context for e in examples])
    assert [g["answer"] for g in got] == [p["prediction"] for p in expected]
    probs = [g["score"] if g["answer"] == "" else 1 - g["score"] for g in got]
    assert [round(p, 6) for p in probs] == pytest.approx([p["no_answer_prob"] for p in expected], abs=2e-6)

"""train.py and eval.py end to end, on a tiny random Llama with SmolLM2's tokenizer and the bundled samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import eval as eval_script
import train as train_script
from conftest import tiny_checkpoint

SST2 = ["--task", "sst2", "--data", "sample", "--lr", "1e-2", "--epochs", "3", "--limit", "96",
        "--eval-limit", "40", "--batch-size", "16", "--block", "last", "--pool", "last", "--no-echo"]
SQUAD = ["--task", "squad", "--squad-version", "2.0", "--data", "sample", "--lr", "1e-2", "--epochs", "2",
         "--limit", "24", "--eval-limit", "12", "--batch-size", "8", "--max-length", "192", "--doc-stride", "64",
         "--block", "last"]


def run(script, argv: list[str], capsys=None) -> tuple[int, str]:
    """Run a script's main in-process; its exit code (0 when it returns) and stderr."""
    try:
        script.main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err if capsys else ""


def metrics_of(directory: Path) -> dict:
    return json.loads((directory / "metrics.json").read_text())


def head_tensors(directory: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(directory / "head.safetensors"), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def sst2_run(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "sst2"
    assert run(train_script, [*SST2, "--model", str(tiny), "--output", str(out)])[0] == 0
    return out


def test_sst2_training_lowers_the_loss_and_writes_every_output(sst2_run):
    history = torch.load(sst2_run / "checkpoint.pt", weights_only=True)["history"]
    assert history[-1]["mean_loss"] < history[0]["mean_loss"]
    metrics = metrics_of(sst2_run)
    assert {"zero_shot_head", "zero_shot_prompt", "fine_tuned"} <= set(metrics)
    assert set(metrics["fine_tuned"]) >= {"accuracy", "precision", "recall", "f1"}
    assert len((sst2_run / "predictions.jsonl").read_text().splitlines()) == 40
    report = (sst2_run / "report.md").read_text()
    assert "| Accuracy |" in report and "Fine-tuned" in report and "trainable (head) | 64 |" in report


def test_head_file_holds_only_the_head_with_its_provenance(sst2_run, tiny):
    assert set(head_tensors(sst2_run)) == {"score.weight"}
    assert (sst2_run / "head.safetensors").stat().st_size < 8_000
    with safe_open(str(sst2_run / "head.safetensors"), framework="pt") as f:
        metadata = f.metadata()
    assert metadata["base_model"] == str(tiny) and metadata["task"] == "sst2"
    assert json.loads(metadata["label_names"]) == ["negative", "positive"]


def test_saved_head_reloads_and_reproduces_metrics(sst2_run, tmp_path):
    code, _ = run(eval_script, ["--task", "sst2", "--head", str(sst2_run), "--output", str(tmp_path)])
    assert code == 0
    assert metrics_of(tmp_path)["fine_tuned"] == metrics_of(sst2_run)["fine_tuned"]


def test_resume_after_an_interrupted_epoch_matches_an_uninterrupted_run(sst2_run, tiny, tmp_path, monkeypatch,
                                                                        capsys):
    import tasks

    task_class = type(tasks.TASKS["sst2"])
    loss = task_class.loss
    calls = {"n": 0}

    def interrupt_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 8:  # 96 examples / 16 = 6 batches per epoch: this is epoch 2
            raise KeyboardInterrupt
        return loss(*args)

    out = tmp_path / "run"
    argv = [*SST2, "--model", str(tiny), "--output", str(out)]
    monkeypatch.setattr(task_class, "loss", interrupt_in_epoch_two)
    code, err = run(train_script, argv, capsys)
    assert code == 130 and "--resume" in err
    assert not (out / "head.safetensors").exists()
    monkeypatch.setattr(task_class, "loss", loss)
    assert run(train_script, [*argv, "--resume"])[0] == 0
    assert metrics_of(out)["fine_tuned"] == metrics_of(sst2_run)["fine_tuned"]
    for name, tensor in head_tensors(out).items():
        torch.testing.assert_close(tensor, head_tensors(sst2_run)[name], rtol=0, atol=0)


def test_squad_v2_end_to_end_reports_official_keys_and_reloads(tiny, tmp_path):
    out = tmp_path / "squad"
    assert run(train_script, [*SQUAD, "--model", str(tiny), "--output", str(out)])[0] == 0
    metrics = metrics_of(out)
    squad = metrics["fine_tuned"]["squad"]
    assert {"exact", "f1", "HasAns_f1", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(squad)
    assert {"bleu", "rouge"} <= set(metrics["fine_tuned"]) and "squad" in metrics["zero_shot_prompt"]
    assert set(head_tensors(out)) == {"qa_outputs.weight", "qa_outputs.bias"}
    assert run(eval_script, ["--task", "squad", "--head", str(out), "--output", str(tmp_path / "eval")])[0] == 0
    assert metrics_of(tmp_path / "eval")["fine_tuned"] == metrics["fine_tuned"]


def test_squad_states_spill_to_disk_with_the_same_result(tiny, tmp_path):
    memory, disk = tmp_path / "memory", tmp_path / "disk"
    common = [*SQUAD, "--model", str(tiny), "--zero-shot", "none", "--epochs", "1"]
    assert run(train_script, [*common, "--output", str(memory), "--cache", "memory"])[0] == 0
    assert run(train_script, [*common, "--output", str(disk), "--cache", "disk"])[0] == 0
    assert metrics_of(disk)["fine_tuned"] == metrics_of(memory)["fine_tuned"]


def test_streamed_states_train_the_same_head_as_cached_ones(tiny, tmp_path):
    """Streaming recomputes the frozen pass per batch (other batch shapes: equal up to bf16 rounding)."""
    memory, stream = tmp_path / "memory", tmp_path / "stream"
    common = [*SQUAD, "--model", str(tiny), "--zero-shot", "none", "--epochs", "2", "--dtype", "float32"]
    assert run(train_script, [*common, "--output", str(memory), "--cache", "memory"])[0] == 0
    assert run(train_script, [*common, "--output", str(stream), "--cache", "stream"])[0] == 0
    for name, tensor in head_tensors(stream).items():
        torch.testing.assert_close(tensor, head_tensors(memory)[name], rtol=1e-3, atol=1e-3)
    cached, streamed = metrics_of(memory)["fine_tuned"]["squad"], metrics_of(stream)["fine_tuned"]["squad"]
    assert abs(cached["f1"] - streamed["f1"]) < 1e-6 and cached["exact"] == streamed["exact"]


def test_push_to_hub_sends_head_config_metrics_and_card(sst2_run, monkeypatch):
    import huggingface_hub

    sent = {}

    class FakeApi:
        def __init__(self, token=None):
            sent["token"] = token

        def create_repo(self, repo_id, exist_ok=False):
            sent["repo"] = (repo_id, exist_ok)

        def create_commit(self, repo_id, operations, commit_message):
            sent["files"] = {op.path_in_repo: op.path_or_fileobj for op in operations}
            return type("Info", (), {"commit_url": f"https://hub.example/{repo_id}"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    from training.hub import push_head

    url = push_head(sst2_run, "me/sst2-head")
    assert url.endswith("me/sst2-head") and sent["repo"] == ("me/sst2-head", True) and sent["token"] == "hf_test"
    assert set(sent["files"]) == {"head.safetensors", "train_config.json", "metrics.json", "README.md", "curves.png",
                                  "confusion.png"}
    card = sent["files"]["README.md"].decode()
    assert card.startswith("---\nlibrary_name: pytorch") and "| Accuracy |" in card  # a local base: no base_model


def test_unknown_task_is_one_line(capsys):
    code, err = run(train_script, ["--task", "mnli"], capsys)
    assert code == 2 and err.count("\n") == 1 and "mnli" in err


def test_output_directory_of_another_run_is_refused_without_overwrite(sst2_run, tiny, capsys):
    before = (sst2_run / "metrics.json").read_bytes()
    code, err = run(train_script, [*SST2, "--model", str(tiny), "--output", str(sst2_run)], capsys)
    assert code == 2 and "--overwrite" in err and err.count("\n") == 1
    assert (sst2_run / "metrics.json").read_bytes() == before


def test_head_from_another_base_model_is_refused(sst2_run, smollm2_checkpoint, tmp_path, capsys):
    other = tiny_checkpoint(tmp_path / "other", smollm2_checkpoint, 48, seed=1)
    code, err = run(eval_script, ["--task", "sst2", "--head", str(sst2_run), "--model", str(other)], capsys)
    assert code == 2 and "trained on base model" in err and err.count("\n") == 1


def test_nan_loss_stops_with_a_clear_message_and_no_head(smollm2_checkpoint, tmp_path, capsys):
    broken = tiny_checkpoint(tmp_path / "broken", smollm2_checkpoint, 32, seed=0)
    with safe_open(str(broken / "model.safetensors"), framework="pt") as f:
        state = {k: f.get_tensor(k) for k in f.keys()}
    state["model.norm.weight"][0] = float("nan")  # a corrupted checkpoint: NaN states, NaN loss
    save_file(state, str(broken / "model.safetensors"))
    out = tmp_path / "nan"
    code, err = run(train_script, [*SST2, "--model", str(broken), "--output", str(out), "--zero-shot", "none"],
                    capsys)
    assert code == 2 and "loss became nan" in err.lower() and err.count("\n") == 1
    assert not (out / "head.safetensors").exists()


def test_unreachable_model_id_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, err = run(train_script, [*SST2, "--model", "no-such-org/no-such-model", "--output",
                                   str(tmp_path / "x")], capsys)
    assert code == 2 and "HF_TOKEN" in err and err.count("\n") == 1


def test_eval_downloads_a_head_pushed_to_the_hub(sst2_run, tmp_path, monkeypatch):
    import huggingface_hub

    asked = {}

    def fake_snapshot_download(repo_id, allow_patterns=None, **kwargs):
        asked.update(repo=repo_id, patterns=allow_patterns)
        return str(sst2_run)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    assert run(eval_script, ["--task", "sst2", "--head", "me/sst2-head", "--output", str(tmp_path)])[0] == 0
    assert asked == {"repo": "me/sst2-head", "patterns": ["head.safetensors", "*.json"]}
    assert metrics_of(tmp_path)["fine_tuned"] == metrics_of(sst2_run)["fine_tuned"]


def test_head_on_another_checkpoint_of_the_same_architecture_warns(sst2_run, tiny, tmp_path, capsys):
    twin = tmp_path / "twin"
    shutil.copytree(tiny, twin)
    config = json.loads((twin / "config.json").read_text())
    (twin / "config.json").write_text(json.dumps({**config, "torch_dtype": "bfloat16"}))
    code, err = run(eval_script, ["--task", "sst2", "--head", str(sst2_run), "--model", str(twin)], capsys)
    assert code == 0 and "warning: the head was trained on" in err


def test_a_run_stopped_before_its_first_epoch_can_simply_be_started_again(tiny, tmp_path):
    out = tmp_path / "early"
    out.mkdir()
    (out / "train_config.json").write_text("{}")  # what Ctrl-C during the frozen pass leaves
    assert run(train_script, [*SST2, "--model", str(tiny), "--output", str(out), "--zero-shot", "none"])[0] == 0
    assert (out / "head.safetensors").exists()


def test_an_explicit_cache_place_that_cannot_hold_the_cache_fails_before_any_forward_pass(tiny, tmp_path,
                                                                                         monkeypatch, capsys):
    import tasks
    from training.devices import FreeSpace

    squad = tasks.TASKS["squad"]

    def no_forward_pass(*args):
        raise AssertionError("the frozen pass ran before the plan refused the run")

    monkeypatch.setattr(type(squad), "frozen_pass", no_forward_pass)
    monkeypatch.setattr(train_script, "free_space", lambda device: FreeSpace(None, 2**10, 2**10, "/tmp"))
    for place in ("memory", "disk"):
        out = tmp_path / place
        code, err = run(train_script, [*SQUAD, "--model", str(tiny), "--cache", place, "--output", str(out)], capsys)
        assert code == 2 and f"--cache {place}" in err and err.count("\n") == 1
        assert not out.exists()


def test_dry_run_prints_the_plan_and_loads_no_weights(tiny, tmp_path, monkeypatch, capsys):
    import llama

    monkeypatch.setattr(llama, "load_pretrained", lambda *a, **k: pytest.fail("--dry-run loaded the weights"))
    out = tmp_path / "dry"
    assert run(train_script, [*SQUAD, "--model", str(tiny), "--dry-run", "--output", str(out)])[0] == 0
    printed = capsys.readouterr().out
    assert "plan: frozen pass" in printed and "state cache" in printed and not out.exists()

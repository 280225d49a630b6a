"""Bad checkpoints reach the user as one line and exit code 2 from every script, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import save_file

from llama import LlamaConfig, LlamaForCausalLM

ROOT = Path(__file__).resolve().parents[1]
TINY = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                   num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)


def checkpoint(directory: Path, problem: str) -> Path:
    """A tiny checkpoint directory with one thing wrong."""
    directory.mkdir()
    config = TINY.to_dict()
    if problem == "other architecture":
        config.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (directory / "config.json").write_text(json.dumps(config))
    state = {k: v for k, v in LlamaForCausalLM(TINY).state_dict().items() if k != "lm_head.weight"}
    if problem == "missing tensor":
        del state["model.norm.weight"]
    save_file(state, str(directory / "model.safetensors"))
    if problem == "truncated file":
        data = (directory / "model.safetensors").read_bytes()
        (directory / "model.safetensors").write_bytes(data[: len(data) // 2])
    return directory


SCRIPTS = {"train": ["train.py", "--task", "sst2", "--data", "sample"],
           "eval": ["eval.py", "--task", "sst2", "--data", "sample"],
           "count_params": ["count_params.py"], "llama": ["-m", "llama", "hello"]}
SAYS = {"no directory": "no such directory", "other architecture": "not a Llama",
        "truncated file": "truncated", "missing tensor": "model.norm.weight"}


@pytest.mark.parametrize("name, problem", [
    ("train", "no directory"), ("train", "truncated file"), ("eval", "other architecture"),
    ("eval", "missing tensor"), ("count_params", "no directory"), ("count_params", "other architecture"),
    ("llama", "truncated file"), ("llama", "missing tensor")])
def test_bad_checkpoint_is_one_line_and_exit_2(tmp_path, name, problem):
    script, says = SCRIPTS[name], SAYS[problem]
    model = tmp_path / "model" if problem == "no directory" else checkpoint(tmp_path / "model", problem)
    result = subprocess.run([sys.executable, *script, "--model", str(model), *(
        ["--output", str(tmp_path / "out")] if script[0] == "train.py" else [])],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert says in result.stderr
    assert not (tmp_path / "out").exists()  # inputs are checked before anything is written


BAD_DATA = {
    "malformed tsv row": ("sst2", "train.tsv", "sentence\tlabel\na fine film\t1\nno label here\n", "train.tsv"),
    "json that is not squad": ("squad", "train-v1.1.json", '{"version": "1.1", "rows": []}', "train-v1.1.json"),
    "missing data path": ("sst2", None, None, "no such file or directory"),
}


@pytest.mark.parametrize("problem", sorted(BAD_DATA))
def test_bad_data_is_one_line_exit_2_and_leaves_no_output_directory(tmp_path, tiny, problem):
    task, name, text, says = BAD_DATA[problem]
    data = tmp_path / "data"
    if name is not None:
        data.mkdir()
        (data / name).write_text(text)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "train.py", "--task", task, "--model", str(tiny), "--data", str(data),
                             "--output", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr and says in result.stderr
    assert not out.exists()


def test_a_window_setting_refused_during_the_frozen_pass_leaves_no_output_directory(tmp_path, tiny):
    out = tmp_path / "out"
    command = [sys.executable, "train.py", "--task", "squad", "--squad-version", "2.0", "--model", str(tiny),
               "--data", "sample", "--max-length", "80", "--output", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "raise max_length" in result.stderr and result.stderr.count("\n") == 1
    assert not out.exists()

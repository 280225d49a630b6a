"""`llama.load_pretrained` reads what `transformers` writes, keeps dtypes, and names bad input.

Checkpoints are tiny random models written by `save_pretrained` into tmp dirs. The Hub is
unreachable here, so Hub resolution is proved with `snapshot_download` replaced by a stub.
"""

from __future__ import annotations

import fnmatch
import json
import signal
from contextlib import contextmanager
from pathlib import Path

import huggingface_hub
import pytest
import safetensors
import safetensors.torch
import torch

import llama
from llama import LlamaError

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
TINY = dict(vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
            max_position_embeddings=256, rope_theta=10000.0)
CONFIGS = {
    "tied-default-rope": dict(TINY, rope_scaling=None, tie_word_embeddings=True),
    "untied-llama3-rope": dict(TINY, rope_scaling=LLAMA3_SCALING, tie_word_embeddings=False),
}
IDS = torch.randint(0, 96, (2, 12), generator=torch.Generator().manual_seed(1))

def save(model, directory: Path, *, config_format: str = "hub", max_shard_size: str | None = None) -> Path:
    """`save_pretrained`, then optionally rewrite config.json the way Hub Llama-3.2 repos spell RoPE.

    `config_format="hub"`: top-level `rope_theta` and `rope_scaling` (meta-llama's
    config.json). `"transformers5"`: as written, `rope_parameters` holding both.
    """
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(directory, **kwargs)
    if config_format == "hub":
        path = directory / "config.json"
        raw = json.loads(path.read_text())
        rope = dict(raw.pop("rope_parameters"))
        raw["rope_theta"] = rope.pop("rope_theta")
        raw["rope_scaling"] = rope if rope["rope_type"] != "default" else None
        path.write_text(json.dumps(raw, indent=2))
    return directory


def checkpoint_keys(directory: Path) -> set[str]:
    keys = set()
    for path in directory.glob("*.safetensors"):
        with safetensors.safe_open(str(path), framework="pt") as f:
            keys |= set(f.keys())
    return keys


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("max_shard_size", [None, "40KB"], ids=["single-file", "sharded"])
@pytest.mark.parametrize("config_format", [
    "hub", "transformers5"])
@torch.no_grad()
def test_saved_checkpoint_reproduces_transformers_logits(hf_llama, tmp_path, name, max_shard_size,
                                                         config_format):
    hf = hf_llama(CONFIGS[name])
    directory = save(hf, tmp_path, config_format=config_format, max_shard_size=max_shard_size)
    if max_shard_size:
        assert (directory / "model.safetensors.index.json").is_file()
        assert len(list(directory.glob("*.safetensors"))) > 2
    model = llama.load_pretrained(directory)
    assert max_diff(model(IDS), hf(IDS).logits) <= 1e-4


@pytest.mark.parametrize("name", list(CONFIGS))
def test_parameter_names_equal_transformers_and_checkpoint_keys(hf_llama, tmp_path, name):
    hf = hf_llama(CONFIGS[name])
    model = llama.load_pretrained(save(hf, tmp_path, max_shard_size="40KB"))
    names = {n for n, _ in model.named_parameters()}
    assert names == {n for n, _ in hf.named_parameters()}
    assert names == checkpoint_keys(tmp_path)
    tied = CONFIGS[name]["tie_word_embeddings"]
    assert (model.lm_head.weight is model.model.embed_tokens.weight) == tied


@torch.no_grad()
def test_bf16_checkpoint_loads_as_bf16_or_converts_to_float32(hf_llama, tmp_path):
    hf = hf_llama(CONFIGS["untied-llama3-rope"], dtype=torch.bfloat16)
    directory = save(hf, tmp_path)
    saved = hf.state_dict()

    kept = llama.load_pretrained(directory, device="cpu")
    for name, p in kept.state_dict().items():
        assert p.dtype == torch.bfloat16 and p.device.type == "cpu", name
        assert torch.equal(p, saved[name]), name
    assert kept.model.rotary_emb.inv_freq.dtype == torch.float32  # rebuilt, not left on `meta`
    assert not any(t.is_meta for t in [*kept.parameters(), *kept.buffers()])

    converted = llama.load_pretrained(directory, dtype=torch.float32, device="cpu")
    for name, p in converted.state_dict().items():
        assert p.dtype == torch.float32 and torch.equal(p, saved[name].float()), name
    # Not hf.float(): casting the model to bf16 also rounded its RoPE inv_freq buffer.
    reference = hf_llama(CONFIGS["untied-llama3-rope"])
    reference.load_state_dict({name: t.float() for name, t in saved.items()})
    assert max_diff(converted(IDS), reference(IDS).logits) <= 1e-4


# --- bad input: each is a one-line LlamaError naming the problem -------------------------

@pytest.fixture
def checkpoint(hf_llama, tmp_path) -> Path:
    """A valid single-file tiny checkpoint to break in one way per test."""
    return save(hf_llama(CONFIGS["untied-llama3-rope"]), tmp_path / "ckpt")


def load_error(source) -> str:
    with pytest.raises(LlamaError) as info:
        llama.load_pretrained(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def edit_config(directory: Path, **changes) -> None:
    path = directory / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def rewrite_weights(directory: Path, edit) -> None:
    path = directory / "model.safetensors"
    tensors = safetensors.torch.load_file(str(path))
    edit(tensors)
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})


def test_missing_directory_is_named(tmp_path):
    message = load_error(tmp_path / "absent")
    assert "absent" in message and "no such directory" in message


def test_directory_without_config_json_is_named(checkpoint):
    (checkpoint / "config.json").unlink()
    assert "config.json" in load_error(checkpoint)


def test_other_architecture_is_refused(checkpoint):
    edit_config(checkpoint, model_type="gpt2", architectures=["GPT2LMHeadModel"])
    message = load_error(checkpoint)
    assert "gpt2" in message and "GPT2LMHeadModel" in message and "not a Llama" in message


def test_unsupported_rope_scaling_is_refused(checkpoint):
    edit_config(checkpoint, rope_scaling={"rope_type": "yarn", "factor": 4.0,
                                          "original_max_position_embeddings": 64})
    assert "yarn" in load_error(checkpoint)


def test_unsupported_rope_parameters_of_transformers5_are_refused(hf_llama, tmp_path):
    directory = save(hf_llama(CONFIGS["untied-llama3-rope"]), tmp_path, config_format="transformers5")
    edit_config(directory, rope_parameters={"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0,
                                            "original_max_position_embeddings": 64})
    assert "yarn" in load_error(directory)


def test_truncated_safetensors_is_named(checkpoint):
    path = checkpoint / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    message = load_error(checkpoint)
    assert "model.safetensors" in message and "truncated" in message


def test_missing_tensor_is_named(checkpoint):
    rewrite_weights(checkpoint, lambda t: t.pop("model.norm.weight"))
    message = load_error(checkpoint)
    assert "missing" in message and "model.norm.weight" in message


def test_extra_tensor_is_named(checkpoint):
    rewrite_weights(checkpoint, lambda t: t.update({"model.layers.7.mlp.up_proj.weight": torch.zeros(2, 2)}))
    message = load_error(checkpoint)
    assert "unexpected" in message and "model.layers.7.mlp.up_proj.weight" in message


def test_misshaped_tensor_is_named(checkpoint):
    name = "model.layers.0.self_attn.k_proj.weight"
    rewrite_weights(checkpoint, lambda t: t.update({name: torch.zeros(16, 64)}))
    message = load_error(checkpoint)
    assert "mis-shaped" in message and name in message and "(16, 64)" in message


def test_shard_missing_from_sharded_checkpoint_is_named(hf_llama, tmp_path):
    directory = save(hf_llama(CONFIGS["tied-default-rope"]), tmp_path, max_shard_size="40KB")
    victim = sorted(directory.glob("*.safetensors"))[1]
    victim.unlink()
    assert victim.name in load_error(directory)


# --- the Hub: unreachable here, so resolution is checked through a stub ------------------

@contextmanager
def fails_if_slower_than(seconds: int):
    """Turn a hang into a test failure (SIGALRM; the test runs in the main thread)."""
    def hung(signum, frame):
        raise AssertionError(f"still running after {seconds} s: the Hub call hangs")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_unreachable_hub_id_says_how_to_fix_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with fails_if_slower_than(60):
        message = load_error("some-org/some-model")
    assert "some-org/some-model" in message
    assert "HF_TOKEN" in message and "huggingface-cli login" in message and "local" in message


@pytest.fixture
def fake_hub(monkeypatch, hf_llama, tmp_path):
    """Replace `snapshot_download` by a stub that records its arguments and returns a tiny checkpoint."""
    hf = hf_llama(CONFIGS["untied-llama3-rope"])
    directory = save(hf, tmp_path / "snapshot")
    calls: list[dict] = []

    def snapshot_download(repo_id, **kwargs):
        calls.append({"repo_id": repo_id, **kwargs})
        return str(directory)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return hf, calls


def test_hub_id_downloads_only_config_tokenizer_and_safetensors(fake_hub):
    hf, calls = fake_hub
    with torch.no_grad():
        model = llama.load_pretrained("some-org/tiny-llama", revision="v1.0", token="hf_secret")
        assert max_diff(model(IDS), hf(IDS).logits) <= 1e-4
    (call,) = calls
    assert call["repo_id"] == "some-org/tiny-llama"
    assert call["revision"] == "v1.0" and call["token"] == "hf_secret"
    patterns = call["allow_patterns"]

    def fetched(filename: str) -> bool:
        return any(fnmatch.fnmatch(filename, p) for p in patterns)

    wanted = ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
              "model-00001-of-00002.safetensors", "model.safetensors.index.json"]
    unwanted = ["pytorch_model.bin", "original/consolidated.00.pth", "original/params.json",
                "model.gguf", "README.md", "LICENSE.txt", "flax_model.msgpack"]
    assert all(fetched(f) for f in wanted), patterns
    assert not any(fetched(f) for f in unwanted), patterns


def test_hub_token_falls_back_to_hf_token_env(fake_hub, monkeypatch):
    _, calls = fake_hub
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    llama.load_pretrained("some-org/tiny-llama")
    assert calls[0]["token"] == "hf_from_env" and calls[0]["revision"] is None


def test_load_config_of_hub_id_fetches_config_json_only(fake_hub):
    _, calls = fake_hub
    config = llama.load_config("some-org/tiny-llama")
    assert config.hidden_size == 64 and config.rope_type == "llama3"
    assert calls[0]["allow_patterns"] == ["config.json"]

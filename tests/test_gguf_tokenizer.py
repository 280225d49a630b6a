"""The tokenizer rebuilt from GGUF metadata, on a tiny byte-level vocabulary (no download)."""

from __future__ import annotations

import pytest
from tokenizers import pre_tokenizers

from llama import LlamaError
from llama import Tokenizer
from llama.gguf_tokenizer import build_tokenizer, tokenizer_config

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "Ġa n", "Ġan d"]


def tiny_meta(pre: str = "smollm") -> dict:
    """GGUF `tokenizer.ggml.*` fields: 3 control tokens, the 256 byte symbols, 7 merges."""
    tokens = SPECIALS + sorted(pre_tokenizers.ByteLevel.alphabet()) + [m.replace(" ", "") for m in MERGES]
    return {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre,
            "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.merges": MERGES,
            "tokenizer.ggml.token_type": [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS)),
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.padding_token_id": 2, "tokenizer.ggml.add_bos_token": False,
            "tokenizer.chat_template": "{{ messages }}"}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer(build_tokenizer(tiny_meta(), "tiny.gguf"), bos_id=1, eos_ids=[2], pad_id=2, add_bos=False)


TEXTS = ["the cat and the hat", "  leading, trailing  ", "tabs\tand\nnew\r\nlines   ", "digits 12345 and 3.14",
         "unicode: héllo wörld 日本語 😀", "", "it's they're", "<|im_start|>user\nhi<|im_end|>\n"]


@pytest.mark.parametrize("text", TEXTS)
def test_encode_decode_round_trips_any_text(tokenizer, text):
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=False) == text


def test_merges_apply_and_offsets_index_the_original_text(tokenizer):
    text = "the band and 7 héllo"
    enc = tokenizer.encode_with_offsets(text)
    assert [tokenizer.backend.id_to_token(i) for i in enc.ids][:8] == ["t", "he", "Ġ", "b", "a", "n", "d", "Ġand"]
    spans = [text[start:end] for start, end in enc.offsets]
    assert spans == ["t", "he", " ", "b", "a", "n", "d", " and", " ", "7", " ", "h",
                     "é", "é", "l", "l", "o"]  # both byte tokens of "é" point at that character


def test_control_tokens_are_single_special_ids(tokenizer):
    for token_id, token in enumerate(SPECIALS):
        assert tokenizer.encode(token) == [token_id]
    ids = tokenizer.encode("<|im_start|>the<|im_end|>")
    assert ids[0] == 1 and ids[-1] == 2
    assert tokenizer.decode(ids) == "the"


def test_pre_tokenizer_follows_the_gguf_pre_name():
    def words(pre: str) -> list[str]:
        backend = build_tokenizer(tiny_meta(pre), "tiny.gguf")
        return [w for w, _ in backend.pre_tokenizer.pre_tokenize_str("x 12345")]

    assert words("smollm") == ["x", "Ġ", "1", "2", "3", "4", "5"]  # every digit alone
    assert words("llama-bpe") == ["x", "Ġ", "123", "45"]  # numbers in groups of three
    assert words("gpt-2") == ["x", "Ġ12345"]


def test_tokenizer_config_names_special_tokens_and_bos_policy():
    config = tokenizer_config(tiny_meta(), context_length=512)
    assert (config["bos_token"], config["eos_token"], config["pad_token"]) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert config["add_bos_token"] is False and config["chat_template"] == "{{ messages }}"
    assert config["model_max_length"] == 512


def test_unsupported_tokenizers_are_refused_in_one_line():
    with pytest.raises(LlamaError, match="tokenizer type 'llama'"):
        build_tokenizer(tiny_meta() | {"tokenizer.ggml.model": "llama"}, "spm.gguf")
    with pytest.raises(LlamaError, match="pre-tokenizer 'qwen2'"):
        build_tokenizer(tiny_meta("qwen2"), "q.gguf")
    with pytest.raises(LlamaError, match="carries no tokenizer"):
        build_tokenizer({}, "bare.gguf")

"""Rebuild a Hub `tokenizer.json` from the vocabulary a llama.cpp GGUF file carries.

A GGUF stores a byte-level BPE tokenizer as plain lists (`tokenizer.ggml.tokens`,
`.merges`, `.token_type`) plus the *name* of its pre-tokenizer (`tokenizer.ggml.pre`),
whose regex lives in llama.cpp's C++ source. So the pre-tokenizer is rebuilt here from
that name; everything else is data. Control tokens become special added tokens, so
`<|im_end|>` in a prompt is one id, never split into characters.
"""

from __future__ import annotations

from typing import Any, Callable

import tokenizers
from tokenizers import AddedToken, decoders, models, pre_tokenizers

from .errors import LlamaError

CONTROL, USER_DEFINED = 3, 4  # llama.cpp's token types (1 = normal, 6 = byte, ...)

# Llama 3's tiktoken-style split: contractions, letters, numbers in groups of three.
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _smollm() -> pre_tokenizers.PreTokenizer:
    """Every digit on its own, then GPT-2's byte-level regex."""
    return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def _llama3() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(tokenizers.Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def _gpt2() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


# `tokenizer.ggml.pre` value -> the equivalent `tokenizers` pre-tokenizer.
PRE_TOKENIZERS: dict[str, Callable[[], pre_tokenizers.PreTokenizer]] = {
    "smollm": _smollm, "llama-bpe": _llama3, "gpt-2": _gpt2,
}


def build_tokenizer(meta: dict[str, Any], source: str) -> tokenizers.Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` from GGUF `tokenizer.ggml.*` metadata."""
    kind = meta.get("tokenizer.ggml.model")
    if kind is None or "tokenizer.ggml.tokens" not in meta:
        raise LlamaError(f"{source} carries no tokenizer (tokenizer.ggml.*); it cannot be converted")
    if kind != "gpt2":
        raise LlamaError(f"{source}: tokenizer type {kind!r} is not supported; "
                        "only byte-level BPE ('gpt2', as in Llama 3 and SmolLM) GGUFs convert")
    pre = meta.get("tokenizer.ggml.pre", "gpt-2")
    if pre not in PRE_TOKENIZERS:
        raise LlamaError(f"{source}: pre-tokenizer {pre!r} is not supported "
                        f"(supported: {', '.join(PRE_TOKENIZERS)})")
    tokens: list[str] = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tokenizer.pre_tokenizer = PRE_TOKENIZERS[pre]()
    tokenizer.decoder = decoders.ByteLevel()
    types = meta.get("tokenizer.ggml.token_type", [])
    tokenizer.add_tokens([AddedToken(tokens[i], special=True, normalized=False)
                          for i, t in enumerate(types) if t == CONTROL])
    tokenizer.add_tokens([AddedToken(tokens[i], special=False, normalized=False)
                          for i, t in enumerate(types) if t == USER_DEFINED])
    return tokenizer


def tokenizer_config(meta: dict[str, Any], context_length: int) -> dict[str, Any]:
    """`tokenizer_config.json`: special token strings, BOS policy and chat template."""
    tokens = meta["tokenizer.ggml.tokens"]
    config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast",
                              "add_bos_token": bool(meta.get("tokenizer.ggml.add_bos_token", False)),
                              "add_eos_token": False, "clean_up_tokenization_spaces": False,
                              "model_max_length": context_length}
    for role, key in (("bos", "bos_token_id"), ("eos", "eos_token_id"),
                      ("pad", "padding_token_id"), ("unk", "unknown_token_id")):
        token_id = meta.get(f"tokenizer.ggml.{key}")
        if token_id is not None and token_id < len(tokens):
            config[f"{role}_token"] = tokens[token_id]
    if "tokenizer.chat_template" in meta:
        config["chat_template"] = meta["tokenizer.chat_template"]
    return config

"""Our Llama computes what `transformers`' Llama computes, on the same random weights.

Each tiny config stresses one part of the architecture: grouped-query attention, llama3
RoPE scaling (with frequencies in all three bands), tied and untied embeddings, an
explicit head_dim with biases. Comparisons are in float32 with max |diff| <= 1e-4.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import transformers
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

import llama
from llama.model import rope_inv_freq

ATOL = 1e-4
VOCAB = 160
# head_dim 16 and theta 1e4 give wavelengths 6, 20, 63, 199, ...: with an original context
# of 64, one is kept, two are blended (16..64) and the rest are divided by the factor.
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
BASE = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=112, num_hidden_layers=2,
            rms_norm_eps=1e-5, max_position_embeddings=512)
CONFIGS: dict[str, dict[str, Any]] = {
    "gqa-llama3-tied": dict(BASE, num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                            rope_scaling=LLAMA3_SCALING, tie_word_embeddings=True),
    "mha-default-untied": dict(BASE, num_attention_heads=4, num_key_value_heads=4, rope_theta=500000.0,
                               rope_scaling=None, tie_word_embeddings=False),
    "mqa-headdim-bias-llama3-untied": dict(BASE, num_hidden_layers=3, num_attention_heads=4,
                                           num_key_value_heads=1, head_dim=32, rope_theta=10000.0,
                                           rope_scaling=LLAMA3_SCALING, tie_word_embeddings=False,
                                           attention_bias=True, mlp_bias=True),
}
config_names = pytest.mark.parametrize("name", list(CONFIGS))


def pair(hf_llama, name: str, attn_implementation: str = "sdpa"):
    """(transformers model, our model) holding identical weights."""
    hf = hf_llama(CONFIGS[name], attn_implementation=attn_implementation)
    ours = llama.LlamaForCausalLM(llama.LlamaConfig.from_dict(
        {"model_type": "llama", "architectures": ["LlamaForCausalLM"], **CONFIGS[name]})).eval()
    ours.load_state_dict(hf.state_dict(), strict=True)
    return hf, ours


def random_ids(B: int, T: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (B, T), generator=torch.Generator().manual_seed(seed))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@config_names
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@torch.no_grad()
def test_logits_match_transformers(hf_llama, name, attn_implementation):
    hf, ours = pair(hf_llama, name, attn_implementation)
    ids = random_ids(2, 24)
    expected = hf(ids).logits
    assert expected.abs().max() > 1.0  # the weights are not near-zero: the check has teeth
    assert max_diff(ours(ids), expected) <= ATOL


@config_names
@torch.no_grad()
def test_llama_model_hidden_states_match_transformers(hf_llama, name):
    hf, ours = pair(hf_llama, name)
    ids = random_ids(2, 16)
    expected = hf.model(ids).last_hidden_state
    hidden = ours.model(ids)
    assert hidden.shape == (2, 16, CONFIGS[name]["hidden_size"])
    assert max_diff(hidden, expected) <= ATOL


def padding_mask(lengths: list[int], T: int, side: str) -> torch.Tensor:
    """(B, T) with 1 on the real tokens, padded on `side`."""
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for row, n in enumerate(lengths):
        if side == "left":
            mask[row, T - n:] = 1
        else:
            mask[row, :n] = 1
    return mask


@config_names
@pytest.mark.parametrize("side", ["left", "right"])
@torch.no_grad()
def test_padded_batch_matches_transformers_on_real_tokens(hf_llama, name, side):
    hf, ours = pair(hf_llama, name)
    ids, mask = random_ids(3, 12), padding_mask([12, 7, 3], 12, side)
    real = mask.bool()
    expected = hf(ids, attention_mask=mask).logits
    logits = ours(ids, attention_mask=mask)
    assert max_diff(logits[real], expected[real]) <= ATOL
    assert torch.isfinite(logits).all()  # pad queries see themselves: no NaN rows


@config_names
@pytest.mark.parametrize("side", ["left", "right"])
@torch.no_grad()
def test_padding_leaves_each_sequence_as_if_alone(hf_llama, name, side):
    """With positions counted over real tokens, a padded row equals that sequence unpadded."""
    _, ours = pair(hf_llama, name)
    ids, mask = random_ids(3, 10), padding_mask([10, 6, 2], 10, side)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = ours(ids, attention_mask=mask, position_ids=positions)
    for row in range(3):
        real = mask[row].bool()
        alone = ours(ids[row, real][None])[0]
        assert max_diff(logits[row, real], alone) <= ATOL


@config_names
@pytest.mark.parametrize("side", ["none", "left", "right"])
@torch.no_grad()
def test_states_after_chosen_blocks_match_transformers_hidden_states(hf_llama, name, side):
    """Block k = transformers' hidden_states[k] (after k layers) with the final norm applied;
    its last entry is normed already. One pass, any order, padded batches on the real tokens."""
    hf, ours = pair(hf_llama, name)
    n = CONFIGS[name]["num_hidden_layers"]
    ids, mask = random_ids(3, 12), padding_mask([12, 7, 3] if side != "none" else [12] * 3, 12,
                                                side if side != "none" else "right")
    real = mask.bool()
    expected = hf.model(ids, attention_mask=mask, output_hidden_states=True).hidden_states  # n + 1 entries
    assert len(expected) == n + 1
    layers = list(range(n, 0, -1))  # deepest first: the result follows the order asked
    states = ours.model.hidden_states(ids, mask, layers=layers)
    assert len(states) == n
    for k, state in zip(layers, states):
        reference = expected[k] if k == n else hf.model.norm(expected[k])
        assert state.shape == (3, 12, CONFIGS[name]["hidden_size"])
        assert max_diff(state[real], reference[real]) <= ATOL
    assert max_diff(states[1], states[0]) > 0.1  # the blocks differ: comparing each one has teeth
    assert torch.equal(states[0], ours.model(ids, mask))  # the last block is exactly `forward`


@torch.no_grad()
def test_blocks_beyond_the_deepest_asked_are_never_run(hf_llama):
    _, ours = pair(hf_llama, "mqa-headdim-bias-llama3-untied")  # 3 layers
    ran = []
    for i, layer in enumerate(ours.model.layers):
        layer.register_forward_hook(lambda module, args, out, i=i: ran.append(i))
    ids = random_ids(2, 8)
    first, again = ours.model.hidden_states(ids, layers=[1, 1])
    assert ran == [0] and torch.equal(first, again)
    ran.clear()
    ours.model.hidden_states(ids, layers=[2])
    assert ran == [0, 1]


@pytest.mark.parametrize("layers", [[], [0], [4], [-1], [1.0], [True]], ids=str)
def test_blocks_outside_the_model_are_refused_in_one_line(hf_llama, layers):
    _, ours = pair(hf_llama, "mqa-headdim-bias-llama3-untied")  # 3 layers
    with pytest.raises(llama.LlamaError, match=r"in 1\.\.3 \(block k = the state after k") as err:
        ours.model.hidden_states(random_ids(1, 4), layers=layers)
    assert "\n" not in str(err.value)


@config_names
@pytest.mark.parametrize("prefill, step", [(5, 1), (4, 3), (1, 1)], ids=["prefill5-step1", "prefill4-chunk3", "prefill1-step1"])
@torch.no_grad()
def test_kv_cache_decoding_matches_full_forward(hf_llama, name, prefill, step):
    hf, ours = pair(hf_llama, name)
    ids = random_ids(2, 14)
    full = ours(ids)
    assert max_diff(full, hf(ids).logits) <= ATOL
    cache = llama.KVCache(ours.config, batch_size=2, max_len=14)
    pieces = [ours(ids[:, :prefill], cache=cache)]
    for start in range(prefill, 14, step):
        pieces.append(ours(ids[:, start:start + step], cache=cache))
    assert cache.length == 14
    assert max_diff(torch.cat(pieces, dim=1), full) <= ATOL


@config_names
@pytest.mark.parametrize("step", [1, 2])
@torch.no_grad()
def test_kv_cache_decoding_of_left_padded_batch_matches_transformers(hf_llama, name, step):
    """Prefill a left-padded prompt, then decode `step` tokens at a time with the growing mask."""
    hf, ours = pair(hf_llama, name)
    T, prompt = 11, 6
    ids, mask = random_ids(2, T), padding_mask([T, T - 3], T, "left")
    real = mask.bool()
    expected = hf(ids, attention_mask=mask).logits
    cache = llama.KVCache(ours.config, batch_size=2, max_len=T)
    pieces = [ours(ids[:, :prompt], attention_mask=mask[:, :prompt], cache=cache)]
    for t in range(prompt, T, step):
        pieces.append(ours(ids[:, t:t + step], attention_mask=mask[:, :t + step], cache=cache))
    logits = torch.cat(pieces, dim=1)
    assert max_diff(logits[real], expected[real]) <= ATOL


def hf_rope_config(preset: dict[str, Any], rope_scaling: dict | None) -> transformers.LlamaConfig:
    fields = {k: v for k, v in preset.items() if k not in ("architectures", "model_type", "torch_dtype")}
    return transformers.LlamaConfig(**dict(fields, rope_scaling=rope_scaling))


@pytest.mark.parametrize("preset", list(llama.PRESETS))
@pytest.mark.parametrize("scaled", [True, False], ids=["llama3", "default"])
def test_rope_inv_freq_matches_transformers_on_real_configs(preset, scaled):
    raw = llama.PRESETS[preset]
    rope_scaling = raw["rope_scaling"] if scaled else None
    ours = rope_inv_freq(llama.LlamaConfig.from_dict(dict(raw, rope_scaling=rope_scaling)))
    hf_config = hf_rope_config(raw, rope_scaling)
    if scaled:
        expected, _ = ROPE_INIT_FUNCTIONS["llama3"](hf_config)
    else:
        expected, _ = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding \
            .compute_default_rope_parameters(hf_config)
    assert ours.shape == (raw["head_dim"] // 2,)
    torch.testing.assert_close(ours, expected, rtol=1e-6, atol=0)
    if scaled:  # the scaling really changed something (Llama-3.2 uses factor 32, not 8)
        assert not torch.allclose(ours, rope_inv_freq(llama.LlamaConfig.from_dict(
            dict(raw, rope_scaling=None))))

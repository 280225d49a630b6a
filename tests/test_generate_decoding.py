"""KV-cache decoding on a tiny random Llama: it must equal recomputing everything, row by row."""

from __future__ import annotations

import pytest
import torch

from llama import LlamaConfig, LlamaForCausalLM
from llama.generate import generate_ids, next_token

PROMPTS = [[5, 17, 3, 99, 42, 8, 23], [7, 1], [60, 61, 62, 63]]


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                         max_position_embeddings=256, tie_word_embeddings=False)
    return LlamaForCausalLM(config).eval()


def recompute_greedy(model: LlamaForCausalLM, prompt: list[int], steps: int) -> list[int]:
    """Greedy decoding the slow way: the whole sequence through the model at every step."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            ids.append(int(model(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt):]


def test_kv_cache_greedy_equals_full_recompute(model):
    for prompt in PROMPTS:
        assert generate_ids(model, [prompt], max_new_tokens=12, stop_ids=[]) == [
            recompute_greedy(model, prompt, 12)]


def test_left_padded_batch_equals_one_by_one(model):
    batched = generate_ids(model, PROMPTS, max_new_tokens=12, stop_ids=[], pad_id=0)
    alone = [generate_ids(model, [p], max_new_tokens=12, stop_ids=[])[0] for p in PROMPTS]
    assert batched == alone


def test_each_row_stops_at_its_own_stop_id_which_is_dropped(model):
    free = generate_ids(model, PROMPTS, max_new_tokens=12, stop_ids=[])
    stop = free[0][3]  # the 4th token of row 0 becomes a stop id
    stopped = generate_ids(model, PROMPTS, max_new_tokens=12, stop_ids=[stop])
    for full, cut in zip(free, stopped):
        end = full.index(stop) if stop in full else len(full)
        assert cut == full[:end]
    assert len(stopped[0]) <= 3


def test_max_new_tokens_bounds_the_output(model):
    assert [len(r) for r in generate_ids(model, PROMPTS, max_new_tokens=5, stop_ids=[])] == [5, 5, 5]
    assert generate_ids(model, PROMPTS, max_new_tokens=0, stop_ids=[]) == [[], [], []]


def test_top_k_one_sampling_is_greedy_and_seeded_sampling_repeats(model):
    greedy = generate_ids(model, PROMPTS, max_new_tokens=8, stop_ids=[])
    assert generate_ids(model, PROMPTS, max_new_tokens=8, stop_ids=[], temperature=1.0, top_k=1) == greedy

    def sample(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        return generate_ids(model, PROMPTS, max_new_tokens=8, stop_ids=[], temperature=1.5, generator=gen)

    assert sample(1) == sample(1)
    assert sample(1) != greedy


def test_top_k_samples_only_among_the_k_likeliest():
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0, 3.0]]).expand(200, 5)
    drawn = next_token(logits, temperature=10.0, top_k=2, generator=torch.Generator().manual_seed(0))
    assert set(drawn.tolist()) == {1, 2}


def test_empty_prompt_is_rejected(model):
    with pytest.raises(ValueError, match="at least one token"):
        generate_ids(model, [[1, 2], []], max_new_tokens=2, stop_ids=[])

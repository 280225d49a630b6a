"""Heads on better frozen states: chosen blocks, mean pooling over token ranges, span logits.

Each option is checked against a hand computation on a random tiny Llama, and the
defaults against what the heads computed before the options existed.
"""

from __future__ import annotations

import pytest
import torch

from heads import QuestionAnswerer, SequenceClassifier, pool_last_token
from heads.classification import pool_mean
from llama import LlamaConfig

CONFIG = LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                     num_key_value_heads=2, max_position_embeddings=64)
LENGTHS = [10, 6, 3]


def batch(lengths: list[int] = LENGTHS, T: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random ids and their mask."""
    ids = torch.randint(1, 96, (len(lengths), T), generator=torch.Generator().manual_seed(0))
    mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).long()
    return ids.masked_fill(mask == 0, 0), mask


def head(kind):
    torch.manual_seed(0)
    model = kind(CONFIG).eval()
    model.reset_head()
    with torch.no_grad():  # a bias far from 0 makes a wrong bias handling visible
        for p in model.head.parameters():
            if p.ndim == 1:
                p.normal_()
    return model


def test_mean_pool_averages_each_rows_range_from_start_to_its_length():
    hidden = torch.randn(3, 10, 8, generator=torch.Generator().manual_seed(1))
    _, mask = batch()
    start = torch.tensor([4, 1, 2])
    pooled = pool_mean(hidden, mask, start)
    expected = torch.stack([hidden[b, s:n].mean(0) for b, (s, n) in enumerate(zip(start.tolist(), LENGTHS))])
    torch.testing.assert_close(pooled, expected, rtol=0, atol=1e-6)
    # padding never enters the mean, whatever it holds
    torch.testing.assert_close(pool_mean(hidden.masked_fill(mask[..., None] == 0, 1e6), mask, start), pooled)
    # from the first token, the whole sequence; from the last, the last-token pool
    torch.testing.assert_close(pool_mean(hidden, mask, torch.zeros(3, dtype=torch.long)),
                               torch.stack([hidden[b, :n].mean(0) for b, n in enumerate(LENGTHS)]), rtol=0, atol=1e-6)
    last = torch.tensor(LENGTHS) - 1
    torch.testing.assert_close(pool_mean(hidden, mask, last), pool_last_token(hidden, mask), rtol=0, atol=1e-6)


def test_mean_pool_sums_bf16_states_in_float32_and_refuses_an_empty_range():
    hidden = torch.randn(3, 10, 8, generator=torch.Generator().manual_seed(2)) + 100.0
    _, mask = batch()
    start = torch.tensor([0, 0, 0])
    pooled = pool_mean(hidden.bfloat16(), mask, start)
    assert pooled.dtype == torch.bfloat16
    expected = pool_mean(hidden.bfloat16().float(), mask, start).bfloat16()
    assert torch.equal(pooled, expected)  # one rounding, at the end
    with pytest.raises(ValueError, match=r"rows \[2\] have no real token"):
        pool_mean(hidden, mask, torch.tensor([0, 5, 3]))


@torch.no_grad()
def test_classifier_default_states_are_the_last_token_of_the_last_block_as_before():
    model = head(SequenceClassifier)
    ids, mask = batch()
    before = pool_last_token(model.model(ids, mask), mask)  # what the head read before the options
    assert torch.equal(model.states(ids, mask), before)
    assert torch.equal(model.states(ids, mask, blocks=3), before)
    assert torch.equal(model.states(ids, mask, blocks=[3]), before[:, None])


@torch.no_grad()
@pytest.mark.parametrize("pool", ["last", "mean"])
def test_classifier_pools_several_blocks_from_one_pass(pool):
    model = head(SequenceClassifier)
    ids, mask = batch()
    start = torch.tensor([1, 3, 1]) if pool == "mean" else None
    pooled = model.states(ids, mask, blocks=[2, 1, 3], pool=pool, start=start)
    assert pooled.shape == (3, 3, CONFIG.hidden_size)
    for column, k in enumerate([2, 1, 3]):
        state = model.model.hidden_states(ids, mask, [k])[0]  # (B, T, C)
        if pool == "last":
            expected = torch.stack([state[b, n - 1] for b, n in enumerate(LENGTHS)])
        else:
            expected = torch.stack([state[b, s:n].mean(0) for b, (s, n) in enumerate(zip(start.tolist(), LENGTHS))])
        torch.testing.assert_close(pooled[:, column], expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.states(ids, mask, blocks=k, pool=pool, start=start), expected,
                                   rtol=0, atol=1e-6)
    assert (pooled[:, 0] - pooled[:, 2]).abs().max() > 0.1  # the blocks really differ


def test_classifier_refuses_an_unknown_pool_and_a_start_without_mean():
    model = head(SequenceClassifier)
    ids, mask = batch()
    with pytest.raises(ValueError, match="pool 'max'"):
        model.states(ids, mask, pool="max")
    with pytest.raises(ValueError, match="needs `start`"):
        model.states(ids, mask, pool="mean")
    with pytest.raises(ValueError, match="takes none"):
        model.states(ids, mask, start=torch.zeros(3, dtype=torch.long))


@torch.no_grad()
def test_qa_states_of_a_block_are_that_blocks_normed_states():
    model = head(QuestionAnswerer)
    ids, mask = batch()
    assert torch.equal(model.states(ids, mask), model.model(ids, mask))
    for k in (1, 2, 3):
        assert torch.equal(model.states(ids, mask, block=k), model.model.hidden_states(ids, mask, [k])[0])


def manual_span_logits(model: QuestionAnswerer, hidden: torch.Tensor, mask: torch.Tensor):
    """Token by token: start and end from h[i] at real tokens, -inf at padding."""
    w, b = model.qa_outputs.weight, model.qa_outputs.bias
    start = torch.full(mask.shape, float("-inf"))
    end = torch.full(mask.shape, float("-inf"))
    for row in range(mask.shape[0]):
        real = mask[row].nonzero().flatten().tolist()
        for i in real:
            start[row, i] = hidden[row, i] @ w[0] + b[0]
            end[row, i] = hidden[row, i] @ w[1] + b[1]
    return start, end


@torch.no_grad()
@pytest.mark.parametrize("side", ["right", "left"])
def test_span_logits_match_a_token_by_token_computation(side):
    model = head(QuestionAnswerer)
    hidden = torch.randn(3, 10, CONFIG.hidden_size, generator=torch.Generator().manual_seed(3))
    _, mask = batch()
    if side == "left":
        mask = mask.flip(1)
    start, end = model.span_logits(hidden, mask)
    expected_start, expected_end = manual_span_logits(model, hidden, mask)
    torch.testing.assert_close(start, expected_start, rtol=0, atol=1e-5)
    torch.testing.assert_close(end, expected_end, rtol=0, atol=1e-5)

"""KV-cached label scoring: each label's log-likelihood after a prompt run once equals scoring prompt + label in
full, one sequence at a time (float32, within 1e-4 of a log-probability), on a tiny random Llama."""

from __future__ import annotations

import pytest
import torch

from llama import LlamaConfig, LlamaForCausalLM
from llama.label_scoring import label_log_likelihoods

PROMPTS = [[5, 17, 3, 99, 42, 8, 23], [7, 1], [60, 61, 62, 63]]
LABELS = [[11], [12, 13, 14], [15, 16], [11, 12, 13, 14, 15, 16, 17]]  # one to seven tokens, a shared prefix


@pytest.fixture(scope="module")
def model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                         max_position_embeddings=256, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # O(1) logits, so the log-probabilities differ clearly between labels
        model.lm_head.weight.mul_(5)
    return model


def scored_in_full(model: LlamaForCausalLM, prompt: list[int], label: list[int]) -> float:
    """The slow way: prompt + label through the model in one sequence, the label's token log-probs summed."""
    with torch.no_grad():
        log_probs = model(torch.tensor([prompt + label]))[0].float().log_softmax(-1)  # (T, vocab)
    return sum(float(log_probs[len(prompt) - 1 + j, token]) for j, token in enumerate(label))


def test_cached_scores_equal_scoring_each_label_in_full(model):
    got = label_log_likelihoods(model, PROMPTS, LABELS, pad_id=0)
    assert got.shape == (len(PROMPTS), len(LABELS)) and got.dtype == torch.float32
    expected = torch.tensor([[scored_in_full(model, p, t) for t in LABELS] for p in PROMPTS])
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert expected.std() > 1  # the labels' scores are far apart: the tolerance is a real test


def test_single_token_labels_are_the_next_token_log_softmax(model):
    got = label_log_likelihoods(model, PROMPTS[:1], [[11], [12]])
    with torch.no_grad():
        expected = model(torch.tensor(PROMPTS[:1]))[0, -1].log_softmax(-1)[[11, 12]]
    torch.testing.assert_close(got[0], expected, atol=1e-4, rtol=0)


def test_a_batch_of_prompts_equals_one_prompt_at_a_time(model):
    batched = label_log_likelihoods(model, PROMPTS, LABELS)
    alone = torch.cat([label_log_likelihoods(model, [p], LABELS) for p in PROMPTS])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=0)


def test_empty_prompts_or_labels_are_refused(model):
    with pytest.raises(ValueError, match="at least one token"):
        label_log_likelihoods(model, [[1], []], LABELS)
    with pytest.raises(ValueError, match="at least one token"):
        label_log_likelihoods(model, PROMPTS, [[1], []])

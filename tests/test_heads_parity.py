"""Our heads compute what transformers' LlamaForSequenceClassification / ForQuestionAnswering compute."""

from __future__ import annotations

import pytest
import torch
import transformers

from heads import QuestionAnswerer, SequenceClassifier, qa_loss
from llama import LlamaConfig

FIELDS = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (pad 0 never appears in real tokens) and their mask."""
    ids = torch.randint(1, 96, (3, 10), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids.masked_fill(mask == 0, 0), mask


def ours(kind, hf_model) -> torch.nn.Module:
    config = LlamaConfig.from_dict({**hf_model.config.to_dict(), "architectures": ["LlamaForCausalLM"]})
    model = kind(config) if kind is QuestionAnswerer else kind(config, 2)
    state = {k.replace("transformer.", "model."): v for k, v in hf_model.state_dict().items()}
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def test_classifier_pools_the_last_real_token_like_transformers():
    torch.manual_seed(0)
    hf = transformers.LlamaForSequenceClassification(transformers.LlamaConfig(**FIELDS, num_labels=2)).eval()
    ids, mask = batch()
    torch.testing.assert_close(ours(SequenceClassifier, hf)(ids, mask), hf(input_ids=ids, attention_mask=mask).logits,
                               rtol=0, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("inside", [True, False], ids=["answers-inside", "answers-outside-window"])
def test_qa_logits_and_loss_match_transformers(inside):
    torch.manual_seed(0)
    hf = transformers.LlamaForQuestionAnswering(transformers.LlamaConfig(**FIELDS)).eval()
    ids = torch.randint(1, 96, (3, 10), generator=torch.Generator().manual_seed(0))
    starts = torch.tensor([1, 4, 2]) if inside else torch.tensor([1, 12, 2])
    ends = torch.tensor([3, 4, 7]) if inside else torch.tensor([3, 15, 7])
    expected = hf(input_ids=ids, start_positions=starts, end_positions=ends)
    start, end = ours(QuestionAnswerer, hf)(ids, torch.ones_like(ids))
    torch.testing.assert_close(start, expected.start_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(end, expected.end_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(qa_loss(start, end, starts, ends), expected.loss, rtol=0, atol=1e-5)


@torch.no_grad()
def test_heads_on_block_1_match_transformers_models_cut_after_one_layer():
    """Block k's normed state is what a model cut after k layers outputs: with transformers'
    heads on such a model as the oracle, our classifier and QA logits on block 1 of 2 agree."""
    torch.manual_seed(0)
    hf_cls = transformers.LlamaForSequenceClassification(transformers.LlamaConfig(**FIELDS, num_labels=2)).eval()
    hf_qa = transformers.LlamaForQuestionAnswering(transformers.LlamaConfig(**FIELDS)).eval()
    classifier, qa = ours(SequenceClassifier, hf_cls), ours(QuestionAnswerer, hf_qa)
    hf_cls.model.layers = hf_cls.model.layers[:1]
    hf_qa.transformer.layers = hf_qa.transformer.layers[:1]
    ids, mask = batch()
    expected = hf_cls(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(classifier.logits(classifier.states(ids, mask, blocks=1)), expected, rtol=0, atol=1e-5)
    assert (expected - classifier(ids, mask)).abs().max() > 1e-3  # block 1 is not the last block
    expected = hf_qa(input_ids=ids, attention_mask=mask)
    start, end = qa.span_logits(qa.states(ids, mask, block=1), mask)
    real = mask.bool()
    torch.testing.assert_close(start[real], expected.start_logits[real], rtol=0, atol=1e-5)
    torch.testing.assert_close(end[real], expected.end_logits[real], rtol=0, atol=1e-5)


def test_head_counts_and_frozen_base():
    config = LlamaConfig(**{k: v for k, v in FIELDS.items() if k != "pad_token_id"})
    for model, trainable in ((SequenceClassifier(config, 2), 2 * 32), (QuestionAnswerer(config), 2 * 32 + 2)):
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable
        assert not any(p.requires_grad for p in model.model.parameters())

"""transformers as the oracle: a head whose file names a transformers class gives that class's logits; one
that names none reads another state, and transformers' class, loaded the obvious way, disagrees with it."""

from __future__ import annotations

import json

import torch
import transformers
from safetensors.torch import load_file

import heads
from data.batching import pad_right
from data.qa_windows import make_windows
from data.squad import QAExample
from data.sst2 import encode_sentences

SENTENCES = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate clichés",
             "it 's a charming and often affecting journey .", "unflinchingly bleak and desperate", "fine"]


def hf_classifier(tiny, head_dir) -> transformers.LlamaForSequenceClassification:
    """The base and the head file loaded into transformers as a user would (pad token set, labels named)."""
    labels = json.loads(load_head_metadata(head_dir)["label_names"])
    model = transformers.LlamaForSequenceClassification.from_pretrained(
        tiny, num_labels=len(labels), id2label=dict(enumerate(labels)), dtype=torch.float32).eval()
    missing, unexpected = model.load_state_dict(load_file(head_dir / "head.safetensors"), strict=False)
    assert not unexpected and "score.weight" not in missing
    return model


def load_head_metadata(head_dir) -> dict:
    from safetensors import safe_open

    with safe_open(str(head_dir / "head.safetensors"), framework="pt") as f:
        return f.metadata()


def classifier_logits(head, hf, texts):
    sequences, _ = encode_sentences(head.tokenizer, texts)
    input_ids, mask = pad_right(sequences, head.tokenizer.pad_id)
    hf.config.pad_token_id = head.tokenizer.pad_id
    with torch.no_grad():
        return head.head.logits(head.pooled(texts)), hf(input_ids=input_ids, attention_mask=mask).logits


def test_a_head_that_names_llama_for_sequence_classification_gets_its_logits(runs, tiny):
    head = heads.load(runs["sst2_report"], dtype=torch.float32)
    assert head.transformers_class == "LlamaForSequenceClassification"
    ours, theirs = classifier_logits(head, hf_classifier(tiny, runs["sst2_report"]), SENTENCES)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-4)


def test_a_head_that_names_no_class_is_not_what_transformers_computes(runs, tiny):
    head = heads.load(runs["sst2"], dtype=torch.float32)  # block 1 of 2, echo, mean
    assert head.transformers_class == ""
    ours, theirs = classifier_logits(head, hf_classifier(tiny, runs["sst2"]), SENTENCES)
    assert (ours - theirs).abs().max() > 1e-2


def test_a_head_that_names_llama_for_question_answering_gets_its_logits(runs, tiny):
    head = heads.load(runs["squad_v1"], dtype=torch.float32)
    assert head.transformers_class == "LlamaForQuestionAnswering"
    base = transformers.LlamaForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    hf = transformers.LlamaForQuestionAnswering(base.config).eval()
    hf.transformer.load_state_dict(base.model.state_dict())  # its base sits under `transformer.`, not `model.`
    hf.load_state_dict(load_file(runs["squad_v1"] / "head.safetensors"), strict=False)
    example = QAExample("q", "", "When was it completed?", "The tower was completed in 1889 for the fair.", [], [],
                        True)
    (window,) = make_windows([example], head.tokenizer, max_length=192, doc_stride=64)
    input_ids, mask = pad_right([window.input_ids], head.tokenizer.pad_id)
    with torch.no_grad():
        start, end = head.head.span_logits(head.head.states(input_ids, mask).clone(), mask)
        theirs = hf(input_ids=input_ids, attention_mask=mask)
    torch.testing.assert_close(start, theirs.start_logits, rtol=0, atol=1e-4)
    torch.testing.assert_close(end, theirs.end_logits, rtol=0, atol=1e-4)


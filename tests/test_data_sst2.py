"""SST-2 TSV reader: GLUE's layout as published, one clear error per malformed row; the encoding for the head."""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, pre_tokenizers, trainers

from data.sst2 import SentenceExample, encode_sentences, read_sst2_tsv
from errors import UserError
from llama import Tokenizer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sst2"


def write(tmp_path: Path, text: str, name: str = "train.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_reads_glue_rows_keeping_ptb_text_and_trimming_the_space_before_the_tab(tmp_path):
    path = write(tmp_path, "sentence\tlabel\nit 's a -lrb- rare -rrb- gem \t1\ndoes n't work\t0\n")
    assert read_sst2_tsv(path) == [SentenceExample("it 's a -lrb- rare -rrb- gem", 1),
                                   SentenceExample("does n't work", 0)]


def test_crlf_line_endings_bom_and_swapped_columns_read_the_same(tmp_path):
    path = write(tmp_path, "\ufefflabel\tsentence\r\n1\tgood\r\n0\tbad\r\n")
    assert read_sst2_tsv(path) == [SentenceExample("good", 1), SentenceExample("bad", 0)]


def test_unicode_line_separators_inside_a_sentence_do_not_split_the_row(tmp_path):
    path = write(tmp_path, "sentence\tlabel\ncaf\u00e9 \u2028 na\u00efve\t1\n")
    assert read_sst2_tsv(path) == [SentenceExample("caf\u00e9 \u2028 na\u00efve", 1)]


@pytest.mark.parametrize("body, line, problem", [
    ("good movie 1\n", 3, "0 tab(s)"),
    ("\n", 3, "0 tab(s)"),
    ("good\t2\n", 3, "not 0 or 1"),
    ("good\tpositive\n", 3, "not 0 or 1"),
    ("  \t1\n", 3, "empty sentence"),
    ("a\tb\t1\n", 3, "2 tab(s)"),
])
def test_a_malformed_row_names_file_and_line(tmp_path, body, line, problem):
    path = write(tmp_path, "sentence\tlabel\nfine\t1\n" + body)
    with pytest.raises(UserError) as err:
        read_sst2_tsv(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:") and problem in message and "\n" not in message


def test_glue_test_file_without_labels_is_refused_at_its_header(tmp_path):
    path = write(tmp_path, "index\tsentence\n0\tgood\n", "test.tsv")
    with pytest.raises(UserError, match=r"test\.tsv:1: header .*no labels"):
        read_sst2_tsv(path)


def test_missing_empty_and_non_utf8_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_sst2_tsv(tmp_path / "absent.tsv")
    with pytest.raises(UserError, match="empty file"):
        read_sst2_tsv(write(tmp_path, ""))
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"sentence\tlabel\nok\t1\ncaf\xe9\t1\n")
    with pytest.raises(UserError, match=r"latin1\.tsv:3: not UTF-8"):
        read_sst2_tsv(path)


@pytest.mark.skipif(not SHARED.is_dir(), reason="real SST-2 files not present")
@pytest.mark.parametrize("name, count, positive", [("train.tsv", 67_349, 37_569), ("dev.tsv", 872, 444)])
def test_real_glue_files_have_their_published_counts_and_balance(name, count, positive):
    examples = read_sst2_tsv(SHARED / name)
    assert len(examples) == count
    assert sum(e.label for e in examples) == positive
    assert all(e.text and e.text == e.text.strip() for e in examples)


TEXTS = ["it 's a -lrb- rare -rrb- gem", "does n't work", "good"]


def bpe_tokenizer(bos: bool) -> Tokenizer:
    """A small byte-level BPE (the kind Llama 3 and SmolLM2 use): any text, newlines included, encodes."""
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TEXTS * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return Tokenizer(backend, bos_id=1 if bos else None, eos_ids=[2], pad_id=0, add_bos=bos)


@pytest.mark.parametrize("bos", [True, False], ids=["bos", "no-bos"])
def test_plain_encoding_is_the_tokenizers_own_and_pools_from_the_first_sentence_token(bos):
    tok = bpe_tokenizer(bos)
    sequences, starts, cut = encode_sentences(tok, TEXTS)
    assert sequences == tok.encode_batch(TEXTS)  # what the head has always read
    assert starts == [1 if bos else 0] * len(TEXTS)
    assert [tok.decode(s[start:]) for s, start in zip(sequences, starts)] == TEXTS


@pytest.mark.parametrize("bos", [True, False], ids=["bos", "no-bos"])
def test_echo_repeats_the_sentence_after_a_blank_line_and_pools_from_the_second_copy(bos):
    tok = bpe_tokenizer(bos)
    sequences, starts, cut = encode_sentences(tok, TEXTS, echo=True)
    blank, prefix = tok.encode("\n\n", add_bos=False), [1] if bos else []
    for text, sequence, start in zip(TEXTS, sequences, starts):
        sentence = tok.encode(text, add_bos=False)
        assert sequence == prefix + sentence + blank + sentence
        assert start == len(prefix) + len(sentence) + len(blank) and sequence[start:] == sentence
    assert tok.decode(sequences[2]) == "good\n\ngood"
    assert cut == 0


@pytest.mark.parametrize("echo", [False, True], ids=["plain", "echo"])
def test_a_pair_is_one_sentence_with_a_line_break_between_its_texts(echo):
    tok = bpe_tokenizer(True)
    pairs = ["good", "it 's a gem", "does n't work"]
    sequences, starts, cut = encode_sentences(tok, TEXTS, echo=echo, pairs=pairs)
    newline = tok.encode("\n", add_bos=False)
    for text, pair, sequence, start in zip(TEXTS, pairs, sequences, starts):
        sentence = tok.encode(text, add_bos=False) + newline + tok.encode(pair, add_bos=False)
        assert sequence[start:] == sentence  # the pooled range (the second copy with echo) holds both texts
        assert sequence == [1] + sentence + (tok.encode("\n\n", add_bos=False) + sentence if echo else [])
    assert cut == 0


@pytest.mark.parametrize("echo", [False, True], ids=["plain", "echo"])
def test_texts_longer_than_the_context_are_cut_to_it_from_the_end_and_counted(echo):
    tok = bpe_tokenizer(True)
    long = " ".join(["rare gem"] * 400)
    sequences, starts, cut = encode_sentences(tok, [long, "good"], echo=echo, max_tokens=64)
    assert cut == 1 and len(sequences[0]) <= 64 and len(sequences[0]) >= 63  # an echo may waste one odd token
    whole = tok.encode(long, add_bos=False)
    assert sequences[0][starts[0]:] == whole[:len(sequences[0][starts[0]:])]  # the beginning is kept
    assert sequences[1] == encode_sentences(tok, ["good"], echo=echo)[0][0]  # a short text is untouched


def test_a_long_pair_is_cut_from_its_longer_text_first():
    tok = bpe_tokenizer(True)
    long, short = " ".join(["rare gem"] * 400), "does n't work"
    n_short = len(tok.encode(short, add_bos=False))
    (sequence,), _, cut = encode_sentences(tok, [short], pairs=[long], max_tokens=64)
    assert cut == 1 and len(sequence) == 64
    assert sequence[1:1 + n_short] == tok.encode(short, add_bos=False)  # the short text stays whole
    (both,), _, _ = encode_sentences(tok, [long], pairs=[long], max_tokens=64)
    newline = tok.encode("\n", add_bos=False)
    room = 64 - 1 - len(newline)
    half = tok.encode(long, add_bos=False)
    assert both == [1] + half[:(room + 1) // 2] + newline + half[:room // 2]  # two long texts: half each

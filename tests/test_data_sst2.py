"""SST-2 TSV reader: GLUE's layout as published, and one clear error per malformed row."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.sst2 import SentenceExample, read_sst2_tsv
from errors import UserError

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

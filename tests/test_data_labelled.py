"""Your own labelled texts: CSV / TSV / JSONL by suffix, named columns, string or integer labels, and every
bad input one UserError naming the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.labelled import Columns, label_names_of, read_labelled_file, to_examples
from data.sst2 import SentenceExample
from errors import UserError

ROWS = [("a fine, warm film", "positive"), ("dull", "negative"), ('the "best" of it', "positive")]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def as_csv(rows, header=("text", "label")) -> str:
    quote = lambda field: '"' + field.replace('"', '""') + '"' if any(c in field for c in ',"\n') else field  # noqa: E731
    return "\n".join([",".join(header)] + [",".join(quote(str(f)) for f in row) for row in rows]) + "\n"


def as_jsonl(rows, keys=("text", "label")) -> str:
    return "".join(json.dumps(dict(zip(keys, row))) + "\n" for row in rows)


@pytest.mark.parametrize("name, text", [
    ("train.csv", as_csv(ROWS)),
    ("train.tsv", "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in ROWS)),
    ("train.jsonl", as_jsonl(ROWS)),
    ("train.CSV", as_csv(ROWS).replace("\n", "\r\n")),  # any case of the suffix, CRLF lines
])
def test_every_format_reads_the_same_rows(tmp_path, name, text):
    path = write(tmp_path, name, "\ufeff" + text)  # a leading byte-order mark is not part of the header
    rows = read_labelled_file(path, Columns())
    names = label_names_of(rows, path)
    assert names == ("negative", "positive")
    assert to_examples(rows, names, path) == [SentenceExample("a fine, warm film", 1), SentenceExample("dull", 0),
                                              SentenceExample('the "best" of it', 1)]


def test_a_quoted_csv_field_may_hold_a_newline_and_a_later_error_names_its_first_line(tmp_path):
    path = write(tmp_path, "t.csv", 'text,label\n"two\nlines",a\n"",b\n')
    with pytest.raises(UserError, match=r"t\.csv:4: empty text in column 'text'"):
        read_labelled_file(path, Columns())
    path = write(tmp_path, "u.csv", 'text,label\n"two\nlines",a\nok,b\n')
    assert [r.text for r in read_labelled_file(path, Columns())] == ["two\nlines", "ok"]


def test_column_options_pick_the_text_the_pair_and_the_label(tmp_path):
    path = write(tmp_path, "pairs.jsonl", as_jsonl([("q1", "s1", "entailment", 7), ("q2", "s2", "not_entailment", 8)],
                                                   keys=("question", "sentence", "gold", "idx")))
    columns = Columns(text="question", text_pair="sentence", label="gold")
    rows = read_labelled_file(path, columns)
    names = label_names_of(rows, path)
    assert names == ("entailment", "not_entailment")
    assert to_examples(rows, names, path) == [SentenceExample("q1", 0, "s1"), SentenceExample("q2", 1, "s2")]


def test_integer_labels_sort_numerically_and_json_integers_equal_their_text(tmp_path):
    train = write(tmp_path, "train.jsonl", as_jsonl([("a", 10), ("b", 9), ("c", "2"), ("d", -1)]))
    rows = read_labelled_file(train, Columns())
    names = label_names_of(rows, train)
    assert names == ("-1", "2", "9", "10")
    test = write(tmp_path, "test.csv", as_csv([("e", "10"), ("f", 2)]))
    assert [e.label for e in to_examples(read_labelled_file(test, Columns()), names, test)] == [3, 1]


def test_string_labels_sort_as_text(tmp_path):
    path = write(tmp_path, "t.tsv", "text\tlabel\nx\tSuper_Bowl_50\ny\tNormans\nz\tWarsaw\nw\tNormans\n")
    assert label_names_of(read_labelled_file(path, Columns()), path) == ("Normans", "Super_Bowl_50", "Warsaw")


@pytest.mark.parametrize("name, text, columns, message", [
    ("t.csv", "sentence,gold\nx,a\n", Columns(), r"t\.csv:2: no column 'text' \(columns found: 'sentence', 'gold'\); "
                                                  r"name the right one with --text-column"),
    ("t.csv", "text,gold\nx,a\n", Columns(), r"no column 'label' .*--label-column"),
    ("t.jsonl", '{"text": "x", "label": "a"}\n', Columns(text_pair="hypothesis"),
     r"t\.jsonl:1: no column 'hypothesis' \(columns found: 'text', 'label'\).*--text-pair-column"),
    ("t.tsv", "text\tlabel\nfine\ta\n  \tb\n", Columns(), r"t\.tsv:3: empty text in column 'text'"),
    ("t.csv", "text,label\nx,a\ny,\n", Columns(), r"t\.csv:3: the label column 'label' is empty"),
    ("t.jsonl", '{"text": "x", "label": "a"}\n{"text": "y", label: "b"}\n', Columns(),
     r"t\.jsonl:2: not JSON \(.*\); a \.jsonl file holds one JSON object a line"),
    ("t.jsonl", '["x", "a"]\n', Columns(), r"t\.jsonl:1: a JSON list, expected an object"),
    ("t.jsonl", '{"text": "x", "label": 1.5}\n', Columns(), r"t\.jsonl:1: label column 'label' holds 1\.5"),
    ("t.jsonl", '{"text": 3, "label": "a"}\n', Columns(), r"t\.jsonl:1: column 'text' holds 3, expected a text"),
    ("t.csv", "text,label\nx,a,extra\n", Columns(), r"t\.csv:2: 3 fields, but the header has 2 \(text, label\)"),
    ("t.tsv", "text\tlabel\nx\ty\tz\n", Columns(), r"t\.tsv:2: 3 fields.*may not hold a tab"),
    ("t.csv", 'text,label\n"x"y,a\n', Columns(), r"t\.csv:2: not valid CSV"),
    ("t.txt", "text,label\nx,a\n", Columns(), r"t\.txt: unknown file type '\.txt'; name it \.csv, \.tsv or \.jsonl"),
    ("t.csv", "text,label\n", Columns(), r"t\.csv: no rows"),
])
def test_bad_input_is_one_error_naming_the_file_the_line_and_the_fix(tmp_path, name, text, columns, message):
    with pytest.raises(UserError, match=message):
        read_labelled_file(write(tmp_path, name, text), columns)


def test_a_file_that_is_not_utf8_names_its_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"text,label\nok,a\ncaf\xe9,b\n")
    with pytest.raises(UserError, match=r"t\.csv:3: not UTF-8 text .*save the file as UTF-8"):
        read_labelled_file(path, Columns())


def test_one_class_only_is_refused(tmp_path):
    path = write(tmp_path, "t.csv", as_csv([("x", "a"), ("y", "a")]))
    with pytest.raises(UserError, match=r"t\.csv: every row has the label 'a'; a classifier needs at least two"):
        label_names_of(read_labelled_file(path, Columns()), path)


def test_a_test_label_never_seen_in_training_is_refused(tmp_path):
    path = write(tmp_path, "test.csv", as_csv([("x", "positive"), ("y", "neutral")]))
    with pytest.raises(UserError, match=r"test\.csv:3: label 'neutral' never occurs in the training file, whose "
                                        r"labels are negative, positive"):
        to_examples(read_labelled_file(path, Columns()), ("negative", "positive"), path)

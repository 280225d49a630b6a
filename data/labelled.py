"""Your own labelled texts: CSV, TSV or JSONL (chosen by the file's suffix) with named columns.

    text,label                      {"text": "a fine film", "label": "positive"}
    a fine film,positive            {"text": "dull", "label": "negative"}

A row is a text, optionally a second text (`text_pair`: NLI, paraphrase, question/sentence)
and a label, a string or an integer. The label set is the training file's, sorted (integers
numerically, so "10" comes after "9"), and a label is stored as its index into that set:
the head's output row k is `label_names[k]`. A test label the training file never had is
refused, since the head has no row for it.

CSV follows RFC 4180 (quoted fields may hold commas and newlines); TSV is GLUE's (one row
a line, no quoting, so a `"` is just a character); JSONL is one JSON object a line. Texts
are trimmed of surrounding whitespace, as GLUE's own files and their re-exports differ there.
Every problem stops the load with the file, the line and the fix: a row skipped in silence
would change the split and every number computed on it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from pathlib import Path

from errors import UserError

from .formats import DataFormat
from .sst2 import SentenceExample

SUFFIXES = (".csv", ".tsv", ".jsonl")
INTEGER = re.compile(r"-?\d+")


def _through_train_file(path: Path) -> list:
    raise UserError(f"{path}: your own files are read through --train-file / --validation-file / --test-file "
                    "(with --text-column, --label-column), not --data")


# The user's files as a task's data format: only `group` (--limit keeps the label balance) is used; --data is refused.
LABELLED_FORMAT = DataFormat("your labelled files", ("train.csv", "test.csv"), _through_train_file,
                             lambda e: e.label, Path(__file__).parent / "samples" / "sst2.tsv", {})


@dataclasses.dataclass(frozen=True)
class Columns:
    """The columns (CSV/TSV header names, JSONL keys) that hold the text, the optional pair and the label."""

    text: str = "text"
    label: str = "label"
    text_pair: str | None = None


@dataclasses.dataclass(frozen=True)
class LabelledRow:
    """One row as read: its label still the file's text (or integer, as a string); `line` for messages."""

    text: str
    text_pair: str | None
    label: str
    line: int


def read_labelled_file(path: str | Path, columns: Columns) -> list[LabelledRow]:
    """Every row of a CSV / TSV / JSONL file, in file order."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; name it .csv, .tsv or .jsonl")
    text = read_text(path)
    records = _jsonl_records(path, text) if path.suffix.lower() == ".jsonl" else _table_records(path, text)
    rows = [_row(path, line, record, columns) for line, record in records]
    if not rows:
        raise UserError(f"{path}: no rows; expected a header and one labelled example a line")
    return rows


def label_names_of(rows: list[LabelledRow], path: str | Path) -> tuple[str, ...]:
    """The training file's label set, sorted: numerically when every label is an integer, else as text."""
    names = set(row.label for row in rows)
    if len(names) < 2:
        raise UserError(f"{path}: every row has the label {next(iter(names))!r}; a classifier needs at least "
                        "two classes (is --label-column the right column?)")
    if all(INTEGER.fullmatch(name) for name in names):
        return tuple(sorted(names, key=lambda name: (int(name), name)))
    return tuple(sorted(names))


def to_examples(rows: list[LabelledRow], label_names: tuple[str, ...], path: str | Path) -> list[SentenceExample]:
    """Rows with their labels as indices into `label_names`; a label outside it stops the load."""
    index = {name: k for k, name in enumerate(label_names)}
    for row in rows:
        if row.label not in index:
            raise UserError(f"{path}:{row.line}: label {row.label!r} never occurs in the training file, whose "
                            f"labels are {', '.join(label_names[:10])}{' ...' if len(label_names) > 10 else ''}; "
                            "the head has no output for it: fix the label or add examples of it to training")
    return [SentenceExample(row.text, index[row.label], row.text_pair) for row in rows]


def read_text(path: Path) -> str:
    """The file as UTF-8 (a leading byte-order mark dropped); a decoding error names its line."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({err.reason}); save the file as UTF-8") from None


def _table_records(path: Path, text: str) -> list[tuple[int, dict]]:
    """(line, {column: value}) per CSV / TSV row; the header names the columns."""
    tsv = path.suffix.lower() == ".tsv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=not tsv)
    try:
        header = next(reader, None)
        if header is None:
            return []
        records, line = [], reader.line_num
        for fields in reader:
            first, line = line + 1, reader.line_num  # a quoted CSV field may span lines: name the first
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise UserError(f"{path}:{first}: {len(fields)} fields, but the header has {len(header)} "
                                f"({', '.join(header)}); quote a CSV field that holds a comma"
                                + (" (TSV: a text may not hold a tab)" if tsv else ""))
            records.append((first, dict(zip(header, fields))))
    except csv.Error as err:
        raise UserError(f"{path}:{reader.line_num}: not valid CSV ({err}); quote fields as RFC 4180 does") from None
    return records


def _jsonl_records(path: Path, text: str) -> list[tuple[int, dict]]:
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not JSON ({err.msg} at column {err.colno}); a .jsonl file holds "
                            "one JSON object a line") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{number}: a JSON {type(record).__name__}, expected an object "
                            '({"text": ..., "label": ...}) on every line')
        records.append((number, record))
    return records


def _row(path: Path, line: int, record: dict, columns: Columns) -> LabelledRow:
    wanted = [("--text-column", columns.text), ("--label-column", columns.label)]
    if columns.text_pair is not None:
        wanted.append(("--text-pair-column", columns.text_pair))
    for flag, name in wanted:
        if name not in record:
            found = ", ".join(repr(k) for k in record) or "none"
            raise UserError(f"{path}:{line}: no column {name!r} (columns found: {found}); "
                            f"name the right one with {flag}")
    text = _text(path, line, record[columns.text], columns.text)
    pair = None if columns.text_pair is None else _text(path, line, record[columns.text_pair], columns.text_pair)
    return LabelledRow(text, pair, _label(path, line, record[columns.label], columns.label), line)


def _text(path: Path, line: int, value: object, column: str) -> str:
    if not isinstance(value, str):
        raise UserError(f"{path}:{line}: column {column!r} holds {json.dumps(value)[:40]}, expected a text")
    if not value.strip():
        raise UserError(f"{path}:{line}: empty text in column {column!r}; remove the row or fill in its text")
    return value.strip()


def _label(path: Path, line: int, value: object, column: str) -> str:
    """A label as text: a JSON integer 3 and a CSV field "3" are the same label."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise UserError(f"{path}:{line}: label column {column!r} holds {json.dumps(value)}, expected a string "
                        "or an integer")
    if not value.strip():
        raise UserError(f"{path}:{line}: the label column {column!r} is empty; every row to train or test on "
                        "needs a label (is --label-column the right column?)")
    return value.strip()

"""SST-2 in GLUE's TSV layout: a `sentence<TAB>label` header, then one example a line.

The text stays as GLUE ships it (lower-cased, Penn-Treebank tokens like `-lrb-` and
`n't`); only the whitespace around a sentence is trimmed, because GLUE's own files have
a space before the tab that common re-exports dropped, and both should give the same
examples. Any malformed row stops the load with its file and line number: a silently
skipped row would change the split and every number computed on it.

`encode_sentences` turns sentences into what the classifier reads: `[BOS] sentence`, or
with echo `[BOS] sentence "\n\n" sentence`, and where each one's mean pool starts; a pair
of texts is one sentence `text "\n" text_pair`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from errors import UserError

from .formats import DataFormat

if TYPE_CHECKING:
    from llama import Tokenizer

LABELS = {"0": 0, "1": 1}
ECHO_SEPARATOR = "\n\n"  # a blank line between the two copies of an echoed sentence
PAIR_SEPARATOR = "\n"  # between the two texts of a pair: a line break, as between SQuAD's question and context


@dataclasses.dataclass
class SentenceExample:
    """One text and its label's index (SST-2: 0 negative, 1 positive); `text_pair`, a second text (pairs)."""

    text: str
    label: int
    text_pair: str | None = None


def read_sst2_tsv(path: str | Path) -> list[SentenceExample]:
    """Every row of a GLUE SST-2 `train.tsv` / `dev.tsv`, in file order."""
    path = Path(path)
    lines = _read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if not lines:
        raise UserError(f"{path}: empty file; expected a 'sentence<TAB>label' header and rows")
    header = lines[0].rstrip("\r").split("\t")
    if "sentence" not in header or "label" not in header:
        raise UserError(f"{path}:1: header is {lines[0][:60]!r}; expected 'sentence<TAB>label' "
                        "(GLUE's test.tsv has no labels and cannot be used)")
    text_col, label_col = header.index("sentence"), header.index("label")
    examples = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) != len(header):
            raise UserError(f"{path}:{number}: {len(fields) - 1} tab(s) in the row, expected "
                            f"{len(header) - 1} ('sentence<TAB>label'): {line[:60]!r}")
        text, label = fields[text_col].strip(), fields[label_col].strip()
        if label not in LABELS:
            raise UserError(f"{path}:{number}: label {label[:20]!r} is not 0 or 1")
        if not text:
            raise UserError(f"{path}:{number}: empty sentence")
        examples.append(SentenceExample(text, LABELS[label]))
    return examples


class Encoded(NamedTuple):
    """Token sequences for the classifier, each one's first position to mean-pool, and how many were cut."""

    sequences: list[list[int]]
    starts: list[int]
    cut: int


def encode_sentences(tokenizer: "Tokenizer", texts: list[str], echo: bool = False, pairs: list[str] | None = None,
                     max_tokens: int | None = None) -> Encoded:
    """Token sequences for the classifier, and each sequence's first position to mean-pool.

    Plain: `[BOS] sentence` (exactly `tokenizer.encode_batch`), pooled from the sentence's
    first token, after BOS (whose state is the same for every input and would only blur
    the mean). Echo: `[BOS] sentence "\n\n" sentence`, pooled over the second copy only:
    under causal attention a token sees only what precedes it, so only in the second copy
    has every token read the whole sentence. The copies are concatenated token lists, so
    they hold the same tokens. The last-token pool needs no start: the last token is the
    sentence's own (its second copy's with echo).

    `pairs`: a second text per example; the "sentence" is then `text PAIR_SEPARATOR pair`
    (each tokenised alone, so both copies of an echo hold the same tokens), and every
    readout reads it as one. `max_tokens` (the model's context): a longer sequence keeps
    the beginning of each text, cutting the longer of a pair first, until it fits; `cut`
    counts the examples that lost tokens.
    """
    prefix = tokenizer.encode("")  # [BOS], or [] for a tokenizer that adds none
    separator = tokenizer.encode(ECHO_SEPARATOR, add_bos=False)
    pair_separator = tokenizer.encode(PAIR_SEPARATOR, add_bos=False) if pairs is not None else []
    firsts = tokenizer.encode_batch(texts, add_bos=False)
    seconds = tokenizer.encode_batch(pairs, add_bos=False) if pairs is not None else [None] * len(texts)
    room = None  # tokens a sentence (one copy) may have
    if max_tokens is not None:
        room = (max_tokens - len(prefix) - (len(separator) if echo else 0)) // (2 if echo else 1)
        room -= len(pair_separator)
    sequences, starts, cut = [], [], 0
    for first, second in zip(firsts, seconds):
        if room is not None and len(first) + len(second or []) > room:
            first, second = _longest_first(first, second, room)
            cut += 1
        sentence = first if second is None else first + pair_separator + second
        first_copy = prefix + sentence
        sequences.append(first_copy + separator + sentence if echo else first_copy)
        starts.append(len(first_copy) + len(separator) if echo else len(prefix))
    return Encoded(sequences, starts, cut)


def _longest_first(first: list[int], second: list[int] | None, room: int) -> tuple[list[int], list[int] | None]:
    """Cut the ends of two token lists to `room` tokens in all, always from the longer (Hugging Face's
    `truncation="longest_first"`); a single text keeps its first `room` tokens."""
    if second is None:
        return first[:room], None
    short = min(len(first), len(second))
    if 2 * short <= room:  # the shorter one fits whole beside the longer one's first tokens
        keep = (room - short, short) if len(first) >= len(second) else (short, room - short)
    else:
        keep = ((room + 1) // 2, room // 2)
    return first[:keep[0]], second[:keep[1]]


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a leading BOM is not part of the header
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({err.reason})") from None


SST2_FORMAT = DataFormat("SST-2", ("train.tsv", "dev.tsv"), read_sst2_tsv, lambda e: e.label,
                         Path(__file__).parent / "samples" / "sst2.tsv", {"sst2": "sst2"})

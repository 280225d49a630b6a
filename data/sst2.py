"""SST-2 in GLUE's TSV layout: a `sentence<TAB>label` header, then one example a line.

The text stays as GLUE ships it (lower-cased, Penn-Treebank tokens like `-lrb-` and
`n't`); only the whitespace around a sentence is trimmed, because GLUE's own files have
a space before the tab that common re-exports dropped, and both should give the same
examples. Any malformed row stops the load with its file and line number: a silently
skipped row would change the split and every number computed on it.

`encode_sentences` turns sentences into what the classifier reads: `[BOS] sentence`, or
with echo `[BOS] sentence "\n\n" sentence`, and where each one's mean pool starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from errors import UserError

from .formats import DataFormat

if TYPE_CHECKING:
    from llama import Tokenizer

LABELS = {"0": 0, "1": 1}
ECHO_SEPARATOR = "\n\n"  # a blank line between the two copies of an echoed sentence


@dataclasses.dataclass
class SentenceExample:
    """One sentence and its sentiment: 0 negative, 1 positive."""

    text: str
    label: int


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


def encode_sentences(tokenizer: "Tokenizer", texts: list[str], echo: bool = False) -> tuple[list[list[int]], list[int]]:
    """Token sequences for the classifier, and each sequence's first position to mean-pool.

    Plain: `[BOS] sentence` (exactly `tokenizer.encode_batch`), pooled from the sentence's
    first token, after BOS (whose state is the same for every input and would only blur
    the mean). Echo: `[BOS] sentence "\n\n" sentence`, pooled over the second copy only:
    under causal attention a token sees only what precedes it, so only in the second copy
    has every token read the whole sentence. The copies are concatenated token lists, so
    they hold the same tokens. The last-token pool needs no start: the last token is the
    sentence's own (its second copy's with echo).
    """
    prefix = tokenizer.encode("")  # [BOS], or [] for a tokenizer that adds none
    separator = tokenizer.encode(ECHO_SEPARATOR, add_bos=False)
    sequences, starts = [], []
    for sentence in tokenizer.encode_batch(texts, add_bos=False):
        first_copy = prefix + sentence
        sequences.append(first_copy + separator + sentence if echo else first_copy)
        starts.append(len(first_copy) + len(separator) if echo else len(prefix))
    return sequences, starts


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

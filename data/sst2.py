"""SST-2 in GLUE's TSV layout: a `sentence<TAB>label` header, then one example a line.

The text stays as GLUE ships it (lower-cased, Penn-Treebank tokens like `-lrb-` and
`n't`); only the whitespace around a sentence is trimmed, because GLUE's own files have
a space before the tab that common re-exports dropped, and both should give the same
examples. Any malformed row stops the load with its file and line number: a silently
skipped row would change the split and every number computed on it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from errors import UserError

LABELS = {"0": 0, "1": 1}


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


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: a leading BOM is not part of the header
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text ({err.reason})") from None

"""SQuAD v1.1 / v2.0 in the official JSON layout, flattened to one record per question.

Layout: `{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id",
"question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}`; v2.0 adds
`is_impossible` (and `plausible_answers`, which nothing here uses).

A structural problem (not SQuAD, a missing key, an `answer_start` outside its context,
a repeated id) stops the load with the file and question id. An answer whose text is
not exactly `context[start:start + len(text)]` is kept, since the official data may have
such quirks and the metric only compares texts; `check_answer_spans` lists them.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from pathlib import Path

from errors import UserError

from .formats import DataFormat


@dataclasses.dataclass
class QAExample:
    """One question about one context; `answers[k]` starts at character `answer_starts[k]`.

    The first answer is the training target; all answers are references for the metric.
    Unanswerable (SQuAD v2) questions have `is_impossible` and no answers.
    """

    id: str
    title: str
    question: str
    context: str
    answers: list[str]
    answer_starts: list[int]
    is_impossible: bool


def read_squad_json(path: str | Path) -> list[QAExample]:
    """Every question of an official SQuAD v1.1 or v2.0 file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        root = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(root, dict) or not isinstance(root.get("data"), list):
        raise UserError(f"{path}: not a SQuAD file (expected a JSON object with a 'data' list "
                        "of articles, as in the official train-v1.1.json / dev-v2.0.json)")
    examples: list[QAExample] = []
    seen: set[str] = set()
    for a, article in enumerate(root["data"]):
        where = f"{path}: article {a}"
        title = _field(article, "title", str, where, default="")
        for p, paragraph in enumerate(_field(article, "paragraphs", list, where)):
            where = f"{path}: article {a} paragraph {p}"
            context = _field(paragraph, "context", str, where)
            for qa in _field(paragraph, "qas", list, where):
                example = _question(qa, title, context, path, where)
                if example.id in seen:
                    raise UserError(f"{path}: question {example.id}: id appears twice")
                seen.add(example.id)
                examples.append(example)
    return examples


def _question(qa: object, title: str, context: str, path: Path, where: str) -> QAExample:
    qid = _field(qa, "id", str, where)
    where = f"{path}: question {qid}"
    question = _field(qa, "question", str, where)
    impossible = _field(qa, "is_impossible", bool, where, default=False)
    answers, starts = [], []
    for answer in _field(qa, "answers", list, where):
        text = _field(answer, "text", str, where)
        start = _field(answer, "answer_start", int, where)
        if not 0 <= start < len(context):
            raise UserError(f"{where}: answer_start {start} is outside the context "
                            f"(0..{len(context) - 1})")
        if not text.strip():
            raise UserError(f"{where}: empty answer text")
        answers.append(text)
        starts.append(start)
    if impossible and answers:
        raise UserError(f"{where}: is_impossible is true but it has answers")
    if not impossible and not answers:
        raise UserError(f"{where}: no answers and not marked is_impossible")
    return QAExample(qid, title, question, context, answers, starts, impossible)


def _field(record: object, key: str, kind: type, where: str, default: object = None):
    """record[key], checked to be of `kind`; a UserError naming `where` otherwise."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}; not a SQuAD file?")
    if key not in record and default is not None:
        return default
    value = record.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = "missing" if key not in record else f"a {type(value).__name__}"
        raise UserError(f"{where}: '{key}' is {got}, expected a {kind.__name__}; not a SQuAD file?")
    return value


def check_answer_spans(examples: list[QAExample]) -> list[str]:
    """Ids of questions with an answer that differs from `context[start:start + len(text)]`."""
    return [e.id for e in examples
            if any(e.context[s:s + len(t)] != t for t, s in zip(e.answers, e.answer_starts))]


def squad_format(version: str) -> DataFormat:
    """SQuAD `version` ("1.1" or "2.0"): its file names, and `--data squad` downloads that version."""
    if version not in ("1.1", "2.0"):
        raise UserError(f"unknown SQuAD version {version!r}: expected 1.1 or 2.0")
    return DataFormat(f"SQuAD v{version}", (f"train-v{version}.json", f"dev-v{version}.json"), read_squad_json,
                      lambda e: "no answer" if e.is_impossible else "answer",
                      Path(__file__).parent / "samples" / "squad_v2.json",
                      {"squad": "squad" if version == "1.1" else "squad_v2", "squad_v2": "squad_v2"},
                      functools.partial(_check_version, version))


def _check_version(version: str, examples: list[QAExample], path: Path) -> None:
    """Refuse v2 data for a v1.1 run (its unanswerable questions would be scored wrongly);
    report answers that do not match their context, which are kept."""
    if version == "1.1" and any(e.is_impossible for e in examples):
        raise UserError(f"{path} has unanswerable questions (SQuAD 2.0): pass --squad-version 2.0")
    mismatched = check_answer_spans(examples)
    if mismatched:
        print(f"note: {path}: {len(mismatched)} question(s) have an answer that differs from "
              f"context[answer_start:] (kept), e.g. {', '.join(mismatched[:3])}", file=sys.stderr)

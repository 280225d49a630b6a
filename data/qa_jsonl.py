"""QA examples from JSON Lines in the layout of the Hugging Face `squad` / `squad_v2` data sets.

One question a line:

    {"id": "56be4db0", "title": "Super_Bowl_50", "context": "...", "question": "...",
     "answers": {"text": ["Denver Broncos"], "answer_start": [177]}}

Empty `text` / `answer_start` lists mean the question has no answer in its context
(SQuAD 2.0). `title` may be missing. Every problem stops the load with the file, the line
and the fix, as the official JSON reader does (`data.squad`).
"""

from __future__ import annotations

import json
from pathlib import Path

from errors import UserError

from .labelled import read_text
from .squad import QAExample, read_squad_json, squad_format

KEYS = ("id", "context", "question", "answers")


def read_squad_jsonl(path: str | Path) -> list[QAExample]:
    """Every question of a `squad`-layout JSONL file, in file order."""
    path = Path(path)
    examples: list[QAExample] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{where}: not JSON ({err.msg} at column {err.colno}); a .jsonl file holds one JSON "
                            "object a line") from None
        example = _example(record, where)
        if example.id in seen:
            raise UserError(f"{where}: id {example.id!r} was already used on line {seen[example.id]}; ids must be "
                            "unique")
        seen[example.id] = number
        examples.append(example)
    if not examples:
        raise UserError(f"{path}: no questions; expected one JSON object a line in the Hugging Face squad layout")
    return examples


def _example(record: object, where: str) -> QAExample:
    if not isinstance(record, dict):
        raise UserError(f"{where}: a JSON {type(record).__name__}, expected an object with "
                        f"{', '.join(KEYS)} on every line")
    missing = [k for k in KEYS if k not in record]
    if missing:
        found = ", ".join(repr(k) for k in record) or "none"
        raise UserError(f"{where}: no {', '.join(repr(k) for k in missing)} (keys found: {found}); each line needs "
                        "id, context, question and answers {text: [...], answer_start: [...]} as in the "
                        "Hugging Face squad data set")
    for key in ("id", "context", "question") + (("title",) if "title" in record else ()):
        if not isinstance(record[key], str):
            raise UserError(f"{where}: '{key}' holds {json.dumps(record[key])[:40]}, expected a string")
    answers = record["answers"]
    if (not isinstance(answers, dict) or not isinstance(answers.get("text"), list)
            or not isinstance(answers.get("answer_start"), list)
            or len(answers["text"]) != len(answers["answer_start"])):
        raise UserError(f"{where}: 'answers' is {json.dumps(answers)[:60]}, expected "
                        '{"text": [...], "answer_start": [...]}, two lists of the same length ([] and []: no answer)')
    context = record["context"]
    for text, start in zip(answers["text"], answers["answer_start"]):
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{where}: answer text {json.dumps(text)[:40]} is not a non-empty string")
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start < len(context):
            raise UserError(f"{where}: answer_start {json.dumps(start)} is not a character offset into the context "
                            f"(0..{len(context) - 1})")
    return QAExample(record["id"], record.get("title", ""), record["question"], context, list(answers["text"]),
                     list(answers["answer_start"]), not answers["text"])


def read_qa_file(path: str | Path, squad_version: str) -> list[QAExample]:
    """A QA file of the user's, SQuAD JSON (.json) or squad-layout JSONL (.jsonl), checked as SQuAD
    `squad_version` is (v1.1 refuses unanswerable questions; shifted answer_starts are refused)."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ".jsonl"):
        raise UserError(f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; QA files are SQuAD's .json "
                        "or Hugging Face squad-layout .jsonl")
    examples = read_squad_jsonl(path) if path.suffix.lower() == ".jsonl" else read_squad_json(path)
    squad_format(squad_version).check(examples, path)
    return examples

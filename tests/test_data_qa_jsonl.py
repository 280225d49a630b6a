"""QA from JSON Lines in the Hugging Face `squad` layout: the same questions as the official JSON, every bad line
one error naming the file, the line and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.qa_jsonl import read_squad_jsonl
from data.squad import QAExample, read_squad_json
from errors import UserError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
CONTEXT = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."
ROW = {"id": "q1", "title": "Normans", "context": CONTEXT, "question": "Who named Normandy?",
       "answers": {"text": ["The Normans", "Normans"], "answer_start": [0, 4]}}


def write(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def as_hf_rows(examples: list[QAExample]) -> list[dict]:
    """What `datasets.load_dataset("squad")` rows hold for these questions."""
    return [{"id": e.id, "title": e.title, "context": e.context, "question": e.question,
             "answers": {"text": e.answers, "answer_start": e.answer_starts}} for e in examples]


def test_reads_answerable_and_unanswerable_questions(tmp_path):
    unanswerable = {**ROW, "id": "q2", "answers": {"text": [], "answer_start": []}}
    untitled = {k: v for k, v in ROW.items() if k != "title"} | {"id": "q3"}
    assert read_squad_jsonl(write(tmp_path, [ROW, "", unanswerable, untitled])) == [
        QAExample("q1", "Normans", "Who named Normandy?", CONTEXT, ["The Normans", "Normans"], [0, 4], False),
        QAExample("q2", "Normans", "Who named Normandy?", CONTEXT, [], [], True),
        QAExample("q3", "", "Who named Normandy?", CONTEXT, ["The Normans", "Normans"], [0, 4], False)]


@pytest.mark.skipif(not SHARED.is_dir(), reason="real SQuAD files not present")
@pytest.mark.parametrize("name", ["dev-v1.1.json", "dev-v2.0.json"])
def test_the_official_files_written_as_jsonl_read_back_the_same(tmp_path, name):
    examples = read_squad_json(SHARED / name)
    assert read_squad_jsonl(write(tmp_path, as_hf_rows(examples))) == examples


@pytest.mark.parametrize("line, message", [
    ('{"id": "q9", context: 1}', r"qa\.jsonl:2: not JSON \(.*\); a \.jsonl file holds one JSON object a line"),
    ('["q9"]', r"qa\.jsonl:2: a JSON list, expected an object with id, context, question, answers"),
    ({"id": "q9", "context": CONTEXT, "question": "Q?", "answer": {}},
     r"qa\.jsonl:2: no 'answers' \(keys found: 'id', 'context', 'question', 'answer'\)"),
    ({**ROW, "id": 9}, r"qa\.jsonl:2: 'id' holds 9, expected a string"),
    ({**ROW, "id": "q9", "answers": [{"text": "Normans", "answer_start": 4}]},
     r"qa\.jsonl:2: 'answers' is .*expected \{\"text\": \[\.\.\.\], \"answer_start\": \[\.\.\.\]\}"),
    ({**ROW, "id": "q9", "answers": {"text": ["Normans"], "answer_start": []}}, r"two lists of the same length"),
    ({**ROW, "id": "q9", "answers": {"text": ["Normans"], "answer_start": [500]}},
     r"qa\.jsonl:2: answer_start 500 is not a character offset into the context \(0\.\.90\)"),
    ({**ROW, "id": "q9", "answers": {"text": [" "], "answer_start": [3]}}, r"answer text \" \" is not a non-empty"),
    (ROW, r"qa\.jsonl:2: id 'q1' was already used on line 1"),
])
def test_bad_lines_are_one_error_naming_the_file_the_line_and_the_fix(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        read_squad_jsonl(write(tmp_path, [ROW, line]))


def test_an_empty_or_missing_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="no questions"):
        read_squad_jsonl(write(tmp_path, ["", " "]))
    with pytest.raises(UserError, match="no such file"):
        read_squad_jsonl(tmp_path / "absent.jsonl")

"""SQuAD JSON reader: v1.1 and v2.0 layouts, answer spans checked, bad files named precisely."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data.squad import QAExample, check_answer_starts, read_squad_json
from errors import UserError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad"
CONTEXT = "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy."


def squad(qas: list[dict], context: str = CONTEXT, version: str = "v2.0") -> dict:
    return {"version": version, "data": [{"title": "Normans", "paragraphs": [{"context": context, "qas": qas}]}]}


def write(tmp_path: Path, root: object) -> Path:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(root))
    return path


def test_reads_v11_and_v20_questions_with_all_reference_answers(tmp_path):
    qas = [{"id": "q1", "question": "Who gave their name to Normandy?",
            "answers": [{"text": "The Normans", "answer_start": 0}, {"text": "Normans", "answer_start": 4}]},
           {"id": "q2", "question": "Who gave their name to Paris?", "answers": [], "is_impossible": True,
            "plausible_answers": [{"text": "Normans", "answer_start": 4}]}]
    assert read_squad_json(write(tmp_path, squad(qas))) == [
        QAExample("q1", "Normans", "Who gave their name to Normandy?", CONTEXT,
                  ["The Normans", "Normans"], [0, 4], False),
        QAExample("q2", "Normans", "Who gave their name to Paris?", CONTEXT, [], [], True)]


def test_a_few_answers_that_differ_from_the_context_are_kept_with_a_note(tmp_path):
    qas = [{"id": "ok", "question": "Q?", "answers": [{"text": "Normans", "answer_start": 4}]},
           {"id": "off_by_one", "question": "Q?", "answers": [{"text": "Normans", "answer_start": 5}]},
           {"id": "past_the_end", "question": "Q?", "answers": [{"text": "Normandy. And", "answer_start": 82}]}]
    examples = read_squad_json(write(tmp_path, squad(qas, version="1.1")))
    assert [e.id for e in examples] == ["ok", "off_by_one", "past_the_end"]
    with pytest.raises(UserError, match=r"2 of 3 answers \(66\.7%\) are not at their answer_start \(question "
                                        r"off_by_one: 'Normans' at 5 reads 'ormans '\); more than 1%"):
        check_answer_starts(examples, "squad.json")  # two in three: the offsets are wrong, not quirks
    many = examples[:1] * 200 + examples[1:]
    assert check_answer_starts(many, "squad.json").startswith("2 of 202 answers (0.99%) are not at their "
                                                              "answer_start, e.g. question off_by_one")


@pytest.mark.parametrize("root, problem", [
    ([1, 2], "not a SQuAD file"),
    ({"version": "1.1"}, "not a SQuAD file"),
    ({"data": [{"title": "t"}]}, "article 0: 'paragraphs' is missing"),
    ({"data": [{"paragraphs": [{"qas": []}]}]}, "article 0 paragraph 0: 'context' is missing"),
    ({"data": [{"paragraphs": [{"context": "c", "qas": ["q"]}]}]}, "expected a JSON object, got str"),
])
def test_json_that_is_not_squad_is_refused_with_where_it_broke(tmp_path, root, problem):
    path = write(tmp_path, root)
    with pytest.raises(UserError) as err:
        read_squad_json(path)
    assert str(err.value).startswith(str(path)) and problem in str(err.value)


@pytest.mark.parametrize("qa, problem", [
    ({"id": "x1", "question": "Q?", "answers": [{"text": "N", "answer_start": 400}]}, "outside the context"),
    ({"id": "x1", "question": "Q?", "answers": [{"text": "N", "answer_start": -1}]}, "outside the context"),
    ({"id": "x1", "question": "Q?", "answers": [{"text": "N", "answer_start": "4"}]}, "'answer_start' is a str"),
    ({"id": "x1", "question": "Q?", "answers": [{"text": " ", "answer_start": 3}]}, "empty answer"),
    ({"id": "x1", "question": "Q?", "answers": []}, "no answers and not marked is_impossible"),
    ({"id": "x1", "question": "Q?", "answers": [{"text": "N", "answer_start": 4}], "is_impossible": True},
     "is_impossible is true but it has answers"),
    ({"id": "x1", "answers": []}, "'question' is missing"),
])
def test_a_bad_question_names_file_and_question_id(tmp_path, qa, problem):
    path = write(tmp_path, squad([qa]))
    with pytest.raises(UserError) as err:
        read_squad_json(path)
    assert str(err.value).startswith(f"{path}: question x1:") and problem in str(err.value)


def test_repeated_ids_and_broken_json_are_refused(tmp_path):
    qa = {"id": "dup", "question": "Q?", "answers": [{"text": "Normans", "answer_start": 4}]}
    with pytest.raises(UserError, match="question dup: id appears twice"):
        read_squad_json(write(tmp_path, squad([qa, qa])))
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [')
    with pytest.raises(UserError, match="broken.json: not valid JSON"):
        read_squad_json(broken)
    with pytest.raises(UserError, match="no such file"):
        read_squad_json(tmp_path / "absent.json")


@pytest.mark.skipif(not SHARED.is_dir(), reason="real SQuAD files not present")
@pytest.mark.parametrize("name, count, unanswerable", [("dev-v1.1.json", 10_570, 0),
                                                        ("dev-v2.0.json", 11_873, 5_945)])
def test_real_dev_files_have_their_counts_and_every_answer_matches_its_start(name, count, unanswerable):
    examples = read_squad_json(SHARED / name)
    assert len(examples) == count
    assert sum(e.is_impossible for e in examples) == unanswerable
    assert check_answer_starts(examples, name) is None  # the official dev files have no mismatched span

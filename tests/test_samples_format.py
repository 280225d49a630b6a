"""The bundled sample files keep the GLUE SST-2 and official SQuAD v2.0 formats.

Parsed with plain `csv`/`json` so the check does not depend on the loaders under test.
"""

import csv
import json
import re
from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def sst2_lines() -> list[str]:
    raw = (SAMPLES / "sst2.tsv").read_bytes()
    assert b"\r" not in raw, "lines must end with \\n only"
    return raw.decode("utf-8").split("\n")


@pytest.fixture(scope="module")
def sst2_rows(sst2_lines) -> list[tuple[str, str]]:
    assert sst2_lines[-1] == "", "file must end with a newline"
    for n, line in enumerate(sst2_lines[1:-1], start=2):
        assert line.count("\t") == 1, f"line {n}: expected exactly one tab"
    rows = list(csv.reader(sst2_lines[1:-1], delimiter="\t", quoting=csv.QUOTE_NONE))
    return [(sentence, label) for sentence, label in rows]


@pytest.fixture(scope="module")
def squad_paragraphs() -> list[dict]:
    root = json.loads((SAMPLES / "squad_v2.json").read_text(encoding="utf-8"))
    assert root["version"] == "v2.0"
    return [p for article in root["data"] for p in article["paragraphs"]]


@pytest.fixture(scope="module")
def squad_questions(squad_paragraphs) -> list[tuple[str, dict]]:
    return [(p["context"], qa) for p in squad_paragraphs for qa in p["qas"]]


def test_sst2_has_the_glue_header(sst2_lines):
    assert sst2_lines[0] == "sentence\tlabel"


def test_sst2_has_enough_rows_with_binary_labels(sst2_rows):
    assert len(sst2_rows) >= 300
    assert {label for _, label in sst2_rows} == {"0", "1"}


def test_sst2_labels_are_balanced(sst2_rows):
    positive = sum(label == "1" for _, label in sst2_rows) / len(sst2_rows)
    assert 0.4 <= positive <= 0.6


def test_sst2_sentences_are_nonempty_and_unique(sst2_rows):
    sentences = [sentence for sentence, _ in sst2_rows]
    assert all(s.strip() for s in sentences)
    assert len(set(sentences)) == len(sentences)


def test_sst2_text_is_lowercased_and_tokenised_like_glue(sst2_rows):
    for sentence, _ in sst2_rows:
        assert sentence == sentence.lower(), sentence
        assert "(" not in sentence and ")" not in sentence, sentence
        assert not re.search(r"\wn't|\w'(s|re|ve|ll|d|m)\b|\w[,.;:!?](\s|$)", sentence), sentence


def test_squad_has_enough_paragraphs_and_questions(squad_paragraphs, squad_questions):
    assert len(squad_paragraphs) >= 20
    assert len(squad_questions) >= 100


def test_squad_ids_are_unique_24_digit_hex(squad_questions):
    ids = [qa["id"] for _, qa in squad_questions]
    assert all(re.fullmatch(r"[0-9a-f]{24}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_squad_unanswerable_questions_carry_one_plausible_answer(squad_questions):
    impossible = [qa for _, qa in squad_questions if qa["is_impossible"]]
    assert len(impossible) >= 20
    for qa in impossible:
        assert qa["answers"] == [], qa["id"]
        assert len(qa["plausible_answers"]) >= 1, qa["id"]


def test_squad_answerable_questions_have_one_to_three_answers(squad_questions):
    for _, qa in squad_questions:
        if not qa["is_impossible"]:
            assert 1 <= len(qa["answers"]) <= 3, qa["id"]


def test_squad_every_span_matches_its_context_at_answer_start(squad_questions):
    for context, qa in squad_questions:
        for span in qa["answers"] + qa.get("plausible_answers", []):
            start, text = span["answer_start"], span["text"]
            assert isinstance(start, int) and text, qa["id"]
            assert context[start:start + len(text)] == text, (qa["id"], text, start)

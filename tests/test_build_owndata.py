"""bench/build_owndata.py: the proof sets hold what they claim (SST-2 unchanged, QNLI split by article, 48 titles)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data.labelled import Columns, label_names_of, read_labelled_file, to_examples
from data.sst2 import read_sst2_tsv

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "bench"))
from build_owndata import sentences  # noqa: E402


def test_sentences_split_after_a_full_stop_but_not_after_an_initial():
    text = 'F. D. Cohn, Jr. wrote it in 1990. He said "yes." Then? 2015 came.'
    assert [text[a:b] for a, b in sentences(text)] == ["F. D. Cohn, Jr. wrote it in 1990.", 'He said "yes."',
                                                       "Then?", "2015 came."]


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not present")
def test_the_proof_sets(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "bench" / "build_owndata.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    for part in ("train", "dev"):  # SST-2 as CSV with word labels reads back as the very same examples
        path = tmp_path / "sst2" / f"{part}.csv"
        assert to_examples(read_labelled_file(path, Columns("sentence")), ("negative", "positive"), path) == \
            read_sst2_tsv(SHARED / "sst2" / f"{part}.tsv")
    qnli = {part: [json.loads(line) for line in (tmp_path / "qnli" / f"{part}.jsonl").open()] for part in ("train", "test")}
    assert {r["label"] for r in qnli["train"]} == {"entailment", "not_entailment"}
    assert not {r["sentence"] for r in qnli["train"]} & {r["sentence"] for r in qnli["test"]}  # split by article
    assert sum(r["label"] == "entailment" for r in qnli["test"]) >= len({r["question"] for r in qnli["test"]}) * 0.9
    columns = Columns("question", "title")
    train = read_labelled_file(tmp_path / "titles" / "train.tsv", columns)
    test = read_labelled_file(tmp_path / "titles" / "test.tsv", columns)
    assert len(train) + len(test) == 10_570 and len(test) == 2_114
    assert len(label_names_of(train, "train")) == 48 and "Super Bowl 50" in label_names_of(train, "train")

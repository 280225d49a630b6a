"""`--data` resolution, verified atomic downloads (served from file:// URLs) and CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from data import sources
from data.sources import Download, load_task_data
from data.squad import squad_format
from data.sst2 import SST2_FORMAT
from errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def sst2_rows(n: int, offset: int = 0) -> str:
    return "sentence\tlabel\n" + "".join(f"sentence {offset + i} \t{int(i % 4 != 0)}\n" for i in range(n))


def squad_file(path: Path, n: int, impossible: int = 0) -> Path:
    qas = [{"id": f"q{i}", "question": f"Question {i}?", "answers": [{"text": "Normans", "answer_start": 4}]}
           for i in range(n - impossible)]
    qas += [{"id": f"x{i}", "question": "Q?", "answers": [], "is_impossible": True} for i in range(impossible)]
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "t", "paragraphs": [
        {"context": "The Normans gave their name to Normandy.", "qas": qas}]}]}))
    return path


@pytest.fixture
def sst2_dir(tmp_path: Path) -> Path:
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "train.tsv").write_text(sst2_rows(100))
    (tmp_path / "sst2" / "dev.tsv").write_text(sst2_rows(12, offset=1000))
    return tmp_path / "sst2"


def test_directory_holdout_is_the_80_20_split_of_train_only(sst2_dir):
    train, test = load_task_data(SST2_FORMAT, str(sst2_dir), "holdout", seed=1)
    assert (len(train), len(test)) == (80, 20)
    assert not {e.text for e in train} & {e.text for e in test}
    assert all(int(e.text.split()[1]) < 1000 for e in train + test)


def test_directory_dev_trains_on_train_and_tests_on_dev(sst2_dir):
    train, test = load_task_data(SST2_FORMAT, str(sst2_dir), "dev")
    assert (len(train), len(test)) == (100, 12)


def test_limits_keep_the_label_balance(sst2_dir):
    train, test = load_task_data(SST2_FORMAT, str(sst2_dir), "dev", limit=40, eval_limit=8)
    assert Counter(e.label for e in train) == {1: 30, 0: 10}
    assert Counter(e.label for e in test) == {1: 6, 0: 2}


def test_single_file_splits_but_cannot_give_a_dev_split(sst2_dir):
    assert [len(p) for p in load_task_data(SST2_FORMAT, str(sst2_dir / "dev.tsv"), "holdout")] == [10, 2]
    with pytest.raises(UserError, match="one file"):
        load_task_data(SST2_FORMAT, str(sst2_dir / "dev.tsv"), "dev")


def test_squad_directory_needs_the_versioned_names_and_v2_data_needs_version_2(tmp_path):
    squad_file(tmp_path / "train-v2.0.json", 10, impossible=5)
    with pytest.raises(UserError, match="no dev-v2.0.json"):
        load_task_data(squad_format("2.0"), str(tmp_path), "dev")
    squad_file(tmp_path / "dev-v2.0.json", 4, impossible=2)
    train, test = load_task_data(squad_format("2.0"), str(tmp_path), "dev", limit=4)
    assert Counter(e.is_impossible for e in train) == {True: 2, False: 2} and len(test) == 4
    with pytest.raises(UserError, match="pass --squad-version 2.0"):
        load_task_data(squad_format("1.1"), str(tmp_path / "train-v2.0.json"), "holdout")


def test_sample_is_the_bundled_files_and_has_no_dev_split():
    assert SST2_FORMAT.sample.name == "sst2.tsv" and squad_format("2.0").sample.name == "squad_v2.json"
    with pytest.raises(UserError, match="--split holdout"):
        load_task_data(SST2_FORMAT, "sample", "dev")
    for fmt in (SST2_FORMAT, squad_format("2.0")):
        train, test = load_task_data(fmt, "sample", "holdout")
        assert len(test) == round((len(train) + len(test)) * 0.2) > 0


@pytest.mark.parametrize("fmt, data, problem", [
    (SST2_FORMAT, "no/such/dir", "no such file or directory"),
    (SST2_FORMAT, "squad", "not SST-2 data"),
    (squad_format("1.1"), "sst2", r"not SQuAD v1.1 data"),
])
def test_bad_data_arguments_are_user_errors(fmt, data, problem):
    with pytest.raises(UserError, match=problem):
        load_task_data(fmt, data, "holdout")


def test_an_unknown_squad_version_is_a_user_error():
    with pytest.raises(UserError, match="unknown SQuAD version '3.0'"):
        squad_format("3.0")


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """CANONICAL pointed at file:// copies (SST-2 as GLUE's zip), the cache at tmp/cache."""
    archive = tmp_path / "SST-2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("SST-2/train.tsv", sst2_rows(50))
        zf.writestr("SST-2/dev.tsv", sst2_rows(6))
        zf.writestr("SST-2/test.tsv", "index\tsentence\n0\tunlabelled\n")
    squad_file(tmp_path / "train-v1.1.json", 9)
    squad_file(tmp_path / "dev-v1.1.json", 3)
    monkeypatch.setitem(sources.CANONICAL, "sst2", {
        "train": Download(archive.as_uri(), "sst2/train.tsv", 50, "SST-2/train.tsv"),
        "dev": Download(archive.as_uri(), "sst2/dev.tsv", 6, "SST-2/dev.tsv")})
    monkeypatch.setitem(sources.CANONICAL, "squad", {
        "train": Download((tmp_path / "train-v1.1.json").as_uri(), "squad/train-v1.1.json", 9),
        "dev": Download((tmp_path / "dev-v1.1.json").as_uri(), "squad/dev-v1.1.json", 3)})
    monkeypatch.setenv("LLAMA_HEADS_DATA", str(tmp_path / "cache"))
    return tmp_path


def cached_files(mirror: Path) -> list[str]:
    return sorted(str(p.relative_to(mirror / "cache")) for p in (mirror / "cache").rglob("*"))


def test_download_extracts_both_sst2_files_from_one_archive_and_reuses_the_cache(mirror):
    train, test = load_task_data(SST2_FORMAT, "sst2", "dev")
    assert (len(train), len(test)) == (50, 6)
    assert cached_files(mirror) == ["sst2", "sst2/dev.tsv", "sst2/train.tsv"]
    (mirror / "SST-2.zip").unlink()  # a second load must not download again
    assert [len(p) for p in load_task_data(SST2_FORMAT, "sst2", "holdout")] == [40, 10]


def test_download_with_the_wrong_count_saves_nothing(mirror, monkeypatch):
    spec = sources.CANONICAL["squad"]["train"]
    monkeypatch.setitem(sources.CANONICAL["squad"], "train", Download(spec.url, spec.cache_name, 87_599))
    with pytest.raises(UserError, match="has 9 examples, the official file 87,599; nothing was saved"):
        load_task_data(squad_format("1.1"), "squad", "holdout")
    assert cached_files(mirror) == ["squad"]


def test_download_of_something_else_saves_nothing(mirror):
    (mirror / "train-v1.1.json").write_text("<html>moved</html>")
    with pytest.raises(UserError, match="download is not valid .*nothing was saved"):
        load_task_data(squad_format("1.1"), "squad", "holdout")
    assert cached_files(mirror) == ["squad"]


def test_offline_download_says_so_in_one_line_and_names_data_path(mirror, monkeypatch):
    monkeypatch.setitem(sources.CANONICAL["squad"], "train",
                        Download("http://127.0.0.1:9/train-v1.1.json", "squad/train-v1.1.json", 9))
    with pytest.raises(UserError) as err:
        load_task_data(squad_format("1.1"), "squad", "holdout")
    assert "cannot download http://127.0.0.1:9/train-v1.1.json" in str(err.value)
    assert "offline?" in str(err.value) and "--data PATH" in str(err.value) and "\n" not in str(err.value)
    assert cached_files(mirror) == ["squad"]


@pytest.mark.parametrize("name, content, problem", [
    ("absent.tsv", None, "absent.tsv: no such file or directory"),
    ("train.tsv", "sentence\tlabel\ngood\t1\nno tab here\n", "train.tsv:3: 0 tab(s)"),
    ("train.tsv", "sentence\tlabel\ngood\t7\n", "train.tsv:2: label '7' is not 0 or 1"),
    ("train.json", '{"not": "squad"}', "train.json: not a SQuAD file"),
    ("train.json", json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "abc", "qas": [
        {"id": "q9", "question": "Q?", "answers": [{"text": "abc", "answer_start": 10}]}]}]}]}),
     "train.json: question q9: answer_start 10 is outside the context"),
])
def test_cli_prints_one_line_naming_file_and_row_and_exits_non_zero(tmp_path, name, content, problem):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    task = "sst2" if name.endswith(".tsv") else "squad"
    result = subprocess.run([sys.executable, "-m", "data.sources", "--task", task, "--data", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and problem in result.stderr
    assert result.stdout == ""

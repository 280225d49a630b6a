"""predict.py: JSONL (or a table) for your own sentences and questions, from arguments, a file or stdin."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import heads
import predict as predict_script
from conftest import tiny_checkpoint
from heads.store import list_entries
from test_use_head import predictions, split_examples

ROOT = Path(__file__).resolve().parents[1]


def run_predict(argv: list[str], stdin: str = "", timeout: int = 300) -> subprocess.CompletedProcess:
    """predict.py in a fresh process, as a user runs it (stdout a pipe: JSONL)."""
    return subprocess.run([sys.executable, str(ROOT / "predict.py"), *argv], input=stdin, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_sentences_from_a_file_equal_the_runs_predictions(runs, tmp_path):
    texts = [e.text for e in split_examples(runs["sst2"])]
    (tmp_path / "sentences.txt").write_text("\n".join(texts) + "\n")
    done = run_predict(["--head", str(runs["sst2"]), "--input", str(tmp_path / "sentences.txt")])
    assert done.returncode == 0, done.stderr
    rows = jsonl(done.stdout)
    assert [r["text"] for r in rows] == texts
    assert [r["label"] for r in rows] == [p["prediction"] for p in predictions(runs["sst2"])]
    assert set(rows[0]) == {"text", "label", "score"}


def test_questions_from_stdin_equal_the_runs_predictions(runs):
    examples = split_examples(runs["squad_v2"])
    stdin = "".join(json.dumps({"question": e.question, "context": e.context, "id": e.id}) + "\n" for e in examples)
    done = run_predict(["--head", str(runs["squad_v2"]), "--input", "-"], stdin=stdin)
    assert done.returncode == 0, done.stderr
    rows = jsonl(done.stdout)
    assert [r["id"] for r in rows] == [e.id for e in examples]  # input order, input keys kept
    assert [r["answer"] for r in rows] == [p["prediction"] for p in predictions(runs["squad_v2"])]
    assert {"answer", "score", "start", "end"} <= set(rows[0])


def test_sentences_as_arguments_in_process_equal_the_python_api(runs, capsys):
    texts = ["a gorgeous , witty film", "tedious and overlong"]
    rows = predict_script.main(["--head", str(runs["sst2"]), "--format", "jsonl", *texts])
    assert jsonl(capsys.readouterr().out) == rows
    assert [{"label": r["label"], "score": r["score"]} for r in rows] == heads.load(runs["sst2"]).classify(texts)


def test_a_table_for_a_terminal(runs, capsys):
    predict_script.main(["--head", str(runs["squad_v1"]), "--format", "table", "--question", "Who?",
                         "--context", "Marie Curie discovered polonium."])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["answer", "score", "question"] and len(lines) == 2


@pytest.mark.parametrize("argv, stdin, message", [
    (["--head", "no/such/dir"], "", "give the input one way"),
    (["--head", "{tmp}/missing", "fine"], "", "missing not found"),
    (["--head", "{sst2}", "--input", "-"], "\n\n", "no input"),
    (["--head", "{sst2}", "--input", "-", "--max-chars", "100"], "x" * 101, "over --max-chars"),
    (["--head", "{sst2}", "--input", "-", "--max-chars", "100"], '{"text": "ok"}\n{"text": \n', "stdin:2: not a JSON"),
    (["--head", "{sst2}", "--input", "-"], '{"question": "q"}\n', "stdin:1: expected an object"),
    (["--head", "{sst2}", "--question", "q", "--context", "c"], "", "reads text"),
    (["--head", "{sst2}", "--model", "{wide}", "fine"], "", "architecture differs"),
    (["--head", "{sst2}", "--question", "q"], "", "go together"),
    (["--head", "{sst2}", "--input", "{tmp}/none.txt"], "", "no such file"),
    (["--head", "{sst2}", "--input", "-", "--cache-limit", "0"], "fine\n", "--cache-limit must be positive"),
    (["--head", "{sst2}", "--input", "-", "--cache-dir", "/dev/null/states"], "fine\n", "cannot use --cache-dir"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, smollm2_checkpoint, argv, stdin, message):
    wide = tmp_path / "wide"
    if "{wide}" in argv:
        tiny_checkpoint(wide, smollm2_checkpoint, 64, seed=0)
    argv = [a.format(sst2=runs["sst2"], tmp=tmp_path, wide=wide) for a in argv]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    sys_stdin = sys.stdin
    try:
        sys.stdin = io.StringIO(stdin)
        with redirect_stdout(out), redirect_stderr(err):
            predict_script.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.stdin = sys_stdin
    assert code == 2 and err.getvalue().startswith("error: ") and err.getvalue().count("\n") == 1, err.getvalue()
    assert message in err.getvalue() and out.getvalue() == ""


@pytest.mark.parametrize("name", ["sst2", "squad_v2"])
def test_a_file_of_the_runs_test_split_reuses_the_states_the_run_stored(runs, tmp_path, name):
    """The runs trained with the default store ($LLAMA_HEADS_STATES in tests): predict.py --input on their test
    split, with its default --cache-dir, finds their "test states" entry and runs no frozen pass."""
    examples = split_examples(runs[name])
    if name == "sst2":
        text = "".join(e.text + "\n" for e in examples)
    else:
        text = "".join(json.dumps({"question": e.question, "context": e.context}) + "\n" for e in examples)
    (tmp_path / "inputs").write_text(text)
    done = run_predict(["--head", str(runs[name]), "--input", str(tmp_path / "inputs")])
    assert done.returncode == 0, done.stderr
    assert re.search(r"frozen pass: ([\d,]+) of \1 sequences reused from the store; computing 0 in 0 chunk",
                     done.stderr), done.stderr
    key = "label" if name == "sst2" else "answer"
    assert [r[key] for r in jsonl(done.stdout)] == [p["prediction"] for p in predictions(runs[name])]


def test_a_new_file_is_computed_once_then_reused(runs, tmp_path, capsys):
    texts = ["a gorgeous , witty film", "tedious and overlong", "not bad at all", "i wanted my money back"]
    (tmp_path / "new.txt").write_text("\n".join(texts) + "\n")
    argv = ["--head", str(runs["sst2"]), "--input", str(tmp_path / "new.txt"), "--cache-dir", str(tmp_path / "store"),
            "--format", "jsonl"]
    first = predict_script.main(argv)
    assert "frozen pass: 0 of 4 sequences reused from the store; computing 4 in" in capsys.readouterr().err
    second = predict_script.main(argv)
    assert "frozen pass: 4 of 4 sequences reused from the store; computing 0 in 0" in capsys.readouterr().err
    assert second == first  # stored states give the computed answers exactly
    (entry,) = list_entries(tmp_path / "store")
    assert entry["done"] == entry["items"] == 4
    assert predict_script.main([*argv[:4], "--cache-dir", "none", "--format", "jsonl"]) == first


def test_texts_as_arguments_and_the_page_store_nothing(runs, tmp_path, capsys):
    """A few interactive texts are a new key each time: they would fill the store with entries nothing reads."""
    store = tmp_path / "store"
    predict_script.main(["--head", str(runs["sst2"]), "--cache-dir", str(store), "--format", "jsonl", "fine", "dull"])
    predict_script.main(["--head", str(runs["squad_v1"]), "--cache-dir", str(store), "--format", "jsonl",
                         "--question", "Who?", "--context", "Marie Curie discovered polonium."])
    assert "reused" not in capsys.readouterr().err and not store.exists()
    page = predict_script.parse_args(["--head", str(runs["sst2"]), "--cache-dir", str(store), "--serve"])
    assert predict_script.load_head(page).store is None and not store.exists()

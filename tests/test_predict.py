"""predict.py: JSONL (or a table) for your own sentences and questions, from arguments, a file or stdin."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

import heads
import predict as predict_script
from conftest import tiny_checkpoint
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

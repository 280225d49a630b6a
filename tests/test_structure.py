"""The code's shape, as the README's reading order promises it: imports flow one way, only scripts parse flags."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"llama", "heads", "data", "metrics", "tasks", "training", "errors", "flags", "train", "eval", "count_params",
           "predict", "predict_page"}
# What each package may import from the project: scripts -> training -> tasks -> heads -> llama/data/metrics.
ALLOWED = {
    "llama": set(),
    "metrics": set(),
    "data": {"errors", "metrics", "llama"},
    "heads": {"errors", "llama", "data"},
    "tasks": {"errors", "llama", "data", "metrics", "heads"},
    "training": {"errors", "llama", "data", "metrics", "heads", "tasks"},
}


def project_imports(path: Path) -> set[str]:
    """Top-level project modules a file imports (relative imports stay inside its own package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PROJECT


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_flow_one_way(package):
    for path in sorted((ROOT / package).glob("*.py")):
        wrong = project_imports(path) - ALLOWED[package] - {package}
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}"


def test_nothing_outside_tasks_branches_on_the_task_name():
    compares = re.compile(r"""(==|!=)\s*["'](sst2|squad)["']|["'](sst2|squad)["']\s*(==|!=)|\btask\s*==""")
    files = [p for p in ROOT.glob("*.py")] + [p for d in ALLOWED if d != "tasks" for p in (ROOT / d).glob("*.py")]
    offending = [f"{p.relative_to(ROOT)}:{n}" for p in files
                 for n, line in enumerate(p.read_text().splitlines(), 1) if compares.search(line)]
    assert not offending


def test_only_the_scripts_parse_flags():
    """training/, tasks/ and heads/ take typed settings: no argparse, no Namespace below the scripts."""
    files = [p for d in ("training", "tasks", "heads") for p in sorted((ROOT / d).glob("*.py"))]
    offending = [f"{p.relative_to(ROOT)}:{n}" for p in files
                 for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"argparse|Namespace", line)]
    assert not offending


def test_reading_a_head_class_loads_no_text_metric():
    """count_params.py needs the task's head class, not ROUGE, BLEU or the Porter stemmer."""
    code = "import json, sys, count_params; print(json.dumps(sorted(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "tasks.squad" in json.loads(loaded)  # the head classes were read
    assert not {"metrics.rouge", "metrics.porter", "metrics.bleu"} & set(json.loads(loaded))

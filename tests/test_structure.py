"""The code's shape, as the README's reading order promises it: imports flow one way, tasks are records."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"llama", "heads", "data", "metrics", "tasks", "training", "errors", "train", "eval", "count_params", "predict",
           "predict_page"}
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

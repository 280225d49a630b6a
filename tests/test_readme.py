"""The README names only what exists: its paths, its commands' flags, and train.py's step count.

Other work renames files, flags and steps; these tests turn a README left behind into a failure
that names the stale word. What is outside the repository (`runs/`, `../shared/...`, Hub ids,
`$LLAMA_CACHE`) is not checked.
"""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".git")}
FENCE = re.compile(r"```(\w*)\n(.*?)```", re.S)
NUMBER_WORDS = {w: n for n, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve "
                                           "thirteen fourteen fifteen".split())}
# Flags of other programs a README command line may carry (the README's own scripts are asked for theirs).
OTHER_PROGRAMS = {"pip", "bash", "torchrun", "cd", "export"}


def prose(text: str) -> str:
    return FENCE.sub("", text)


def backticked(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", prose(text))


def shell_commands(text: str) -> list[str]:
    """Every command of the README's bash blocks: continuation lines joined, `&&` chains split, comments cut."""
    commands = []
    for language, body in FENCE.findall(text):
        if language not in ("bash", "sh"):
            continue
        for line in body.replace("\\\n", " ").splitlines():
            commands += [part.strip() for part in line.split("#")[0].split("&&") if part.strip()]
    return commands


def words(text: str) -> list[str]:
    spans = backticked(text) + shell_commands(text)
    return [w.strip(",;:()") for span in spans for w in span.split()]


def what_is_where_rows(text: str) -> list[tuple[list[str], str]]:
    """The "What is where" table: (the paths of the first column, the rest of the row)."""
    section = re.search(r"^## What is where\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "the README has no '## What is where' section"
    rows = []
    for line in section.group(1).splitlines():
        cells = line.split("|")
        if len(cells) > 3 and "`" in cells[1]:
            rows.append((re.findall(r"`([^`]+)`", cells[1]), "|".join(cells[2:])))
    assert rows, "the README's 'What is where' table has no rows"
    return rows


def module_path(module: str) -> Path:
    path = ROOT / module.replace(".", "/")
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


def exists_somewhere(name: str) -> bool:
    return any(".git" not in p.parts for p in ROOT.rglob(name))


def test_every_repository_path_the_readme_names_exists():
    missing = set()
    for word in words(README):
        word = word.rstrip(".")
        if word.endswith(".py") and "/" not in word:
            ok = exists_somewhere(word)  # a bare module name: rows of the table are checked in their folder below
        elif "/" in word and word.split("/")[0] in TOP_LEVEL | {".ci"}:
            ok = (ROOT / word).exists()
        elif word.endswith(".py") or re.fullmatch(r"[A-Z]+\.md|requirements[\w-]*\.txt", word):
            ok = (ROOT / word).exists()
        else:
            continue  # not a repository path (an output, a Hub id, a flag value, ../shared)
        if not ok:
            missing.add(word)
    for command in shell_commands(README):
        tokens = command.split()
        if tokens[:2] in (["python", "-m"], ["python3", "-m"]) and not module_path(tokens[2]).is_file():
            missing.add(f"python -m {tokens[2]}")
    assert not missing, f"the README names paths that do not exist: {sorted(missing)}"


def test_every_output_file_the_readme_names_is_one_the_code_writes():
    """`report.md`, `blocks.png`, ...: the name must appear in the source (a renamed plot or file is caught)."""
    source = "\n".join(p.read_text() for p in ROOT.rglob("*.py") if ".git" not in p.parts and p.parts[-2] != "tests")
    outputs = {w.rstrip(".") for w in words(README)
               if re.fullmatch(r"[a-z_]+\.(png|json|jsonl|safetensors|pt|md)\.?", w)}
    assert outputs, "the README names no output file"
    unwritten = sorted(name for name in outputs if f"{name}" not in source)
    assert not unwritten, f"the README names output files no code writes: {unwritten}"


def test_the_what_is_where_table_names_files_in_their_own_folders():
    missing = []
    for paths, rest in what_is_where_rows(README):
        missing += [p for p in paths if not (ROOT / p).exists()]
        folders = [p for p in paths if p.endswith("/")]
        for name in re.findall(r"`([\w.]+\.py)`", rest):
            if len(folders) == 1 and not (ROOT / folders[0] / name).is_file():
                missing.append(folders[0] + name)
    assert not missing, f"'What is where' names paths that do not exist: {missing}"


def main_step_numbers() -> list[int]:
    """The numbers of train.py's `# N. ...` step comments inside `main`, in order."""
    source = (ROOT / "train.py").read_text()
    main = next(node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == "main")
    body = ast.get_source_segment(source, main)
    return [int(n) for n in re.findall(r"^\s*# (\d+)\. ", body, re.M)]


def test_the_readme_counts_train_mains_steps_right():
    steps = main_step_numbers()
    assert steps and steps == list(range(1, len(steps) + 1)), f"train.py's main numbers its steps {steps}"
    claims = re.findall(rf"\b(\d+|{'|'.join(NUMBER_WORDS)}) numbered steps", README, re.I)
    assert claims, "the README no longer says how many numbered steps train.py's main has"
    for claim in claims:
        count = int(claim) if claim.isdigit() else NUMBER_WORDS.get(claim.lower())
        assert count == len(steps), f"the README says '{claim} numbered steps'; train.py's main has {len(steps)}"
    listed = re.search(r"step by step:\n\n((?:\d+\. .*\n(?: {2,}.*\n)*)+)", README)
    assert listed, "the README no longer lists main's steps ('... step by step:' and a numbered list)"
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", listed.group(1), re.M)]
    assert numbers == steps, f"the README lists steps {numbers}; train.py's main has {steps}"


@cache
def flags_of(script: str) -> frozenset[str]:
    """The long options a script's --help lists (`script` is a path, or `-m module`)."""
    command = [sys.executable, *script.split(), "--help"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)} failed: {result.stderr[-2000:]}"
    options = [re.split(r"\s{2,}", line.strip())[0] for line in result.stdout.splitlines()
               if line.strip().startswith("-")]
    return frozenset(f for option in options for f in re.findall(r"--[\w-]+", option))


def script_of(tokens: list[str]) -> str | None:
    """Which of the project's scripts a command runs (python X.py, python -m X, torchrun ... X.py)."""
    if tokens[0] in ("python", "python3"):
        if tokens[1] == "-m":
            return None if tokens[2] == "pytest" else f"-m {tokens[2]}"
        return tokens[1]
    if tokens[0] == "torchrun":
        return next((t for t in tokens if t.endswith(".py")), None)
    return None


def test_every_flag_the_readme_names_exists():
    unknown, scripts = set(), set()
    for command in shell_commands(README):
        tokens = shlex.split(command)
        script = script_of(tokens)
        if script is None:
            assert tokens[0] in OTHER_PROGRAMS | {"python", "python3"}, f"a README command runs {tokens[0]}"
            continue
        scripts.add(script)
        after = tokens[tokens.index(script.split()[-1]) + 1:]
        unknown |= {f"{script} {t}" for t in after if t.startswith("--") and t not in flags_of(script)}
    every = frozenset().union(*(flags_of(s) for s in scripts))
    in_prose = {w for w in words(prose(README)) if re.fullmatch(r"--[a-z][\w-]*", w)}
    unknown |= {f for f in in_prose if f not in every}
    assert not unknown, f"the README names flags no script has: {sorted(unknown)}"

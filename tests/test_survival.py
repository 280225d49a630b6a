"""Long runs that survive: killed runs resume without redoing finished work, leave nothing behind,
never mix with another run, and every I/O failure is one line (issue 19).

Faults are real: `tests/faults.py` runs train.py in a subprocess and SIGKILLs or SIGTERMs it at a
chosen chunk of the frozen pass or after a chosen epoch. Full and read-only disks are small tmpfs
mounts (skipped, with the reason, where this machine forbids mounting).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import eval as eval_script
import llama
import train as train_script
from training import run_dir

ROOT = Path(__file__).resolve().parents[1]
SQUAD = ["--task", "squad", "--squad-version", "2.0", "--data", "sample", "--lr", "1e-2", "--epochs", "3",
         "--limit", "24", "--eval-limit", "12", "--batch-size", "8", "--max-length", "192", "--doc-stride", "64",
         "--block", "last", "--zero-shot", "none", "--batch-tokens", "512"]
TIMEOUT = 300  # seconds per subprocess: a tiny run takes ~10 s alone, a few times that on a busy machine


def train(args: list[str], tmpdir: Path, fault: str | None = None, n: int = 0) -> subprocess.CompletedProcess:
    """train.py in a subprocess (with a fault from tests/faults.py), $TMPDIR pointed at `tmpdir`."""
    tmpdir.mkdir(exist_ok=True)
    script = [str(ROOT / "tests" / "faults.py"), fault, str(n), "--"] if fault else [str(ROOT / "train.py")]
    return subprocess.run([sys.executable, *script, *args], capture_output=True, text=True, timeout=TIMEOUT,
                          cwd=ROOT, env={**__import__("os").environ, "TMPDIR": str(tmpdir)})


def in_process(script, argv: list[str], capsys) -> tuple[int, str]:
    """A script's main run in this process (cheaper than a subprocess, where no fault is injected): (code, stderr)."""
    code, _, err = run_here(script, argv, capsys)
    return code, err


def run_here(script, argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        script.main(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def train_here(argv: list[str], capsys) -> str:
    """train.py in this process, expected to succeed: its stdout."""
    code, out, err = run_here(train_script, argv, capsys)
    assert code == 0, err
    return out


def scores(directory: Path) -> dict:
    """metrics.json without its timings (which no two runs share)."""
    metrics = json.loads((directory / "metrics.json").read_text())
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in metrics["history"]]
    return {**{k: v for k, v in metrics.items() if k != "timings"}, "history": history}


def passes(stdout: str) -> dict[str, tuple[int, int]]:
    """Per frozen pass in the log: (sequences computed, chunks computed)."""
    found = re.findall(r"^(\w+) states: [\d,]+ of [\d,]+ sequences reused from the store; "
                       r"computing ([\d,]+) in (\d+) chunk", stdout, re.M)
    return {name: (int(n.replace(",", "")), int(chunks)) for name, n, chunks in found}


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory) -> tuple[Path, list[str], dict]:
    """An uninterrupted run with a store of its own: its output, its flags, and its passes' chunk counts."""
    base = tmp_path_factory.mktemp("reference")
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", str(base / "store")]
    done = train([*args, "--output", str(base / "run")], base / "tmp")
    assert done.returncode == 0, done.stderr
    counts = passes(done.stdout)
    assert counts["train"][1] >= 5, "the test needs a frozen pass of several chunks"
    return base / "run", args, counts


@pytest.fixture
def mount(tmp_path):
    """Factory: a tmpfs of `size` mounted at a fresh directory (read-only with ro=True); unmounted after."""
    mounted = []

    def make(size: str, ro: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        options = f"size={size}" + (",ro" if ro else "")
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        if result.returncode != 0:
            pytest.skip(f"this machine forbids mounting a tmpfs ({result.stderr.decode().strip()})")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_a_run_killed_in_its_frozen_pass_recomputes_only_the_missing_chunks(reference, tmp_path, capsys):
    ref, args, counts = reference
    store, out = tmp_path / "store", tmp_path / "run"
    args = [*args[:-2], "--cache-dir", str(store), "--output", str(out)]
    killed = train(args, tmp_path / "tmp", "kill-at-chunk", 3)
    assert killed.returncode == -9
    assert list((tmp_path / "tmp").iterdir()) == []  # no feature file left behind
    rerun = passes(train_here(args, capsys))
    sequences, chunks = rerun["train"]
    assert chunks == counts["train"][1] - 3 and sequences < counts["train"][0]
    assert rerun["test"] == counts["test"]  # never reached before the kill: computed in full
    assert scores(out) == scores(ref)
    again = passes(train_here([*args, "--overwrite", "--lr", "3e-2"], capsys))  # other head settings
    assert {n for n, _ in again.values()} == {0}  # nothing to compute


def test_a_killed_run_without_a_store_leaves_no_feature_file(tiny, tmp_path):
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", "none", "--cache", "disk", "--output", str(tmp_path / "r")]
    killed = train(args, tmp_path / "tmp", "kill-at-batch", 3)
    assert killed.returncode == -9 and list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize("fault, code", [("kill-after-epoch", -9), ("term-after-epoch", 143)])
def test_a_run_killed_after_an_epoch_resumes_to_the_uninterrupted_result(reference, tmp_path, capsys, fault, code):
    ref, args, _ = reference
    out = tmp_path / "run"
    stopped = train([*args, "--output", str(out)], tmp_path / "tmp", fault, 1)
    assert stopped.returncode == code, stopped.stderr
    if fault.startswith("term"):
        assert "SIGTERM" in stopped.stderr and "--resume" in stopped.stderr and "Traceback" not in stopped.stderr
    assert len(torch.load(out / "checkpoint.pt", weights_only=True)["history"]) == 1
    assert list((tmp_path / "tmp").iterdir()) == []
    assert "resumed after epoch 1" in train_here([*args, "--output", str(out), "--resume"], capsys)
    assert scores(out) == scores(ref)


def test_sigterm_in_the_frozen_pass_is_a_message_and_leaves_nothing(tiny, tmp_path):
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", "none", "--cache", "disk", "--output", str(tmp_path / "r")]
    stopped = train(args, tmp_path / "tmp", "term-at-batch", 2)
    assert stopped.returncode == 143 and "SIGTERM" in stopped.stderr and "Traceback" not in stopped.stderr
    assert list((tmp_path / "tmp").iterdir()) == [] and not (tmp_path / "r").exists()


def test_a_second_run_into_a_busy_directory_exits_2_and_the_first_is_intact(reference, tmp_path, capsys):
    _, args, _ = reference
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, str(ROOT / "tests" / "faults.py"), "slow-epochs", "2", "--", *args,
                              "--output", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not ((out / ".lock").is_file() and (out / ".lock").read_text() == str(first.pid)):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.05)
        code, err = in_process(train_script, [*args, "--output", str(out), "--overwrite", "--lr", "3e-2"], capsys)
        assert code == 2 and f"in use by process {first.pid}" in one_error_line(err)
        _, first_err = first.communicate(timeout=TIMEOUT)
    finally:
        first.kill()
    assert first.returncode == 0, first_err
    config = json.loads((out / "train_config.json").read_text())
    assert config["lr"] == 1e-2 and scores(out)["fine_tuned"]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["settings_sha256"] == run_dir.settings_hash(config)


def test_resume_refuses_another_runs_checkpoint_and_accepts_a_moved_directory(reference, tmp_path, capsys):
    ref, args, _ = reference
    moved = tmp_path / "moved"
    shutil.copytree(ref, moved)
    code, err = in_process(train_script, [*args, "--output", str(moved), "--resume", "--lr", "3e-2"], capsys)
    assert code == 2 and "other settings" in one_error_line(err) and "lr" in err
    config = json.loads((moved / "train_config.json").read_text())  # another run's config beside this checkpoint
    (moved / "train_config.json").write_text(json.dumps({**config, "lr": 3e-2}))
    code, err = in_process(train_script, [*args, "--output", str(moved), "--resume", "--lr", "3e-2"], capsys)
    assert code == 2 and "other settings" in one_error_line(err)
    (moved / "train_config.json").write_text(json.dumps(config))
    assert in_process(train_script, [*args, "--output", str(moved), "--resume"], capsys)[0] == 0
    assert scores(moved) == scores(ref)


def refuses_before_loading(monkeypatch, capsys, argv: list[str]) -> str:
    """Run train.py expecting one error line, exit 2, and the base never loaded."""
    monkeypatch.setattr(llama, "load_pretrained", lambda *a, **k: pytest.fail("the base was loaded"))
    code, err = in_process(train_script, argv, capsys)
    assert code == 2
    return one_error_line(err)


def test_an_output_path_in_the_way_is_one_line_before_any_work(tiny, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", "none"]
    assert "not a directory" in refuses_before_loading(monkeypatch, capsys, [*args, "--output", str(tmp_path / "file")])
    assert "is a file" in refuses_before_loading(monkeypatch, capsys,
                                                 [*args, "--output", str(tmp_path / "file" / "run")])


def test_a_read_only_or_full_output_disk_is_one_line_before_any_work(tiny, mount, monkeypatch, capsys):
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", "none"]
    read_only = mount("1m", ro=True)
    assert "Read-only" in refuses_before_loading(monkeypatch, capsys, [*args, "--output", str(read_only / "run")])
    assert list(read_only.iterdir()) == []
    full = mount("1m")
    with (full / "filler").open("wb", buffering=0) as f, pytest.raises(OSError):
        while True:
            f.write(bytes(4096))
    line = refuses_before_loading(monkeypatch, capsys, [*args, "--output", str(full / "run")])
    assert "disk is full" in line and re.search(r"\(\d+(\.\d)? (B|KiB|MiB) free\)", line) and "0.0" not in line
    assert not (full / "run").exists()


def test_a_disk_filling_during_training_is_one_line_and_keeps_the_last_checkpoint(reference, mount, tmp_path):
    _, args, _ = reference
    out = mount("8m") / "run"
    filled = train([*args, "--output", str(out)], tmp_path / "tmp", "fill-after-epoch", 1)
    assert filled.returncode == 2
    line = one_error_line(filled.stderr)
    assert "No space left" in line and "--resume" in line and "0.0" not in line
    assert len(torch.load(out / "checkpoint.pt", weights_only=True)["history"]) == 1


def test_a_damaged_run_directory_is_one_line_for_eval(reference, tmp_path, capsys):
    ref, _, _ = reference
    run = tmp_path / "run"
    shutil.copytree(ref, run)
    config = (run / "train_config.json").read_text()
    damaged = [("train_config.json", json.dumps({**json.loads(config), "dtype": "float99"}), "dtype 'float99'"),
               ("train_config.json", config[:len(config) // 2], "unreadable"),
               ("head.safetensors", (ref / "head.safetensors").read_bytes()[:100], "not a readable")]
    for name, content, problem in damaged:
        shutil.rmtree(run)
        shutil.copytree(ref, run)
        (run / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        code, err = in_process(eval_script, ["--task", "squad", "--head", str(run), "--cache-dir", "none"], capsys)
        assert code == 2 and problem in one_error_line(err), (name, err)


def test_torchrun_stopped_by_sigterm_stops_every_rank_cleanly(tiny, tmp_path):
    """torchrun passes its SIGTERM to the ranks: each says so, and none leaves a feature file behind."""
    out, tmpdir, log = tmp_path / "run", tmp_path / "tmp", tmp_path / "log"
    tmpdir.mkdir()
    args = [*SQUAD, "--model", str(tiny), "--cache-dir", "none", "--cache", "disk", "--device", "cpu"]
    env = {**__import__("os").environ, "TMPDIR": str(tmpdir), "OMP_NUM_THREADS": "1"}
    with log.open("w") as sink:
        launcher = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     "--nproc-per-node", "2", str(ROOT / "tests" / "faults.py"), "slow-epochs", "3",
                                     "--", *args, "--output", str(out)], cwd=ROOT, stdout=sink, stderr=sink, env=env)
        try:
            deadline = time.monotonic() + TIMEOUT
            while "epoch 1/3" not in log.read_text():
                assert time.monotonic() < deadline and launcher.poll() is None, log.read_text()[-3000:]
                time.sleep(0.1)
            launcher.terminate()
            launcher.wait(timeout=TIMEOUT)
        finally:
            launcher.kill()
    text = log.read_text()
    assert launcher.returncode != 0 and text.count("stopped by SIGTERM") == 2, text[-3000:]
    assert not list(tmpdir.rglob("states-*"))
    assert torch.load(out / "checkpoint.pt", weights_only=True)["history"]

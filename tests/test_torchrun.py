"""`torchrun --nproc-per-node 2 train.py ... --device cpu` (gloo) trains what one process trains.

Each rank caches the frozen states of its share of the examples; the head's gradients are
summed every step, so the loss history, the head and the metrics equal the one-process run's,
and only rank 0 writes the outputs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from test_train_e2e import SQUAD, SST2, head_tensors

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def train(command: list[str], argv: list[str], out: Path) -> str:
    """Run train.py (under `command`) to completion in a subprocess; a hang fails after 4 minutes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    result = subprocess.run([*command, "train.py", *argv, "--device", "cpu", "--output", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def history(out: Path) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["history"]


@pytest.mark.parametrize("name, argv", [
    ("sst2 with validation", [*SST2, "--zero-shot", "none"]),
    ("squad v2 sample", [*SQUAD, "--zero-shot", "none", "--epochs", "3"]),
    ("sst2 choosing its readout", [*SST2, "--zero-shot", "none", "--block", "1,2"]),
    ("squad choosing on a subset", [*SQUAD, "--zero-shot", "none", "--epochs", "3", "--block", "1,2",
                                    "--select-limit", "10"]),
])
def test_two_processes_train_the_same_head_as_one(name, argv, tiny, tmp_path):
    argv = [*argv, "--model", str(tiny), "--dtype", "float32"]
    one, two = tmp_path / "one", tmp_path / "two"
    train([sys.executable], argv, one)
    log = train(TORCHRUN, argv, two)
    assert log.count("wrote ") == 1  # rank 0 alone writes and reports
    for a, b in zip(history(one), history(two), strict=True):
        assert b["mean_loss"] == pytest.approx(a["mean_loss"], rel=1e-5)
        assert b.get("val_loss") == pytest.approx(a.get("val_loss"), rel=1e-5)
    heads = head_tensors(one), head_tensors(two)
    weight = next(k for k in heads[0] if k.endswith("weight"))  # (the QA bias gets no real gradient, see README)
    torch.testing.assert_close(heads[1][weight], heads[0][weight], rtol=1e-4, atol=1e-5)
    assert json.loads((two / "metrics.json").read_text())["readout"] == \
        json.loads((one / "metrics.json").read_text())["readout"]
    metrics = [json.loads((out / "metrics.json").read_text())["fine_tuned"] for out in (one, two)]
    assert metrics[1] == pytest.approx(metrics[0], rel=1e-6) if "accuracy" in metrics[0] else \
        metrics[1]["squad"]["f1"] == pytest.approx(metrics[0]["squad"]["f1"], rel=1e-6)
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())

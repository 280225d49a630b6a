"""Progress in logs: plain lines with counts, rate and ETA, every ~10 s or 10%, on a fake clock."""

from __future__ import annotations

import io
from types import SimpleNamespace

from data import progress as progress_module
from data.batching import padded_batches
from data.progress import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_carry_counts_rate_and_eta_every_tenth_of_the_work():
    clock, out = FakeClock(), io.StringIO()
    with Progress(1000, "train states", "tok", terminal=False, stream=out, clock=clock) as progress:
        for _ in range(10):
            clock.now += 2.0
            progress.update(100)  # 100 tok every 2 s: 50 tok/s
    lines = out.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[0] == "train states: 100/1,000 tok (10%), 50.00 tok/s, ETA 0:00:18"
    assert lines[-1] == "train states: 1,000/1,000 tok (100%), 50.00 tok/s, ETA 0:00:00"


def test_slow_stages_print_every_ten_seconds_between_the_tenths():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(100_000, "test states", "tok", terminal=False, stream=out, clock=clock)
    for _ in range(30):
        clock.now += 1.0
        progress.update(250)  # 250 tok/s: 0.25% per second, 7.5% in 30 s
    lines = out.getvalue().splitlines()
    assert lines == ["test states: 2,500/100,000 tok (2%), 250 tok/s, ETA 0:06:30",
                     "test states: 5,000/100,000 tok (5%), 250 tok/s, ETA 0:06:20",
                     "test states: 7,500/100,000 tok (8%), 250 tok/s, ETA 0:06:10"]


def test_tenths_closer_than_a_second_apart_are_skipped_and_subsecond_stages_are_silent():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(100, "epoch 1/2", "batch", terminal=False, stream=out, clock=clock)
    for _ in range(100):
        clock.now += 0.0625  # a tenth every 0.625 s
        progress.update()
    done = [line.split()[2] for line in out.getvalue().splitlines()]
    assert done == ["16/100", "32/100", "48/100", "64/100", "80/100", "96/100", "100/100"]
    quiet = io.StringIO()
    progress = Progress(100, "epoch 2/2", "batch", terminal=False, stream=quiet, clock=clock)
    for _ in range(100):
        clock.now += 0.005
        progress.update()
    assert quiet.getvalue() == ""


def test_iterate_counts_finished_items_and_shows_the_postfix():
    clock, out = FakeClock(), io.StringIO()
    progress = Progress(4, "epoch 1/1", "batch", terminal=False, stream=out, clock=clock, every_fraction=0.5)
    for step in progress.iterate(range(4)):
        clock.now += 1.0
        progress.set_postfix(loss=f"{1.0 / (step + 1):.4f}")
    assert out.getvalue().splitlines() == ["epoch 1/1: 2/4 batch (50%), 1.00 batch/s, ETA 0:00:02, loss=0.5000",
                                           "epoch 1/1: 4/4 batch (100%), 1.00 batch/s, ETA 0:00:00, loss=0.2500"]


def test_a_terminal_gets_a_bar_and_no_lines():
    out = io.StringIO()
    with Progress(10, "x", terminal=True, stream=out) as progress:
        progress.update(10)
    assert progress.bar is not None and out.getvalue() == ""


def test_the_frozen_pass_loop_reports_tokens_in_logs(capsys, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=clock))
    sequences = [[1] * n for n in (3, 5, 2)]
    seen = []
    for batch, _, _ in padded_batches(sequences, [[2, 0], [1]], 0, "cpu", "states"):
        seen.append(batch)
        clock.now += 5.0
    assert seen == [[2, 0], [1]]
    out = capsys.readouterr()
    assert "states: 10/10 tok (100%), 1.00 tok/s, ETA 0:00:00" in out.out and out.err == ""


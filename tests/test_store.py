"""The persistent store of frozen states: keyed by what determines them, durable per chunk, bounded by LRU."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import eval as eval_script
import states as states_script
import train as train_script
from heads import store as states
from heads.store import StateStore, chunked_pass, digest, list_entries, weights_identity
from test_train_e2e import SQUAD, SST2

BASE = {"weights": "w", "dtype": "bfloat16", "device": "cpu", "torch": torch.__version__}
KiB = 2**10


def entry(store: StateStore, items: int = 4, rows: int = 4, inputs: str = "in", block: int = 1):
    return store.entry({"states": "test", "block": block}, items, rows, 8, np.float32, inputs)


def test_committed_items_survive_a_new_process_and_uncommitted_ones_are_never_marked(tmp_path):
    first = entry(StateStore(tmp_path, BASE, 2**20))
    first.states[0:2] = 1.0
    first.commit([0, 1])
    first.states[2] = 2.0  # written, but the run died before its chunk was committed
    reopened = entry(StateStore(tmp_path, BASE, 2**20))
    assert reopened.path == first.path and reopened.missing() == {2, 3}
    assert (reopened.states[0:2] == 1.0).all()


def test_the_key_holds_every_input_of_the_frozen_pass(tmp_path):
    one = StateStore(tmp_path, BASE, 2**20)
    paths = {entry(one).path, entry(one, inputs="other").path, entry(one, block=2).path,
             entry(StateStore(tmp_path, {**BASE, "dtype": "float32"}, 2**20)).path,
             entry(StateStore(tmp_path, {**BASE, "device": "cuda"}, 2**20)).path}
    assert len(paths) == 5 and entry(one).path in paths


def test_digest_tells_token_lists_apart():
    assert digest([[1, 2], [3]]) == digest([[1, 2], [3]])
    assert len({digest([[1, 2], [3]]), digest([[1], [2, 3]]), digest([[1, 2, 3]]), digest([[1, 2], [4]])}) == 4


def test_weights_identity_changes_with_the_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a" * 100)
    before = weights_identity(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"b" * 100)
    assert weights_identity(tmp_path) != before


def test_the_least_recently_used_entry_is_evicted_and_one_in_use_never_is(tmp_path):
    store = StateStore(tmp_path, BASE, 3 * 128)  # room for three entries of 4 x 8 float32 (128 bytes)
    held = entry(store, inputs="held")  # stays open: in use
    old = entry(StateStore(tmp_path, BASE, 3 * 128), inputs="old")
    states.Entry.close(old)
    newer = entry(StateStore(tmp_path, BASE, 3 * 128), inputs="newer")
    states.Entry.close(newer)
    os.utime(old.path / "meta.json", (time.time() - 100, time.time() - 100))
    os.utime(held.path / "meta.json", (time.time() - 200, time.time() - 200))  # oldest, but held
    entry(StateStore(tmp_path, BASE, 3 * 128), inputs="fourth")
    left = {e["path"] for e in list_entries(tmp_path)}
    assert held.path in left and newer.path in left and old.path not in left and len(left) == 3


def test_states_larger_than_the_limit_are_computed_without_storing(tmp_path, capsys):
    assert entry(StateStore(tmp_path, BASE, 64)) is None
    assert "do not fit --cache-limit 64 B" in capsys.readouterr().out


def test_a_chunked_pass_skips_finished_batches_and_commits_after_each_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(states, "CHUNKS", 3)
    sequences = [[1, 2, 3]] * 6
    batches = [[0, 1], [2, 3], [4, 5]]  # one batch per chunk
    stored = entry(StateStore(tmp_path, BASE, 2**20), items=6, rows=6)
    stored.commit([2, 3])
    seen = []
    for batch, input_ids, mask in chunked_pass(sequences, batches, 0, torch.device("cpu"), "test", [stored]):
        assert input_ids.shape == (2, 3)
        seen.append(batch)
        assert stored.missing() == set(range(6)) - {2, 3} - {i for b in seen[:-1] for i in b}
    assert seen == [[0, 1], [4, 5]] and stored.missing() == set()
    assert [b for b, *_ in chunked_pass(sequences, batches, 0, torch.device("cpu"), "test", [stored, None])] == batches


def test_list_and_clear_show_and_free_the_store(tmp_path, capsys):
    kept = entry(StateStore(tmp_path, BASE, 2**20))
    kept.commit([0, 1])
    states.Entry.close(kept)
    states_script.main(["list", "--cache-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "2/4 sequences" in out and "1 entries, 128 B" in out
    states_script.main(["clear", "--cache-dir", str(tmp_path)])
    assert list_entries(tmp_path) == [] and "removed 1 entries" in capsys.readouterr().out


def test_no_room_on_the_disk_is_one_line(tmp_path, monkeypatch):
    def full_disk(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(states.os, "posix_fallocate", full_disk)
    with pytest.raises(states.UserError, match="No space left on device.*--cache-dir none"):
        entry(StateStore(tmp_path, BASE, 2**20))
    assert [p for p in Path(tmp_path).iterdir()] == []


@pytest.mark.parametrize("task", ["sst2", "squad"])
def test_a_run_on_stored_states_equals_one_that_computes_them(task, tiny, tmp_path, capsys):
    """No store, a first run filling one, and a second reusing all of it: three identical runs (readouts chosen
    among several blocks)."""
    argv = [*(SST2 if task == "sst2" else SQUAD), "--model", str(tiny), "--zero-shot", "head", "--block", "1,2"]
    metrics, logs = [], []
    for name, cache_dir in (("none", "none"), ("first", tmp_path / "store"), ("second", tmp_path / "store")):
        train_script.main([*argv, "--cache-dir", str(cache_dir), "--output", str(tmp_path / name)])
        logs.append(capsys.readouterr().out)
        found = json.loads((tmp_path / name / "metrics.json").read_text())
        metrics.append({k: v for k, v in found.items() if k not in ("timings", "history")})
    assert metrics[0] == metrics[1] == metrics[2]
    assert "reused" not in logs[0] and re.search(r"states: 0 of [\d,]+ sequences reused", logs[1])
    computed = [int(n.replace(",", "")) for n in re.findall(r"computing ([\d,]+) in", logs[2])]
    assert len(computed) >= 3 and not any(computed)  # every pass of the rerun reused everything
    eval_script.main(["--task", task, "--head", str(tmp_path / "second"), "--cache-dir", str(tmp_path / "store")])
    assert re.search(r"test states: ([\d,]+) of \1 sequences reused from the store; computing 0 in 0",
                     capsys.readouterr().out)

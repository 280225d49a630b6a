"""Run train.py with one fault injected at a chosen point: the way a real run dies, at a point a test can name.

    python tests/faults.py FAULT N -- [train.py flags]

FAULT is when and how the run is stopped, N counts the events:
- kill-at-chunk: SIGKILL right after the N-th chunk of the frozen pass was made durable in the store;
- kill-at-batch: SIGKILL right after the N-th batch of the frozen pass was written (with or without a store);
- term-at-batch: SIGTERM (what batch schedulers and torchrun send) after the N-th batch;
- kill-after-epoch / term-after-epoch: SIGKILL / SIGTERM right after the N-th epoch's checkpoint;
- fill-after-epoch: fill the output directory's disk right after the N-th checkpoint;
- slow-epochs: sleep N seconds after every epoch (keeps a run alive while a second one starts).
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import heads.cache  # noqa: E402
import heads.store  # noqa: E402
import training.loop  # noqa: E402


def after(owner, name: str, n: int, action) -> None:
    """Wrap `owner.name` so that `action` runs after its n-th call has returned."""
    original, calls = getattr(owner, name), {"n": 0}

    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            action(*args)
        return result

    setattr(owner, name, wrapped)


def signal_self(signum: int):
    return lambda *args: os.kill(os.getpid(), signum)


def fill_disk(path, data) -> None:
    """Write into the checkpoint's directory until the disk is full."""
    with open(Path(path).parent / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(2**16))
        except OSError:
            pass


def main() -> None:
    fault, n, separator, *argv = sys.argv[1:]
    n = int(n)
    assert separator == "--"
    events = {"chunk": (heads.store.Entry, "commit"), "batch": (heads.cache.TokenStateTable, "write_batch"),
              "epoch": (training.loop, "write_bytes")}
    how, _, when = fault.partition("-at-") if "-at-" in fault else fault.partition("-after-")
    if fault == "slow-epochs":
        original = training.loop.write_bytes
        training.loop.write_bytes = lambda *a: (original(*a), time.sleep(n))
    else:
        action = {"kill": signal_self(signal.SIGKILL), "term": signal_self(signal.SIGTERM), "fill": fill_disk}[how]
        after(*events[when], n, action)
    sys.argv = ["train.py", *argv]
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


if __name__ == "__main__":
    main()

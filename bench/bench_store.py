"""What the persistent states store saves: a rerun with another --lr, and a run killed at ~80% of its frozen pass.

Three train.py runs of the same command on a fresh store (`--cache-dir` in a temp dir):

1. the first run, which computes and stores every frozen state;
2. the same command with another --lr (and output): it should reuse every state;
3. on another fresh store, the first command again, SIGKILLed from outside (as a scheduler
   would) once the store marks `--kill-at` of its states done, then rerun to completion.

It prints each run's wall time, readout and scores, its frozen-pass seconds (`selection_frozen_pass_seconds` +
`frozen_pass_seconds` from metrics.json: the frozen passes only), its stage timings, the ratios
the issue asks for, and the store's size on disk.

    python bench/bench_store.py -- --task squad --model smollm2-135m \\
        --data ../shared/data/squad/dev-v1.1.json --limit 400 --eval-limit 200 --zero-shot head
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from heads.store import list_entries  # noqa: E402


def run(argv: list[str], store: Path, output: Path, kill_at: float | None = None, total: float = 0) -> dict:
    """One train.py run: wall seconds, its frozen seconds, and (if killed) the share of states done at the kill."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "train.py"), *argv, "--cache-dir", str(store),
                                "--output", str(output)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    if kill_at is not None:
        while process.poll() is None and states_done(store) < kill_at * total:
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    log = process.communicate()[0]
    wall = time.perf_counter() - started
    if kill_at is not None:
        return {"wall": wall, "done": states_done(store) / total}
    if process.returncode != 0:
        sys.exit(f"train.py failed:\n{log[-3000:]}")
    metrics = json.loads((output / "metrics.json").read_text())
    timings = metrics["timings"]
    return {"wall": wall, "frozen": timings.get("selection_frozen_pass_seconds", 0) + timings["frozen_pass_seconds"],
            "timings": timings, "readout": metrics["readout"], "fine_tuned": metrics["fine_tuned"], "log": log}


def states_done(store: Path) -> float:
    """Sequences of the frozen passes done: an entry's done sequences over the number of entries its pass fills
    (a pass over the windows fills one entry per candidate block at once)."""
    entries = list_entries(store)
    per_pass = {}
    for e in entries:
        per_pass[e["inputs"]] = per_pass.get(e["inputs"], 0) + 1
    return sum(e["done"] / per_pass[e["inputs"]] for e in entries)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kill-at", type=float, default=0.8, help="share of the states stored when run 3 is killed")
    p.add_argument("--no-kill", action="store_true", help="runs 1 and 2 only")
    p.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then train.py's flags")
    args = p.parse_args()
    argv = [a for a in args.train_args if a != "--"]
    print(f"{'run':<44}{'wall s':>8}{'frozen s':>10}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        tmp = Path(tmp)
        first = show("1. first run (computes and stores)", run([*argv, "--lr", "1e-3"], tmp / "store", tmp / "first"))
        second = show("2. another --lr (reuses)", run([*argv, "--lr", "3e-3"], tmp / "store", tmp / "second"))
        entries = list_entries(tmp / "store")
        total, size = states_done(tmp / "store"), sum(e["bytes"] for e in entries)
        print(f"second run / first run, wall time: {second['wall'] / first['wall']:.3f}; states stored: "
              f"{len(entries)} entries, {size / 2**20:.1f} MiB", flush=True)
        if args.no_kill:
            return
        killed = run([*argv, "--lr", "1e-3"], tmp / "store2", tmp / "third", args.kill_at, total)
        show(f"3a. killed at {killed['done']:.0%} of the states", killed)
        rerun = show("3b. rerun after the kill", run([*argv, "--lr", "1e-3"], tmp / "store2", tmp / "third"))
        same = (json.loads((tmp / "third" / "metrics.json").read_text())["fine_tuned"]
                == json.loads((tmp / "first" / "metrics.json").read_text())["fine_tuned"])
    print(f"killed + rerun / one run, wall time:          {(killed['wall'] + rerun['wall']) / first['wall']:.3f}")
    print(f"rerun's frozen seconds / first run's:         {rerun['frozen'] / first['frozen']:.3f} "
          f"(+ the killed run's {killed['done']:.0%} of the states: ~{killed['done'] + rerun['frozen'] / first['frozen']:.2f}"
          " passes in all)")
    print(f"rerun's fine-tuned metrics equal the first run's: {same}")


def show(name: str, result: dict) -> dict:
    print(f"{name:<44}{result['wall']:>8.1f}{result.get('frozen', float('nan')):>10.1f}", flush=True)
    if "timings" in result:
        print(f"    timings: {json.dumps(result['timings'])}", flush=True)
        scores = result["fine_tuned"].get("squad", result["fine_tuned"])
        print(f"    readout {result['readout']}, fine-tuned " + ", ".join(
            f"{k} {scores[k]:.4f}" for k in ("exact", "f1", "accuracy") if k in scores), flush=True)
    return result


if __name__ == "__main__":
    main()

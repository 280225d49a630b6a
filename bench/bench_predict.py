"""predict.py's speed against the training run's frozen pass, side by side, on the 872 SST-2 dev sentences.

Trains (or takes, --head) an SST-2 head with the default readout (block 15 of 30, echo, mean pooling:
what the default recipe chooses on SmolLM2), then alternates, --repeats times:

- train: the frozen pass train.py runs over its test split (`tasks.sst2.prepare` + `frozen_pass`), timed;
- classify: `heads.load(run).classify(sentences)` in this process, timed;
- predict.py: `python predict.py --head RUN --input dev.txt` in a fresh process, wall time including
  Python's start, loading the base and writing the JSONL.

Each is reported as frozen-pass tokens per second (the same tokens: echoed sentences) and as a
fraction of the training pass's; best of the repeats, since other jobs share the CPU.

    python bench/bench_predict.py [--head RUN] [--sst2-dev PATH] [--repeats 3] [--train-limit 500]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "sst2"


def train_head(output: Path, train_limit: int) -> None:
    import train as train_script

    train_script.main(["--task", "sst2", "--model", "smollm2-135m", "--data", str(SHARED), "--split", "dev",
                       "--recipe", "report", "--block", "15", "--echo", "--pool", "mean", "--lr", "1e-3", "--epochs", "20",
                       "--limit", str(train_limit), "--eval-limit", "40", "--zero-shot", "none",
                       "--output", str(output)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--head", type=Path, help="an SST-2 run directory (default: train one on --train-limit "
                                                  "sentences of ../shared/data/sst2)")
    parser.add_argument("--sst2-dev", type=Path, default=SHARED / "dev.tsv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=500)
    args = parser.parse_args()

    import heads
    from data.sst2 import read_sst2_tsv
    from tasks.sst2 import SST2

    work = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    if args.head is None:
        args.head = work / "sst2"
        train_head(args.head, args.train_limit)
    examples = read_sst2_tsv(args.sst2_dev)
    sentences = work / "dev.txt"
    sentences.write_text("".join(e.text + "\n" for e in examples))
    head = heads.load(args.head)
    def train_pass() -> int:
        prepared = SST2.prepare(head.tokenizer, examples, [head.readout], heads.trained.BATCH_TOKENS)
        SST2.frozen_pass(head.head, prepared, [head.readout], "ram", "train-side frozen pass")
        return sum(prepared.lengths)

    tokens = train_pass()  # warm-up, and the token count all three share
    best = {"train": float("inf"), "classify": float("inf"), "predict.py": float("inf")}
    for _ in range(args.repeats):
        start = time.perf_counter()
        train_pass()
        best["train"] = min(best["train"], time.perf_counter() - start)
        start = time.perf_counter()
        head.classify([e.text for e in examples])
        best["classify"] = min(best["classify"], time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "predict.py"), "--head", str(args.head), "--input", str(sentences)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best["predict.py"] = min(best["predict.py"], time.perf_counter() - start)
    print(f"{len(examples)} sentences, {tokens:,} frozen-pass tokens (echoed), readout {head.readout}, "
          f"base dtype {head.device.type}/{head.head.model.embed_tokens.weight.dtype}")
    print(f"{'path':<12} {'seconds':>8} {'tokens/s':>9} {'vs train':>9}")
    for name, seconds in best.items():
        print(f"{name:<12} {seconds:8.2f} {tokens / seconds:9,.0f} {best['train'] / seconds:9.1%}")


if __name__ == "__main__":
    main()

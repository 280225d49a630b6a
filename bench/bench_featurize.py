"""How long data preparation takes, and how much padding the SST-2 batches carry.

Times `make_windows` on the whole SQuAD v1.1 dev set (10,570 questions, default
384 / 128 windows) with the SmolLM2 tokenizer, best of `--repeats` runs after one warm-up,
and the SST-2 training-file tokenisation. Then reports the padding fraction of SST-2
training-file batches two ways: random order, and sorted with a token budget (what train.py runs).

    python bench/bench_featurize.py [--squad PATH] [--sst2 PATH] [--repeats 3] [--batch-size 32]

Without paths it uses ../shared/data when present, else the canonical files (downloaded
once into the data cache).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def best_time(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up: first-touch allocations and the tokenizer's thread pool
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    from data.batching import padding_fraction, token_budget_batches
    from data.qa_windows import make_windows
    from data.sources import fetch
    from data.splits import shuffled_indices
    from data.squad import read_squad_json
    from data.sst2 import read_sst2_tsv
    from llama import load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, default=None, help="SQuAD v1.1 dev JSON")
    parser.add_argument("--sst2", type=Path, default=None, help="SST-2 train.tsv")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    squad_path = args.squad or (SHARED / "squad" / "dev-v1.1.json")
    squad_path = squad_path if squad_path.is_file() else fetch("squad", "dev")
    sst2_path = args.sst2 or (SHARED / "sst2" / "train.tsv")
    sst2_path = sst2_path if sst2_path.is_file() else fetch("sst2", "train")

    start = time.perf_counter()
    tokenizer = load_tokenizer("smollm2-135m")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    examples = read_squad_json(squad_path)
    read_s = time.perf_counter() - start
    featurize_s, windows = best_time(lambda: make_windows(examples, tokenizer), args.repeats)
    contexts = len({e.context for e in examples})

    sentences = read_sst2_tsv(sst2_path)
    texts = [e.text for e in sentences]
    tokenize_s, ids = best_time(lambda: tokenizer.encode_batch(texts, add_bos=False), args.repeats)
    lengths = [len(x) for x in ids]
    order = shuffled_indices(len(lengths), 1)
    random_batches = [order[k:k + args.batch_size] for k in range(0, len(order), args.batch_size)]

    print(f"cores: {os.cpu_count()}, tokenizer: smollm2-135m (load {load_s:.2f} s), "
          f"best of {args.repeats} after a warm-up\n")
    print("| step | items | seconds | items/s |")
    print("| --- | --- | --- | --- |")
    print(f"| read {squad_path.name} | {len(examples):,} questions | {read_s:.2f} | {len(examples) / read_s:,.0f} |")
    print(f"| featurise SQuAD v1.1 dev (384/128) | {len(examples):,} questions, {contexts:,} contexts "
          f"-> {len(windows):,} windows | {featurize_s:.2f} | {len(examples) / featurize_s:,.0f} |")
    print(f"| tokenise SST-2 {sst2_path.name} | {len(texts):,} sentences | {tokenize_s:.2f} | "
          f"{len(texts) / tokenize_s:,.0f} |")
    print(f"\nSST-2 {sst2_path.name}, batch size {args.batch_size}, {sum(lengths):,} tokens "
          f"(mean {sum(lengths) / len(lengths):.1f}, max {max(lengths)}):\n")
    print("| batching | padding fraction |")
    print("| --- | --- |")
    budget = args.batch_size * max(lengths)
    for name, batches in (("random order", random_batches),
                          (f"sorted, token budget {budget:,} (what train.py runs)",
                           token_budget_batches(lengths, budget))):
        print(f"| {name} | {padding_fraction(batches, lengths):.1%} |")

if __name__ == "__main__":
    main()

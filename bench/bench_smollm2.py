"""SmolLM2-135M from its GGUF: conversion and load time, then speed side by side with `transformers`.

Both models run the very same converted float32 weights on the CPU, so the ratio
measures the implementations only. Each timing is the best of `--repeats` runs,
ours and theirs interleaved, to damp noise from other processes.

    python bench/bench_smollm2.py [--new-tokens 64] [--batch 8] [--seq 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llama import load_pretrained, load_tokenizer  # noqa: E402
from llama.chat import chat_prompt  # noqa: E402
from llama.generate import generate_ids  # noqa: E402
from llama.gguf_import import converted_checkpoint  # noqa: E402


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(repeats: int, fns: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Shortest time of each function, the functions taking turns."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], seconds(fn))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cache = Path(tempfile.mkdtemp(prefix="bench-gguf-"))
    try:
        convert_s = seconds(lambda: converted_checkpoint("smollm2-135m", cache_dir=cache))
        start = time.perf_counter()
        directory = converted_checkpoint("smollm2-135m", cache_dir=cache)  # now a cache hit
        ours = load_pretrained(directory)
        tokenizer = load_tokenizer(directory)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = transformers.LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
        hf_load_s = time.perf_counter() - start

        prompt = tokenizer.encode(chat_prompt("Write a short story about a lighthouse keeper."))
        n = args.new_tokens
        ids = torch.tensor([prompt])
        gen = best_of(args.repeats, {
            "ours": lambda: generate_ids(ours, [prompt], max_new_tokens=n, stop_ids=[]),
            "theirs": lambda: theirs.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                              min_new_tokens=n, do_sample=False, pad_token_id=2),
        })
        batch = torch.randint(17, 49152, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            fwd = best_of(args.repeats, {"ours": lambda: ours(batch), "theirs": lambda: theirs(batch).logits})
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    tokens = args.batch * args.seq
    print(f"SmolLM2-135M-Instruct (Q4_1 GGUF -> float32), CPU, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}, best of {args.repeats}\n")
    print("| measure | ours | transformers | ours / transformers |")
    print("|---|---:|---:|---:|")
    print(f"| GGUF -> checkpoint conversion (first run) | {convert_s:.1f} s | - | - |")
    print(f"| cached load (model + tokenizer) | {load_s:.2f} s | {hf_load_s:.2f} s (model) | - |")
    print(f"| greedy generation, batch 1, {len(prompt)}-token prompt + {n} new (tokens/s) | "
          f"{n / gen['ours']:.1f} | {n / gen['theirs']:.1f} | {gen['theirs'] / gen['ours']:.2f}x |")
    print(f"| forward, batch {args.batch} x {args.seq} (tokens/s) | {tokens / fwd['ours']:.0f} | "
          f"{tokens / fwd['theirs']:.0f} | {fwd['theirs'] / fwd['ours']:.2f}x |")


if __name__ == "__main__":
    main()

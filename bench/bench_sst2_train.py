"""Our SST-2 training run next to the usual approach, on SmolLM2-135M, CPU, same data and settings.

Baseline: transformers' LlamaForSequenceClassification with a frozen base, a plain
loop that recomputes the base for every batch of every epoch, each batch padded to
its longest sentence. Ours: `train.py` (frozen states cached once, length-sorted
batches, only the head runs after that), first with its default recipe (the readout
chosen on a validation slice, the head trained to convergence), then with the
baseline's settings. The baseline and the same-settings rows train on the same N
sentences of SST-2 train with the same batch size, lr, schedule and epochs; the
default recipe trains on N sentences of the training file too (a seeded draw after
its validation slice of N / 10 other sentences is held out). All classify the 872
dev sentences; wall time covers loading, training and evaluation.

    python bench/bench_sst2_train.py [--train 1000 --epochs 3 --batch-size 16 --lr 1e-3 --schedule constant]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import llama  # noqa: E402
import train as train_script  # noqa: E402
from data.batching import pad_right  # noqa: E402
from data.sources import load_task_data  # noqa: E402
from data.sst2 import SST2_FORMAT  # noqa: E402
from training.loop import TrainSettings, epoch_batches, lr_lambda  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sst2"


def baseline(checkpoint: Path, train: list, test: list, args) -> tuple[float, float]:
    """transformers, frozen base recomputed every epoch, dynamic padding: (seconds, dev accuracy)."""
    import transformers

    started = time.perf_counter()
    tokenizer = llama.load_tokenizer(checkpoint)
    model = transformers.LlamaForSequenceClassification.from_pretrained(
        checkpoint, num_labels=2, dtype=torch.float32, pad_token_id=tokenizer.pad_id)
    model.model.requires_grad_(False)
    torch.manual_seed(args.seed)
    torch.nn.init.normal_(model.score.weight, std=0.02)
    settings = TrainSettings(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                             schedule=args.schedule)
    optimizer = torch.optim.AdamW(model.score.parameters(), lr=args.lr, weight_decay=0.0)
    steps = args.epochs * len(epoch_batches(len(train), args.batch_size, args.seed, 0))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(settings, steps))
    train_ids = tokenizer.encode_batch([e.text for e in train])
    labels = torch.tensor([e.label for e in train])
    model.train()
    for epoch in range(args.epochs):
        for batch in epoch_batches(len(train), args.batch_size, args.seed, epoch):
            ids, mask = pad_right([train_ids[i] for i in batch], tokenizer.pad_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels[batch]).loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.score.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
    model.eval()
    test_ids = tokenizer.encode_batch([e.text for e in test])
    correct = 0
    with torch.no_grad():
        for first in range(0, len(test), args.batch_size):
            chunk = list(range(first, min(first + args.batch_size, len(test))))
            ids, mask = pad_right([test_ids[i] for i in chunk], tokenizer.pad_id)
            predictions = model(input_ids=ids, attention_mask=mask).logits.argmax(-1)
            correct += sum(int(p) == test[i].label for p, i in zip(predictions, chunk))
    return time.perf_counter() - started, correct / len(test)


def ours(checkpoint: Path, args, dtype: str | None) -> tuple[float, float]:
    """train.py with the baseline's settings (the report recipe: no validation slice, last block, last token), or
    with `dtype` None its default recipe (the readout chosen on a validation slice of --train / 10 other sentences,
    trained to convergence, bf16 base on this CPU). Each run starts with an empty states store of its own: a
    stored frozen pass from an earlier run would flatter it."""
    same = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--schedule", args.schedule, "--recipe", "report", "--dtype", dtype] if dtype else []
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        train_script.main(["--task", "sst2", "--model", str(checkpoint), "--data", str(args.data),
                           "--split", "dev", "--limit", str(args.train), "--seed", str(args.seed), *same,
                           "--zero-shot", "none", "--output", f"{out}/run", "--cache-dir", f"{out}/states"])
        seconds = time.perf_counter() - started
        import json
        accuracy = json.loads((Path(out) / "run" / "metrics.json").read_text())["fine_tuned"]["accuracy"]
    return seconds, accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="directory with SST-2 train.tsv and dev.tsv")
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", choices=["linear", "constant"], default="linear",
                        help="the baseline's (and the report-recipe rows') learning rate after warm-up")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--default-only", action="store_true", help="of ours, only the default recipe's row")
    args = parser.parse_args()
    checkpoint = llama.resolve_checkpoint("smollm2-135m")
    train, test = load_task_data(SST2_FORMAT, str(args.data), "dev", seed=args.seed, limit=args.train)
    rows = []
    if not args.skip_baseline:
        rows.append(("transformers, base recomputed each epoch, fp32", *baseline(checkpoint, train, test, args)))
    rows.append(("ours (train.py), the default recipe", *ours(checkpoint, args, None)))
    if not args.default_only:
        rows.append(("ours (train.py), the same settings, cached states, fp32", *ours(checkpoint, args, "float32")))
        rows.append(("ours (train.py), the same settings, cached states, bf16 base",
                     *ours(checkpoint, args, "bfloat16")))
    print(f"\nSST-2: {len(train)} training sentences, {args.epochs} epochs, batch {args.batch_size}, "
          f"lr {args.lr} ({args.schedule}); {len(test)} dev sentences; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads\n")
    print("| run | wall seconds | dev accuracy | speed-up vs baseline |")
    print("|---|---|---|---|")
    for name, seconds, accuracy in rows:
        speedup = f"{rows[0][1] / seconds:.2f}x" if not args.skip_baseline else "-"
        print(f"| {name} | {seconds:.1f} | {accuracy:.3f} | {speedup} |")


if __name__ == "__main__":
    main()

"""Use a trained head on your own text: sentences to classify, or questions about a passage.

    python predict.py --head runs/sst2 "I loved it." "A dull, plodding film."
    python predict.py --head runs/sst2 --input sentences.txt        # one sentence a line
    python predict.py --head runs/squad --question "Who?" --context "..."
    python predict.py --head runs/squad --input questions.jsonl     # {"question": ..., "context": ...} a line
    cat sentences.txt | python predict.py --head runs/sst2 --input -
    python predict.py --head runs/sst2 --serve                      # a page at http://127.0.0.1:8000

Out: one JSON line per input, in input order, with the input and the head's answer (`label`,
`score`; or `answer`, `score`, `start`, `end`); a table when stdout is a terminal. The head
applies the readout, windows and no-answer threshold it was trained with (`heads.load`).

States: --input FILE reads and keeps the frozen states in the store train.py and eval.py use
(--cache-dir): predicting a run's test split reuses what the run computed, and a second pass
over the same file runs no frozen pass. Texts given as arguments and the page store nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import warnings
from pathlib import Path

import torch

import heads
from errors import ArgumentParser, UserError, exit_on_user_error
from heads.head_file import locate_head, read_head_file
from heads.store import DEFAULT_LIMIT_GIB, StateStore
from training.devices import DTYPES, resolve_device
from training.loading import open_states

MAX_CHARS = 100_000  # per text or context: far beyond a review or a passage, short of a pasted book


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--head", required=True, help="output directory of a train.py run, or the Hub repo it was pushed to")
    inputs = p.add_argument_group("input (one of)")
    inputs.add_argument("texts", nargs="*", help="sentences to classify")
    inputs.add_argument("--input", metavar="FILE", help="one sentence a line, or JSONL with `text` or "
                                                        "`question` and `context` per line; - reads stdin")
    inputs.add_argument("--question", help="a question about --context")
    inputs.add_argument("--context", help="the passage --question is about")
    inputs.add_argument("--max-chars", type=int, default=MAX_CHARS,
                        help="refuse a text or context longer than this many characters (default: %(default)s)")
    out = p.add_argument_group("output")
    out.add_argument("--format", choices=["auto", "jsonl", "table"], default="auto",
                     help="auto: a table on a terminal, JSONL otherwise (default: %(default)s)")
    page = p.add_argument_group("page")
    page.add_argument("--serve", action="store_true", help="serve a page to try the head instead of reading input")
    page.add_argument("--port", type=int, default=8000, help="the page's port (default: %(default)s)")
    page.add_argument("--host", default="127.0.0.1",
                      help="the address to bind; 0.0.0.0 exposes the page to the network (default: %(default)s)")
    model = p.add_argument_group("model")
    model.add_argument("--model", help="the base to load the head onto (default: the one the head records)")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ... (default: %(default)s)")
    model.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                       help="dtype of the frozen base; auto: the one the head was trained with (default: %(default)s)")
    model.add_argument("--batch-tokens", type=int, default=heads.trained.BATCH_TOKENS,
                       help="tokens (padding included) per forward pass of the frozen base (default: %(default)s)")
    model.add_argument("--cache-dir", default="auto",
                       help="where --input keeps the frozen states, shared with train.py and eval.py: a directory, "
                            "auto (~/.cache/llama-heads/states or $LLAMA_HEADS_STATES), or none (default: %(default)s)")
    model.add_argument("--cache-limit", type=float, default=DEFAULT_LIMIT_GIB,
                       help="GiB the --cache-dir may hold; the least recently used states are evicted first "
                            "(default: %(default)s)")
    args = p.parse_args(argv)
    given = [bool(args.texts), args.input is not None, args.question is not None or args.context is not None]
    if args.serve and any(given):
        raise UserError("--serve reads its input from the page: drop the texts, --input and --question/--context")
    if not args.serve and sum(given) != 1:
        raise UserError("give the input one way: sentences as arguments, --input FILE (- for stdin), or "
                        "--question with --context" + (" (or --serve for a page)" if not any(given) else ""))
    if (args.question is None) != (args.context is None):
        raise UserError("--question and --context go together")
    return args


def read_inputs(args: argparse.Namespace) -> list[dict]:
    """The inputs as rows: {"text"} or {"question", "context"}, in input order; bad input fails here, in one line."""
    if args.texts:
        rows, source = [{"text": t} for t in args.texts], "argument"
    elif args.question is not None:
        rows, source = [{"question": args.question, "context": args.context}], "argument"
    else:
        rows, source = read_file(args.input), args.input if args.input != "-" else "stdin"
    if not rows:
        raise UserError(f"{source}: no input (an empty file?): give one sentence a line, or JSONL rows")
    for number, row in enumerate(rows, 1):
        for key in ("text", "question", "context"):
            if key in row and len(row[key]) > args.max_chars:
                raise UserError(f"{source} {number}: the {key} has {len(row[key]):,} characters, over --max-chars "
                                f"{args.max_chars:,}: shorten it or raise --max-chars")
    return rows


def read_file(name: str) -> list[dict]:
    """Plain lines (one sentence each, blank lines skipped) or JSONL, told apart by the first non-blank line."""
    if name == "-":
        text, label = sys.stdin.read(), "stdin"
    else:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{name}: no such file")
        try:
            text, label = path.read_text(encoding="utf-8-sig"), name
        except UnicodeDecodeError as err:
            raise UserError(f"{name}: not UTF-8 text ({err.reason})") from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines or not lines[0][1].lstrip().startswith("{"):
        return [{"text": line.strip()} for _, line in lines]
    rows = []
    for number, line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{label}:{number}: not a JSON object ({err.msg}); JSONL needs one object a line") from None
        keys = {"text"} if isinstance(row, dict) and "text" in row else {"question", "context"}
        if not isinstance(row, dict) or not keys <= set(row) or not all(isinstance(row[k], str) for k in keys):
            raise UserError(f"{label}:{number}: expected an object with a string `text`, or `question` and "
                            "`context`")
        rows.append(row)
    return rows


def predict(head, rows: list[dict]) -> list[dict]:
    """The head's answers beside each row; a row of the other kind (a question for a classifier) is refused."""
    wanted = ("text",) if isinstance(head, heads.TrainedClassifier) else ("question", "context")
    for number, row in enumerate(rows, 1):
        if not all(k in row for k in wanted):
            raise UserError(f"input {number}: this {head.info.task} head reads {' and '.join(wanted)}, "
                            f"the input has {', '.join(sorted(row))}")
    with contextlib.redirect_stdout(sys.stderr):  # progress lines must not mix with the JSONL
        if isinstance(head, heads.TrainedClassifier):
            results = head.classify([r["text"] for r in rows])
        else:
            results = head.answer_batch([r["question"] for r in rows], [r["context"] for r in rows])
    return [{**row, **result} for row, result in zip(rows, results)]


def table(rows: list[dict]) -> str:
    """A readable table: the answer and score first, then the (shortened) input."""
    def cut(text: str, width: int) -> str:
        text = " ".join(text.split())
        return text if len(text) <= width else text[:width - 1] + "…"

    if "label" in rows[0]:
        lines = [f"{'label':<10} {'score':>6}  text"]
        lines += [f"{r['label']:<10} {r['score']:6.3f}  {cut(r['text'], 90)}" for r in rows]
    else:
        lines = [f"{'answer':<30} {'score':>6}  question"]
        lines += [f"{cut(r['answer'] or '(no answer)', 30):<30} {r['score']:6.3f}  {cut(r['question'], 70)}"
                  for r in rows]
    return "\n".join(lines)


def load_head(args: argparse.Namespace):
    """The head on its base; --dtype auto leaves the dtype to the head (the one its run used)."""
    device, _ = resolve_device(args.device, "float32")
    store = open_store(args, device)
    with contextlib.redirect_stdout(sys.stderr):
        return heads.load(args.head, base=args.model, device=device, dtype=DTYPES.get(args.dtype),
                          batch_tokens=args.batch_tokens, store=store)


def open_store(args: argparse.Namespace, device: torch.device) -> StateStore | None:
    """The states store for --input, opened for the base, dtype and device the head will run on.

    Only a file is worth storing: its texts are often a whole split, predicted again or passed by a run
    before. Texts given as arguments and the page's requests are a few new texts each time, and each set
    of texts is a new key: the store would fill with one-off entries that no later call reads.
    """
    if args.input is None:
        return None
    info = read_head_file(locate_head(args.head))
    name, revision, dtype = heads.trained.base_settings(info, args.model, device, DTYPES.get(args.dtype))
    return open_states(args.cache_dir, args.cache_limit, name, revision, device, dtype)


@exit_on_user_error
def main(argv: list[str] | None = None) -> list[dict] | None:
    args = parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"warning: {message}\n"
    rows = None if args.serve else read_inputs(args)  # bad input fails before the base loads
    head = load_head(args)
    if args.serve:
        from predict_page import serve

        serve(head, host=args.host, port=args.port, max_chars=args.max_chars)
        return None
    results = predict(head, rows)
    if args.format == "table" or args.format == "auto" and sys.stdout.isatty():
        print(table(results))
    else:
        sys.stdout.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results))
    return results


if __name__ == "__main__":
    main()

"""Try a model from the command line: `python -m llama --model smollm2-135m "prompt"`.

`--model` takes whatever `load_pretrained` takes: a GGUF preset (the default,
smollm2-135m, works offline), a `.gguf` file, a checkpoint directory or a Hub id.
"""

from __future__ import annotations

import argparse
import logging

import torch

from .errors import ArgumentParser, LlamaError, exit_on

from .chat import chat_prompt
from .generate import generate
from .loading import load_pretrained, load_tokenizer


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m llama", description=__doc__.splitlines()[0])
    parser.add_argument("prompt", help="text to continue (with --chat: the user's message)")
    parser.add_argument("--model", default="smollm2-135m",
                        help="GGUF preset, .gguf file, checkpoint directory or Hub id")
    parser.add_argument("--chat", action="store_true", help="wrap the prompt in ChatML for instruct models")
    parser.add_argument("--system", help="system message for --chat")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="stop after this many tokens")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-k", type=int, help="sample only among the k likeliest tokens")
    parser.add_argument("--seed", type=int, help="seed for sampling")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    return parser.parse_args(argv)


@exit_on((LlamaError,))
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.max_new_tokens < 1:
        raise LlamaError("--max-new-tokens must be at least 1")
    logging.basicConfig(format="%(message)s")
    logging.getLogger("llama").setLevel(logging.INFO)  # the one-time GGUF conversion notice
    model = load_pretrained(args.model, dtype=getattr(torch, args.dtype))
    tokenizer = load_tokenizer(args.model)
    prompt = chat_prompt(args.prompt, args.system) if args.chat else args.prompt
    if not tokenizer.encode(prompt):
        raise LlamaError("the prompt is empty: give some text to continue")
    print(generate(model, tokenizer, prompt, max_new_tokens=args.max_new_tokens,
                   temperature=args.temperature, top_k=args.top_k, seed=args.seed))


if __name__ == "__main__":
    main()

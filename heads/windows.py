"""SQuAD windows through the frozen pass and the span head: what training and `heads.load` both run.

With echo the head reads only the no-answer slot and the context tokens of the second copy, so only
those states are kept (`echo_view`): about half of the window's tokens. The states go to a table (or
a stream, see `heads.cache`), from which `span_logits_of` reads them back in fixed batches.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from data.batching import padded_batches, padding_fraction, token_budget_batches
from data.qa_windows import QAWindow

from .cache import StreamedStates, TokenStateTable, keep_positions
from .qa import QuestionAnswerer


def echo_view(windows: list[QAWindow]) -> tuple[list[list[int]], list[QAWindow]]:
    """Per echoed window, the positions the head reads (slot and labelled context copy), and the
    windows restricted to them, labels and offsets renumbered from 0."""
    kept = [[0] + [i for i, span in enumerate(w.offsets) if span is not None] for w in windows]
    return kept, [head_view(w, k) for w, k in zip(windows, kept)]


def head_view(window: QAWindow, kept: list[int]) -> QAWindow:
    """`window` restricted to the positions `kept` (which hold its labels), renumbered from 0."""
    return QAWindow(window.example_id, [window.input_ids[i] for i in kept], [window.offsets[i] for i in kept],
                     kept.index(window.start_position), kept.index(window.end_position))


def window_states(qa: QuestionAnswerer, windows: list[QAWindow], kept: list[list[int]] | None, blocks: list[int],
                  place: str, pad_id: int, batch_tokens: int,
                  desc: str) -> tuple[dict[int, TokenStateTable | StreamedStates], float]:
    """Run the base once over every window and keep every read token's state of each block.

    `place` is where the states go ("accelerator", "ram", "disk"), or "stream": store nothing and
    rerun the frozen pass for each batch read. Returns the stores by block and the padding fraction.
    """
    sequences = [w.input_ids for w in windows]
    device = qa.model.embed_tokens.weight.device
    if place == "stream":
        return {k: StreamedStates(sequences, pad_id, functools.partial(qa.states, block=k), input_device=device,
                                    device=device, positions=kept) for k in blocks}, 0.0
    lengths = [len(s) for s in sequences]
    cached_lengths = lengths if kept is None else [len(k) for k in kept]
    stores = {k: TokenStateTable(cached_lengths, qa.config.hidden_size, place=place, device=device) for k in blocks}
    batches = token_budget_batches(lengths, batch_tokens)
    for batch, input_ids, attention_mask in padded_batches(sequences, batches, pad_id, device, desc):
        for k, hidden in zip(blocks, qa.states(input_ids, attention_mask, block=blocks)):
            if kept is not None:
                hidden = keep_positions(hidden, [kept[i] for i in batch])
            stores[k].write_batch(batch, hidden)
    return stores, padding_fraction(batches, lengths)


def span_logits_of(qa: QuestionAnswerer, store: TokenStateTable | StreamedStates, views: list[QAWindow],
                   batch_size: int = 64) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The head's start and end logits of every window (as the head sees it), each (T_i,) float32."""
    start_logits: list[np.ndarray] = []
    end_logits: list[np.ndarray] = []
    with torch.no_grad():
        for first in range(0, len(views), batch_size):
            indices = list(range(first, min(first + batch_size, len(views))))
            hidden, mask = store.batch(indices)
            s, e = (logits.float().cpu() for logits in qa.span_logits(hidden, mask))
            for row, index in enumerate(indices):
                T = len(views[index].input_ids)
                start_logits.append(s[row, :T].numpy())
                end_logits.append(e[row, :T].numpy())
    return start_logits, end_logits

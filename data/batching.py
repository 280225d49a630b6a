"""Batches for the frozen forward pass: sorted by length, sized by a token budget.

Sentences vary from 2 to 60+ tokens and QA windows up to 384; batching them in random
order pads every batch to its longest member, and the model spends much of its time on
padding. The frozen base runs once, for inference, so nothing needs shuffling: sorting by
length puts near-equal lengths together, and a token budget lets many short sentences
share a forward pass while long windows go a few at a time. (Training then runs over the
cached states, which need no padding at all.)
"""

from __future__ import annotations

from typing import Iterator

import torch

from .progress import Progress


def token_budget_batches(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Indices sorted by length, grouped so each padded batch holds at most `batch_tokens`.

    A batch also closes once its lengths differ by more than 10% (or 2 tokens), so padding
    stays a few percent. A sequence longer than the budget gets a batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:  # ascending, so the newest member is the batch's longest
        if (batches and (len(batches[-1]) + 1) * lengths[i] <= batch_tokens
                and lengths[i] - lengths[batches[-1][0]] <= max(2, lengths[i] // 10)):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def pad_right(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> input_ids (B, T) padded with pad_id on the right, attention_mask (B, T) of 0/1.

    T is the longest sequence in this batch. Heads pool by the mask, so pad_id may equal a
    real token id (SmolLM2's pad is its EOS).
    """
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        input_ids[row, : len(s)] = torch.tensor(s, dtype=torch.long)
        attention_mask[row, : len(s)] = 1
    return input_ids, attention_mask


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    """Pad tokens / all tokens the model processes when each batch is padded to its longest item."""
    total = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    real = sum(lengths[i] for b in batches for i in b)
    return 1.0 - real / total if total else 0.0


def padded_batches(sequences: list[list[int]], batches: list[list[int]], pad_id: int, device: torch.device | str,
                   desc: str) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Each batch of indices with its right-padded input_ids and mask on `device`, with progress in tokens."""
    with Progress(sum(len(s) for s in sequences), desc, "tok") as progress:
        for batch in batches:
            input_ids, attention_mask = pad_right([sequences[i] for i in batch], pad_id)
            yield batch, input_ids.to(device), attention_mask.to(device)
            progress.update(sum(len(sequences[i]) for i in batch))

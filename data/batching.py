"""Length-bucketed batches with dynamic padding: most of each batch is real tokens.

Sentences vary from 2 to 60+ tokens; batching them in random order pads every batch to
its longest member, and the model spends most of its time on padding. Sorting the whole
set by length would remove the padding but also the randomness SGD wants. The middle
road: shuffle, cut into buckets of `bucket_size_in_batches` batches, sort each bucket by
length, cut it into batches, and shuffle the batches. Padding is then only the length
spread inside one batch of a sorted bucket.
"""

from __future__ import annotations

import torch

from .splits import shuffled_indices


def length_bucketed_batches(lengths: list[int], batch_size: int, seed: int | None,
                            bucket_size_in_batches: int = 50) -> list[list[int]]:
    """Lists of item indices, each item exactly once.

    seed None (inference): all items sorted longest first, no randomness, so the first
    batch is the largest and a memory problem shows at once. Otherwise the bucketed
    shuffle above, reproducible for a given seed (see `data.splits`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if seed is None:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    order = shuffled_indices(len(lengths), seed)
    bucket = batch_size * bucket_size_in_batches
    batches = []
    for b in range(0, len(order), bucket):
        in_bucket = sorted(order[b:b + bucket], key=lambda i: lengths[i])
        batches += [in_bucket[k:k + batch_size] for k in range(0, len(in_bucket), batch_size)]
    return [batches[k] for k in shuffled_indices(len(batches), seed + 1)]


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

"""Length-bucketed batches: every item once, little padding, seeded, and a correct mask."""

from __future__ import annotations

import random

import pytest
import torch

from data.batching import length_bucketed_batches, pad_right, padding_fraction


@pytest.fixture
def lengths() -> list[int]:
    rng = random.Random(0)
    return [rng.randint(2, 60) for _ in range(5_000)]


def test_every_item_appears_exactly_once_in_train_and_inference_batches(lengths):
    for seed in (1, None):
        batches = length_bucketed_batches(lengths, 32, seed)
        assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
        assert all(1 <= len(b) <= 32 for b in batches)


def test_inference_batches_are_sorted_longest_first(lengths):
    flat = [i for b in length_bucketed_batches(lengths, 32, None) for i in b]
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_bucketing_cuts_padding_far_below_random_batches_and_is_seeded(lengths):
    bucketed = length_bucketed_batches(lengths, 32, seed=1)
    order = list(range(len(lengths)))
    random.Random(1).shuffle(order)
    unsorted = [order[k:k + 32] for k in range(0, len(order), 32)]
    assert padding_fraction(bucketed, lengths) < 0.05 < 0.3 < padding_fraction(unsorted, lengths)
    assert bucketed == length_bucketed_batches(lengths, 32, seed=1)
    assert bucketed != length_bucketed_batches(lengths, 32, seed=2)


def test_padding_fraction_counts_pad_tokens_over_all_tokens():
    assert padding_fraction([[0, 1]], [3, 1]) == pytest.approx(2 / 6)
    assert padding_fraction([[0], [1]], [3, 1]) == 0.0


def test_pad_right_pads_with_the_pad_id_and_masks_it():
    input_ids, mask = pad_right([[5, 6, 7], [8]], pad_id=2)
    assert input_ids.dtype == mask.dtype == torch.long
    assert input_ids.tolist() == [[5, 6, 7], [8, 2, 2]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]

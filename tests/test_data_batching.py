"""Token-budget batches: every item once, within the budget, little padding; and a correct mask."""

from __future__ import annotations

import random

import pytest
import torch

from data.batching import pad_right, padding_fraction, token_budget_batches


@pytest.fixture
def lengths() -> list[int]:
    rng = random.Random(0)
    return [rng.randint(2, 60) for _ in range(5_000)]


def test_every_item_appears_exactly_once_within_the_token_budget(lengths):
    batches = token_budget_batches(lengths, batch_tokens=1024)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 1024 for b in batches)


def test_a_sequence_longer_than_the_budget_gets_a_batch_of_its_own():
    assert token_budget_batches([5, 500, 6], batch_tokens=100) == [[0, 2], [1]]


def test_sorted_budget_batches_cut_padding_far_below_random_batches(lengths):
    budget = token_budget_batches(lengths, batch_tokens=1024)
    order = list(range(len(lengths)))
    random.Random(1).shuffle(order)
    unsorted = [order[k:k + 32] for k in range(0, len(order), 32)]
    assert padding_fraction(budget, lengths) < 0.05 < 0.3 < padding_fraction(unsorted, lengths)


def test_padding_fraction_counts_pad_tokens_over_all_tokens():
    assert padding_fraction([[0, 1]], [3, 1]) == pytest.approx(2 / 6)
    assert padding_fraction([[0], [1]], [3, 1]) == 0.0


def test_pad_right_pads_with_the_pad_id_and_masks_it():
    input_ids, mask = pad_right([[5, 6, 7], [8]], pad_id=2)
    assert input_ids.dtype == mask.dtype == torch.long
    assert input_ids.tolist() == [[5, 6, 7], [8, 2, 2]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]

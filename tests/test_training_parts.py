"""The pieces under train.py: the schedule, pooling, the QA loss (the state stores: test_state_cache.py)."""

from __future__ import annotations

import torch

from heads import pool_last_token, qa_loss
from training.loop import TrainSettings, epoch_batches, lr_lambda


def test_epoch_order_depends_only_on_seed_and_epoch():
    assert epoch_batches(50, 8, seed=1, epoch=2) == epoch_batches(50, 8, seed=1, epoch=2)
    assert epoch_batches(50, 8, seed=1, epoch=2) != epoch_batches(50, 8, seed=1, epoch=3)
    assert sorted(i for b in epoch_batches(50, 8, 1, 0) for i in b) == list(range(50))


def test_linear_schedule_warms_up_then_decays_to_zero():
    factor = lr_lambda(TrainSettings(epochs=1, lr=1.0, batch_size=1, seed=0, warmup_ratio=0.2), 10)
    assert [round(factor(s), 3) for s in range(10)] == [0.5, 1.0, 1.0, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]
    constant = lr_lambda(TrainSettings(epochs=1, lr=1.0, batch_size=1, seed=0, schedule="constant"), 10)
    assert {constant(s) for s in range(10)} == {1.0}


def test_pooling_takes_the_last_real_token_for_left_and_right_padding():
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float).view(2, 4, 1)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])
    assert pool_last_token(hidden, right).flatten().tolist() == [1.0, 7.0]
    assert pool_last_token(hidden, left).flatten().tolist() == [3.0, 7.0]


def test_qa_loss_is_the_mean_of_start_and_end_cross_entropy_and_ignores_outside_positions():
    start, end = torch.randn(3, 5), torch.randn(3, 5)
    starts, ends = torch.tensor([0, 2, 4]), torch.tensor([1, 3, 4])
    expected = (torch.nn.functional.cross_entropy(start, starts) + torch.nn.functional.cross_entropy(end, ends)) / 2
    torch.testing.assert_close(qa_loss(start, end, starts, ends), expected)
    outside = qa_loss(start, end, torch.tensor([0, 2, 9]), torch.tensor([1, 3, 9]))
    expected = (torch.nn.functional.cross_entropy(start[:2], starts[:2])
                + torch.nn.functional.cross_entropy(end[:2], ends[:2])) / 2
    torch.testing.assert_close(outside, expected)

"""The training loop's validation selection: the best epoch's head comes back, early stopping, exact resume.

A real `SequenceClassifier` on a tiny random Llama (the base never runs: the loop only sees
cached states) and the real SST-2 task operations, on synthetic pooled states.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from heads import ClassifierReadout, QuestionAnswerer, SequenceClassifier, SpanReadout, TokenStateTable
from llama import LlamaConfig
from tasks import TASKS
from tasks.classification import PooledStates
from tasks.squad import WindowStates
from training.distributed import Shard
from training.loop import TrainSettings, train_head, validation_loss

HIDDEN = 8
TINY = LlamaConfig(vocab_size=16, hidden_size=HIDDEN, intermediate_size=16, num_hidden_layers=1,
                   num_attention_heads=2, num_key_value_heads=1)
SST2 = TASKS["sst2"]


def classifier(seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)
    model = SequenceClassifier(TINY)
    model.reset_head()
    return model


def question_answerer(seed: int = 0) -> QuestionAnswerer:
    torch.manual_seed(seed)
    model = QuestionAnswerer(TINY)
    model.reset_head()
    return model


def pooled(n: int, seed: int, flip: bool = False) -> PooledStates:
    """n (HIDDEN,) state vectors labelled by the sign of their first coordinate (or its opposite)."""
    x = torch.randn(n, HIDDEN, generator=torch.Generator().manual_seed(seed))
    labels = ((x[:, 0] > 0) != flip).long()
    return PooledStates(x[:, None], labels, [ClassifierReadout(1, echo=False, pool="last")], padding_fraction=0.0)


def windows(lengths: list[int], seed: int) -> WindowStates:
    """Per-token states of windows of the given lengths, each with a start/end inside the window."""
    generator = torch.Generator().manual_seed(seed)
    table = TokenStateTable(lengths, HIDDEN)
    for i, n in enumerate(lengths):
        table.write(i, torch.randn(n, HIDDEN, generator=generator))
    starts = torch.tensor([int(torch.randint(n, (1,), generator=generator)) for n in lengths])
    ends = torch.tensor([min(n - 1, s + 1) for s, n in zip(starts.tolist(), lengths)])
    return WindowStates({1: table}, windows=[None] * len(lengths), starts=starts, ends=ends,
                        readouts=[SpanReadout(1, echo=False)], padding_fraction=0.0)


def with_batch_loss(task, batch_loss):
    """`task` for the loop alone, on any states object: its batch is (states, indices), its loss
    `batch_loss(head, states, indices)`."""
    probed = type("Probed", (type(task),), {"batch": lambda self, states, indices: ((states, indices), ()),
                                             "loss": lambda self, head, inputs, targets: batch_loss(head, *inputs)})
    return probed(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)})


def with_loss(task, loss):
    """`task`, its loss replaced by `loss(head, inputs, targets)` (a probe wrapping the real one)."""
    probed = type("Probed", (type(task),), {"loss": lambda self, *args: loss(*args)})
    return probed(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)})


def settings(**overrides) -> TrainSettings:
    return TrainSettings(**{"epochs": 10, "lr": 0.05, "batch_size": 4, "seed": 3, **overrides})


def computed(history: list[dict]) -> list[dict]:
    """History rows without their wall-clock seconds."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_without_validation_rows_have_no_validation_keys_and_patience_is_refused():
    history = train_head(classifier(), SST2, pooled(12, seed=1), settings(epochs=2))
    assert [set(row) for row in history] == [{"epoch", "mean_loss", "step_losses", "lr", "seconds"}] * 2
    with pytest.raises(ValueError, match="validation"):
        train_head(classifier(), SST2, pooled(12, seed=1), settings(), patience=2)


def test_validation_keeps_training_to_the_cap_without_patience_and_restores_the_lowest_loss_head():
    model, val = classifier(), pooled(10, seed=2, flip=True)  # learning the training labels hurts here
    history = train_head(model, SST2, pooled(24, seed=1), settings(epochs=4), val_states=val)
    losses = [row["val_loss"] for row in history]
    assert len(history) == 4 and losses == sorted(losses)  # the best epoch is the first, not the last
    assert [row["best_epoch"] for row in history] == [1, 1, 1, 1]
    assert validation_loss(model, SST2, Shard(val, 0, len(val)), batch_size=3) == pytest.approx(losses[0], rel=1e-6)


def test_improving_validation_selects_the_last_epoch_and_best_epoch_tracks_the_minimum():
    model, val = classifier(), pooled(10, seed=2)
    history = train_head(model, SST2, pooled(24, seed=1), settings(epochs=4), val_states=val)
    for row in history:
        best = min(history[:row["epoch"]], key=lambda r: r["val_loss"])
        assert row["best_epoch"] == best["epoch"]
    assert history[-1]["best_epoch"] == 4
    final = validation_loss(model, SST2, Shard(val, 0, len(val)), batch_size=4)
    assert final == pytest.approx(history[-1]["val_loss"], rel=1e-6)


def test_early_stopping_after_patience_epochs_and_the_schedule_still_spans_the_epoch_cap():
    train, val = pooled(24, seed=1), pooled(10, seed=2, flip=True)
    history = train_head(classifier(), SST2, train, settings(epochs=10), val_states=val, patience=2)
    assert [row["epoch"] for row in history] == [1, 2, 3] and history[-1]["best_epoch"] == 1
    steps_per_epoch, total = 6, 60  # 24 items in batches of 4, over the cap of 10 epochs
    last_step = 3 * steps_per_epoch - 1
    assert history[-1]["lr"] == pytest.approx(0.05 * (total - last_step) / total)  # far from 0


@pytest.mark.parametrize("average", [False, True])
def test_resume_after_an_interruption_equals_the_uninterrupted_run(tmp_path, average):
    train, val = pooled(24, seed=1), pooled(10, seed=4, flip=True)
    run = dict(val_states=val, patience=2)
    uninterrupted = classifier()
    expected = train_head(uninterrupted, SST2, train, settings(average=average), tmp_path / "full.pt", **run)

    calls = {"n": 0}

    def interrupt_in_epoch_two(*args):
        if torch.is_grad_enabled():  # a training step, not the validation pass
            calls["n"] += 1
            if calls["n"] == 8:  # 6 steps per epoch: this is epoch 2
                raise KeyboardInterrupt
        return SST2.loss(*args)

    checkpoint = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        train_head(classifier(), with_loss(SST2, interrupt_in_epoch_two), train,
                   settings(average=average), checkpoint, **run)
    assert len(torch.load(checkpoint, weights_only=True)["history"]) == 1
    for attempt in range(2):  # the second resumes a finished (early-stopped) run: no epoch, same head
        resumed = classifier(seed=attempt + 7)  # its own init is overwritten by the checkpoint
        history = train_head(resumed, SST2, train, settings(average=average), checkpoint, resume=True, **run)
        assert computed(history) == computed(expected)
        for name, tensor in uninterrupted.head_state_dict().items():
            torch.testing.assert_close(resumed.head_state_dict()[name], tensor, rtol=0, atol=0)
    assert math.isfinite(history[-1]["val_loss"]) and len(history) < settings().epochs


def heads_after_every_step(model: SequenceClassifier, train: PooledStates, run: TrainSettings) -> list[torch.Tensor]:
    """Train without averaging and return the head's weight after each optimizer step."""
    before_each_step = []

    def recording(classifier, inputs, targets):
        if torch.is_grad_enabled():  # a training step sees the head the previous step left
            before_each_step.append(classifier.score.weight.detach().clone())
        return SST2.loss(classifier, inputs, targets)

    train_head(model, with_loss(SST2, recording), train, run)
    return before_each_step[1:] + [model.score.weight.detach().clone()]


def test_averaging_keeps_the_mean_of_every_steps_head_and_takes_the_same_steps():
    train = pooled(24, seed=1)
    steps = heads_after_every_step(classifier(), train, settings(epochs=3))
    assert len(steps) == 18  # 6 steps per epoch
    averaged = classifier()
    history = train_head(averaged, SST2, train, settings(epochs=3, average=True))
    torch.testing.assert_close(averaged.score.weight, torch.stack(steps).mean(0), rtol=0, atol=1e-6)
    plain = train_head(classifier(), SST2, train, settings(epochs=3))
    assert computed(history) == computed(plain)  # the steps themselves are unchanged
    assert not torch.allclose(averaged.score.weight, steps[-1])


def test_with_averaging_the_validated_and_restored_head_is_the_mean():
    model, val = classifier(), pooled(10, seed=2)
    history = train_head(model, SST2, pooled(24, seed=1), settings(epochs=4, average=True), val_states=val)
    best = history[-1]["best_epoch"]
    restored = validation_loss(model, SST2, Shard(val, 0, len(val)), batch_size=4)
    assert restored == pytest.approx(history[best - 1]["val_loss"], rel=1e-6)
    plain = train_head(classifier(), SST2, pooled(24, seed=1), settings(epochs=4), val_states=val)
    assert [r["val_loss"] for r in history] != [r["val_loss"] for r in plain]  # validated: the mean, not the step

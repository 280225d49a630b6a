"""Two processes train exactly as one: summed shard gradients, the loop over Shards, resume on every rank.

Two gloo processes on this CPU join through `distributed.setup`, as under torchrun (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT in the environment). They are spawned once per
module; each runs every scenario and saves what it computed, and the tests compare that with
the same scenarios run here in one process, on the same states. A hung collective fails
the module's fixture after TIMEOUT_S instead of hanging the suite.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from heads import TokenStateTable
from tasks import TASKS
from tasks.classification import PooledStates
from test_loop import HIDDEN, classifier, computed, pooled, question_answerer, settings, windows, with_loss
from training import distributed
from training.distributed import Shard, shard_bounds
from training.loop import epoch_batches, train_head

WORLD = 2
TIMEOUT_S = 120
SST2, SQUAD = TASKS["sst2"], TASKS["squad"]
GRADIENT_ITEMS = 9  # rank 0 holds items 0..3, rank 1 items 4..8
GRADIENT_BATCHES = {"mixed": [7, 1, 4, 8, 0, 5], "rank 0 only": [3, 0, 2]}  # global item indices
WINDOW_LENGTHS = [3, 5, 2, 6, 4, 3, 7]


def scenarios() -> dict[str, dict]:
    """name -> task, head factory, training (and validation) states, settings, patience."""
    return {
        "even split": dict(task=SST2, head=classifier, train=pooled(8, seed=1),
                           settings=settings(epochs=3, batch_size=3, warmup_ratio=0.2, weight_decay=0.01)),
        "4 and 5 items": dict(task=SST2, head=classifier, train=pooled(9, seed=1),
                              settings=settings(epochs=3, batch_size=2)),
        # qa_outputs.bias has no loss gradient (a softmax over positions ignores a shift): Adam moves it
        # by rounding noise alone, which differs between 1 and 2 processes and changes no loss or answer.
        "qa windows": dict(task=SQUAD, head=question_answerer, train=windows(WINDOW_LENGTHS, seed=5),
                           settings=settings(epochs=2, batch_size=3), noise_only=("qa_outputs.bias",)),
        "validation": dict(task=SST2, head=classifier, train=pooled(9, seed=1), val=pooled(7, seed=2, flip=True),
                           settings=settings(epochs=6, batch_size=2), patience=2),
    }


def rank_part(states, rank: int):
    """Rank `rank`'s contiguous part of the states, as its own cache would hold them."""
    start, end = shard_bounds(len(states), rank, WORLD)
    if isinstance(states, PooledStates):
        return dataclasses.replace(states, vectors=states.vectors[start:end], labels=states.labels[start:end])
    (block, whole), = states.stores.items()
    table = TokenStateTable(whole.lengths[start:end], HIDDEN)
    for local, index in enumerate(range(start, end)):
        table.write(local, whole.read(index))
    return dataclasses.replace(states, stores={block: table}, windows=states.windows[start:end],
                               starts=states.starts[start:end], ends=states.ends[start:end])


def train(scenario: dict, rank: int | None = None, **options) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """Train the scenario's head in one process (rank None) or on this rank's Shards; (history, head)."""
    model = scenario["head"]()

    def part(states):
        return states if rank is None else Shard.of(rank_part(states, rank))

    val = part(scenario["val"]) if "val" in scenario else None
    history = train_head(model, scenario["task"], part(scenario["train"]), scenario["settings"],
                         val_states=val, patience=scenario.get("patience"), **options)
    return computed(history), model.head_state_dict()


def worker(rank: int, port: int, out: str, resume_from: str) -> None:
    """One rank: join the group as under torchrun, run every scenario, save the results for the tests."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    distributed.setup("gloo")
    results = {"rank": distributed.rank(), "world": distributed.world_size(), "is_main": distributed.is_main(),
               "sum": distributed.sum_scalar(rank + 0.25), "gathered": distributed.gather_objects({"rank": rank}),
               "all_gathered": distributed.all_gather_objects(10 * rank)}
    items = Shard.of(rank_part(pooled(GRADIENT_ITEMS, seed=1), rank))
    results["shard"] = (items.offset, len(items), items.total)
    for name, batch in GRADIENT_BATCHES.items():
        model = classifier()
        mine = items.local(batch)  # as the loop computes a rank's share of the batch's mean loss
        if mine:
            (SST2.batch_loss(model, items.states, mine) * (len(mine) / len(batch))).backward()
        distributed.all_reduce_gradients(model.head.parameters())
        results[f"gradient {name}"] = model.score.weight.grad
    for name, scenario in scenarios().items():
        results[name] = train(scenario, rank, checkpoint=Path(out) / f"{name} rank {rank}.pt")
    results["resumed"] = train(scenarios()["validation"], rank, checkpoint=Path(resume_from), resume=True)
    try:
        train_head(classifier(), SST2, pooled(4, seed=1), settings(epochs=1))
    except ValueError as error:
        results["plain states"] = str(error)
    torch.save(results, Path(out) / f"rank {rank}.pt")
    distributed.teardown()


def spawn_ranks(*args) -> None:
    """Run `worker(rank, port, *args)` in WORLD fresh processes; fail (and kill them) after TIMEOUT_S."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.start_processes(worker, args=(port, *args), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not context.join(timeout=max(0.0, deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"{WORLD} ranks did not finish within {TIMEOUT_S}s: a collective hung")


@pytest.fixture(scope="module")
def one_process() -> dict:
    return {name: train(scenario) for name, scenario in scenarios().items()}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> tuple[list[dict], Path]:
    """What each of the two ranks computed, and the directory they wrote into."""
    out = tmp_path_factory.mktemp("ranks")
    resume_from = out / "interrupted.pt"
    validation, calls = scenarios()["validation"], {"n": 0}

    def interrupt_in_epoch_two(*args):
        if torch.is_grad_enabled():
            calls["n"] += 1
            if calls["n"] == 6:  # 9 items in batches of 2: 5 steps per epoch
                raise KeyboardInterrupt
        return SST2.loss(*args)

    with pytest.raises(KeyboardInterrupt):
        train(dict(validation, task=with_loss(SST2, interrupt_in_epoch_two)), checkpoint=resume_from)
    spawn_ranks(str(out), str(resume_from))
    return [torch.load(out / f"rank {r}.pt", weights_only=True) for r in range(WORLD)], out


def assert_same_run(got: tuple[list[dict], dict], expected: tuple[list[dict], dict],
                    noise_only: tuple[str, ...] = ()) -> None:
    """Equal histories (losses to rtol 1e-5) and heads (to atol 1e-6), but for tensors the loss ignores."""
    (history, head), (expected_history, expected_head) = got, expected
    assert [(r["epoch"], r.get("best_epoch")) for r in history] == \
           [(r["epoch"], r.get("best_epoch")) for r in expected_history]
    for row, expected_row in zip(history, expected_history):
        for key in ("mean_loss", "step_losses", "lr", "val_loss"):
            if key in expected_row:
                torch.testing.assert_close(torch.tensor(row[key], dtype=torch.float64),
                                           torch.tensor(expected_row[key], dtype=torch.float64), rtol=1e-5, atol=0)
    assert head.keys() == expected_head.keys()
    for name, tensor in expected_head.items():
        if name not in noise_only:
            torch.testing.assert_close(head[name], tensor, rtol=0, atol=1e-6)


def test_setup_joins_the_torchrun_group_and_collectives_reach_every_rank(ranks):
    results, _ = ranks
    assert [(r["rank"], r["world"], r["is_main"]) for r in results] == [(0, 2, True), (1, 2, False)]
    assert [r["sum"] for r in results] == [1.5, 1.5]
    assert results[0]["gathered"] == [{"rank": 0}, {"rank": 1}] and results[1]["gathered"] is None
    assert [r["all_gathered"] for r in results] == [[0, 10], [0, 10]]


def test_without_torchrun_every_helper_is_a_one_process_no_op():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    distributed.setup()  # no RANK in the environment: joins nothing
    assert distributed.sum_scalar(0.5) == 0.5 and distributed.gather_objects("x") == ["x"]
    assert distributed.shard(list("abc")) == list("abc")
    assert Shard.of(pooled(3, seed=0)).offset == 0 and Shard.of(pooled(3, seed=0)).total == 3


@pytest.mark.parametrize("n", [0, 1, 5, 9, 10])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_are_contiguous_in_rank_order_and_differ_by_at_most_one_item(n, world):
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(end == next_start for (_, end), (next_start, _) in zip(bounds, bounds[1:]))
    assert max(e - s for s, e in bounds) - min(e - s for s, e in bounds) <= 1


def test_a_rank_keeps_only_the_global_indices_it_holds_in_their_order(ranks):
    results, _ = ranks
    assert [r["shard"] for r in results] == [(0, 4, 9), (4, 5, 9)]
    second = Shard(pooled(5, seed=0), offset=4, total=9)
    assert second.local([7, 1, 4, 8, 0, 5]) == [3, 0, 4, 1] and second.local([3, 0, 2]) == []


@pytest.mark.parametrize("batch", list(GRADIENT_BATCHES))
def test_summed_shard_gradients_equal_the_full_batch_gradient(ranks, batch):
    results, _ = ranks
    model = classifier()
    SST2.batch_loss(model, pooled(GRADIENT_ITEMS, seed=1), GRADIENT_BATCHES[batch]).backward()
    for r in results:
        torch.testing.assert_close(r[f"gradient {batch}"], model.score.weight.grad, rtol=1e-5, atol=1e-7)
    assert torch.equal(results[0][f"gradient {batch}"], results[1][f"gradient {batch}"])


@pytest.mark.parametrize("name", list(scenarios()))
def test_two_processes_train_as_one(ranks, one_process, name):
    results, _ = ranks
    for r in results:
        assert_same_run(r[name], one_process[name], scenarios()[name].get("noise_only", ()))
    for key, tensor in results[0][name][1].items():  # every rank holds the identical head
        assert torch.equal(tensor, results[1][name][1][key])


def test_the_uneven_split_has_steps_where_one_rank_holds_no_item():
    s = scenarios()["4 and 5 items"]["settings"]
    batches = [b for e in range(s.epochs) for b in epoch_batches(9, s.batch_size, s.seed, e)]
    assert any(all(i < 4 for i in b) for b in batches) and any(all(i >= 4 for i in b) for b in batches)


def test_validation_stops_early_on_both_ranks_and_only_rank_0_writes_checkpoints(ranks, one_process):
    results, out = ranks
    history = results[1]["validation"][0]
    assert len(history) < scenarios()["validation"]["settings"].epochs
    assert history[-1]["best_epoch"] == one_process["validation"][0][-1]["best_epoch"]
    for name in scenarios():
        assert (out / f"{name} rank 0.pt").is_file() and not (out / f"{name} rank 1.pt").exists()


def test_every_rank_resumes_from_the_checkpoint_as_an_uninterrupted_run(ranks, one_process):
    results, _ = ranks
    for r in results:
        assert_same_run(r["resumed"], one_process["validation"])


def test_plain_states_are_refused_under_torchrun(ranks):
    results, _ = ranks
    assert all("Shard.of" in r["plain states"] for r in results)

"""What only a GPU run would otherwise find, proven on the CPU (issue 20): the frozen pass's attention
mask, the fp16 fallback, per-rank RAM and disk shares, the memory of choosing the readout, host syncs."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import llama
import llama.model
import train as train_script
from heads import cache
from heads.cache import TokenStateTable
from tasks import TASKS
from training import devices, distributed, loop
from training.devices import FreeSpace, free_space, resolve_device
from training.plan import GIB, plan_cache

from test_llama_parity import padding_mask
from test_loop import with_batch_loss

FIELDS = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
          "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "rope_theta": 10000.0}


def tiny_model() -> llama.LlamaModel:
    torch.manual_seed(0)
    return llama.LlamaForCausalLM(llama.LlamaConfig(**FIELDS)).model.eval()


def padded(lengths: list[int], T: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Random (B, T) ids and their mask, each row's real tokens padded on `side`."""
    ids = torch.randint(0, FIELDS["vocab_size"], (len(lengths), T), generator=torch.Generator().manual_seed(1))
    return ids, padding_mask(lengths, T, side)


@contextlib.contextmanager
def sdpa_masks_seen(monkeypatch):
    """Records the attn_mask each SDPA call of the model receives."""
    seen, real = [], F.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen.append(kwargs.get("attn_mask"))
        return real(*args, **kwargs)

    monkeypatch.setattr(llama.model.F, "scaled_dot_product_attention", spy)
    yield seen
    monkeypatch.setattr(llama.model.F, "scaled_dot_product_attention", real)


# 2. A right-padded frozen pass needs no mask: no real token attends to a later pad under the causal mask.
@torch.no_grad()
def test_right_padded_states_without_a_mask_equal_the_masked_ones_on_every_real_token(monkeypatch):
    model = tiny_model()
    ids, mask = padded([12, 7, 3], 12, "right")
    with sdpa_masks_seen(monkeypatch) as seen:
        states = model.hidden_states(ids, mask, [1, 2])
    assert seen and all(m is None for m in seen)  # plain causal attention: SDPA's fast kernels stay open
    monkeypatch.setattr(llama.model, "is_right_padded", lambda attention_mask: False)  # force the masked path
    with sdpa_masks_seen(monkeypatch) as seen:
        masked = model.hidden_states(ids, mask, [1, 2])
    assert seen and all(m is not None for m in seen)
    real = mask.bool()
    for state, reference in zip(states, masked):
        assert (state[real] - reference[real]).abs().max() <= 1e-6  # fp32; on this CPU they are equal bit for bit
    assert all(torch.isfinite(s).all() for s in states)  # the pads' own states are unspecified, but finite


@torch.no_grad()
def test_left_padding_and_decoding_with_a_cache_still_pass_the_mask(monkeypatch):
    model = tiny_model()
    ids, mask = padded([12, 7, 3], 12, "left")
    with sdpa_masks_seen(monkeypatch) as seen:
        model(ids, mask)
    assert seen and all(m is not None for m in seen)
    assert llama.model.is_right_padded(padded([4, 2], 4, "right")[1])
    assert not llama.model.is_right_padded(padded([4, 2], 4, "left")[1])
    assert not llama.model.is_right_padded(torch.tensor([[1, 0, 1, 0]]))  # a hole is not right padding


# 4. The fp16 fallback: asked of the chosen GPU, emulation not counted.
def test_auto_dtype_on_a_gpu_that_only_emulates_bf16_is_fp16_and_asks_that_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    asked = []

    def native(device):
        asked.append(device)
        return device.index != 1  # cuda:1 is a V100, say

    assert resolve_device("cuda:1", "auto", cuda_bf16=native) == (torch.device("cuda:1"), torch.float16)
    assert resolve_device("cuda:0", "auto", cuda_bf16=native) == (torch.device("cuda:0"), torch.bfloat16)
    assert asked == [torch.device("cuda:1"), torch.device("cuda:0")]
    assert resolve_device("cuda:1", "bfloat16", cuda_bf16=native)[1] == torch.bfloat16  # an explicit dtype stays


def test_the_bf16_probe_runs_on_the_given_gpu_without_counting_emulation(monkeypatch):
    current, calls = ["cuda:0"], []

    @contextlib.contextmanager
    def on(device):
        before, current[0] = current[0], str(device)
        yield
        current[0] = before

    def supported(including_emulation=True):
        calls.append((current[0], including_emulation))
        return False

    monkeypatch.setattr(torch.cuda, "device", on)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert devices.cuda_has_native_bf16(torch.device("cuda:3")) is False
    assert calls == [("cuda:3", False)]


# 3. torchrun: the ranks of a node share its RAM and disk.
@pytest.mark.parametrize("ranks", [1, 4])
def test_each_rank_plans_with_its_share_of_the_nodes_ram_and_disk(monkeypatch, ranks):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(ranks))
    monkeypatch.setattr(devices, "available_ram_bytes", lambda: 40 * GIB)
    monkeypatch.setattr(devices, "free_disk_bytes", lambda: 40 * GIB)
    free = free_space(torch.device("cpu"))
    assert (free.ram, free.disk, free.shares) == (40 * GIB // ranks, 40 * GIB // ranks, ranks)
    config = llama.LlamaConfig.from_dict(llama.PRESETS["meta-llama/Llama-3.2-1B"])
    tokens = 15 * GIB // (2 * config.hidden_size)  # a 15 GiB bf16 cache: fits 0.7 x 40 GiB of RAM, not a quarter
    plan = plan_cache([tokens], [], config, free)
    assert plan.place == ("ram" if ranks == 1 else "stream")  # 1/4 of the disk, 10 GiB less its margin: too small
    assert ("this rank's 1/4 of the node's" in plan.render()) == (ranks == 4)


def test_without_torchrun_the_node_is_the_ranks_own(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert devices.local_ranks() == 1


# 1. Choosing the readout: the plan counts every candidate's tables, and step 4 frees all but the chosen.
def test_the_plan_places_the_larger_of_the_readout_choice_and_the_final_cache():
    config = llama.LlamaConfig.from_dict(llama.PRESETS["meta-llama/Llama-3.2-1B"])
    per_gib = GIB // (2 * config.hidden_size)  # tokens per GiB of bf16 states
    free = FreeSpace(accelerator=40 * GIB, ram=0, disk=0, disk_path="/tmp")  # 36 GiB usable after the 4 GiB margin
    final = plan_cache([30 * per_gib], [], config, free)
    assert final.place == "accelerator" and final.selection_bytes == 0
    choosing = plan_cache([30 * per_gib], [], config, free, selection=([3 * per_gib] * 3, 4))  # 4 x 9 GiB
    assert choosing.selection_bytes == 36 * GIB and choosing.peak_bytes == 36 * GIB
    assert choosing.place == "accelerator"
    larger = plan_cache([30 * per_gib], [], config, free, selection=([3 * per_gib] * 4, 4))  # 48 GiB
    assert larger.place == "stream" and "choosing the readout holds 48.0 GiB" in larger.render()
    pooled = plan_cache([1] * 1000, [1] * 10, config, free, per_token=False, selection=([1] * 100, 12))
    assert pooled.selection_bytes == 100 * 12 * config.hidden_size * 4  # one float32 vector per sentence, readout


SQUAD_AUTO = ["--task", "squad", "--squad-version", "2.0", "--data", "sample", "--epochs", "2", "--limit", "24",
              "--eval-limit", "8", "--batch-size", "8", "--max-length", "192", "--doc-stride", "64", "--block", "1,2",
              "--select-limit", "10", "--zero-shot", "none", "--cache", "memory",
              "--cache-dir", "none"]  # (a store would add its own disk tables; this test counts those in memory)


def test_step_4_keeps_only_the_chosen_readouts_states(tiny, tmp_path, monkeypatch, capsys):
    made: list[tuple[str, weakref.ref]] = []  # (the frozen pass that made it, the table)
    alive_at: dict[str, int] = {}
    stage = ["-"]
    init, configured = TokenStateTable.__init__, train_script.configured_task

    def tracked_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append((stage[0], weakref.ref(self)))

    def probed(args):
        """The run's task, its frozen pass counting the step-4 tables still alive each time it starts."""
        task = configured(args)
        base = type(task)

        def frozen_pass(self, model, prepared, candidates, place, desc, store=None):
            gc.collect()
            alive_at[desc] = sum(ref() is not None for label, ref in made if label in ("selection", "val"))
            stage[0] = desc.split()[0]
            return base.frozen_pass(self, model, prepared, candidates, place, desc, store)

        spy = type("Probed", (base,), {"frozen_pass": frozen_pass})
        return spy(**{f.name: getattr(task, f.name) for f in dataclasses.fields(task)})

    monkeypatch.setattr(TokenStateTable, "__init__", tracked_init)
    monkeypatch.setattr(train_script, "configured_task", probed)
    train_script.main([*SQUAD_AUTO, "--model", str(tiny), "--output", str(tmp_path / "run")])
    blocks = 2  # --block 1,2
    assert sum(label in ("selection", "val") for label, _ in made) == 2 * blocks  # every candidate, twice
    # after the choice, the chosen block's table of the selection subset (step 7 trains on it with the rest's) and
    # of the validation slice: the other candidates' are gone
    assert alive_at == {"selection states": 0, "val states": blocks, "train states": 2, "test states": 2}
    assert "choosing the readout holds" in capsys.readouterr().out


# 5. Host syncs: none per training step; a GPU table builds its batch where it lives.
class Ops(TorchDispatchMode):
    """Every aten op run inside the block, with the devices of what it returned."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple[str, list[str]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        outs = out if isinstance(out, (tuple, list)) else [out]
        self.ops.append((str(func), [o.device.type for o in outs if isinstance(o, torch.Tensor)]))
        return out


def test_an_accelerator_table_builds_its_batch_on_the_device_from_the_indices_alone():
    # `meta` stands in for the GPU: reading one of its values back to the host would raise.
    table = TokenStateTable([3, 5, 2, 4], 8, place="accelerator", device="meta")
    with Ops() as seen:
        hidden, mask = table.batch([2, 0, 1])
    assert hidden.shape == (3, 5, 8) and mask.shape == (3, 5) and {hidden.device.type, mask.device.type} == {"meta"}
    on_host = [op for op, outs in seen.ops if "cpu" in outs]
    assert on_host == ["aten.lift_fresh.default"]  # the list of indices, and nothing else, is made on the host
    assert cache.device_index([4, 1], torch.device("cpu")).tolist() == [4, 1]


class Items:
    """Ten items with a quadratic loss per item, for the loop alone."""

    def __init__(self) -> None:
        self.x = torch.linspace(-1, 1, 40).view(10, 4)

    def __len__(self) -> int:
        return 10


def quadratic_loss(model, states, indices):
    return ((model.head(states.x[indices]) - 1) ** 2).mean()


class Head(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(4, 1)

    def head_state_dict(self):
        return {k: v.detach().clone() for k, v in self.head.state_dict().items()}

    def load_head_state_dict(self, state):
        self.head.load_state_dict(state)


class LossReads(TorchDispatchMode):
    """Counts the reads of a loss's value back to the host (`.item()`, `float()`): a GPU sync each.

    Only the losses' own memory counts: the CPU optimizer reads its step counter, which lives on
    the host on a GPU run too."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: set[int] = set()
        self.count = 0

    def loss(self, model, states, indices):
        value = quadratic_loss(model, states, indices)
        self.losses.add(value.untyped_storage().data_ptr())
        return value

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += args[0].untyped_storage().data_ptr() in self.losses
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("validation", [False, True])
def test_training_reads_no_value_back_per_step(monkeypatch, validation):
    reads = LossReads()
    task = with_batch_loss(TASKS["squad"], reads.loss)
    settings = loop.TrainSettings(epochs=3, lr=0.1, batch_size=2, seed=0, schedule="constant", average=True)
    sums = []
    monkeypatch.setattr(distributed, "sum_scalar", lambda value: sums.append(value) or value)
    torch.manual_seed(0)
    model = Head()
    with reads:
        history = loop.train_head(model, task, Items(), settings, val_states=Items() if validation else None,
                                  quiet=True)
    assert [len(row["step_losses"]) for row in history] == [5, 5, 5]
    assert reads.losses and reads.count == 0  # read back once per epoch (one tolist), never one by one
    assert len(sums) == (3 if validation else 0)  # one sum over ranks per validation, none per step
    # the values are those of the steps: replaying epoch 1 by hand gives the same losses, bit for bit
    torch.manual_seed(0)
    replay = Head()
    optimizer = torch.optim.AdamW(replay.head.parameters(), lr=0.1, weight_decay=0.0)
    expected = []
    for batch in loop.epoch_batches(10, 2, 0, 0):
        loss = quadratic_loss(replay, Items(), batch)
        expected.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(replay.head.parameters()), 1.0)
        optimizer.step()
    assert history[0]["step_losses"] == expected

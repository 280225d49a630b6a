"""The state stores: RAM, disk and streamed states give the head the same batches."""

from __future__ import annotations

import os
from collections import namedtuple

import pytest
import torch

from data.batching import padded_batches, token_budget_batches
from errors import UserError
from heads import cache
from heads.cache import MergedTable, StreamedStates, TokenStateTable
from llama import LlamaConfig, LlamaModel

PAD_ID = 0


def random_sequences(n: int, vocab: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 24, (n,), generator=generator).tolist()
    return [torch.randint(1, vocab, (t,), generator=generator).tolist() for t in lengths]


def filled_table(sequences: list[list[int]], frozen_pass, place: str, batch_tokens: int = 64) -> TokenStateTable:
    """What a task's `extract` does: length-sorted budget batches through the frozen pass, rows into the table."""
    lengths = [len(s) for s in sequences]
    table = TokenStateTable(lengths, frozen_pass.dim, place=place)
    for batch, input_ids, mask in padded_batches(sequences, token_budget_batches(lengths, batch_tokens), PAD_ID,
                                                 "cpu", "states"):
        table.write_batch(batch, frozen_pass(input_ids, mask))
    return table


class EmbeddingPass:
    """A frozen pass whose output per token depends only on the token: random data with no model."""

    def __init__(self, vocab: int, dim: int) -> None:
        self.dim = dim
        self.weight = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(1)) * 30

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.weight[input_ids] * attention_mask[..., None]


class TinyLlamaPass:
    """A random 2-layer LlamaModel (llama3 RoPE, GQA): real attention, where padding could leak."""

    def __init__(self, dtype: torch.dtype = torch.float32) -> None:
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, rope_theta=10000.0,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16})
        self.model = LlamaModel(config).eval().to(dtype)
        self.dim = config.hidden_size
        # The streamed/cached gap: states of O(1) that round once to bf16 (fp32 base) differ by at
        # most one bf16 step; a bf16 base rounds after every op, so a summation-order change can grow
        # through the layers to a few steps.
        self.tolerance = {"rtol": 2**-7, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 2**-6, "atol": 2**-5}

    @torch.inference_mode()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids, attention_mask)


PASSES = pytest.mark.parametrize("make_pass", [lambda: EmbeddingPass(97, 8), TinyLlamaPass,
                                              lambda: TinyLlamaPass(torch.bfloat16)],
                                 ids=["random", "tiny_llama", "tiny_llama_bf16"])


def some_batches(n: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=generator)[:size].tolist() for size in (1, 3, 8, n)]


def assert_right_padded(hidden: torch.Tensor, mask: torch.Tensor, lengths: list[int], dim: int) -> None:
    T = max(lengths)
    assert hidden.dtype == torch.float32 and hidden.shape == (len(lengths), T, dim)
    assert mask.tolist() == [[1] * n + [0] * (T - n) for n in lengths]
    assert not hidden[~mask.bool()].any()


@PASSES
def test_ram_and_disk_tables_give_identical_batches(make_pass):
    frozen_pass = make_pass()
    sequences = random_sequences(40, 97, seed=3)
    ram, disk = (filled_table(sequences, frozen_pass, place) for place in ("ram", "disk"))
    assert disk.on_disk and not ram.on_disk
    for indices in some_batches(40, seed=5):
        (hidden, mask), (disk_hidden, disk_mask) = ram.batch(indices), disk.batch(indices)
        assert_right_padded(hidden, mask, [len(sequences[i]) for i in indices], frozen_pass.dim)
        assert torch.equal(disk_hidden, hidden) and torch.equal(disk_mask, mask)


@pytest.mark.parametrize("places", [("ram", "ram"), ("disk", "ram")])
def test_a_merged_table_gives_the_batches_of_one_table_in_that_order(places):
    """Two tables (one may be on disk), read as one in an interleaved order, equal a table holding every
    sequence in that order, bit for bit."""
    frozen_pass = EmbeddingPass(97, 8)
    sequences = random_sequences(40, 97, seed=3)
    in_first = (torch.rand(40, generator=torch.Generator().manual_seed(2)) < 0.4).tolist()
    first = filled_table([s for s, f in zip(sequences, in_first) if f], frozen_pass, places[0])
    second = filled_table([s for s, f in zip(sequences, in_first) if not f], frozen_pass, places[1])
    counts, where = [0, 0], []
    for f in in_first:
        part = 0 if f else 1
        where.append((part, counts[part]))
        counts[part] += 1
    merged, whole = MergedTable([first, second], where), filled_table(sequences, frozen_pass, "ram")
    assert merged.lengths == whole.lengths and len(merged) == 40
    for indices in some_batches(40, seed=5):
        (hidden, mask), (merged_hidden, merged_mask) = whole.batch(indices), merged.batch(indices)
        assert torch.equal(merged_hidden, hidden) and torch.equal(merged_mask, mask)


@PASSES
def test_streaming_the_batches_the_cache_was_filled_with_gives_the_cached_states(make_pass):
    frozen_pass = make_pass()
    sequences = random_sequences(40, 97, seed=3)
    table, stream = filled_table(sequences, frozen_pass, "disk"), StreamedStates(sequences, PAD_ID, frozen_pass)
    for indices in token_budget_batches([len(s) for s in sequences], 64):
        (hidden, mask), (streamed, streamed_mask) = table.batch(indices), stream.batch(indices)
        assert torch.equal(streamed, hidden) and torch.equal(streamed_mask, mask)


@PASSES
def test_streamed_batches_of_any_make_up_equal_the_cache_to_bf16_rounding(make_pass):
    """Other batch shapes change the frozen pass's float summation order (matmul kernels pick their
    blocking by shape; a 1-row matmul is a different kernel), so a value may round to the next bf16
    number; a pass without reductions (the embedding) stays bit-identical."""
    frozen_pass = make_pass()
    sequences = random_sequences(40, 97, seed=3)
    table, stream = filled_table(sequences, frozen_pass, "ram"), StreamedStates(sequences, PAD_ID, frozen_pass)
    for indices in some_batches(40, seed=5):
        (hidden, mask), (streamed, streamed_mask) = table.batch(indices), stream.batch(indices)
        assert_right_padded(streamed, streamed_mask, [len(sequences[i]) for i in indices], frozen_pass.dim)
        assert torch.equal(streamed_mask, mask)
        if isinstance(frozen_pass, EmbeddingPass):
            assert torch.equal(streamed, hidden)
        else:
            torch.testing.assert_close(streamed, hidden, **frozen_pass.tolerance)


def test_rows_round_trip_through_bf16_in_every_place():
    lengths = [3, 1, 5, 2]
    rows = [torch.randn(n, 4) for n in lengths]
    for place in ("ram", "disk"):
        table = TokenStateTable(lengths, 4, place=place)
        for i, row in enumerate(rows):
            table.write(i, row)
        for i, row in enumerate(rows):
            assert torch.equal(table.read(i), row.to(torch.bfloat16))
        hidden, mask = table.batch([2, 1])
        assert torch.equal(hidden[0], rows[2].to(torch.bfloat16).float())
        assert torch.equal(hidden[1, :1], rows[1].to(torch.bfloat16).float()) and not hidden[1, 1:].any()


def test_an_accelerator_table_needs_an_accelerator():
    with pytest.raises(ValueError, match="accelerator"):
        TokenStateTable([3], 4, place="accelerator", device="cpu")


def test_a_disk_without_room_is_one_line_before_anything_is_written(monkeypatch, tmp_path):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(cache.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(cache.shutil, "disk_usage", lambda path: Usage(10, 10, 1599))
    with pytest.raises(UserError, match="TMPDIR") as err:
        TokenStateTable([100], 8, place="disk")  # 100 rows x 8 x 2 bytes = 1600
    assert "\n" not in str(err.value) and "1599" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_reservation_is_one_line_and_leaves_no_file(monkeypatch, tmp_path):
    def full_disk(fd, offset, length):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(cache.os, "posix_fallocate", full_disk)
    with pytest.raises(UserError, match="No space left on device"):
        TokenStateTable([100], 8, place="disk")
    assert list(tmp_path.iterdir()) == []


def test_the_disk_table_reserves_its_blocks_up_front_and_leaves_no_file(monkeypatch, tmp_path):
    reserved, real_fallocate = [], os.posix_fallocate

    def fallocate(fd, offset, length):
        real_fallocate(fd, offset, length)
        reserved.append(os.fstat(fd).st_blocks * 512)

    monkeypatch.setattr(cache.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(cache.os, "posix_fallocate", fallocate)
    table = TokenStateTable([1000], 64, place="disk")
    assert reserved and reserved[0] >= 1000 * 64 * 2
    assert list(tmp_path.iterdir()) == []  # unlinked once mapped: a killed run leaves nothing
    table.write(0, torch.ones(1000, 64))
    assert torch.equal(table.read(0), torch.ones(1000, 64, dtype=torch.bfloat16))


def test_streamed_states_from_inference_mode_can_train_a_head():
    frozen_pass = TinyLlamaPass()  # runs under torch.inference_mode(), as the heads' `states` do
    store = StreamedStates(random_sequences(4, 97, seed=4), PAD_ID, frozen_pass)
    hidden, mask = store.batch([0, 1, 2, 3])
    head = torch.nn.Linear(frozen_pass.dim, 2)
    (head(hidden) * mask[..., None]).sum().backward()  # "Inference tensors cannot be saved for backward" if not
    assert head.weight.grad is not None

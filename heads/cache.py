"""Where the frozen base's per-token hidden states live while the head trains on them.

QA needs every token's hidden state of every window: rows of varying length T_i, stored end
to end in one (sum T_i, C) bfloat16 table. bfloat16 halves the footprint and keeps float32's
range, so large activations cannot overflow as they could in fp16. The table lives in one of
three places (`PLACES`):

- "accelerator": a tensor in GPU memory; `batch` gathers there, with no host copy;
- "ram": a tensor in host memory; a batch is gathered in bf16, then moved to the head's device;
- "disk": a memmap whose blocks are reserved when it is made, so a full disk is an error before
  anything is written, never a SIGBUS in the middle of a run: an entry of the persistent store
  (heads/store.py), or without one a file under $TMPDIR unlinked as soon as it is mapped, so a
  killed run leaves nothing behind.

`StreamedStates` has the same `batch(indices)` but stores nothing: it reruns the frozen pass
over the requested sequences each call, rounding through bf16 as the table does, for data too
large for any of the three places. Asked for the batches the cache was filled with, it returns the
cached numbers bit for bit. Other batches have other shapes, and matmul and attention kernels
pick their blocking (so their summation order) by shape: states then agree to bf16 rounding
(one bf16 step with an fp32 base, a few with a bf16 base), not bit for bit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable

import numpy as np
import torch

from data.batching import pad_right
from errors import UserError

PLACES = ("accelerator", "ram", "disk")
FrozenPass = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (B, T) ids, mask -> (B, T, C)


def size_text(size: int) -> str:
    """Bytes in the largest unit that keeps a non-zero figure: '512 B', '3.0 KiB', '1.2 GiB'."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def table_bytes(lengths: list[int], dim: int) -> int:
    """Bytes of a bf16 table holding one C-vector per token."""
    return sum(lengths) * dim * 2


class TokenStateTable:
    """Per-token hidden states of many sequences in one flat (rows, C) bf16 table.

    `place` is one of `PLACES` (training.plan chooses it). `device` is where the head trains:
    `batch` returns its tensors there, and an "accelerator" table lives there. `bits`: a (rows, C)
    uint16 memmap to use as the "disk" table (a store entry) instead of a temporary file.
    """

    def __init__(self, lengths: list[int], dim: int, *, place: str = "ram", device: torch.device | str = "cpu",
                 bits: np.memmap | None = None) -> None:
        self.lengths = lengths
        self.device = torch.device(device)
        self.starts = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), dtype=torch.long)  # (N + 1,) host
        rows, size = int(self.starts[-1]), table_bytes(lengths, dim)
        if place not in PLACES:
            raise ValueError(f"place must be one of {PLACES}, not {place!r}")
        if place == "accelerator" and self.device.type == "cpu":
            raise ValueError("an 'accelerator' table needs an accelerator device, not cpu")
        self.place = place
        if bits is not None and (place != "disk" or bits.shape != (rows, dim)):
            raise ValueError(f"a table on given bits is a 'disk' table of shape {(rows, dim)}")
        if place == "disk":  # bf16 bits in a uint16 memmap, viewed back as bf16 when read
            self._bits = bits if bits is not None else temp_memmap(size, (rows, dim))
        else:
            self._table = torch.empty(rows, dim, dtype=torch.bfloat16,
                                      device=self.device if place == "accelerator" else "cpu")
        # where `batch` computes row numbers: beside the rows it gathers, so nothing is built on the host and copied
        self._starts_there = self.starts.to(self._table.device) if place == "accelerator" else self.starts

    def moved_to(self, place: str) -> "TokenStateTable":
        """This table's rows in another place: a copy in RAM or accelerator memory; itself for "disk"."""
        if place == "disk" or place == self.place:
            return self
        table = TokenStateTable(self.lengths, self._width(), place=place, device=self.device)
        source = torch.from_numpy(np.asarray(self._bits).view(np.int16)).view(torch.bfloat16) if self.on_disk \
            else self._table
        table._table.copy_(source)
        return table

    def _width(self) -> int:
        return (self._bits if self.on_disk else self._table).shape[1]

    @property
    def on_disk(self) -> bool:
        return self.place == "disk"

    def __len__(self) -> int:
        return len(self.lengths)

    def write(self, index: int, hidden: torch.Tensor) -> None:
        """Store sequence `index`'s (T_i, C) hidden states (from any device)."""
        start, end = int(self.starts[index]), int(self.starts[index + 1])
        if self.on_disk:
            values = hidden.to("cpu", torch.bfloat16)
            self._bits[start:end] = values.view(torch.int16).numpy().view(np.uint16)
        else:
            self._table[start:end] = hidden.to(self._table.device, torch.bfloat16)

    def write_batch(self, indices: list[int], hidden: torch.Tensor) -> None:
        """Store a right-padded (B, T, C) batch of the frozen pass, row b being sequence `indices[b]`.

        The batch is cast to bf16 where it was computed and then moved once to where the table
        lives (a GPU batch bound for RAM or disk crosses the bus once, at half the bytes).
        """
        hidden = hidden.to(torch.bfloat16).to(self._table.device if self.place != "disk" else "cpu")
        for row, index in enumerate(indices):
            self.write(index, hidden[row, :self.lengths[index]])

    def read(self, index: int) -> torch.Tensor:
        """Sequence `index`'s (T_i, C) bf16 rows, where the table lives."""
        start, end = int(self.starts[index]), int(self.starts[index + 1])
        if self.on_disk:
            return torch.from_numpy(np.asarray(self._bits[start:end]).view(np.int16)).view(torch.bfloat16)
        return self._table[start:end]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded float32 hidden states (B, T, C) and their (B, T) mask, on `device`.

        One gather of B x T row numbers; padding positions read row `start` and are zeroed. The row
        numbers and the mask are computed where the table lives (for an accelerator table, on the GPU:
        only the B indices cross the bus, queued without waiting), and T comes from the host's lengths,
        so no GPU value is read back.
        """
        T = max(self.lengths[i] for i in indices)
        index = device_index(indices, self._starts_there.device)  # (B,)
        starts = self._starts_there[index]
        lengths = self._starts_there[index + 1] - starts
        offsets = torch.arange(T, device=starts.device)
        mask = offsets[None, :] < lengths[:, None]  # (B, T)
        rows = starts[:, None] + torch.where(mask, offsets[None, :], 0)  # (B, T) row numbers
        if self.on_disk:
            bits = self._bits[rows.flatten().numpy()]  # (B*T, C) uint16, read from the memmap
            gathered = torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16).view(*rows.shape, -1)
        else:
            gathered = self._table[rows]  # (B, T, C) bf16
        mask = mask.to(self.device, non_blocking=True)
        hidden = gathered.to(self.device, non_blocking=True).float().masked_fill(~mask[..., None], 0.0)
        return hidden, mask.long()


class MergedTable:
    """The sequences of several tables as one table, in a given order, without copying a row (a disk table stays
    where it is): sequence i is sequence `where[i][1]` of `tables[where[i][0]]`.

    Training on a readout chosen on a subset of the examples reads the subset's states (computed while
    choosing) and the rest's (computed after) as one table in the examples' order. `batch` gathers each
    table's share of a batch and pads them to one width: the same tensors one table holding every
    sequence in this order would return.
    """

    def __init__(self, tables: list, where: list[tuple[int, int]]) -> None:
        self.tables, self.where = tables, where
        self.lengths = [tables[t].lengths[i] for t, i in where]
        self.device = tables[0].device
        self.place = tables[0].place

    def __len__(self) -> int:
        return len(self.where)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded float32 hidden states (B, T, C) and their (B, T) mask, on `device`."""
        T = max(self.lengths[i] for i in indices)
        hidden = mask = None
        for t, table in enumerate(self.tables):
            rows = [b for b, i in enumerate(indices) if self.where[i][0] == t]  # this table's rows of the batch
            if not rows:
                continue
            part_hidden, part_mask = table.batch([self.where[indices[b]][1] for b in rows])
            if hidden is None:
                hidden = part_hidden.new_zeros(len(indices), T, part_hidden.shape[-1])
                mask = part_mask.new_zeros(len(indices), T)
            at = device_index(rows, hidden.device)
            hidden[at, :part_hidden.shape[1]] = part_hidden
            mask[at, :part_mask.shape[1]] = part_mask
        return hidden, mask


class StreamedStates:
    """The `TokenStateTable.batch` interface with no table: each call reruns the frozen pass.

    `frozen_pass` maps right-padded (B, T) ids and mask, on `input_device`, to (B, T, C) hidden
    states. Outputs are rounded through bf16 and zeroed at padding, exactly as the table stores
    and returns them (see the module docstring for when the numbers match bit for bit).
    """

    def __init__(self, sequences: list[list[int]], pad_id: int, frozen_pass: FrozenPass, *,
                 input_device: torch.device | str = "cpu", device: torch.device | str = "cpu",
                 positions: list[list[int]] | None = None) -> None:
        self.sequences = sequences
        self.positions = positions  # per sequence, the positions kept (as a table would store them); None: all
        self.lengths = [len(p) for p in positions] if positions is not None else [len(s) for s in sequences]
        self.pad_id = pad_id
        self.frozen_pass = frozen_pass
        self.input_device = torch.device(input_device)
        self.device = torch.device(device)
        self.place = "stream"

    def __len__(self) -> int:
        return len(self.sequences)

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded (B, T, C) float32 hidden states and their (B, T) mask, on `device`."""
        input_ids, attention_mask = pad_right([self.sequences[i] for i in indices], self.pad_id)
        with torch.no_grad():
            hidden = self.frozen_pass(input_ids.to(self.input_device), attention_mask.to(self.input_device))
        if self.positions is not None:
            kept = [self.positions[i] for i in indices]
            hidden = keep_positions(hidden, kept)
            attention_mask = (torch.arange(hidden.shape[1])[None, :] < torch.tensor([len(k) for k in kept])[:, None])
            attention_mask = attention_mask.long()
        mask = attention_mask.to(self.device)
        hidden = hidden.to(self.device, torch.bfloat16).float().masked_fill(~mask.bool()[..., None], 0.0)
        return hidden, mask


def device_index(indices: list[int], device: torch.device) -> torch.Tensor:
    """`indices` as a (B,) int64 tensor on `device`. The host-to-GPU copy is queued (non_blocking): a plain
    copy, or indexing a GPU tensor with a list, would first wait for every GPU kernel queued before it."""
    return torch.tensor(indices, dtype=torch.long).to(device, non_blocking=True)


def keep_positions(hidden: torch.Tensor, positions: list[list[int]]) -> torch.Tensor:
    """(B, T, C) -> (B, K, C): row b's states at `positions[b]`, right-padded (with position 0's) to the longest."""
    K = max(len(p) for p in positions)
    index = torch.tensor([p + [0] * (K - len(p)) for p in positions], device=hidden.device)  # (B, K)
    return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))


def temp_memmap(size: int, shape: tuple[int, int]) -> np.memmap:
    """A (rows, C) uint16 memmap of `size` bytes under $TMPDIR with its blocks allocated now, or one UserError line.

    A memmap over a sparse file allocates blocks as pages are first written; when the disk
    fills mid-run the kernel answers with SIGBUS and the process dies without a message.
    Checking the free space first and then reserving every block turns that into an error
    raised before any state is computed. The file is unlinked as soon as it is mapped: the
    mapping keeps its blocks until the process ends, however it ends, and nothing is left behind.
    """
    directory = tempfile.gettempdir()
    free = shutil.disk_usage(directory).free
    hint = "set TMPDIR to a larger disk, choose another --cache place, or use --limit"
    if size > free:
        raise UserError(f"the cached states need {size_text(size)} but {directory} has "
                        f"{size_text(free)} free: {hint}")
    fd, path = tempfile.mkstemp(prefix="states-", suffix=".bin")
    try:
        if size:
            os.posix_fallocate(fd, 0, size)
            return np.memmap(path, dtype=np.uint16, mode="r+", shape=shape)
        return np.zeros(shape, dtype=np.uint16)  # np.memmap cannot map an empty file
    except OSError as err:
        raise UserError(f"cannot reserve {size_text(size)} for the cached states in {directory} "
                        f"({err.strerror}): {hint}") from None
    finally:
        os.unlink(path)
        os.close(fd)

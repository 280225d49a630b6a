"""The per-token cache of the frozen base's hidden states, so later epochs only run the head.

QA needs every token's hidden state of every window: rows of varying length T_i, stored end to end in one (sum T_i, C) bfloat16 table, in memory while it fits
`budget_bytes`, else in a disk-backed memmap under $TMPDIR. bfloat16 halves the footprint and
keeps float32's range, so large activations cannot overflow as they could in fp16.
"""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
import torch

from errors import UserError


class TokenFeatureTable:
    """Per-token hidden states of many sequences in one flat (rows, C) bf16 table."""

    def __init__(self, lengths: list[int], dim: int, budget_bytes: int) -> None:
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        rows = int(self.starts[-1])
        size = rows * dim * 2
        self.on_disk = size > budget_bytes
        if self.on_disk:  # bf16 bits in a uint16 memmap, viewed back as bf16 when read
            free = shutil.disk_usage(tempfile.gettempdir()).free
            if size > free:
                raise UserError(f"the cached features need {size / 2**30:.1f} GiB but {tempfile.gettempdir()} "
                                f"has {free / 2**30:.1f} GiB free: set TMPDIR to a larger disk, raise "
                                "--feature-budget-gb, or use --limit")
            self._file = tempfile.NamedTemporaryFile(prefix="features-", suffix=".bin")
            self._bits = np.memmap(self._file.name, dtype=np.uint16, mode="w+", shape=(rows, dim))
        else:
            self._table = torch.empty(rows, dim, dtype=torch.bfloat16)

    def write(self, index: int, hidden: torch.Tensor) -> None:
        """Store sequence `index`'s (T_i, C) hidden states."""
        start, end = self.starts[index], self.starts[index + 1]
        values = hidden.to("cpu", torch.bfloat16)
        if self.on_disk:
            self._bits[start:end] = values.view(torch.int16).numpy().view(np.uint16)
        else:
            self._table[start:end] = values

    def read(self, index: int) -> torch.Tensor:
        start, end = self.starts[index], self.starts[index + 1]
        if self.on_disk:
            return torch.from_numpy(np.asarray(self._bits[start:end]).view(np.int16)).view(torch.bfloat16)
        return self._table[start:end]

    def batch(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded (B, T, C) float32 hidden states and their (B, T) mask."""
        rows = [self.read(i) for i in indices]
        T = max(len(r) for r in rows)
        hidden = torch.zeros(len(rows), T, rows[0].shape[1])
        mask = torch.zeros(len(rows), T, dtype=torch.long)
        for b, r in enumerate(rows):
            hidden[b, :len(r)] = r.float()
            mask[b, :len(r)] = 1
        return hidden, mask

"""Pre-allocated keys and values for incremental decoding."""

from __future__ import annotations

import torch

from .config import LlamaConfig


class KVCache:
    """Keys/values of every layer, (layers, B, K, max_len, D), filled left to right.

    Each layer writes its new keys at `length` with `update`; the model calls
    `advance` once all layers have seen the step.
    """

    def __init__(self, config: LlamaConfig, batch_size: int, max_len: int,
                 dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> None:
        shape = (config.num_hidden_layers, batch_size, config.num_key_value_heads, max_len, config.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.max_len = max_len
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, K, T, D) new keys/values; return all keys/values so far (B, K, S, D)."""
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache full: {end} tokens > max_len {self.max_len}")
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n

    def repeat_rows(self, n: int) -> "KVCache":
        """A new cache holding each batch row n times (row b -> rows b*n .. b*n + n-1), e.g. one prompt's
        keys and values for each of n continuations; filled up to the same length, same room after it."""
        copy = KVCache.__new__(KVCache)
        copy.k, copy.v = self.k.repeat_interleave(n, dim=1), self.v.repeat_interleave(n, dim=1)
        copy.max_len, copy.length = self.max_len, self.length
        return copy

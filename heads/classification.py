"""Sequence classification: a linear `score` on one pooled hidden state per sentence.

The default is what LlamaForSequenceClassification does: the last real token's state
after the last block. Two choices give the same one linear layer better states to read:
an earlier block (`blocks`; on SmolLM2-135M, blocks 15-20 of 30 beat the last), and the
mean over a token range (`pool="mean"`), such as the sentence's tokens, or those of its
second copy when the sentence is fed twice (see `data.sst2.encode_sentences`).
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from llama import LlamaConfig, LlamaModel

from .frozen import FrozenBackboneHead
from .readout import POOLS, ClassifierReadout
from .store import Entry, StateStore, chunked_pass, digest


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, C): the hidden state of each row's rightmost real token.

    Found from the mask, not by searching for a pad id, so it is right for left and
    right padding and for tokenizers whose pad id equals their EOS id.
    """
    T = attention_mask.shape[1]
    positions = torch.arange(T, device=attention_mask.device)
    last = (attention_mask.bool() * positions).argmax(dim=1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool_mean(hidden: torch.Tensor, attention_mask: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, C): the mean over each row's real tokens at positions >= start[b].

    With right padding that is the token range [start, length) of each sequence. The sum
    runs in float32 (a bf16 sum over tens of tokens would lose digits) and the result is
    cast back to the states' dtype. An empty range is refused: its mean does not exist.
    """
    T = attention_mask.shape[1]
    positions = torch.arange(T, device=attention_mask.device)
    inside = attention_mask.bool() & (positions >= start.to(positions.device)[:, None])  # (B, T)
    counts = inside.sum(dim=1)  # (B,)
    if not bool(counts.all()):
        rows = counts.eq(0).nonzero().flatten().tolist()
        raise ValueError(f"rows {rows} have no real token at or after their pooling start")
    weights = inside.float() / counts[:, None]  # (B, T), each row sums to 1
    return torch.einsum("bt,btc->bc", weights, hidden.float()).to(hidden.dtype)


def pooled_entries(store: StateStore | None, readouts: Sequence[ClassifierReadout], sequences: list[list[int]],
                   starts: list[int], dim: int) -> list[Entry | None]:
    """Each readout's (N, C) float32 pooled vectors of `sequences` in the store (None: no store, or not stored).

    Training's frozen pass and a loaded head (`heads.load`) both key them here, so predicting the texts
    of a run's test split finds what that run stored. Echo needs no field: it is in the sequences.
    """
    if store is None:
        return [None] * len(readouts)
    inputs, n = digest(sequences, starts), len(sequences)
    return [store.entry({"states": "pooled", "block": r.block, "pool": r.pool}, n, n, dim, np.float32, inputs)
            for r in readouts]


class SequenceClassifier(FrozenBackboneHead):
    """LlamaForSequenceClassification with a frozen base: `score` = Linear(C, labels, no bias)."""

    head_name = "score"

    def __init__(self, config: LlamaConfig, num_labels: int = 2, backbone: LlamaModel | None = None) -> None:
        super().__init__(config, backbone)
        self.score = nn.Linear(config.hidden_size, num_labels, bias=False)

    @torch.inference_mode()
    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               blocks: int | Sequence[int] | None = None, pool: str = "last",
               start: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) -> pooled frozen hidden states: what training caches, once per sentence.

        `blocks`: None, the last block -> (B, C); one block k (1..num_hidden_layers) -> (B, C);
        a list of L blocks -> (B, L, C), all from one pass that stops at the deepest.
        `pool`: "last", the rightmost real token; "mean", the mean over positions
        [start[b], length) of each right-padded row, `start` (B,) given by the caller
        (the sentence's first token after BOS, or of its second copy with echo).
        """
        one = blocks is None or isinstance(blocks, int)
        chosen = [self.config.num_hidden_layers if blocks is None else blocks] if one else list(blocks)
        pooled = self.pooled_states(input_ids, attention_mask, chosen, [pool], start)[:, 0]  # (B, L, C)
        return pooled[:, 0] if one else pooled

    @torch.inference_mode()
    def pooled_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, blocks: Sequence[int],
                      pools: Sequence[str], start: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) -> (B, P, L, C): each of the P poolings of each of the L blocks, from one pass."""
        for pool in pools:
            if pool not in POOLS:
                raise ValueError(f"pool {pool!r}: expected one of {', '.join(POOLS)}")
        if ("mean" in pools) != (start is not None):
            raise ValueError("pool 'mean' needs `start` (B,), the first pooled position of each row; "
                             "pool 'last' alone takes none")
        states = self.model.hidden_states(input_ids, attention_mask, blocks)  # L x (B, T, C)
        pool_one = {"last": lambda h: pool_last_token(h, attention_mask),
                    "mean": lambda h: pool_mean(h, attention_mask, start)}
        return torch.stack([torch.stack([pool_one[p](h) for h in states], dim=1) for p in pools], dim=1)

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, C) pooled states -> (B, num_labels) class logits, in the head's dtype."""
        return self.score(pooled.to(self.score.weight.dtype))

    def probabilities(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, C) pooled states (any device) -> (N, num_labels) class probabilities on the CPU."""
        with torch.no_grad():
            return self.logits(pooled.to(self.score.weight.device)).softmax(-1).cpu()

    def pooled_batches(self, sequences: list[list[int]], starts: list[int], batches: list[list[int]],
                       blocks: Sequence[int], pools: Sequence[str], pad_id: int, desc: str,
                       entries: Sequence[Entry | None] = ()) -> Iterator[tuple[list[int], torch.Tensor]]:
        """The frozen pass over `sequences` in `batches` (lists of indices): each batch with its (B, P, L, C)
        `pooled_states`. `starts[i]` is sequence i's first mean-pooled position (see `data.sst2.encode_sentences`).
        `entries`: the store's entries the caller writes them to (heads/store.py): batches they all hold are
        skipped, and each is committed after every chunk."""
        device = self.model.embed_tokens.weight.device
        for batch, input_ids, attention_mask in chunked_pass(sequences, batches, pad_id, device, desc, list(entries)):
            start = torch.tensor([starts[i] for i in batch], device=device) if "mean" in pools else None
            yield batch, self.pooled_states(input_ids, attention_mask, blocks, pools, start)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, num_labels) logits; the clone turns the inference tensor into a trainable input."""
        self.check_forward_reads_the_readout()
        return self.logits(self.states(input_ids, attention_mask).clone())

"""Extractive QA: per-token start/end logits from a Linear(C, 2) on the frozen hidden states.

The default is LlamaForQuestionAnswering's: every token's state after the last block. Two
options keep that one layer and give it better inputs: the state after an earlier block
(`states(block=k)`), and echoed windows, which live in the data (`data.qa_windows`).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from llama import LlamaConfig, LlamaModel

from .frozen import FrozenBackboneHead


def qa_loss(start_logits: torch.Tensor, end_logits: torch.Tensor, start_positions: torch.Tensor,
            end_positions: torch.Tensor) -> torch.Tensor:
    """Mean of the start and end cross-entropies; positions outside the window (< 0 or >= T) are ignored.

    Logits are (B, T) with padding already set to -inf; positions are (B,).
    """
    T = start_logits.shape[1]
    start_positions = torch.where((start_positions >= 0) & (start_positions < T), start_positions, -100)
    end_positions = torch.where((end_positions >= 0) & (end_positions < T), end_positions, -100)
    return (F.cross_entropy(start_logits, start_positions, ignore_index=-100)
            + F.cross_entropy(end_logits, end_positions, ignore_index=-100)) / 2


class QuestionAnswerer(FrozenBackboneHead):
    """LlamaForQuestionAnswering with a frozen base: `qa_outputs` = Linear(C, 2) with bias."""

    head_name = "qa_outputs"

    def __init__(self, config: LlamaConfig, backbone: LlamaModel | None = None) -> None:
        super().__init__(config, backbone)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)

    @torch.inference_mode()
    def states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               block: int | Sequence[int] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """(B, T) -> (B, T, C) frozen hidden states of every token: what training caches, once per window.

        `block`: the block k (1..num_hidden_layers) whose state to return, normed as the last
        block is; None, the last; a list of blocks -> a list of (B, T, C), from one pass.
        Blocks after the deepest asked for are not run.
        """
        if block is None:
            return self.model(input_ids, attention_mask)
        if isinstance(block, int):
            return self.model.hidden_states(input_ids, attention_mask, [block])[0]
        return self.model.hidden_states(input_ids, attention_mask, list(block))

    def span_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> start and end logits (B, T) each, -inf at padding."""
        logits = self.qa_outputs(hidden.to(self.qa_outputs.weight.dtype))  # (B, T, 2)
        real = attention_mask.bool()
        return logits[..., 0].masked_fill(~real, float("-inf")), logits[..., 1].masked_fill(~real, float("-inf"))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> start and end logits (B, T); the clone makes the inference tensor trainable input."""
        self.check_forward_reads_the_readout()
        return self.span_logits(self.states(input_ids, attention_mask).clone(), attention_mask)

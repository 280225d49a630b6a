"""Extractive QA: per-token start/end logits from a Linear(C, 2) on the frozen hidden states.

The default is LlamaForQuestionAnswering's: every token's state after the last block. Two
options keep that one layer and give it better inputs: the state after an earlier block
(`features(layer=k)`), and `lookahead` end logits read one token to the right
(`span_logits`). The third lives in the data: echoed windows (`data.qa_features`).
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
    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 layer: int | Sequence[int] | None = None) -> torch.Tensor | list[torch.Tensor]:
        """(B, T) -> (B, T, C) frozen hidden states of every token: what training caches, once per window.

        `layer`: the block k (1..num_hidden_layers) whose state to return, normed as the last
        block is; None, the last; a list of blocks -> a list of (B, T, C), from one pass.
        Blocks after the deepest asked for are not run.
        """
        if layer is None:
            return self.model(input_ids, attention_mask)
        if isinstance(layer, int):
            return self.model.hidden_states(input_ids, attention_mask, [layer])[0]
        return self.model.hidden_states(input_ids, attention_mask, list(layer))

    def span_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor,
                    lookahead: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> start and end logits (B, T) each, -inf at padding.

        `lookahead`: the end logit of token i is computed (same weight row, same bias) from
        the state of token i + 1. Under causal attention token i has not seen what follows
        it, so it cannot tell whether the answer stops there; token i + 1 has seen both.
        The last real token of a row has no successor and keeps its own state, so a span
        ending at a window's last token can still be predicted (and its label never meets
        -inf). The no-answer slot follows the same rule: its end logit reads token 1. Start
        logits are unchanged. Rows must be right- or left-padded (real tokens contiguous), as
        every batch here is.
        """
        logits = self.qa_outputs(hidden.to(self.qa_outputs.weight.dtype))  # (B, T, 2)
        start, end = logits[..., 0], logits[..., 1]  # (B, T) each
        real = attention_mask.bool()
        if lookahead:
            has_next = real & torch.cat([real[:, 1:], torch.zeros_like(real[:, :1])], dim=1)  # (B, T)
            end_of_next = torch.cat([end[:, 1:], end[:, -1:]], dim=1)  # (B, T): end logit of token i + 1
            end = torch.where(has_next, end_of_next, end)
        return start.masked_fill(~real, float("-inf")), end.masked_fill(~real, float("-inf"))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> start and end logits (B, T); the clone makes the inference tensor trainable input."""
        self.check_forward_reads_the_readout()
        return self.span_logits(self.features(input_ids, attention_mask).clone(), attention_mask)

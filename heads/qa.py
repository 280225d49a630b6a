"""Extractive QA: per-token start/end logits from a Linear(C, 2) on the frozen hidden states."""

from __future__ import annotations

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
    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, T, C) frozen hidden states of every token: what training caches, once per window."""
        return self.model(input_ids, attention_mask)

    def span_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) -> start and end logits (B, T) each, -inf at padding."""
        logits = self.qa_outputs(hidden.to(self.qa_outputs.weight.dtype))  # (B, T, 2)
        logits = logits.masked_fill(~attention_mask.bool()[..., None], float("-inf"))
        return logits[..., 0], logits[..., 1]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T) -> start and end logits (B, T); the clone makes the inference tensor trainable input."""
        return self.span_logits(self.features(input_ids, attention_mask).clone(), attention_mask)

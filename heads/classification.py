"""Sequence classification: a linear `score` on the last real token's hidden state."""

from __future__ import annotations

import torch
from torch import nn

from llama import LlamaConfig, LlamaModel

from .frozen import FrozenBackboneHead


def pool_last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, C): the hidden state of each row's rightmost real token.

    Found from the mask, not by searching for a pad id, so it is right for left and
    right padding and for tokenizers whose pad id equals their EOS id.
    """
    T = attention_mask.shape[1]
    positions = torch.arange(T, device=attention_mask.device)
    last = (attention_mask.bool() * positions).argmax(dim=1)  # (B,)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class SequenceClassifier(FrozenBackboneHead):
    """LlamaForSequenceClassification with a frozen base: `score` = Linear(C, labels, no bias)."""

    head_name = "score"

    def __init__(self, config: LlamaConfig, num_labels: int = 2, backbone: LlamaModel | None = None) -> None:
        super().__init__(config, backbone)
        self.score = nn.Linear(config.hidden_size, num_labels, bias=False)

    @torch.inference_mode()
    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, C) pooled frozen hidden states: what training caches, once per sentence."""
        return pool_last_token(self.model(input_ids, attention_mask), attention_mask)

    def logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, C) pooled features -> (B, num_labels) class logits, in the head's dtype."""
        return self.score(pooled.to(self.score.weight.dtype))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, num_labels) logits; the clone turns the inference tensor into a trainable input."""
        return self.logits(self.features(input_ids, attention_mask).clone())

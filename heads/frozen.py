"""The frozen-backbone base class shared by the task heads."""

from __future__ import annotations

import torch
from torch import nn

from llama import LlamaConfig, LlamaModel


class FrozenBackboneHead(nn.Module):
    """A `LlamaModel` that never trains, plus a head (defined by subclasses) that does.

    The backbone runs under `torch.inference_mode()` (no autograd bookkeeping); its
    outputs are cloned into ordinary tensors before a trainable head sees them.
    """

    head_name: str  # the attribute holding the trainable layer

    def __init__(self, config: LlamaConfig, backbone: LlamaModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.model = backbone if backbone is not None else LlamaModel(config)
        self.model.requires_grad_(False)

    @property
    def head(self) -> nn.Module:
        return getattr(self, self.head_name)

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trainable tensors, named as in the full model (`score.weight`, ...)."""
        return {f"{self.head_name}.{k}": v.detach().clone() for k, v in self.head.state_dict().items()}

    def load_head_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        prefix = f"{self.head_name}."
        self.head.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    @torch.inference_mode()
    def backbone_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T, C) hidden states of the frozen base."""
        return self.model(input_ids, attention_mask)

"""The frozen-backbone base class shared by the task heads, and the one parameter counter."""

from __future__ import annotations

import torch
from torch import nn

from errors import UserError
from llama import LlamaConfig, LlamaModel

from .head_file import transformers_class
from .readout import ClassifierReadout, SpanReadout

HEAD_INIT_STD = 0.02  # Hugging Face's initializer_range for Llama


class FrozenBackboneHead(nn.Module):
    """A `LlamaModel` that never trains (`model`), plus one small layer that does (`head`).

    Attribute names equal Hugging Face's (`model.layers.0...`, `score`, `qa_outputs`), so
    the full state dict matches LlamaForSequenceClassification / ForQuestionAnswering.
    Subclasses run the backbone under `torch.inference_mode()` in `states`: its outputs
    are inference tensors, which must be copied (outside inference mode) before the head
    trains on them; caching them does exactly that.

    `forward` reads what transformers' classes read (the last block, unechoed); a head trained
    on another readout refuses it, and so do tensors loaded without saying what they read.
    """

    head_name: str  # the attribute holding the trainable layer

    def __init__(self, config: LlamaConfig, backbone: LlamaModel | None = None) -> None:
        super().__init__()
        self.config = config
        self.model = backbone if backbone is not None else LlamaModel(config)
        self.model.requires_grad_(False)
        self.readout: ClassifierReadout | SpanReadout | None = None  # what the tensors were trained to read
        self.readout_known = True  # False after tensors were loaded without their readout

    @property
    def head(self) -> nn.Module:
        return getattr(self, self.head_name)

    def reset_head(self) -> None:
        """Hugging Face's init of the head (as nanoGPT's `_init_weights`): weights N(0, 0.02), biases 0.

        Draws on the CPU from torch's global generator, whatever the head's device: seed it first
        (train.py does) and the head starts the same on a laptop and on a GPU.
        """
        for name, param in self.head.named_parameters():
            value = torch.zeros(param.shape)
            if name == "weight":
                value.normal_(std=HEAD_INIT_STD)
            with torch.no_grad():
                param.copy_(value)

    def head_state_dict(self) -> dict[str, torch.Tensor]:
        """Only the trainable tensors, on the CPU, named as in the full model (`score.weight`, ...)."""
        return {f"{self.head_name}.{k}": v.detach().cpu().clone() for k, v in self.head.state_dict().items()}

    def load_head_state_dict(self, state: dict[str, torch.Tensor],
                             readout: ClassifierReadout | SpanReadout | None = None) -> None:
        """The inverse of `head_state_dict`; every key must belong to the head, and none may be missing.

        `readout`: what the tensors were trained to read. Without it `forward` refuses to run (training
        reloads its own tensors this way and never calls it).
        """
        prefix = f"{self.head_name}."
        foreign = sorted(k for k in state if not k.startswith(prefix))
        if foreign:
            raise KeyError(f"not tensors of the {self.head_name!r} head: {', '.join(foreign)}")
        self.head.load_state_dict({k.removeprefix(prefix): v for k, v in state.items()})
        self.readout, self.readout_known = readout, readout is not None

    def check_forward_reads_the_readout(self) -> None:
        """Refuse, in one line, a `forward` that would read another state than the head was trained on."""
        if not self.readout_known:
            raise UserError("these head tensors were loaded without their readout, and forward() reads the last "
                            "block's last state whatever they were trained on: use heads.load(run_dir), which "
                            "applies the head's own readout")
        if self.readout is not None and not transformers_class(self.readout, self.config.num_hidden_layers):
            raise UserError(f"this head reads {self.readout}, and forward() reads the last block of the plain "
                            "input: use heads.load(run_dir) (its classify / answer apply the readout)")


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total, trainable (requires_grad) and frozen parameters; a tied weight counts once."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}

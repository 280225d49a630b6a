"""Llama-3.x hyper-parameters, read from a Hub `config.json` or a built-in preset.

The presets hold the published `config.json` of the Llama-3.2 base models, so the
architecture (and its parameter count) can be built with no download.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .errors import LlamaError

SUPPORTED_ROPE_TYPES = ("default", "llama3")

# Fields the published Llama-3.2 config.json files share; the sizes differ per model.
_LLAMA_3_2 = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
    "intermediate_size": 8192, "num_key_value_heads": 8, "hidden_act": "silu", "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "max_position_embeddings": 131072, "tie_word_embeddings": True, "bos_token_id": 128000,
    "eos_token_id": 128001, "torch_dtype": "bfloat16",
}
PRESETS: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.2-1B": {**_LLAMA_3_2, "hidden_size": 2048, "num_hidden_layers": 16,
                                "num_attention_heads": 32, "head_dim": 64},
    "meta-llama/Llama-3.2-3B": {**_LLAMA_3_2, "hidden_size": 3072, "num_hidden_layers": 28,
                                "num_attention_heads": 24, "head_dim": 128},
}


@dataclasses.dataclass
class LlamaConfig:
    """The fields of a Hub `config.json` that shape a Llama-3.x network."""

    vocab_size: int = 128256
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_hidden_layers: int = 16
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int | None = None  # None: hidden_size // num_attention_heads
    rms_norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling: dict[str, Any] | None = None
    max_position_embeddings: int = 131072
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    mlp_bias: bool = False
    bos_token_id: int | None = None
    eos_token_id: int | list[int] | None = None
    pad_token_id: int | None = None
    torch_dtype: str | None = None

    def __post_init__(self) -> None:
        if self.head_dim is None:
            self.head_dim = self.hidden_size // self.num_attention_heads
        if self.num_attention_heads % self.num_key_value_heads:
            raise LlamaError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.rope_type not in SUPPORTED_ROPE_TYPES:
            raise LlamaError(
                f"unsupported rope_scaling type {self.rope_type!r}; "
                f"this model supports {', '.join(SUPPORTED_ROPE_TYPES)}"
            )

    @property
    def rope_type(self) -> str:
        scaling = self.rope_scaling or {}
        return scaling.get("rope_type", scaling.get("type", "default"))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "config") -> "LlamaConfig":
        """Check that `raw` describes a Llama and keep the fields this model uses."""
        model_type = raw.get("model_type")
        architectures = raw.get("architectures") or []
        if model_type != "llama" or any(not a.startswith("Llama") for a in architectures):
            raise LlamaError(
                f"{source} describes a {model_type or 'unknown'} model "
                f"({', '.join(architectures) or 'no architectures'}), not a Llama; "
                "pass a Llama-architecture checkpoint"
            )
        if raw.get("hidden_act", "silu") != "silu":
            raise LlamaError(f"{source}: unsupported hidden_act {raw['hidden_act']!r} (Llama uses silu)")
        if isinstance(raw.get("rope_parameters"), dict):  # transformers >= 5 nests the RoPE fields
            rope = dict(raw["rope_parameters"])
            raw = {**raw, "rope_theta": rope.pop("rope_theta", cls.rope_theta),
                   "rope_scaling": rope if rope.get("rope_type", "default") != "default" else None}
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def from_json_file(cls, path: str | Path) -> "LlamaConfig":
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise LlamaError(f"{path} not found: a checkpoint directory needs a config.json") from None
        except json.JSONDecodeError as err:
            raise LlamaError(f"{path} is not valid JSON ({err})") from None
        return cls.from_dict(raw, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        """A Hub-style `config.json` dict (what `from_dict` reads back)."""
        return {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
                **dataclasses.asdict(self)}


def preset_config(name: str) -> LlamaConfig | None:
    """The built-in config for a known Hub id, or None."""
    raw = PRESETS.get(name)
    return LlamaConfig.from_dict(raw, source=f"preset {name}") if raw else None

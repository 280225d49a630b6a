"""A hand-written Llama-3.x: RMSNorm, RoPE (llama3 scaling), GQA attention, SwiGLU.

Module names equal the Hub checkpoint keys (`model.layers.0.self_attn.q_proj.weight`),
so a safetensors file loads with no renaming table. Shapes in comments use
B = batch, T = new tokens, S = all keys (cached + new), H = query heads,
K = key/value heads, D = head_dim, C = hidden_size.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import LlamaConfig
from .errors import LlamaError
from .kv_cache import KVCache


class RMSNorm(nn.Module):
    """Scale by the root-mean-square, computed in float32 for stability under bf16."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_inv_freq(config: LlamaConfig) -> torch.Tensor:
    """Rotary frequencies (D/2,), with Llama-3's long-context rescaling when configured.

    llama3 scaling divides the low frequencies (wavelengths longer than the original
    context / low_freq_factor) by `factor`, keeps the high ones, and blends in between.
    """
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    if config.rope_type != "llama3":
        return inv_freq
    s = config.rope_scaling
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old_context = s["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > old_context / low, inv_freq / factor, inv_freq)
    smooth = (old_context / wavelen - low) / (high - low)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= old_context / high) & (wavelen <= old_context / low)
    return torch.where(is_medium, blended, scaled)


class RotaryEmbedding(nn.Module):
    """cos/sin tables for given positions, computed in float32 (B, T, D)."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("inv_freq", rope_inv_freq(config), persistent=False)

    def reset_parameters(self, device: torch.device | str) -> None:
        """Recompute the frequencies (not in checkpoints) on `device`, e.g. after building on `meta`."""
        self.inv_freq = rope_inv_freq(self.config).to(device)

    def forward(self, position_ids: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = position_ids[..., None].float() * self.inv_freq  # (B, T, D/2)
        angles = torch.cat((freqs, freqs), dim=-1)  # (B, T, D)
        return angles.cos().to(dtype), angles.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, T, D) by the angles (B, T, D), HF's rotate-half layout."""
    cos, sin = cos[:, None], sin[:, None]
    return x * cos + rotate_half(x) * sin


class LlamaAttention(nn.Module):
    """Grouped-query attention: each of the K key/value heads serves H // K query heads."""

    def __init__(self, config: LlamaConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_head, self.n_kv_head, self.head_dim = (
            config.num_attention_heads, config.num_key_value_heads, config.head_dim)
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, self.n_head * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, self.n_kv_head * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, self.n_kv_head * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, config.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None, cache: KVCache | None) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)  # (B, K, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, K, S, D)
        # mask None means plain causal attention over keys that all belong to this call.
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=mask is None and T > 1, enable_gqa=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class LlamaMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        C, I, bias = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(C, I, bias=bias)
        self.up_proj = nn.Linear(C, I, bias=bias)
        self.down_proj = nn.Linear(I, C, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, config: LlamaConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = LlamaAttention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(self, x, rope, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), rope, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


def attention_mask_4d(attention_mask: torch.Tensor, past: int, T: int) -> torch.Tensor:
    """Boolean (B, 1, T, S) mask: causal and not padding, S = past + T.

    `attention_mask` is (B, S) with 1 for real tokens. Every query may also see
    itself, so a padding query never has an all-masked row (which would give NaN).
    """
    S = past + T
    device = attention_mask.device
    query_pos = torch.arange(past, S, device=device)[:, None]
    causal = torch.arange(S, device=device)[None, :] <= query_pos  # (T, S)
    itself = torch.arange(S, device=device)[None, :] == query_pos
    allowed = (causal[None] & attention_mask[:, None, :].bool()) | itself[None]
    return allowed[:, None]


def is_right_padded(attention_mask: torch.Tensor) -> bool:
    """True when every row of the (B, S) mask is its real tokens followed only by padding."""
    return bool((attention_mask[:, 1:] <= attention_mask[:, :-1]).all())


class LlamaModel(nn.Module):
    """Embeddings, decoder layers and the final norm: token ids -> hidden states."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, C) normed hidden states after the last block.

        `attention_mask` (B, S) covers cached and new tokens, 1 = real token. Right padding (and no
        cache) runs plain causal attention: the real tokens' states are the same, and the states at
        padding positions, which no caller reads, are unspecified.
        `position_ids` default to past .. past + T - 1 for every row.
        """
        return self._run_blocks(input_ids, attention_mask, position_ids, cache, [len(self.layers)])[0]

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      layers: Sequence[int] = (), position_ids: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, T) ids -> one (B, T, C) state per entry of `layers`, in that order, from ONE pass.

        Block k is the residual stream after k decoder layers, k in 1..num_hidden_layers, with
        the final RMSNorm applied as the last layer has it (so k = num_hidden_layers equals
        `forward`). Blocks deeper than max(layers) are never computed: asking for block 20 of
        30 costs two thirds of a full pass. Transformers' `hidden_states[k]` (with
        `output_hidden_states=True`) is the same state before the norm; only its last entry is normed.
        """
        n = len(self.layers)
        wrong = [k for k in layers if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n]
        if not layers or wrong:
            raise LlamaError(f"layers {list(layers)}: expected one or more blocks in 1..{n} "
                             f"(block k = the state after k of the model's {n} decoder layers)")
        return self._run_blocks(input_ids, attention_mask, position_ids, None, layers)

    def _run_blocks(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                    position_ids: torch.Tensor | None, cache: KVCache | None,
                    layers: Sequence[int]) -> list[torch.Tensor]:
        """The shared pass: embeddings, then blocks 1..max(layers), keeping norm(x) after each asked block.

        With a cache every block must run (each appends its keys and values), so only
        `forward` passes one, always asking for the last block.
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past, past + T, device=input_ids.device).expand(B, T)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            if past > 0 or not is_right_padded(attention_mask):
                mask = attention_mask_4d(attention_mask, past, T)
            # else right padding without a cache: under the causal mask no real token sees a later pad,
            # so plain causal attention gives the real tokens the same states and keeps SDPA's fast kernels
        elif past > 0 and T > 1:
            mask = attention_mask_4d(torch.ones(B, past + T, device=input_ids.device), past, T)
        x = self.embed_tokens(input_ids)  # (B, T, C)
        rope = self.rotary_emb(position_ids, x.dtype)
        kept: dict[int, torch.Tensor] = {}
        for k, layer in enumerate(self.layers[:max(layers)], start=1):
            x = layer(x, rope, mask, cache)
            if k in layers:
                kept[k] = self.norm(x)  # (B, T, C)
        if cache is not None:
            cache.advance(T)
        return [kept[k] for k in layers]


class LlamaForCausalLM(nn.Module):
    """LlamaModel plus the `lm_head` projection to vocabulary logits (tied or not)."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Share the embedding matrix with the output projection when the config says so."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache: KVCache | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, vocab) logits."""
        return self.lm_head(self.model(input_ids, attention_mask, position_ids, cache))

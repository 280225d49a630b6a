"""Batched autoregressive decoding with the KV cache: greedy, or sampled with temperature/top-k.

Prompts of different lengths are left-padded so every row's next token sits in the
last column. Positions come from the attention mask (cumsum - 1), so a padded row
sees exactly the positions it would see alone, and the mask hides the padding from
attention: batched output equals one-by-one output. The prompt is run once (prefill);
after that each step feeds one token per row and reuses the cached keys/values.
"""

from __future__ import annotations

import torch

from .kv_cache import KVCache
from .model import LlamaForCausalLM
from .tokenizer import Tokenizer


def next_token(logits: torch.Tensor, temperature: float, top_k: int | None,
               generator: torch.Generator | None) -> torch.Tensor:
    """(B, vocab) logits -> (B,) ids: argmax when temperature is 0, else a sample."""
    if temperature <= 0:
        return logits.argmax(-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


@torch.inference_mode()
def generate_ids(model: LlamaForCausalLM, prompts: list[list[int]], *, max_new_tokens: int,
                 stop_ids: list[int], pad_id: int = 0, temperature: float = 0.0,
                 top_k: int | None = None, generator: torch.Generator | None = None) -> list[list[int]]:
    """New token ids per prompt, each ending before its first stop id (which is dropped)."""
    if any(not p for p in prompts):
        raise ValueError("every prompt needs at least one token")
    device = next(model.parameters()).device
    B, L = len(prompts), max(len(p) for p in prompts)
    ids = torch.full((B, L), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((B, L), dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, L - len(prompt):] = torch.tensor(prompt, device=device)
        mask[row, L - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L); padding gets 0, masked anyway
    cache = KVCache(model.config, B, L + max_new_tokens, dtype=model.lm_head.weight.dtype, device=device)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    out: list[torch.Tensor] = []
    # Prefill: only the last position's logits are needed, so project just that row to the vocabulary.
    hidden = model.model(ids, attention_mask=mask, position_ids=positions, cache=cache)  # (B, L, C)
    logits = model.lm_head(hidden[:, -1])  # (B, vocab)
    for step in range(max_new_tokens):
        token = next_token(logits, temperature, top_k, generator)  # (B,)
        token = token.masked_fill(done, pad_id)
        done |= torch.isin(token, stops)
        out.append(token)
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
        logits = model(token[:, None], attention_mask=mask, position_ids=positions, cache=cache)[:, -1]
    new = torch.stack(out, dim=1).tolist() if out else [[] for _ in prompts]  # (B, steps)
    stop_set = set(stop_ids)
    return [row[:next((i for i, t in enumerate(row) if t in stop_set), len(row))] for row in new]


def generate(model: LlamaForCausalLM, tokenizer: Tokenizer, prompt: str | list[str], *,
             max_new_tokens: int = 64, stop_ids: list[int] | None = None, temperature: float = 0.0,
             top_k: int | None = None, seed: int | None = None) -> str | list[str]:
    """The text generated after `prompt` (a list of prompts gives a list of texts).

    Greedy by default; `stop_ids` default to the tokenizer's EOS ids. Prompts are
    encoded with the tokenizer's own BOS policy; special tokens in them (ChatML's
    `<|im_start|>`) are single ids.
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    new = generate_ids(model, tokenizer.encode_batch(prompts), max_new_tokens=max_new_tokens,
                       stop_ids=tokenizer.eos_ids if stop_ids is None else stop_ids,
                       pad_id=tokenizer.pad_id, temperature=temperature, top_k=top_k,
                       generator=generator)
    texts = [tokenizer.decode(ids) for ids in new]
    return texts[0] if isinstance(prompt, str) else texts

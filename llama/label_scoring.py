"""The log-likelihood of each of N label texts after each prompt, with the prompt run once.

Zero-shot classification by the language model itself: the label is the one whose tokens the
model finds likeliest after the prompt, log P(label | prompt) = the sum of the log-probabilities
of its tokens, each given the prompt and the label's tokens before it. A multi-token label
("Super Bowl 50") is scored in full, not by its first token.

Scoring N labels naively costs N passes over prompt + label. Here the prompts run once
(prefill, left-padded as in `generate`, so every row's last prompt token sits in the last
column) into a `KVCache`; its rows are then repeated N times, and the N labels' tokens run as
one batch of B*N short rows that attend to the cached prompt. The first label token's
log-probability comes from the prompt's last position; label token j's from label token j-1.
"""

from __future__ import annotations

import torch

from .kv_cache import KVCache
from .model import LlamaForCausalLM

POSITIONS_PER_CHUNK = 512  # label positions projected to the vocabulary at once: (512, vocab) logits


@torch.inference_mode()
def label_log_likelihoods(model: LlamaForCausalLM, prompts: list[list[int]], labels: list[list[int]],
                          pad_id: int = 0) -> torch.Tensor:
    """(B, N) float32: log P(labels[n] | prompts[b]), each label's token log-probabilities summed.

    Memory: the repeated cache holds B * N * (longest prompt + longest label) tokens' keys
    and values, so callers batch prompts by a token budget divided by N.
    """
    if not prompts or any(not p for p in prompts) or not labels or any(not t for t in labels):
        raise ValueError("every prompt and every label needs at least one token")
    device = model.lm_head.weight.device
    B, N, L, M = len(prompts), len(labels), max(len(p) for p in prompts), max(len(t) for t in labels)
    ids = torch.full((B, L), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((B, L), dtype=torch.long, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, L - len(prompt):] = torch.tensor(prompt, device=device)
        mask[row, L - len(prompt):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L): a padded row sees the positions it would alone
    cache = KVCache(model.config, B, L + M - 1, dtype=model.lm_head.weight.dtype, device=device)
    last = model.model(ids, attention_mask=mask, position_ids=positions, cache=cache)[:, -1]  # (B, C)
    first_ids = torch.tensor([t[0] for t in labels], device=device)
    scores = _log_probs(model, last, first_ids.expand(B, N))  # (B, N): each label's first token
    if M == 1:
        return scores
    # Labels' tokens 1..M-1, fed after the cached prompt: row b*N + n holds label n after prompt b.
    inputs = torch.full((N, M - 1), pad_id, dtype=torch.long, device=device)  # label tokens 0..M-2
    targets = torch.full((N, M - 1), -1, dtype=torch.long, device=device)  # tokens 1..M-1; -1: none
    for n, tokens in enumerate(labels):
        inputs[n, :len(tokens) - 1] = torch.tensor(tokens[:-1], device=device)
        targets[n, :len(tokens) - 1] = torch.tensor(tokens[1:], device=device)
    repeated = cache.repeat_rows(N)
    # Padding after a short label is attended to by nothing that is scored (attention is causal): no mask needed.
    label_mask = torch.cat([mask.repeat_interleave(N, dim=0), torch.ones((B * N, M - 1), dtype=mask.dtype,
                                                                          device=device)], dim=1)
    label_positions = positions[:, -1:].repeat_interleave(N, dim=0) + torch.arange(1, M, device=device)  # (B*N, M-1)
    hidden = model.model(inputs.repeat(B, 1), attention_mask=label_mask, position_ids=label_positions,
                         cache=repeated)  # (B*N, M-1, C)
    wanted = targets.repeat(B, 1) >= 0  # (B*N, M-1)
    rest = torch.zeros(B * N, M - 1, device=device)
    rest[wanted] = _log_probs(model, hidden[wanted], targets.repeat(B, 1)[wanted][:, None])[:, 0]
    return scores + rest.sum(dim=1).view(B, N)


def _log_probs(model: LlamaForCausalLM, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """(P, C) states, (P, K) token ids -> (P, K) float32 log-probabilities of those tokens at those states.

    The vocabulary's log-softmax needs every logit; positions go through it in chunks, so the
    (P, vocab) float32 logits never exist at once.
    """
    out = torch.empty(token_ids.shape, dtype=torch.float32, device=hidden.device)
    for lo in range(0, hidden.shape[0], POSITIONS_PER_CHUNK):
        logits = model.lm_head(hidden[lo:lo + POSITIONS_PER_CHUNK]).float()  # (chunk, vocab)
        out[lo:lo + POSITIONS_PER_CHUNK] = logits.log_softmax(-1).gather(1, token_ids[lo:lo + POSITIONS_PER_CHUNK])
    return out

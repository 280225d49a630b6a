"""The plan printed before the work: how much data, how many FLOPs, how big the state cache, and where it goes.

A full-size run (SQuAD v1.1 on Llama-3.2-1B: ~89k windows, ~15.6M tokens, ~60 GiB of bf16
states) must not discover after an hour of forward passes that its cache does not fit. The
plan is made from token lengths and free sizes alone, before any forward pass, and an explicit
`--cache` place that cannot hold the cache is refused then, in one line.

Forward FLOPs of the frozen pass over sequences of lengths T_i (documented in `forward_flops`):

    2 * N * sum(T_i)  +  2 * L * H * D * sum(T_i ** 2)

N: the weights the forward multiplies by (q, k, v, o, gate, up, down of every layer; the
embedding is a lookup, and no LM head runs), L layers, H query heads of width D.
"""

from __future__ import annotations

import dataclasses

import torch

from errors import UserError
from llama import LlamaConfig

from .devices import FreeSpace

MODES = ("auto", "memory", "disk", "stream")
PLACE_NAMES = {"accelerator": "accelerator memory", "ram": "RAM", "disk": "disk", "stream": "stream"}
GIB = 2**30
ACCELERATOR_MARGIN = (4 * GIB, 0.10)  # kept free for the forward pass and head training: max(bytes, fraction)
RAM_FRACTION = 0.7  # of MemAvailable; the rest stays for the process and the page cache
DISK_MARGIN = (2 * GIB, 0.05)


def matmul_weights(config: LlamaConfig) -> int:
    """Weights a token multiplies by in the frozen pass: attention q, k, v, o and the SwiGLU MLP, all layers."""
    C, I, D = config.hidden_size, config.intermediate_size, config.head_dim
    H, K = config.num_attention_heads, config.num_key_value_heads
    return config.num_hidden_layers * (2 * C * H * D + 2 * C * K * D + 3 * C * I)


def parameter_count(config: LlamaConfig) -> int:
    """All parameters of the base: embedding, layers (with their norms), final norm, untied LM head."""
    C = config.hidden_size
    embed = config.vocab_size * C
    return (embed + matmul_weights(config) + (2 * config.num_hidden_layers + 1) * C
            + (0 if config.tie_word_embeddings else embed))


def forward_flops(config: LlamaConfig, lengths: list[int], depth: int | None = None) -> int:
    """FLOPs of the frozen pass over sequences of `lengths` through `depth` blocks (default all), padding excluded.

    Each matmul weight costs 2 FLOPs (multiply, add) per token: 2 * N * sum(T). Attention adds,
    per layer and sequence, Q K^T and A V, each 2 * T^2 * H * D over the full square; causal
    attention needs only half of it, so 2 * L * H * D * sum(T^2). (Kernels that compute the full
    square, as SDPA's math backend does, spend twice that term; norms, RoPE and softmax are
    O(C) per token and left out.)
    """
    attention_width = config.num_attention_heads * config.head_dim
    layers = config.num_hidden_layers if depth is None else depth
    return (2 * matmul_weights(config) * layers // config.num_hidden_layers * sum(lengths)
            + 2 * layers * attention_width * sum(t * t for t in lengths))


def cache_bytes(config: LlamaConfig, lengths: list[int], *, per_token: bool, cached_layers: int = 1) -> int:
    """Bytes of the cached states: per token, bf16 (tokens x C x 2); pooled, float32 per sequence and layer."""
    if per_token:
        return sum(lengths) * config.hidden_size * 2
    return len(lengths) * config.hidden_size * 4 * cached_layers


def usable_room(free: FreeSpace) -> dict[str, int | None]:
    """What each place may take after its margin (None: there is no such place on this run)."""
    def after_margin(size: int, margin: tuple[int, float]) -> int:
        return max(0, size - max(margin[0], int(margin[1] * size)))

    return {"accelerator": None if free.accelerator is None else after_margin(free.accelerator, ACCELERATOR_MARGIN),
            "ram": int(RAM_FRACTION * free.ram),
            "disk": after_margin(free.disk, DISK_MARGIN)}


def choose_place(mode: str, need: int, room: dict[str, int | None]) -> str:
    """The first place in the mode's order that holds `need` bytes: 'accelerator', 'ram', 'disk' or 'stream'."""
    order = {"auto": ("accelerator", "ram", "disk"), "memory": ("accelerator", "ram"), "disk": ("disk",),
             "stream": ()}[mode]
    for place in order:
        if room[place] is not None and room[place] >= need:
            return place
    if mode in ("auto", "stream"):
        return "stream"
    seen = ", ".join(f"{PLACE_NAMES[p]} {gib(room[p])}" for p in order if room[p] is not None)
    larger_disk = "set TMPDIR to a larger disk, " if mode == "disk" else ""
    raise UserError(f"--cache {mode}: the cached states need {gib(need)} but only {seen} can be used: "
                    f"{larger_disk}choose --cache auto or stream, or use --limit")


@dataclasses.dataclass
class CachePlan:
    """The sizes of a run's frozen pass and state cache, and where the cache goes."""

    examples: tuple[int, int]  # (train, test) questions or sentences
    sequences: tuple[int, int]  # after windowing
    tokens: tuple[int, int]
    flops: tuple[int, int]  # one forward pass over each split
    cache_bytes: int  # train and test tables together
    per_token: bool
    mode: str
    place: str
    free: FreeSpace
    room: dict[str, int | None]
    selection_bytes: int = 0  # what choosing the readout holds at once: every candidate's tables (0: no choice)

    @property
    def peak_bytes(self) -> int:
        """The most the cache holds at once: the readout choice's tables, or the final ones (the place holds this)."""
        return max(self.cache_bytes, self.selection_bytes)

    def render(self) -> str:
        """A few short lines: the data, the work, the cache, where it goes and why."""
        (n_train, n_test), (s_train, s_test), (t_train, t_test) = self.examples, self.sequences, self.tokens
        kind = "bf16 per token" if self.per_token else "float32 per sequence"
        seen = [f"{PLACE_NAMES[p]} {gib(self.room[p])} ({gib(size)})" for p, size in
                (("accelerator", self.free.accelerator), ("ram", self.free.ram), ("disk", self.free.disk))
                if size is not None]
        what = {"accelerator": "no host copy per batch", "ram": "host memory",
                "disk": f"a memmap under {self.free.disk_path}",
                "stream": "recomputed by the frozen pass every epoch, nothing stored"}[self.place]
        if self.mode != "auto":
            why = f"as asked ({what})"
        elif self.place == "stream":
            why = f"fits nowhere, so {what}"
        else:
            why = f"the first place that holds it ({what})"
        return "\n".join([
            f"plan: train {n_train:,} examples -> {s_train:,} sequences, {t_train:,} tokens; "
            f"test {n_test:,} -> {s_test:,}, {t_test:,} tokens",
            f"plan: frozen pass {sum(self.flops):.3g} FLOPs (train {self.flops[0]:.3g}, test {self.flops[1]:.3g})",
            f"plan: state cache {gib(self.cache_bytes)}, {kind}"
            + (f"; choosing the readout holds {gib(self.selection_bytes)} (every candidate's), freed after"
               if self.selection_bytes else ""),
            f"plan: usable (free): {', '.join(seen)}"
            + (f"; RAM and disk: this rank's 1/{self.free.shares} of the node's" if self.free.shares > 1 else ""),
            f"plan: --cache {self.mode} -> {PLACE_NAMES[self.place]}: {why}",
        ])


def plan_cache(train_lengths: list[int], test_lengths: list[int], config: LlamaConfig, free: FreeSpace, *,
               mode: str = "auto", per_token: bool = True, cached_layers: int = 1,
               examples: tuple[int, int] | None = None,
               cached_lengths: tuple[list[int], list[int]] | None = None, depth: int | None = None,
               selection: tuple[list[int], int] | None = None) -> CachePlan:
    """Size the run from its sequences' token lengths and place the cache, before any forward pass.

    `auto` takes the first place that holds both tables with its margin: accelerator memory
    (free after the weights), RAM (a fraction of MemAvailable), disk (free at $TMPDIR), else
    streams. `memory` (accelerator, then RAM) and `disk` raise one UserError line when they
    cannot hold the cache; `stream` always streams. `cached_lengths` (train, test): the tokens per
    sequence that are stored, where fewer than the pass computes (the head reads only some).
    `depth`: the deepest block the readouts need (the pass stops there); default all.
    `selection` (cached lengths, tables per sequence): what choosing the readout caches first, every
    candidate's states of the selection subset and validation slice, held until the choice is made;
    the place must hold the larger of that and the final cache.
    """
    if mode not in MODES:
        raise UserError(f"--cache must be one of {', '.join(MODES)}, not {mode!r}")
    need = sum(cache_bytes(config, lengths, per_token=per_token, cached_layers=cached_layers)
               for lengths in (cached_lengths or (train_lengths, test_lengths)))
    selection_need = 0
    if selection is not None:
        lengths, tables = selection
        selection_need = tables * cache_bytes(config, lengths, per_token=per_token)
    room = usable_room(free)
    return CachePlan(
        examples=examples or (len(train_lengths), len(test_lengths)),
        sequences=(len(train_lengths), len(test_lengths)),
        tokens=(sum(train_lengths), sum(test_lengths)),
        flops=(forward_flops(config, train_lengths, depth), forward_flops(config, test_lengths, depth)),
        cache_bytes=need, per_token=per_token, mode=mode, place=choose_place(mode, max(need, selection_need), room),
        free=free, room=room, selection_bytes=selection_need)


def free_after_loading(free: FreeSpace, config: LlamaConfig, dtype: torch.dtype, device: torch.device) -> FreeSpace:
    """What will be free once the base's weights are loaded (the plan is made before they are)."""
    weights = parameter_count(config) * dtype.itemsize
    if device.type == "cpu":
        return dataclasses.replace(free, ram=max(0, free.ram - weights))
    return dataclasses.replace(free, accelerator=max(0, (free.accelerator or 0) - weights))


def gib(size: int | None) -> str:
    """Bytes as GiB with one decimal (MiB below 1 GiB), for the plan's lines."""
    if size is None:
        return "-"
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / 2**20:.1f} MiB"

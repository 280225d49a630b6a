"""What a head reads from the frozen base: its readout, recorded in the head file.

A head only fits the states it was trained on, so the readout travels with it
(`dataclasses.asdict(readout)` under the head file's metadata key `readout`) and eval.py
rebuilds the same frozen pass from it.

- `block`: the block (1..num_hidden_layers) whose output the head reads, normed as the last is;
- `echo`: the input is fed twice (SST-2: the sentence; SQuAD: question and context) and the head
  reads the second copy, where every token has seen the whole input once already;
- `pool` (classification only): one vector per sentence, the state of its last token ("last") or
  the mean over its tokens ("mean"; with echo, over the second copy's tokens).
"""

from __future__ import annotations

import dataclasses

POOLS = ("last", "mean")


@dataclasses.dataclass(frozen=True)
class ClassifierReadout:
    """The pooled state a `SequenceClassifier` reads."""

    block: int
    echo: bool
    pool: str

    def __post_init__(self) -> None:
        if self.pool not in POOLS:
            raise ValueError(f"pool {self.pool!r}: expected one of {', '.join(POOLS)}")


@dataclasses.dataclass(frozen=True)
class SpanReadout:
    """The per-token states a `QuestionAnswerer` reads."""

    block: int
    echo: bool

"""What a head reads: which block's states, laid out and pooled how. It belongs to the head.

A head's weights are only meaningful on the states they were trained on: the same matrix applied
to another block's states, or to the last token instead of the mean over an echoed copy, runs
without complaint and predicts nonsense. So the readout is stored in the head file beside the
weights (`heads.head_file`) and applied by whatever uses the head (`heads.load`, eval.py).
"""

from __future__ import annotations

import dataclasses

POOLS = ("last", "mean")


@dataclasses.dataclass(frozen=True)
class ClassifierReadout:
    """The sentence's state after block `block` (1..depth); `echo`: the sentence fed twice, read on
    the second copy; `pool`: "last", the last token's state, or "mean", the mean over the (second
    copy of the) sentence's tokens."""

    block: int
    echo: bool
    pool: str


@dataclasses.dataclass(frozen=True)
class SpanReadout:
    """Every context token's state after block `block`; `echo`: question and context fed twice, the
    head read on the second copy, where every token has seen the whole passage."""

    block: int
    echo: bool

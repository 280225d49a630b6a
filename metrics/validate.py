"""Input checks shared by the metrics, so every bad call fails the same clear way.

Metric code deep inside a loop would otherwise fail with a `TypeError` from
`str.lower` or silently zip two lists of different lengths; checking up front
names the argument, the index and the fix.
"""

from __future__ import annotations

from typing import Sequence


def text_list(name: str, texts: Sequence[str]) -> list[str]:
    """Return `texts` as a list, or raise if it is not a non-empty sequence of strings."""
    if isinstance(texts, str):
        raise ValueError(f"{name} must be a list of strings, not one string")
    try:
        texts = list(texts)
    except TypeError:
        raise ValueError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"{name} is empty: a corpus needs at least one example")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"{name}[{i}] is {type(text).__name__}, expected str")
    return texts


def reference_lists(name: str, references: Sequence[str | Sequence[str]]) -> list[list[str]]:
    """Return one non-empty list of strings per example; a bare string is one reference."""
    if isinstance(references, str) or not hasattr(references, "__iter__"):
        raise ValueError(f"{name} must be a list, got {type(references).__name__}")
    out = []
    for i, refs in enumerate(references):
        if isinstance(refs, str):
            refs = [refs]
        elif not isinstance(refs, (list, tuple)):
            raise ValueError(f"{name}[{i}] is {type(refs).__name__}, expected str or list of str")
        elif not refs:
            raise ValueError(f"{name}[{i}] is an empty list: each example needs a reference")
        for j, ref in enumerate(refs):
            if not isinstance(ref, str):
                raise ValueError(f"{name}[{i}][{j}] is {type(ref).__name__}, expected str")
        out.append(list(refs))
    if not out:
        raise ValueError(f"{name} is empty: a corpus needs at least one example")
    return out


def same_length(names: tuple[str, str], first: Sequence, second: Sequence) -> None:
    """Raise if two per-example sequences differ in length (zip would drop the tail)."""
    if len(first) != len(second):
        raise ValueError(
            f"{names[0]} has {len(first)} items but {names[1]} has {len(second)}; "
            "they must pair up one to one"
        )

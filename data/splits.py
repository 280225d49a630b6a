"""Seeded shuffles, the 80:20 holdout split and `--limit`, reproducible bit-for-bit anywhere.

Why not `random.shuffle` or `numpy.random`: Python's `random` and NumPy's `Generator`
streams may change between versions, so a split made with them can drift silently. Here
the order is defined by a 10-line algorithm anyone can reimplement:

    key[i]   = SplitMix64 output number i+1 for `seed`, i.e.
               z = seed + (i + 1) * 0x9E3779B97F4A7C15            (mod 2**64)
               z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9           (mod 2**64)
               z = (z ^ (z >> 27)) * 0x94D049BB133111EB           (mod 2**64)
               key = z ^ (z >> 31)
    shuffle  = item indices sorted by (key[i], i)

`holdout_split` puts the first round(n * test_fraction) indices of that shuffle in the
test part and the rest in the train part; each part keeps the items' original order.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Hashable, Sequence, TypeVar

import numpy as np

from errors import UserError

T = TypeVar("T")

_GAMMA, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix64_keys(n: int, seed: int) -> np.ndarray:
    """The first n outputs of SplitMix64 started at `seed`, as uint64 (n,)."""
    z = np.uint64(seed % 2**64) + (np.arange(1, n + 1, dtype=np.uint64) * np.uint64(_GAMMA))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def shuffled_indices(n: int, seed: int) -> list[int]:
    """A permutation of range(n): indices sorted by their SplitMix64 key (ties by index)."""
    return np.argsort(splitmix64_keys(n, seed), kind="stable").tolist()


def holdout_split(items: Sequence[T], test_fraction: float = 0.2, seed: int = 1) -> tuple[list[T], list[T]]:
    """(train, test): a seeded round(n * test_fraction) of the items for test, in file order."""
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"test fraction must be between 0 and 1, got {test_fraction}")
    order = shuffled_indices(len(items), seed)
    n_test = round(len(items) * test_fraction)
    in_test = np.zeros(len(items), dtype=bool)
    in_test[order[:n_test]] = True
    return ([x for x, t in zip(items, in_test) if not t], [x for x, t in zip(items, in_test) if t])


def take(items: Sequence[T], n: int | None, seed: int,
         label_of: Callable[[T], Hashable] | None = None) -> list[T]:
    """The first n items of the seeded shuffle, in their original order (all items if n is None).

    With `label_of`, the sample is stratified: each label gets n * its share of the items
    (largest-remainder rounding, ties to the label seen first), drawn in shuffle order,
    so a `--limit` run sees the same class balance as the full data.
    """
    if n is None or n >= len(items):
        return list(items)
    if n <= 0:
        raise UserError(f"a limit must be a positive number of examples, got {n}")
    order = shuffled_indices(len(items), seed)
    if label_of is None:
        return [items[i] for i in sorted(order[:n])]
    by_label: dict[Hashable, list[int]] = defaultdict(list)
    for i in order:
        by_label[label_of(items[i])].append(i)
    labels = sorted(by_label, key=lambda label: min(by_label[label]))  # first seen in the file
    exact = {label: n * len(by_label[label]) / len(items) for label in labels}
    quota = {label: int(exact[label]) for label in labels}
    by_remainder = sorted(labels, key=lambda label: -(exact[label] - quota[label]))  # stable: file order
    for label in by_remainder[: n - sum(quota.values())]:
        quota[label] += 1
    return [items[i] for i in sorted(i for label in labels for i in by_label[label][: quota[label]])]

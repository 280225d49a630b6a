"""The 80:20 protocol: a documented shuffle, identical across runs and processes, and `take`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from data.splits import holdout_split, shuffled_indices, splitmix64_keys, take
from data.sst2 import read_sst2_tsv
from errors import UserError

ROOT = Path(__file__).resolve().parents[1]
SST2_TRAIN = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"


def test_keys_are_splitmix64_as_published():
    # The first outputs of Vigna's reference splitmix64.c for seed 1234567.
    assert splitmix64_keys(5, 1234567).tolist() == [
        6457827717110365317, 3203168211198807973, 9817491932198370423,
        4593380528125082431, 16408922859458223821]


def test_the_shuffle_for_seed_1_is_pinned():
    # Any change here changes every published split: update the README if it is deliberate.
    assert shuffled_indices(10, 1) == [8, 4, 3, 7, 0, 1, 5, 9, 6, 2]


def test_holdout_is_disjoint_complete_80_20_and_keeps_file_order():
    items = list(range(1001))
    train, test = holdout_split(items, 0.2, seed=1)
    assert len(test) == 200 and len(train) == 801
    assert sorted(train + test) == items
    assert train == sorted(train) and test == sorted(test)
    assert holdout_split(items, 0.2, seed=1) == (train, test)
    assert holdout_split(items, 0.2, seed=2) != (train, test)


def split_digest(seed: int) -> str:
    """The holdout split of 67,349 ids, as one hash: what another process must reproduce."""
    train, test = holdout_split(list(range(67_349)), 0.2, seed)
    return hashlib.sha256(repr((train, test)).encode()).hexdigest()


def test_holdout_is_identical_in_another_process_with_another_hash_seed():
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.test_data_splits import split_digest; "
            "print(split_digest(1))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    other = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True,
                           env=env, cwd=ROOT, check=True).stdout.strip()
    assert other == split_digest(1)


@pytest.mark.skipif(not SST2_TRAIN.is_file(), reason="real SST-2 files not present")
def test_real_sst2_holdout_sizes_and_balance():
    examples = read_sst2_tsv(SST2_TRAIN)
    train, test = holdout_split(examples, 0.2, seed=1)
    assert (len(train), len(test)) == (53_879, 13_470)
    assert {id(e) for e in train}.isdisjoint(id(e) for e in test)
    # A random 20% keeps the 55.8% positive share within a point.
    assert abs(sum(e.label for e in test) / len(test) - 37_569 / 67_349) < 0.01


def test_take_keeps_class_shares_and_is_seeded():
    items = [("pos", i) for i in range(700)] + [("neg", i) for i in range(300)]
    label = lambda item: item[0]  # noqa: E731
    picked = take(items, 10, seed=1, label_of=label)
    assert Counter(map(label, picked)) == {"pos": 7, "neg": 3}
    assert picked == take(items, 10, seed=1, label_of=label)
    assert picked != take(items, 10, seed=2, label_of=label)
    assert picked == sorted(picked, key=items.index)
    odd = take(items, 5, seed=1, label_of=label)  # 3.5 / 1.5: the larger remainder tie goes to "pos"
    assert Counter(map(label, odd)) == {"pos": 4, "neg": 1}


def test_take_without_labels_none_and_bad_limits():
    items = list(range(50))
    assert take(items, None, seed=1) == items
    assert take(items, 80, seed=1) == items
    assert len(set(take(items, 7, seed=1))) == 7
    with pytest.raises(UserError, match="positive"):
        take(items, 0, seed=1)

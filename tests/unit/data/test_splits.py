"""data.splits: positions are a stable hash of (key, id); named splits are disjoint, cover every
item and do not depend on item order or on which other items exist; fraction pairs; checks."""
from __future__ import annotations

import random

import pytest

from clas_lens.data.splits import (
    CORPUS_FRACTIONS,
    SPLIT_NAMES,
    TASK_FRACTIONS,
    check_fractions,
    in_range,
    resolve_split,
    select_split,
    split_label,
    split_position,
    split_ranges,
    split_record,
)
from clas_lens.errors import DataValidationError

IDS = [f"s{k:03d}" for k in range(1, 601)]


def test_defaults():
    assert SPLIT_NAMES == ("stats", "dev", "test")
    assert CORPUS_FRACTIONS == {"stats": 0.4, "dev": 0.2, "test": 0.4}
    assert TASK_FRACTIONS == {"dev": 0.3, "test": 0.7}


def test_position_is_a_stable_hash():
    # fixed value: the hash is sha256, not Python's salted hash()
    assert split_position("default", "s001") == 0.35153908203190265
    assert split_position("default", "s001") != split_position("other", "s001")
    assert split_position("k", 7) == split_position("k", "7")
    assert all(0 <= split_position("k", i) < 1 for i in IDS)


@pytest.mark.parametrize("fractions", [CORPUS_FRACTIONS, TASK_FRACTIONS, {"a": 0.5, "b": 0.25, "c": 0.25}])
def test_named_splits_are_disjoint_and_cover_everything(fractions):
    parts = {name: select_split("default", IDS, name, fractions) for name in fractions}
    seen = [i for ids in parts.values() for i in ids]
    assert sorted(seen) == sorted(IDS) and len(seen) == len(set(seen))  # disjoint and complete
    for name, ids in parts.items():  # sizes near the fractions (600 items)
        assert abs(len(ids) / len(IDS) - fractions[name]) < 0.07
        assert all(split_label("default", i, fractions) == name for i in ids)


def test_deterministic_and_independent_of_order_and_of_other_items():
    shuffled = list(IDS)
    random.Random(3).shuffle(shuffled)
    for name in CORPUS_FRACTIONS:
        a = select_split("default", IDS, name, CORPUS_FRACTIONS)
        b = select_split("default", shuffled, name, CORPUS_FRACTIONS)
        assert sorted(a) == sorted(b) and b == [i for i in shuffled if i in set(a)]  # given order kept
        half = select_split("default", IDS[:300], name, CORPUS_FRACTIONS)
        assert half == [i for i in a if i in set(IDS[:300])]
        assert a == select_split("default", IDS, name, CORPUS_FRACTIONS)


def test_fraction_pairs():
    assert resolve_split((0.0, 0.4), CORPUS_FRACTIONS) == ("0-0.4", (0.0, 0.4))
    assert select_split("default", IDS, (0.0, 0.4), CORPUS_FRACTIONS) == select_split("default", IDS, "stats", CORPUS_FRACTIONS)
    everything = select_split("default", IDS, [0, 1], TASK_FRACTIONS)
    assert everything == IDS
    assert in_range("k", "x", (0.0, 1.0))
    for bad in [(0.5, 0.5), (-0.1, 0.5), (0.2, 1.2), "train", (1,), "ab"]:
        with pytest.raises(DataValidationError):
            resolve_split(bad, TASK_FRACTIONS)


def test_fractions_are_checked():
    assert check_fractions(None, TASK_FRACTIONS) == TASK_FRACTIONS
    assert split_ranges({"a": 0.25, "b": 0.75}) == {"a": (0.0, 0.25), "b": (0.25, 1.0)}
    for bad, msg in [({}, "empty"), ({"a": 0.5}, "sum to 1"), ({"a": 0, "b": 1}, r"in \(0, 1\]"),
                     ({"": 1.0}, "non-empty"), ({"a": True}, r"in \(0, 1\]")]:
        with pytest.raises(DataValidationError, match=msg):
            check_fractions(bad, TASK_FRACTIONS)


def test_split_record():
    rec = split_record("nli", "test", TASK_FRACTIONS)
    assert rec == {"split": "test", "range": [0.3, 1.0], "key": "nli", "fractions": TASK_FRACTIONS}
    assert split_record("nli", None, TASK_FRACTIONS)["range"] == [0.0, 1.0]

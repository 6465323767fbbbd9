"""Disjoint, deterministic splits of items by id: ``"stats"``, ``"dev"``, ``"test"``.

Every item gets a position in ``[0, 1)`` from a stable hash (sha256) of ``(key, item id)``,
where ``key`` names the dataset (the corpus's name, a task's name). A split is a range of
positions: named splits are consecutive ranges of the fractions, in order; a ``(start, stop)``
pair is a range of its own. So an item's split depends only on its id, the key and the
fractions -- not on the order of the items, on which other items exist, or on the language
(parallel items share their id, so a sentence is in the same split in every language).

Default fractions: :data:`CORPUS_FRACTIONS` (stats 0.4, dev 0.2, test 0.4) for parallel
corpora, where ``stats`` is the part neuron statistics and identification read, and
:data:`TASK_FRACTIONS` (dev 0.3, test 0.7) for evaluation tasks. Tasks built from the corpus
(``lm``, ``completion``) take their items from the corpus's dev and test parts only. See
docs/methods.md, "Evaluation".

>>> split_position("default", "s001") == split_position("default", "s001")
True
>>> ids = [f"s{k:03d}" for k in range(1, 301)]
>>> parts = {name: select_split("default", ids, name, CORPUS_FRACTIONS) for name in CORPUS_FRACTIONS}
>>> sum(len(v) for v in parts.values()), set(parts["dev"]) & set(parts["test"])
(300, set())
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Iterable, Mapping, Sequence

from clas_lens.errors import DataValidationError

#: Split names, in the order their ranges are laid out.
SPLIT_NAMES: tuple[str, ...] = ("stats", "dev", "test")
#: Default fractions of a parallel corpus (stats: neuron statistics and identification).
CORPUS_FRACTIONS: dict[str, float] = {"stats": 0.4, "dev": 0.2, "test": 0.4}
#: Default fractions of an evaluation task's items.
TASK_FRACTIONS: dict[str, float] = {"dev": 0.3, "test": 0.7}

Split = str | tuple[float, float] | Sequence[float]


def split_position(key: str, item_id: Any) -> float:
    """The item's position in ``[0, 1)``: the first 8 bytes of sha256(key, id) over 2**64.

    >>> 0 <= split_position("nli", "n001") < 1
    True
    """
    digest = hashlib.sha256(f"{key}\x1f{item_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_fractions(fractions: Mapping[str, float] | None, default: Mapping[str, float]) -> dict[str, float]:
    """``fractions`` (default ``default``) checked: names are strings, each fraction > 0, the
    sum 1.

    >>> check_fractions({"dev": 0.5, "test": 0.5}, TASK_FRACTIONS)
    {'dev': 0.5, 'test': 0.5}
    >>> check_fractions({"dev": 0.5}, TASK_FRACTIONS)
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Split fractions must sum to 1; got {'dev': 0.5} (sum 0.5).
    """
    fr = dict(default if fractions is None else fractions)
    if not fr:
        raise DataValidationError("Split fractions are empty; pass e.g. {'dev': 0.3, 'test': 0.7}.")
    for name, f in fr.items():
        if not isinstance(name, str) or not name:
            raise DataValidationError(f"Split names must be non-empty strings; got {name!r}.")
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < float(f) <= 1:
            raise DataValidationError(f"Split fraction of {name!r} must be in (0, 1]; got {f!r}.")
    total = math.fsum(float(f) for f in fr.values())
    if abs(total - 1.0) > 1e-9:
        raise DataValidationError(f"Split fractions must sum to 1; got {fr} (sum {total:g}).")
    return {name: float(f) for name, f in fr.items()}


def split_ranges(fractions: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """``{name: (start, stop)}``: consecutive ranges of ``fractions``, in order (the last
    stops at 1).

    >>> split_ranges(CORPUS_FRACTIONS)
    {'stats': (0.0, 0.4), 'dev': (0.4, 0.6000000000000001), 'test': (0.6000000000000001, 1.0)}
    """
    out: dict[str, tuple[float, float]] = {}
    start = 0.0
    names = list(fractions)
    for k, name in enumerate(names):
        stop = 1.0 if k == len(names) - 1 else start + float(fractions[name])
        out[name] = (start, stop)
        start = stop
    return out


def resolve_split(split: Split, fractions: Mapping[str, float]) -> tuple[str, tuple[float, float]]:
    """``(label, (start, stop))`` of a split: a name of ``fractions`` or a ``(start, stop)``
    pair with ``0 <= start < stop <= 1`` (labelled ``"start-stop"``).

    >>> resolve_split("dev", TASK_FRACTIONS), resolve_split((0.5, 1.0), TASK_FRACTIONS)
    (('dev', (0.0, 0.3)), ('0.5-1', (0.5, 1.0)))
    """
    ranges = split_ranges(fractions)
    if isinstance(split, str):
        if split not in ranges:
            raise DataValidationError(
                f"Unknown split {split!r}; choose from {list(ranges)} or pass a (start, stop) fraction pair."
            )
        return split, ranges[split]
    try:
        start, stop = (float(v) for v in split)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise DataValidationError(
            f"A split is a name ({', '.join(ranges)}) or a (start, stop) fraction pair; got {split!r}."
        ) from None
    if not 0.0 <= start < stop <= 1.0:
        raise DataValidationError(f"A split (start, stop) needs 0 <= start < stop <= 1; got {split!r}.")
    return f"{start:g}-{stop:g}", (start, stop)


def split_label(key: str, item_id: Any, fractions: Mapping[str, float]) -> str:
    """The named split ``item_id`` falls in.

    >>> split_label("cloze", "weekday-01", TASK_FRACTIONS) in ("dev", "test")
    True
    """
    pos = split_position(key, item_id)
    for name, (start, stop) in split_ranges(fractions).items():
        if start <= pos < stop:
            return name
    return list(fractions)[-1]  # pragma: no cover - pos < 1 always falls in a range


def in_range(key: str, item_id: Any, bounds: tuple[float, float]) -> bool:
    """Whether the item's position lies in ``[start, stop)`` (``stop == 1`` includes the end).

    >>> in_range("nli", "n001", (0.0, 1.0))
    True
    """
    pos = split_position(key, item_id)
    return bounds[0] <= pos < bounds[1] or (bounds[1] >= 1.0 and pos >= bounds[0])


def select_split(key: str, ids: Iterable[Any], split: Split, fractions: Mapping[str, float]) -> list:
    """The ids of ``split``, in their given order.

    >>> select_split("t", ["a", "b", "c"], (0.0, 1.0), TASK_FRACTIONS)
    ['a', 'b', 'c']
    """
    _, bounds = resolve_split(split, fractions)
    return [i for i in ids if in_range(key, i, bounds)]


def split_record(key: str, split: Split | None, fractions: Mapping[str, float]) -> dict[str, Any]:
    """What a result records about its split: ``{"split", "range", "key", "fractions"}``
    (``split`` None and range [0, 1] for all items).

    >>> split_record("default", "dev", CORPUS_FRACTIONS)["range"]
    [0.4, 0.6000000000000001]
    """
    if split is None:
        label, bounds = None, (0.0, 1.0)
    else:
        label, bounds = resolve_split(split, fractions)
    return {"split": label, "range": [bounds[0], bounds[1]], "key": key, "fractions": dict(fractions)}

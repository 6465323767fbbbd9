"""The flat state of per-language accumulators: ``{"<kind>/<lang>": tensor}`` with kinds
``count``, ``active``, ``sum``, ``sumsq`` (:data:`~clas_lens.stats.accumulator.KINDS`). Every
entry combines across shards by addition (e.g. an all-reduce); :class:`~clas_lens.stats.NeuronStats`
writes its sums in this form (``state_tensors``, files) and rebuilds from it (``from_state``).

>>> import torch
>>> acc = {"en": Accumulator(torch.tensor(2), torch.ones(1, 3), torch.ones(1, 3), torch.ones(1, 3))}
>>> sorted(state_entries(acc))
['active/en', 'count/en', 'sum/en', 'sumsq/en']
>>> list(state_accumulators(state_entries(acc), ["en"]))
['en']
"""
from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.stats.accumulator import KINDS, Accumulator


def state_entries(accumulators: Mapping[str, Accumulator]) -> dict[str, Tensor]:
    """``{"<kind>/<lang>": tensor}`` of ``{lang: Accumulator}``, language by language."""
    out = {}
    for lang, st in accumulators.items():
        for kind in KINDS:
            out[f"{kind}/{lang}"] = getattr(st, kind)
    return out


def state_accumulators(state: Mapping[str, Tensor], langs: Sequence[str] = ()) -> dict[str, Accumulator]:
    """``{lang: Accumulator}`` of the flat ``state``: the languages of ``langs`` first, in that
    order, then any other language of ``state`` in the order read. An entry that is not
    ``<kind>/<lang>``, or a language lacking a kind, is refused.

    >>> state_accumulators({"mean/en": None})
    Traceback (most recent call last):
    ...
    clas_lens.errors.DataValidationError: Unexpected state entry 'mean/en'; expected '<kind>/<lang>' with kind in ('count', 'active', 'sum', 'sumsq').
    """
    found: list[str] = []
    for key in state:
        kind, _, lang = key.partition("/")
        if kind not in KINDS or not lang:
            raise DataValidationError(f"Unexpected state entry {key!r}; expected '<kind>/<lang>' with kind in {KINDS}.")
        if lang not in found:
            found.append(lang)
    order = [l for l in langs if l in found] + [l for l in found if l not in langs]
    st = {}
    for lang in order:
        try:
            count, active, s, ss = (state[f"{k}/{lang}"] for k in KINDS)
        except KeyError as e:
            raise DataValidationError(f"State for {lang!r} lacks {e.args[0]!r}.") from None
        st[lang] = Accumulator(count, active, s, ss)  # cast to int64 / float64
    return st

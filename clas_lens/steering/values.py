"""Value tables of SetNeurons and AddNeurons: what a neuron is set to, or what is added to it.

A table is a number, a ``Float64[layer, neuron]`` tensor, or ``{lang: number | tensor}``. It is
resolved once from what the user gives: a number, a tensor, a dict, or a value name parsed by
:mod:`clas_lens.specs` (``"zero"``, ``"mean"`` from a NeuronStats, ``"median"`` / ``"pNN"`` from
the quantiles of :func:`clas_lens.collect_quantiles`). Saved tables keep only the values of the
neurons the mask selects (:func:`table_to_dict`).

>>> resolve_table("zero", what="SetNeurons", langs=None, stats=None, quantiles=None, quantile_levels=None)
0.0
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.specs import VALUE_NAMES, check_value_name, parse_level, quantile_level
from clas_lens.steering.checks import check_lang, check_strength
from clas_lens.steering.serialize import decode_values, encode_values


def table_langs(table: Any) -> list[str] | None:
    """The languages of a per-language table, None for one shared by all languages."""
    return list(table) if isinstance(table, Mapping) else None


def pick_quantile(q: Any, level: float, levels: Sequence[Any] | None, lang: str) -> Tensor:
    """The ``[layer, neuron]`` slice of quantiles ``q`` at ``level`` (``levels``: those of ``q``).

    >>> import torch
    >>> q = torch.arange(8.0).reshape(2, 2, 2)
    >>> pick_quantile(q, 0.9, ["median", "p90"], "en").tolist()
    [[4.0, 5.0], [6.0, 7.0]]
    """
    q = torch.as_tensor(q, dtype=torch.float64)
    if q.ndim == 2:
        return q
    if q.ndim != 3:
        raise DataValidationError(f"quantiles[{lang!r}] must be [q, layer, neuron] or [layer, neuron], got {tuple(q.shape)}.")
    if levels is None and q.shape[0] != 1:
        raise DataValidationError(
            "quantiles hold several levels ([q, layer, neuron]): pass quantile_levels=[...] (the "
            "levels given to collect_quantiles) so the right one can be picked."
        )
    if levels is None and q.shape[0] == 1:
        return q[0]
    levels = [parse_level(x) for x in levels]
    hits = [i for i, x in enumerate(levels) if abs(x - level) < 1e-9]
    if not hits:
        raise DataValidationError(f"Quantile level {level} was not collected (levels: {levels}).")
    return q[hits[0]]


def usable_langs(wanted: Sequence[str] | None, available: list[str], what: str) -> list[str]:
    """One language: it must be available. A template (several): those available (>= 1).

    >>> usable_langs(["en", "xx"], ["en", "de"], "the stats"), usable_langs(None, ["de"], "the stats")
    (['en'], ['de'])
    """
    if wanted is None:
        return available
    wanted = list(wanted)
    if len(wanted) == 1:
        check_lang(wanted[0], available, what)
        return wanted
    use = [l for l in wanted if l in available]
    if not use:
        raise DataValidationError(f"None of the languages {wanted} are in {what} (it has {sorted(available)}).")
    return use


def resolve_table(
    value: Any,
    *,
    what: str,
    langs: Sequence[str] | None,
    stats: Any,
    quantiles: Any,
    quantile_levels: Sequence[Any] | None,
) -> Any:
    """float | Tensor[layer, neuron] (float64) | {lang: float | Tensor}; from stats if asked.

    >>> import torch
    >>> q = {"en": torch.ones(1, 2, 3)}
    >>> resolve_table("p75", what="SetNeurons", langs=None, stats=None, quantiles=q,
    ...               quantile_levels=[0.75])["en"].shape
    torch.Size([2, 3])
    """
    if isinstance(value, bool):
        raise DataValidationError(f"{what}: value must be a number, a tensor, a dict or one of {list(VALUE_NAMES)}.")
    if isinstance(value, (int, float)):
        return check_strength("value", value)
    if isinstance(value, Tensor):
        return value.detach().to("cpu", torch.float64)
    if isinstance(value, Mapping):
        return {
            str(l): (check_strength("value", v) if isinstance(v, (int, float)) else torch.as_tensor(v).detach().to("cpu", torch.float64))
            for l, v in value.items()
        }
    if not isinstance(value, str):
        raise DataValidationError(f"{what}: unsupported value {value!r}.")
    try:
        name = check_value_name(value)
    except DataValidationError:
        raise DataValidationError(
            f"{what}: unknown value {value!r}; use a number, a tensor, a dict or one of {list(VALUE_NAMES)} "
            "(any 'pNN' quantile works too)."
        ) from None
    if name == "zero":
        return 0.0
    if name == "mean":
        if stats is None:
            raise DataValidationError(f"{what}: value='mean' needs stats= (a NeuronStats from clas_lens.collect_stats).")
        stat_langs = list(getattr(stats, "langs", []))
        use = usable_langs(langs, stat_langs, "the NeuronStats")
        return {l: torch.as_tensor(stats.mean(l)).detach().to("cpu", torch.float64) for l in use}
    level = quantile_level(name)
    if quantiles is None:
        raise DataValidationError(
            f"{what}: value={value!r} needs quantiles= (the result of clas_lens.collect_quantiles "
            "with that level, plus quantile_levels=[...])."
        )
    levels = quantile_levels if quantile_levels is not None else getattr(quantiles, "levels", None)
    use = usable_langs(langs, list(quantiles), "the quantiles")
    return {l: pick_quantile(quantiles[l], level, levels, l) for l in use}


def table_for(table: Any, lang: str | None, what: str) -> float | Tensor:
    """The values of ``lang`` in a table (a shared table is the same for every language).

    >>> table_for({"en": 1.0, "de": 2.0}, "de", "SetNeurons"), table_for(3.0, None, "SetNeurons")
    (2.0, 3.0)
    """
    if isinstance(table, Mapping):
        if lang is None:
            raise DataValidationError(f"{what} has per-language values: set target_lang (or call .for_lang).")
        check_lang(lang, list(table), f"{what}'s values")
        return table[lang]
    return table


def table_to_dict(table: Any, where: Callable[[str | None], Tensor | None]) -> Any:
    """Encode values compactly: only at the neurons the (language's) mask ``where(lang)`` selects.

    >>> import torch
    >>> d = table_to_dict({"en": torch.ones(1, 3, dtype=torch.float64)}, lambda lang: torch.tensor([[True, False, False]]))
    >>> d["per_lang"]["en"]["tensor"]["layers"]
    {'0': {'index': [0], 'value': [1.0]}}
    >>> table_from_dict(d)["en"].tolist()
    [[1.0, nan, nan]]
    """

    def one(v, lang):
        if isinstance(v, Tensor):
            w = where(lang)
            if w is None:
                w = torch.ones(v.shape, dtype=torch.bool)
            return {"tensor": encode_values(v, w)}
        return v

    if isinstance(table, Mapping):
        return {"per_lang": {l: one(v, l) for l, v in table.items()}}
    return one(table, None)


def table_from_dict(d: Any) -> Any:
    """Inverse of :func:`table_to_dict` (unstored neurons are NaN)."""

    def one(v):
        if isinstance(v, Mapping) and "tensor" in v:
            return decode_values(v["tensor"])
        return v

    if isinstance(d, Mapping) and "per_lang" in d:
        return {l: one(v) for l, v in d["per_lang"].items()}
    return one(d)


def value_label(value: Any) -> Any:
    """How ``value`` is recorded in ``to_dict``: names and numbers as they are, else ``"custom"``.

    >>> value_label("p90"), value_label(2.5), value_label({"en": 1.0})
    ('p90', 2.5, 'custom')
    """
    if isinstance(value, str) or isinstance(value, (int, float)):
        return value
    return "custom"

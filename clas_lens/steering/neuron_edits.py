"""Neuron edits with a mask and a strength: :class:`SetNeurons`, :class:`Deactivate`,
:class:`AddNeurons`, on the shared base :class:`NeuronEdit` (docs/methods.md, "Peer methods").

=================  ===================================================================
``SetNeurons``     ``h' = (1 - strength) * h + strength * v`` (Int-mu with ``"mean"``)
``Deactivate``     ``h' = (1 - strength) * h`` (LAPE deactivation)
``AddNeurons``     ``h' = h + strength * amount`` (LAPE-style activation)
=================  ===================================================================

``strength`` was called ``alpha`` (SetNeurons, Deactivate) and ``scale`` (AddNeurons); the old
keywords still work for one release with a DeprecationWarning, and old saved dicts load.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from clas_lens.errors import ClasLensError, DataValidationError, MismatchError
from clas_lens.models import check_model_identity
from clas_lens.sites import HookPair, check_site, neuron_sites
from clas_lens.steering.checks import check_lang, check_strength, model_device, model_layers
from clas_lens.steering.checks import renamed_argument, take_renamed, upgrade_keys
from clas_lens.steering.masks import check_shape, get_mask, is_neuron_set, source_from_dict
from clas_lens.steering.masks import source_is_per_lang, source_langs, source_to_dict, source_union
from clas_lens.steering.positions import check_positions, identity, masked_edit, pad_tracker
from clas_lens.steering.registry import Intervention, register_intervention
from clas_lens.steering.serialize import info_dict, layers_to_json
from clas_lens.steering.values import resolve_table, table_for, table_from_dict, table_langs, table_to_dict, value_label
from clas_lens.vocab import CATEGORIES, DEFAULT_SITE


class NeuronEdit(Intervention):
    """Shared plumbing of SetNeurons / Deactivate / AddNeurons (mask source + value table).

    Subclasses are dataclasses with the fields ``mask``, ``target_lang``, ``strength``,
    ``layers``, ``positions``, ``site``, ``category`` and ``model_info``, and implement
    :meth:`_rule` (the edit of one layer's masked neurons).
    """

    def _mask_langs(self) -> list[str] | None:
        if source_is_per_lang(self.mask, self.category):
            return source_langs(self.mask)
        return None

    @classmethod
    def from_dict(cls, d: Mapping):
        """Rebuild from :meth:`to_dict` (masks as index lists, value tables where present).

        Dicts saved before the rename of ``alpha``/``scale`` to ``strength`` load too.
        """
        d = upgrade_keys(cls, d)
        d.pop("type", None)
        d["mask"] = source_from_dict(d["mask"])
        if "values" in d:
            d["values"] = table_from_dict(d["values"])
        return cls(**d)

    def _init_table(self, what: str, spec: Any, noun: str, *, stats=None, quantiles=None, quantile_levels=None) -> None:
        """Site, model identity and the value table of SetNeurons / AddNeurons from ``spec``."""
        if self.site is None:
            self.site = getattr(stats, "site", None) or DEFAULT_SITE
        check_site(self.site)
        if stats is not None and getattr(stats, "site", None) not in (None, self.site):
            raise MismatchError(
                f"The NeuronStats were collected at site {stats.site!r} but {what}(site={self.site!r}): "
                "setting or adding a value is site dependent; pass site=stats.site."
            )
        if self.model_info is None:
            self.model_info = info_dict(getattr(stats, "model_info", None))
        self._validate_common()
        if self.values is None:
            langs = [self.target_lang] if self.target_lang is not None else self._mask_langs()
            self.values = resolve_table(
                spec, what=what, langs=langs, stats=stats, quantiles=quantiles,
                quantile_levels=quantile_levels,
            )
        if self.target_lang is not None and self._table_langs() is not None:
            check_lang(self.target_lang, self._table_langs(), f"{what}' {noun}")

    def _table(self) -> Any:
        return 0.0

    def _table_langs(self) -> list[str] | None:
        return table_langs(self._table())

    @property
    def needs_lang(self) -> bool:
        per_lang = self._mask_langs() is not None or self._table_langs() is not None
        return per_lang and self.target_lang is None

    @property
    def is_noop(self) -> bool:
        return self.strength == 0.0

    def for_lang(self, lang: str):
        if self._mask_langs() is not None:
            check_lang(lang, self._mask_langs(), f"{type(self).__name__}'s mask")
        if self._table_langs() is not None:
            check_lang(lang, self._table_langs(), f"{type(self).__name__}'s values")
        return dataclasses.replace(self, target_lang=lang)

    def _validate_common(self) -> None:
        check_positions(self.positions)
        if self.category not in CATEGORIES:
            raise DataValidationError(f"category={self.category!r}: choose one of {list(CATEGORIES)}.")
        if self.target_lang is not None and self._mask_langs() is not None:
            check_lang(self.target_lang, self._mask_langs(), f"{type(self).__name__}'s mask")
        if not (isinstance(self.mask, (Tensor, Mapping)) or is_neuron_set(self.mask)):
            raise DataValidationError(
                f"{type(self).__name__}: a mask must be a Bool[layer, neuron] tensor, a dict "
                f"{{lang: tensor}} or a NeuronSet, got {type(self.mask).__name__}."
            )

    def _rule(self, layer: int, idx: Tensor, values: Any, dev) -> Callable[[Tensor], Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _layer_values(self, values: Any, layer: int, idx: Tensor, dev) -> Tensor | float:
        if isinstance(values, Tensor):
            v = values[layer, idx.cpu()]
            if torch.isnan(v).any():
                raise DataValidationError(
                    f"{type(self).__name__}: {int(torch.isnan(v).sum())} masked neurons of layer {layer} "
                    "have no value (NaN): collect the statistic for them or narrow the mask."
                )
            return v.to(dev, torch.float32)
        return float(values)

    def hooks(self, model) -> list[HookPair]:
        what = type(self).__name__
        if self.needs_lang:
            raise DataValidationError(f"{what} has per-language masks or values: set target_lang or call .for_lang(lang).")
        mask = get_mask(self.mask, self.category, self.target_lang, what).cpu()
        check_shape(model, mask, what)
        check_model_identity(model, info_dict(getattr(self.mask, "model_info", None)), f"neurons of {what}")
        check_model_identity(model, self.model_info, f"values of {what}")
        values = table_for(self._table(), self.target_lang, what)
        if isinstance(values, Tensor) and tuple(values.shape) != tuple(mask.shape):
            raise MismatchError(f"{what}: values of shape {tuple(values.shape)} do not match the mask {tuple(mask.shape)}.")
        sites = neuron_sites(model)
        tracker = pad_tracker(model)
        dev = model_device(model)
        layers = model_layers(model, self.layers)
        out: list[HookPair] = []
        noop = self.is_noop
        for layer in layers:
            idx = mask[layer].nonzero().flatten()
            if noop or len(idx) == 0:
                fn = identity
            else:
                rule = self._rule(layer, idx, values, dev)
                fn = masked_edit(tracker, self.positions, idx.to(dev), rule)
            out.extend(sites.edit_hooks(self.site, layer, fn))
        return out

    def _base_dict(self) -> dict:
        return {
            "type": type(self).__name__,
            "mask": source_to_dict(self.mask, [self.category]),
            "target_lang": self.target_lang,
            "layers": layers_to_json(self.layers),
            "positions": self.positions,
            "site": self.site,
            "category": self.category,
        }

    def _where(self, lang: str | None) -> Tensor | None:
        """The neurons whose values matter (for compact serialisation)."""
        try:
            if lang is not None and source_is_per_lang(self.mask, self.category):
                return get_mask(self.mask, self.category, lang, type(self).__name__).cpu()
            return source_union(self.mask, self.category)
        except ClasLensError:
            return None


@register_intervention
@renamed_argument("alpha", "strength")
@dataclasses.dataclass(eq=False)
class SetNeurons(NeuronEdit):
    """Set masked neurons to a value: ``h' = (1 - strength) * h + strength * v`` (1: ``h' = v``).

    Args:
        mask: ``Bool[layer, neuron]`` tensor, ``{lang: tensor}``, or a NeuronSet (its
            ``category`` mask, by default the target language's "specific" neurons).
        value: ``"mean"`` (needs ``stats``: Int-mu), ``"median"`` / ``"p75"`` / ``"p90"`` /
            ``"p95"`` (needs ``quantiles`` from :func:`clas_lens.collect_quantiles`, and
            ``quantile_levels`` when it holds several levels), ``"zero"``, a number, a
            ``[layer, neuron]`` tensor, or ``{lang: number | tensor}``. Values from statistics
            are per language: the target language's.
        target_lang: the language whose mask/values are used; None makes a per-language
            template when either depends on the language.
        strength: 0 is an exact no-op (formerly ``alpha``, still accepted, deprecated).
        layers: None (every layer), a layer spec (:mod:`clas_lens.specs`), e.g. ``"last:k"``.
        site: where the values live; defaults to the statistics' site (values set at ``act``
            and at ``post`` differ), else ``"post"``.
        stats, quantiles, quantile_levels: sources of the values (not stored: the resolved
            numbers are, compactly, in ``values``).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> mask = torch.zeros(2, 64, dtype=torch.bool); mask[0, :4] = True
    >>> iv = SetNeurons(mask, value=2.5)
    >>> SetNeurons.from_dict(iv.to_dict()).to_dict() == iv.to_dict()
    True
    """

    mask: Any
    value: Any = "mean"
    target_lang: str | None = None
    strength: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str | None = None
    category: str = "specific"
    values: Any = None
    model_info: dict | None = None
    stats: dataclasses.InitVar[Any] = None
    quantiles: dataclasses.InitVar[Any] = None
    quantile_levels: dataclasses.InitVar[Any] = None

    def __post_init__(self, stats=None, quantiles=None, quantile_levels=None) -> None:
        self.strength = check_strength("strength", self.strength)
        self._init_table(
            "SetNeurons", self.value, "values", stats=stats, quantiles=quantiles,
            quantile_levels=quantile_levels,
        )

    def _table(self) -> Any:
        return self.values

    def _rule(self, layer, idx, values, dev):
        v = self._layer_values(values, layer, idx, dev)
        strength = self.strength

        def rule(h):
            vv = v.to(h.device, h.dtype) if isinstance(v, Tensor) else v
            if strength == 1.0:
                return torch.zeros_like(h) + vv
            return (1.0 - strength) * h + strength * vv

        return rule

    @classmethod
    def int_mu(
        cls,
        neurons,
        stats,
        lang: str | None = None,
        *,
        layers=None,
        positions: str = "all",
        strength: float = 1.0,
        alpha: float | None = None,
    ) -> "SetNeurons":
        """Int-mu (Mondal et al. 2025): the language's specific neurons set to their mean on it.

        ``lang=None`` gives a template that ``evaluate`` binds per language; the site is the
        statistics' site. ``alpha`` is the deprecated name of ``strength``.

        >>> import torch
        >>> from clas_lens.steering import MaskSet
        >>> class Stats:
        ...     langs, site, model_info = ["en"], "act", None
        ...     def mean(self, lang): return torch.ones(2, 64)
        >>> ns = MaskSet(langs=["en"], specific={"en": torch.eye(2, 64, dtype=torch.bool)})
        >>> SetNeurons.int_mu(ns, Stats(), "en").site
        'act'
        """
        if alpha is not None:
            strength = take_renamed({"alpha": alpha}, "alpha", "strength", "SetNeurons.int_mu(alpha=...)")["strength"]
        return cls(neurons, value="mean", stats=stats, target_lang=lang, layers=layers, positions=positions, strength=strength)

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(value=value_label(self.value), strength=self.strength, values=table_to_dict(self.values, self._where), model_info=self.model_info)
        return d


@register_intervention
@renamed_argument("alpha", "strength")
@dataclasses.dataclass(eq=False)
class Deactivate(NeuronEdit):
    """Zero masked neurons (LAPE deactivation): ``h' = (1 - strength) * h`` (1: ``h' = 0``).

    ``mask`` as in :class:`SetNeurons`; zeroing gives the same result at ``post`` and ``act``.
    ``strength`` was called ``alpha`` (still accepted, deprecated).

    >>> import torch
    >>> iv = Deactivate({"de": torch.eye(2, 64, dtype=torch.bool)})   # per-language mask
    >>> iv.needs_lang, iv.for_lang("de").needs_lang
    (True, False)
    """

    mask: Any
    target_lang: str | None = None
    strength: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str = DEFAULT_SITE
    category: str = "specific"
    model_info: dict | None = None

    def __post_init__(self) -> None:
        self.strength = check_strength("strength", self.strength)
        check_site(self.site)
        self._validate_common()

    def _rule(self, layer, idx, values, dev):
        strength = self.strength
        if strength == 1.0:
            return torch.zeros_like
        return lambda h: (1.0 - strength) * h

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(strength=self.strength, model_info=self.model_info)
        return d


@register_intervention
@renamed_argument("scale", "strength")
@dataclasses.dataclass(eq=False)
class AddNeurons(NeuronEdit):
    """Add to masked neurons (LAPE-style activation): ``h' = h + strength * amount``.

    Args:
        mask: as in :class:`SetNeurons`.
        amount: a number, a ``[layer, neuron]`` tensor, ``{lang: number | tensor}``, or
            ``"mean"`` with ``stats`` (the target language's mean activation, as in
            d-gurgurov/Language-Neurons-Manipulation).
        strength: multiplies the amount; 0 (or amount 0) is an exact no-op (formerly
            ``scale``, still accepted, deprecated).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import steer
    >>> model = tiny_model("llama")
    >>> iv = AddNeurons(torch.ones(2, 64, dtype=torch.bool), 0.0)
    >>> tokens = model.to_tokens("hola")
    >>> with steer(model, iv):
    ...     same = torch.equal(model(tokens), model(tokens))
    >>> same, iv.is_noop
    (True, True)
    """

    mask: Any
    amount: Any = 1.0
    target_lang: str | None = None
    strength: float = 1.0
    layers: Any = None
    positions: str = "all"
    site: str | None = None
    category: str = "specific"
    values: Any = None
    model_info: dict | None = None
    stats: dataclasses.InitVar[Any] = None

    def __post_init__(self, stats=None) -> None:
        self.strength = check_strength("strength", self.strength)
        self._init_table("AddNeurons", self.amount, "amounts", stats=stats)

    def _table(self) -> Any:
        return self.values

    @property
    def is_noop(self) -> bool:
        if self.strength == 0.0:
            return True
        v = self.values
        if isinstance(v, (int, float)):
            return float(v) == 0.0
        if isinstance(v, Mapping) and self.target_lang is not None and isinstance(v.get(self.target_lang), (int, float)):
            return float(v[self.target_lang]) == 0.0
        return False

    def _rule(self, layer, idx, values, dev):
        a = self._layer_values(values, layer, idx, dev)
        strength = self.strength

        def rule(h):
            aa = a.to(h.device, h.dtype) if isinstance(a, Tensor) else a
            return h + strength * aa

        return rule

    def to_dict(self) -> dict:
        d = self._base_dict()
        d.update(amount=value_label(self.amount), strength=self.strength, values=table_to_dict(self.values, self._where), model_info=self.model_info)
        return d

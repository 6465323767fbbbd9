"""Neuron edits with a mask and a strength: :class:`SetNeurons`, :class:`Deactivate`,
:class:`AddNeurons`, on the shared base :class:`NeuronEdit` (docs/methods.md, "Peer methods").

=================  ===================================================================
``SetNeurons``     ``h' = (1 - strength) * h + strength * v`` (Int-mu with ``"mean"``)
``Deactivate``     ``h' = (1 - strength) * h`` (LAPE deactivation)
``AddNeurons``     ``h' = h + strength * amount`` (LAPE-style activation)
=================  ===================================================================

``strength`` was called ``alpha`` (SetNeurons, Deactivate) and ``scale`` (AddNeurons); the old
keywords still work for one release with a DeprecationWarning, and old saved dicts load.
``edit_bos`` (default False) leaves the BOS position untouched, as the statistics leave it out;
the shared plumbing is :class:`~clas_lens.steering.edit_base.NeuronEdit`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor

from clas_lens.sites import check_site
from clas_lens.steering.checks import check_strength, renamed_argument, take_renamed
from clas_lens.steering.edit_base import NeuronEdit
from clas_lens.steering.registry import register_intervention
from clas_lens.steering.values import table_to_dict, value_label
from clas_lens.vocab import DEFAULT_SITE


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
        edit_bos: whether the BOS position is set too (default False: statistics leave it out).

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
    edit_bos: bool = False

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
        edit_bos: bool = False,
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
        return cls(
            neurons, value="mean", stats=stats, target_lang=lang, layers=layers, positions=positions,
            strength=strength, edit_bos=edit_bos,
        )

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
    ``strength`` was called ``alpha`` (still accepted, deprecated). ``edit_bos`` as in
    :class:`SetNeurons` (default False).

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
    edit_bos: bool = False

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
        edit_bos: whether the BOS position is edited too (default False).

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
    edit_bos: bool = False

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

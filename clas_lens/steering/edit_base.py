"""The shared base of the mask-and-strength neuron edits (:class:`NeuronEdit`): reading the mask
source, the value table, the per-language binding, the hooks and the dict round trip of
:class:`~clas_lens.steering.SetNeurons`, :class:`~clas_lens.steering.Deactivate` and
:class:`~clas_lens.steering.AddNeurons` (:mod:`~clas_lens.steering.neuron_edits`).

Every edit has ``edit_bos`` (default False): the BOS position is left untouched, as the
statistics leave it out (:mod:`~clas_lens.steering.positions`). Dicts saved before the option
load with ``edit_bos=True``, the behaviour they were saved with.

>>> import torch
>>> from clas_lens.steering import Deactivate
>>> isinstance(Deactivate(torch.eye(2, 64, dtype=torch.bool)), NeuronEdit)
True
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from clas_lens.errors import ClasLensError, DataValidationError, MismatchError
from clas_lens.models import check_model_identity
from clas_lens.sites import HookPair, check_site, neuron_sites
from clas_lens.steering.checks import check_lang, model_device, model_layers, upgrade_keys
from clas_lens.steering.masks import check_shape, get_mask, is_neuron_set, source_from_dict
from clas_lens.steering.masks import source_is_per_lang, source_langs, source_to_dict, source_union
from clas_lens.steering.positions import check_positions, identity, masked_edit, pad_tracker
from clas_lens.steering.registry import Intervention
from clas_lens.steering.serialize import info_dict, layers_to_json
from clas_lens.steering.values import resolve_table, table_for, table_from_dict, table_langs
from clas_lens.vocab import CATEGORIES, DEFAULT_SITE

__all__ = ["NeuronEdit"]


class NeuronEdit(Intervention):
    """Shared plumbing of SetNeurons / Deactivate / AddNeurons (mask source + value table).

    Subclasses are dataclasses with the fields ``mask``, ``target_lang``, ``strength``,
    ``layers``, ``positions``, ``site``, ``category``, ``model_info`` and ``edit_bos``, and
    implement :meth:`_rule` (the edit of one layer's masked neurons).
    """

    def _mask_langs(self) -> list[str] | None:
        if source_is_per_lang(self.mask, self.category):
            return source_langs(self.mask)
        return None

    @classmethod
    def from_dict(cls, d: Mapping):
        """Rebuild from :meth:`to_dict` (masks as index lists, value tables where present).

        Dicts saved before the rename of ``alpha``/``scale`` to ``strength`` load too, and
        dicts saved before ``edit_bos`` existed load with ``edit_bos=True`` (as they were saved).
        """
        d = upgrade_keys(cls, d)
        d.pop("type", None)
        d.setdefault("edit_bos", True)
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
        self.edit_bos = bool(self.edit_bos)
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
                fn = masked_edit(tracker, self.positions, idx.to(dev), rule, self.edit_bos)
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
            "edit_bos": self.edit_bos,
        }

    def _where(self, lang: str | None) -> Tensor | None:
        """The neurons whose values matter (for compact serialisation)."""
        try:
            if lang is not None and source_is_per_lang(self.mask, self.category):
                return get_mask(self.mask, self.category, lang, type(self).__name__).cpu()
            return source_union(self.mask, self.category)
        except ClasLensError:
            return None

"""The uniform-gain control of CLAS: every MLP neuron of the steered layers times one factor.

CLAS boosts the shared neurons, often most of a layer's neurons (two thirds of Gemma-3-270M's
last four layers are partial-shared), so part of its effect may be that of a plain gain on the
MLP. :class:`UniformGain` is that gain alone, ``h' = gain * h`` on all neurons of the steered
layers; :meth:`UniformGain.matching` sets ``gain`` to the mean per-neuron gain of a given
:class:`~clas_lens.steering.ClasSteering` over those layers,
``mean[(1 - alpha) + alpha (1 + beta M_shared)(1 - gamma M_specific)]`` over every neuron of the
steered layers, with the same layers, positions, site and ``edit_bos``. A CLAS template gives a
per-language table of gains (``for_lang`` picks one). See docs/methods.md, "The CLAS rule".

On models that normalise the MLP output before adding it to the residual stream (Gemma 3's
``post_feedforward_layernorm``, hence Gemma-3-270M) the norm cancels a uniform gain up to its
epsilon: there UniformGain is (almost) a no-op, which is itself the control's answer -- only
the non-uniform part of CLAS's gains can act.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import torch

from clas_lens.errors import DataValidationError
from clas_lens.sites import HookPair, check_site, neuron_sites
from clas_lens.specs import resolve_layers
from clas_lens.steering.checks import check_lang, check_strength, model_device, model_layers
from clas_lens.steering.masks import check_shape, source_langs
from clas_lens.steering.positions import check_positions, identity, masked_edit, pad_tracker
from clas_lens.steering.registry import Intervention, register_intervention
from clas_lens.steering.serialize import layers_to_json
from clas_lens.vocab import DEFAULT_SITE, DEFAULT_STEER_LAYERS

__all__ = ["UniformGain"]


@register_intervention
@dataclasses.dataclass(eq=False)
class UniformGain(Intervention):
    """Multiply every MLP neuron of the steered layers by one factor: ``h' = gain * h``.

    Args:
        gain: the factor (1 is an exact no-op), or ``{lang: factor}`` (a per-language
            template that ``for_lang`` binds). A multiplicative factor, not a strength: its
            no-op value is 1, so it is not called ``strength`` (docs/glossary.md).
        layers: a layer spec (:mod:`clas_lens.specs`); default ``"last:4"`` as CLAS.
        target_lang: the language whose gain is used when ``gain`` is a table.
        positions: ``"all"`` or ``"last"`` real token; padding is never touched.
        site: ``"post"`` (default) or ``"act"``; scaling gives the same result at both.
        edit_bos: whether the BOS position is scaled too (default False, as every neuron edit).

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import ClasSteering, MaskSet, steer
    >>> model = tiny_model("llama")
    >>> ns = MaskSet(langs=["en", "de"], specific={l: torch.zeros(2, 64, dtype=torch.bool) for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.arange(64).repeat(2, 1) < 32})
    >>> ug = UniformGain.matching(ClasSteering(ns, "de", beta=0.5, gamma=0.0), model)
    >>> round(ug.gain, 4), ug.layers                      # half the neurons boosted by 1.5
    (1.25, 'last:4')
    >>> tokens = model.to_tokens("Der Hund")
    >>> with steer(model, ug):
    ...     steered = model(tokens)
    >>> bool((steered - model(tokens)).abs().max() > 0), UniformGain(1.0).is_noop
    (True, True)
    """

    gain: Any = 1.0
    layers: Any = DEFAULT_STEER_LAYERS
    target_lang: str | None = None
    positions: str = "all"
    site: str = DEFAULT_SITE
    edit_bos: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.gain, Mapping):
            if not self.gain:
                raise DataValidationError("UniformGain: the table of gains is empty.")
            self.gain = {str(l): check_strength("gain", g) for l, g in self.gain.items()}
        else:
            self.gain = check_strength("gain", self.gain)
        check_positions(self.positions)
        check_site(self.site)
        self.edit_bos = bool(self.edit_bos)
        if self.target_lang is not None and isinstance(self.gain, Mapping):
            check_lang(self.target_lang, list(self.gain), "UniformGain's gains")

    @classmethod
    def matching(cls, clas, model=None) -> "UniformGain":
        """The uniform gain whose mean per-neuron gain over CLAS's steered layers equals CLAS's.

        ``clas`` is a :class:`~clas_lens.steering.ClasSteering`; bound (or language-free) it
        gives one factor, a template (``target_lang=None``) a per-language table over its
        neurons' languages. ``model`` (optional) checks the masks' shape and resolves the
        layer spec; without it the masks' shape (the model's) is used. Layers, positions, site
        and ``edit_bos`` are CLAS's.

        >>> import torch
        >>> from clas_lens.steering import ClasSteering, MaskSet
        >>> ns = MaskSet(langs=["en", "de"], specific={"en": torch.eye(2, 4, dtype=torch.bool),
        ...              "de": torch.zeros(2, 4, dtype=torch.bool)},
        ...              categories={"partial_shared": torch.zeros(2, 4, dtype=torch.bool)})
        >>> UniformGain.matching(ClasSteering(ns, layers=[0], gamma=1.0)).gain
        {'en': 0.75, 'de': 1.0}
        """
        n_layers = None
        if model is not None:
            n_layers = neuron_sites(model).n_layers
        if getattr(clas, "needs_lang", False):
            langs = source_langs(clas.neurons) or []
            if not langs:
                raise DataValidationError("UniformGain.matching: the CLAS template's neurons name no languages.")
            anchor = getattr(clas, "anchor", None)
            if not getattr(clas, "steer_anchor", True) and anchor is not None and anchor not in langs:
                langs = [anchor, *langs]  # CLAS leaves it unsteered: gain 1
            gain: Any = {l: _mean_gain(clas.for_lang(l), model, n_layers) for l in langs}
        else:
            gain = _mean_gain(clas, model, n_layers)
        return cls(
            gain=gain, layers=clas.layers, target_lang=None, positions=clas.positions, site=clas.site,
            edit_bos=clas.edit_bos,
        )

    @property
    def needs_lang(self) -> bool:
        return isinstance(self.gain, Mapping) and self.target_lang is None

    def _factor(self) -> float:
        if isinstance(self.gain, Mapping):
            if self.target_lang is None:
                raise DataValidationError("UniformGain has per-language gains: set target_lang or call .for_lang(lang).")
            check_lang(self.target_lang, list(self.gain), "UniformGain's gains")
            return self.gain[self.target_lang]
        return self.gain

    @property
    def is_noop(self) -> bool:
        return not self.needs_lang and self._factor() == 1.0

    def for_lang(self, lang: str) -> "UniformGain":
        if not isinstance(self.gain, Mapping):
            return self
        check_lang(lang, list(self.gain), "UniformGain's gains")
        return dataclasses.replace(self, target_lang=lang)

    def hooks(self, model) -> list[HookPair]:
        factor = self._factor()
        sites = neuron_sites(model)
        tracker = pad_tracker(model)
        dev = model_device(model)
        idx = torch.arange(sites.shape[1], device=dev)
        out: list[HookPair] = []
        for layer in model_layers(model, self.layers):
            if factor == 1.0:
                fn = identity
            else:
                fn = masked_edit(tracker, self.positions, idx, lambda h: h * factor, self.edit_bos)
            out.extend(sites.edit_hooks(self.site, layer, fn))
        return out

    def to_dict(self) -> dict:
        return {
            "type": type(self).__name__,
            "gain": dict(self.gain) if isinstance(self.gain, Mapping) else self.gain,
            "layers": layers_to_json(self.layers),
            "target_lang": self.target_lang,
            "positions": self.positions,
            "site": self.site,
            "edit_bos": self.edit_bos,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "UniformGain":
        d = dict(d)
        d.pop("type", None)
        return cls(**d)


def _mean_gain(clas, model, n_layers: int | None) -> float:
    """CLAS's mean per-neuron gain over every neuron of its steered layers (a bound CLAS)."""
    if model is not None:
        check_shape(model, clas.masks()[0], "ClasSteering's NeuronSet")
    g = clas.gains(n_layers)
    rows = g[resolve_layers(clas.layers, g.shape[0] if n_layers is None else n_layers)]
    value = float(rows.mean())
    if not math.isfinite(value):
        raise DataValidationError("UniformGain.matching: CLAS's mean gain is not finite.")
    return value

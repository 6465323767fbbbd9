"""The CLAS rule (docs/methods.md, "The CLAS rule"): Cross-Lingual Activation Steering.

In each bridge layer the shared neurons are boosted and the target language's specific neurons
suppressed, then mixed with the unsteered activation:
``h1 = h * (1 + beta * M_shared)``, ``h2 = h1 * (1 - gamma * M_specific)``,
``h' = (1 - alpha) * h + alpha * h2``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from jaxtyping import Bool
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.models import check_model_identity
from clas_lens.sites import HookPair, check_site, neuron_sites
from clas_lens.steering.checks import check_lang, check_strength, model_device, model_layers
from clas_lens.steering.masks import MaskSet, check_shape, is_neuron_set, source_langs
from clas_lens.steering.positions import check_positions, identity, masked_edit, pad_tracker
from clas_lens.steering.registry import Intervention, register_intervention
from clas_lens.steering.serialize import info_dict, layers_to_json
from clas_lens.vocab import DEFAULT_SITE, DEFAULT_STEER_LAYERS

#: Which shared neurons CLAS boosts: partial-shared, all-shared or both.
SHARED_OPTIONS: tuple[str, ...] = ("partial", "all", "both")
#: Which specific neurons CLAS suppresses: the target language's or every language's.
SPECIFIC_OPTIONS: tuple[str, ...] = ("target", "all")
#: The neuron categories behind each :data:`SHARED_OPTIONS` choice.
SHARED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "partial": ("partial_shared",),
    "all": ("all_shared",),
    "both": ("partial_shared", "all_shared"),
}


@register_intervention
@dataclasses.dataclass(eq=False)
class ClasSteering(Intervention):
    """Cross-Lingual Activation Steering on MLP neurons (docs/methods.md), in the bridge layers.

    ``h1 = h * (1 + beta * M_shared)``, ``h2 = h1 * (1 - gamma * M_specific)``,
    ``h' = (1 - alpha) * h + alpha * h2``.

    Args:
        neurons: a NeuronSet (anything with ``mask(category, lang)``, ``langs``, e.g. a
            :class:`~clas_lens.steering.MaskSet`).
        target_lang: whose specific neurons are suppressed; None makes a per-language
            template (``for_lang``; ``evaluate`` binds each evaluated language).
        layers: bridge layers, a layer spec (:mod:`clas_lens.specs`): a list of block indices
            or ``"last:k"``. Default ``"last:4"`` (:data:`clas_lens.vocab.DEFAULT_STEER_LAYERS`):
            the paper only says "near the output".
        alpha, beta, gamma: mix, boost of shared neurons, suppression of specific neurons.
            Defaults 1, 0.2, 0.2 (those of the public reimplementation, not the paper's).
        shared: ``"partial"`` (partial-shared neurons, default), ``"all"`` (all-shared) or
            ``"both"``.
        specific: ``"target"`` (the target language's specific neurons, default) or ``"all"``
            (every language's).
        positions: ``"all"`` or ``"last"`` real token.
        site: ``"post"`` (default) or ``"act"``; a scaling rule gives the same result at both.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.steering import MaskSet, steer
    >>> model = tiny_model("gemma3")
    >>> g = torch.Generator().manual_seed(0)
    >>> ns = MaskSet(langs=["en", "de"],
    ...              specific={l: torch.rand(2, 64, generator=g) < 0.1 for l in ["en", "de"]},
    ...              categories={"partial_shared": torch.rand(2, 64, generator=g) < 0.3})
    >>> clas = ClasSteering(ns, beta=0.5, gamma=0.5)      # a template: target_lang=None
    >>> tokens = model.to_tokens("Der Hund")
    >>> with steer(model, clas.for_lang("de")):
    ...     steered = model(tokens)
    >>> bool((steered - model(tokens)).abs().max() > 0)
    True
    >>> ClasSteering.from_dict(clas.for_lang("de").to_dict()).target_lang
    'de'
    """

    neurons: Any
    target_lang: str | None = None
    layers: Any = DEFAULT_STEER_LAYERS
    alpha: float = 1.0
    beta: float = 0.2
    gamma: float = 0.2
    shared: str = "partial"
    specific: str = "target"
    positions: str = "all"
    site: str = DEFAULT_SITE

    def __post_init__(self) -> None:
        if not is_neuron_set(self.neurons):
            raise DataValidationError(
                "ClasSteering needs a NeuronSet (an object with .mask(category, lang)), e.g. "
                f"clas_lens.identify_neurons(stats) or a steering.MaskSet; got {type(self.neurons).__name__}."
            )
        if self.shared not in SHARED_OPTIONS:
            raise DataValidationError(f"shared={self.shared!r}: choose one of {list(SHARED_OPTIONS)}.")
        if self.specific not in SPECIFIC_OPTIONS:
            raise DataValidationError(f"specific={self.specific!r}: choose one of {list(SPECIFIC_OPTIONS)}.")
        check_positions(self.positions)
        check_site(self.site)
        self.alpha = check_strength("alpha", self.alpha)
        self.beta = check_strength("beta", self.beta)
        self.gamma = check_strength("gamma", self.gamma)
        if self.target_lang is not None and self.specific == "target":
            check_lang(self.target_lang, source_langs(self.neurons), "ClasSteering's neurons")

    @property
    def needs_lang(self) -> bool:
        return self.specific == "target" and self.target_lang is None

    @property
    def is_noop(self) -> bool:
        return self.alpha == 0.0 or (self.beta == 0.0 and self.gamma == 0.0)

    def for_lang(self, lang: str) -> "ClasSteering":
        if self.specific == "target":
            check_lang(lang, source_langs(self.neurons), "ClasSteering's neurons")
        return dataclasses.replace(self, target_lang=lang)

    def _shared_categories(self) -> list[str]:
        return list(SHARED_CATEGORIES[self.shared])

    def masks(self) -> tuple[Bool[Tensor, "layer neuron"], Bool[Tensor, "layer neuron"]]:
        """``(M_shared, M_specific)`` as boolean ``[layer, neuron]`` tensors (CPU)."""
        if self.needs_lang:
            raise DataValidationError(
                "ClasSteering(specific='target') has target_lang=None: pass target_lang or call "
                ".for_lang(lang) (clas_lens.evaluate does this for each language)."
            )
        shared = None
        for c in self._shared_categories():
            m = torch.as_tensor(self.neurons.mask(c)).bool().cpu()
            shared = m if shared is None else shared | m
        lang = self.target_lang if self.specific == "target" else None
        spec = torch.as_tensor(self.neurons.mask("specific", lang)).bool().cpu()
        return shared, spec

    def hooks(self, model) -> list[HookPair]:
        what = "ClasSteering's NeuronSet"
        shared, spec = self.masks()
        check_shape(model, shared, what)
        check_shape(model, spec, what)
        check_model_identity(model, info_dict(getattr(self.neurons, "model_info", None)), "neurons of ClasSteering")
        sites = neuron_sites(model)
        tracker = pad_tracker(model)
        dev = model_device(model)
        out: list[HookPair] = []
        alpha, beta, gamma, noop = self.alpha, self.beta, self.gamma, self.is_noop
        for layer in model_layers(model, self.layers):
            touched = shared[layer] | spec[layer]
            idx = touched.nonzero().flatten()
            if noop or len(idx) == 0:
                fn = identity
            else:
                ms = shared[layer][idx].to(torch.float64)
                mp = spec[layer][idx].to(torch.float64)
                boost = (1.0 + beta * ms).to(dev, torch.float32)
                damp = (1.0 - gamma * mp).to(dev, torch.float32)

                def rule(h, boost=boost, damp=damp):
                    h2 = h * boost.to(h.device, h.dtype) * damp.to(h.device, h.dtype)
                    return h2 if alpha == 1.0 else (1.0 - alpha) * h + alpha * h2

                fn = masked_edit(tracker, self.positions, idx.to(dev), rule)
            out.extend(sites.edit_hooks(self.site, layer, fn))
        return out

    def to_dict(self) -> dict:
        if isinstance(self.neurons, MaskSet):
            neurons = self.neurons.to_dict()
        else:
            neurons = MaskSet.from_neurons(self.neurons, self._shared_categories()).to_dict()
        return {
            "type": type(self).__name__,
            "neurons": neurons,
            "target_lang": self.target_lang,
            "layers": layers_to_json(self.layers),
            "alpha": self.alpha,
            "beta": self.beta,
            "gamma": self.gamma,
            "shared": self.shared,
            "specific": self.specific,
            "positions": self.positions,
            "site": self.site,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "ClasSteering":
        d = dict(d)
        d.pop("type", None)
        d["neurons"] = MaskSet.from_dict(d["neurons"])
        return cls(**d)

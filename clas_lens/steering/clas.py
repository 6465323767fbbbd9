"""The CLAS rule (docs/methods.md, "The CLAS rule"): Cross-Lingual Activation Steering.

In each bridge layer the shared neurons are boosted and specific neurons suppressed, then mixed
with the unsteered activation:
``h1 = h * (1 + beta * M_shared)``, ``h2 = h1 * (1 - gamma * M_specific)``,
``h' = (1 - alpha) * h + alpha * h2``.

Every choice the paper leaves open is a parameter of :class:`ClasSteering` with a documented
default: which shared neurons (``shared``), whose specific neurons (``suppress``), whether the
BOS position is edited (``edit_bos``), whether the anchor language is steered
(``steer_anchor``). ``ClasSteering.boost_only`` / ``.suppress_only`` are the one-term controls.
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
from clas_lens.specs import resolve_layers
from clas_lens.steering.checks import check_lang, check_strength, model_device, model_layers
from clas_lens.steering.checks import renamed_argument, upgrade_keys
from clas_lens.steering.masks import MaskSet, check_shape, get_mask, is_neuron_set, source_from_dict
from clas_lens.steering.masks import source_langs, source_to_dict
from clas_lens.steering.positions import check_positions, identity, masked_edit, pad_tracker
from clas_lens.steering.registry import Intervention, register_intervention
from clas_lens.steering.serialize import info_dict, layers_to_json
from clas_lens.vocab import DEFAULT_SITE, DEFAULT_STEER_LAYERS

#: Which shared neurons CLAS boosts: partial-shared, all-shared, both, or the partial-shared
#: neurons active in the target language.
SHARED_OPTIONS: tuple[str, ...] = ("partial", "all", "both", "partial_active")
#: Whose specific neurons CLAS suppresses: the target language's, every language's, or those of
#: every language but the target.
SUPPRESS_OPTIONS: tuple[str, ...] = ("target", "all", "others")
#: The former name of :data:`SUPPRESS_OPTIONS` (the argument was ``specific=``).
SPECIFIC_OPTIONS: tuple[str, ...] = SUPPRESS_OPTIONS
#: The neuron categories behind each :data:`SHARED_OPTIONS` choice ("partial_active" further
#: keeps those active in the target language).
SHARED_CATEGORIES: dict[str, tuple[str, ...]] = {
    "partial": ("partial_shared",),
    "all": ("all_shared",),
    "both": ("partial_shared", "all_shared"),
    "partial_active": ("partial_shared",),
}


@register_intervention
@renamed_argument("specific", "suppress")
@dataclasses.dataclass(eq=False)
class ClasSteering(Intervention):
    """Cross-Lingual Activation Steering on MLP neurons (docs/methods.md), in the bridge layers.

    ``h1 = h * (1 + beta * M_shared)``, ``h2 = h1 * (1 - gamma * M_specific)``,
    ``h' = (1 - alpha) * h + alpha * h2``.

    Args:
        neurons: a NeuronSet (anything with ``mask(category, lang)``, ``langs``, e.g. a
            :class:`~clas_lens.steering.MaskSet`).
        target_lang: the language of the steered inputs; None makes a per-language template
            (``for_lang``; ``evaluate`` binds each evaluated language).
        layers: bridge layers, a layer spec (:mod:`clas_lens.specs`): a list of block indices
            or ``"last:k"``. Default ``"last:4"`` (:data:`clas_lens.vocab.DEFAULT_STEER_LAYERS`):
            the paper only says "near the output".
        alpha, beta, gamma: mix, boost of shared neurons, suppression of specific neurons.
            Defaults 1, 0.2, 0.2 (those of the public reimplementation, not the paper's).
            ``gamma=0`` is the boost-only control, ``beta=0`` the suppress-only one
            (:meth:`boost_only`, :meth:`suppress_only`).
        shared: which neurons are boosted: ``"partial"`` (partial-shared, default, as the
            reimplementation), ``"all"`` (all-shared), ``"both"``, or ``"partial_active"``:
            the partial-shared neurons active in the target language (per-language activity
            from the NeuronSet's ``"active"`` masks, kept by ``identify_neurons(stats,
            "clas")``, or from ``active``).
        suppress: whose specific neurons are suppressed: ``"target"`` (the target language's,
            default), ``"all"`` (every language's) or ``"others"`` (every language's but the
            target's). Formerly ``specific`` (still accepted, deprecated).
        positions: ``"all"`` or ``"last"`` real token.
        site: ``"post"`` (default) or ``"act"``; a scaling rule gives the same result at both.
        edit_bos: whether the BOS position is edited. Default False: the statistics that define
            the neurons leave BOS out (it is the attention sink), so steering does too
            (:mod:`~clas_lens.steering.positions`). Dicts saved before this option load with
            True, the behaviour they were saved with.
        steer_anchor: whether the anchor language is steered when it is evaluated. Default True
            (a template bound to the anchor steers it with its own neurons); False makes
            ``for_lang(anchor)`` a no-op, so "anchor kept" measures the unsteered anchor.
        anchor: the anchor language (default ``"en"``, as ``evaluate``'s).
        active: per-language activity for ``shared="partial_active"`` when the NeuronSet has
            none: a ``Bool[layer, neuron]`` tensor or ``{lang: tensor}``.

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
    >>> ClasSteering(ns, steer_anchor=False).for_lang("en").is_noop
    True
    """

    neurons: Any
    target_lang: str | None = None
    layers: Any = DEFAULT_STEER_LAYERS
    alpha: float = 1.0
    beta: float = 0.2
    gamma: float = 0.2
    shared: str = "partial"
    suppress: str = "target"
    positions: str = "all"
    site: str = DEFAULT_SITE
    edit_bos: bool = False
    steer_anchor: bool = True
    anchor: str | None = "en"
    active: Any = None

    def __post_init__(self) -> None:
        if not is_neuron_set(self.neurons):
            raise DataValidationError(
                "ClasSteering needs a NeuronSet (an object with .mask(category, lang)), e.g. "
                f"clas_lens.identify_neurons(stats) or a steering.MaskSet; got {type(self.neurons).__name__}."
            )
        if self.shared not in SHARED_OPTIONS:
            raise DataValidationError(f"shared={self.shared!r}: choose one of {list(SHARED_OPTIONS)}.")
        if self.suppress not in SUPPRESS_OPTIONS:
            raise DataValidationError(f"suppress={self.suppress!r}: choose one of {list(SUPPRESS_OPTIONS)}.")
        if self.active is not None and not isinstance(self.active, (Tensor, Mapping)):
            raise DataValidationError("active= must be a Bool[layer, neuron] tensor or a dict {lang: tensor}.")
        check_positions(self.positions)
        check_site(self.site)
        self.edit_bos = bool(self.edit_bos)
        self.steer_anchor = bool(self.steer_anchor)
        self.alpha = check_strength("alpha", self.alpha)
        self.beta = check_strength("beta", self.beta)
        self.gamma = check_strength("gamma", self.gamma)
        if self.target_lang is not None and self._per_lang() and not self.skips_anchor:
            self._check_lang(self.target_lang)

    @classmethod
    def boost_only(cls, neurons, target_lang: str | None = None, *, beta: float = 0.2, **kwargs) -> "ClasSteering":
        """The boost-only control: CLAS with ``gamma=0`` (shared neurons boosted, none suppressed).

        >>> import torch
        >>> from clas_lens.steering import MaskSet
        >>> ns = MaskSet(langs=["en"], specific={"en": torch.zeros(2, 4, dtype=torch.bool)})
        >>> c = ClasSteering.boost_only(ns, beta=0.5); (c.beta, c.gamma)
        (0.5, 0.0)
        """
        return cls(neurons, target_lang, beta=beta, gamma=0.0, **kwargs)

    @classmethod
    def suppress_only(cls, neurons, target_lang: str | None = None, *, gamma: float = 0.2, **kwargs) -> "ClasSteering":
        """The suppress-only control: CLAS with ``beta=0`` (specific neurons suppressed only).

        >>> import torch
        >>> from clas_lens.steering import MaskSet
        >>> ns = MaskSet(langs=["en"], specific={"en": torch.zeros(2, 4, dtype=torch.bool)})
        >>> c = ClasSteering.suppress_only(ns, gamma=0.5); (c.beta, c.gamma)
        (0.0, 0.5)
        """
        return cls(neurons, target_lang, beta=0.0, gamma=gamma, **kwargs)

    def _per_lang(self) -> bool:
        """True when the masks depend on the target language."""
        return self.suppress in ("target", "others") or self.shared == "partial_active"

    def _check_lang(self, lang: str) -> None:
        check_lang(lang, source_langs(self.neurons), "ClasSteering's neurons")
        if self.shared == "partial_active" and isinstance(self.active, Mapping):
            check_lang(lang, list(self.active), "ClasSteering's active masks")

    @property
    def skips_anchor(self) -> bool:
        """True when bound to the anchor with ``steer_anchor=False`` (the hooks edit nothing)."""
        return not self.steer_anchor and self.target_lang is not None and self.target_lang == self.anchor

    @property
    def needs_lang(self) -> bool:
        return self.target_lang is None and (self._per_lang() or not self.steer_anchor)

    @property
    def is_noop(self) -> bool:
        return self.alpha == 0.0 or (self.beta == 0.0 and self.gamma == 0.0) or self.skips_anchor

    def for_lang(self, lang: str) -> "ClasSteering":
        bound = dataclasses.replace(self, target_lang=lang)
        if self._per_lang() and not bound.skips_anchor:
            self._check_lang(lang)
        return bound

    def _shared_categories(self) -> list[str]:
        cats = list(SHARED_CATEGORIES[self.shared])
        if self.shared == "partial_active" and self.active is None:
            cats.append("active")
        return cats

    def _active_mask(self, lang: str) -> Bool[Tensor, "layer neuron"]:
        if self.active is not None:
            return get_mask(self.active, "active", lang, "ClasSteering's active masks").cpu()
        try:
            return torch.as_tensor(self.neurons.mask("active", lang)).bool().cpu()
        except (ValueError, KeyError) as e:  # DataValidationError is a ValueError too
            raise DataValidationError(
                "ClasSteering(shared='partial_active') needs per-language activity: a NeuronSet from "
                "identify_neurons(stats, 'clas') (it keeps 'active' masks) or active={lang: mask}. "
                f"The neurons say: {e}"
            ) from None

    def masks(self) -> tuple[Bool[Tensor, "layer neuron"], Bool[Tensor, "layer neuron"]]:
        """``(M_shared, M_specific)`` as boolean ``[layer, neuron]`` tensors (CPU).

        Bound to the anchor with ``steer_anchor=False`` both are empty.
        """
        if self.needs_lang:
            raise DataValidationError(
                f"ClasSteering(suppress={self.suppress!r}, shared={self.shared!r}) has target_lang=None: "
                "pass target_lang or call .for_lang(lang) (clas_lens.evaluate does this for each language)."
            )
        shared = None
        for c in SHARED_CATEGORIES[self.shared]:
            m = torch.as_tensor(self.neurons.mask(c)).bool().cpu()
            shared = m if shared is None else shared | m
        if self.skips_anchor:
            return torch.zeros_like(shared), torch.zeros_like(shared)
        if self.shared == "partial_active":
            shared = shared & self._active_mask(self.target_lang)
        if self.suppress == "target":
            spec = torch.as_tensor(self.neurons.mask("specific", self.target_lang)).bool().cpu()
        else:
            spec = torch.as_tensor(self.neurons.mask("specific", None)).bool().cpu()
            if self.suppress == "others" and self.target_lang is not None:
                spec = spec & ~torch.as_tensor(self.neurons.mask("specific", self.target_lang)).bool().cpu()
        return shared, spec

    def gains(self, n_layers: int | None = None) -> Tensor:
        """The per-neuron gain ``(1 - alpha) + alpha (1 + beta M_shared)(1 - gamma M_specific)``
        on the steered layers, a float64 ``[layer, neuron]`` tensor (1 on the other layers).

        ``n_layers`` resolves the layer spec (default: the masks' first dimension, which is the
        model's). :meth:`UniformGain.matching <clas_lens.steering.UniformGain.matching>` uses it.

        >>> import torch
        >>> from clas_lens.steering import MaskSet
        >>> ns = MaskSet(langs=["en"], specific={"en": torch.eye(2, 4, dtype=torch.bool)},
        ...              categories={"partial_shared": torch.ones(2, 4, dtype=torch.bool)})
        >>> ClasSteering(ns, "en", layers=[1], beta=1.0, gamma=0.5).gains()[:, :2].tolist()
        [[1.0, 1.0], [2.0, 1.0]]
        """
        shared, spec = self.masks()
        steered = set(resolve_layers(self.layers, shared.shape[0] if n_layers is None else int(n_layers)))
        g = (1.0 - self.alpha) + self.alpha * (1.0 + self.beta * shared.double()) * (1.0 - self.gamma * spec.double())
        if self.is_noop:
            g = torch.ones_like(g)
        keep = torch.tensor([l in steered for l in range(shared.shape[0])]).unsqueeze(1)
        return torch.where(keep, g, torch.ones_like(g))

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

                fn = masked_edit(tracker, self.positions, idx.to(dev), rule, self.edit_bos)
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
            "suppress": self.suppress,
            "positions": self.positions,
            "site": self.site,
            "edit_bos": self.edit_bos,
            "steer_anchor": self.steer_anchor,
            "anchor": self.anchor,
            "active": None if self.active is None else source_to_dict(self.active, ["active"]),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "ClasSteering":
        """Rebuild from :meth:`to_dict`; dicts saved with ``specific`` and without ``edit_bos``
        (before those options) load as they were saved (``edit_bos=True``)."""
        d = upgrade_keys(cls, d)
        d.pop("type", None)
        d.setdefault("edit_bos", True)
        d["neurons"] = MaskSet.from_dict(d["neurons"])
        if d.get("active") is not None:
            d["active"] = source_from_dict(d["active"])
        return cls(**d)

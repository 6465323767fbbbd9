"""DiffMean (docs/methods.md, "Peer methods"): a residual-stream edit towards another language.

``h' = h + strength * (v_tgt - v_src) / ||v_tgt - v_src||`` at ``blocks.{l}.hook_resid_post``,
where ``v`` are the languages' mean residual streams, statistics computed by
:func:`clas_lens.stats.residual_means` (:class:`~clas_lens.stats.ResidualMeans`; both stay
importable from ``clas_lens.steering``). ``strength`` was called ``scale``; the old keyword
still works for one release with a DeprecationWarning, and old saved dicts load.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from jaxtyping import Float
from torch import Tensor

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.models import check_model_identity
from clas_lens.sites import HookPair
from clas_lens.stats.residual_means import ResidualMeans, residual_means  # noqa: F401 (doctest, re-export)
from clas_lens.steering.checks import (
    check_lang,
    check_strength,
    model_device,
    model_layers,
    renamed_argument,
    upgrade_keys,
)
from clas_lens.steering.positions import check_positions, pad_tracker
from clas_lens.steering.registry import Intervention, register_intervention
from clas_lens.steering.serialize import layers_to_json


@register_intervention
@renamed_argument("scale", "strength")
@dataclasses.dataclass(eq=False)
class DiffMeanSteering(Intervention):
    """DiffMean (CLaS-Bench): add ``strength * (v_tgt - v_src) / ||v_tgt - v_src||`` to the residual.

    Applied at ``blocks.{l}.hook_resid_post`` for each layer. ``means`` is a
    :class:`ResidualMeans` (:func:`residual_means`). A None language is filled in by
    ``for_lang`` (``evaluate``): ``DiffMeanSteering(None, "en", ...)`` steers each evaluated
    language towards English; steering a language towards itself is a no-op. ``strength`` is in
    residual-stream units (compare with the norms of ``means``); 0 is an exact no-op. It was
    called ``scale`` (still accepted, deprecated).

    >>> from clas_lens.testing import tiny_model
    >>> model = tiny_model("llama")
    >>> rm = residual_means(model, {"en": ["the cat sat"], "de": ["der Hund schläft"]})
    >>> iv = DiffMeanSteering("en", "de", layers=[0, 1], strength=4.0, means=rm)
    >>> DiffMeanSteering.from_dict(iv.to_dict()).strength
    4.0
    """

    source_lang: str | None
    target_lang: str | None
    layers: Any = None
    strength: float = 1.0
    means: Any = None
    positions: str = "all"

    def __post_init__(self) -> None:
        self.strength = check_strength("strength", self.strength)
        check_positions(self.positions)
        if isinstance(self.means, Mapping):
            self.means = ResidualMeans.from_dict(self.means)
        if not isinstance(self.means, ResidualMeans):
            raise DataValidationError("DiffMeanSteering needs means=residual_means(model, corpus, layers, langs).")
        if self.source_lang is None and self.target_lang is None:
            raise DataValidationError("DiffMeanSteering needs source_lang or target_lang (one may be None as a template).")
        for l in (self.source_lang, self.target_lang):
            if l is not None:
                check_lang(l, self.means.langs, "DiffMeanSteering's residual means")

    @property
    def needs_lang(self) -> bool:
        return self.source_lang is None or self.target_lang is None

    @property
    def is_noop(self) -> bool:
        return self.strength == 0.0 or (self.source_lang is not None and self.source_lang == self.target_lang)

    def for_lang(self, lang: str) -> "DiffMeanSteering":
        check_lang(lang, self.means.langs, "DiffMeanSteering's residual means")
        if self.source_lang is None:
            return dataclasses.replace(self, source_lang=lang)
        if self.target_lang is None:
            return dataclasses.replace(self, target_lang=lang)
        return self

    def direction(self, layer: int) -> Float[Tensor, " d_model"]:
        """``(v_tgt - v_src) / ||v_tgt - v_src||`` in float64 (zeros when the means coincide)."""
        d = self.means.vector(self.target_lang, layer) - self.means.vector(self.source_lang, layer)
        norm = torch.linalg.vector_norm(d)
        return d / norm if float(norm) > 0 else torch.zeros_like(d)

    def hooks(self, model) -> list[HookPair]:
        if self.needs_lang:
            raise DataValidationError("DiffMeanSteering has a None language: call .for_lang(lang) first.")
        check_model_identity(model, self.means.model_info, "residual means of DiffMeanSteering")
        if self.means.means[self.means.langs[0]].shape[-1] != int(model.cfg.d_model):
            raise MismatchError(
                f"DiffMeanSteering's residual means have d_model={self.means.means[self.means.langs[0]].shape[-1]} "
                f"but the model has {model.cfg.d_model}."
            )
        layers = list(self.means.layers) if self.layers is None else model_layers(model, self.layers)
        tracker = pad_tracker(model)
        dev = model_device(model)
        out: list[HookPair] = []
        for layer in layers:
            delta = (self.strength * self.direction(layer)).to(dev, torch.float32)
            if self.is_noop or not bool(delta.abs().max() > 0):
                fn = lambda t, hook: t  # noqa: E731
            else:

                def fn(t, hook, delta=delta):
                    new = t + delta.to(t.device, t.dtype)
                    sel = tracker.select(t.shape[0], t.shape[1], self.positions, t.device)
                    return new if sel is None else torch.where(sel.unsqueeze(-1), new, t)

            out.append((f"blocks.{layer}.hook_resid_post", fn))
        return out

    def to_dict(self) -> dict:
        layers = list(self.means.layers)
        if self.layers is not None:
            n = max(layers) + 1
            wanted = self.layers
            if isinstance(wanted, str):
                pass  # "last:k", "all", ... resolve against the model at hook time: keep every layer
            else:
                wanted = [wanted] if isinstance(wanted, int) else list(wanted)
                keep = {l % n if l < 0 else l for l in wanted}
                layers = [l for l in layers if l in keep]
        means = ResidualMeans(
            layers=layers,
            means={l: m[[self.means.layers.index(x) for x in layers]] for l, m in self.means.means.items()},
            n_tokens=dict(self.means.n_tokens),
            model_info=self.means.model_info,
        )
        return {
            "type": type(self).__name__,
            "source_lang": self.source_lang,
            "target_lang": self.target_lang,
            "layers": layers_to_json(self.layers),
            "strength": self.strength,
            "positions": self.positions,
            "means": means.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "DiffMeanSteering":
        d = upgrade_keys(cls, d)
        d.pop("type", None)
        d["means"] = ResidualMeans.from_dict(d["means"])
        return cls(**d)

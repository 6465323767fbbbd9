"""Neuron masks of the interventions: :class:`MaskSet` and the sources a mask may come from.

A mask source is a ``Bool[layer, neuron]`` tensor (one mask for every language), a dict
``{lang: tensor}`` (one per language) or a NeuronSet-like object with ``mask(category, lang)``
and ``langs`` (e.g. :class:`clas_lens.neurons.NeuronSet` or a :class:`MaskSet`). The helpers
here read a source, say whether it depends on the language, serialise it compactly and check
its shape against the model (:class:`~clas_lens.errors.MismatchError` for another model's).

>>> import torch
>>> source_langs(torch.ones(2, 3, dtype=torch.bool)) is None, source_langs({"en": None})
(True, ['en'])
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

import torch
from jaxtyping import Bool
from torch import Tensor

from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.models import model_info
from clas_lens.sites import neuron_sites
from clas_lens.steering.checks import check_lang
from clas_lens.steering.serialize import decode_bool, encode_bool, info_dict, jsonable


@dataclasses.dataclass(eq=False)
class MaskSet:
    """A compact, serialisable stand-in for a NeuronSet: only the masks steering needs.

    ``mask(category, lang=None)`` behaves like ``NeuronSet.mask``: ``"specific"`` and
    ``"active"`` (the neurons active in each language, kept by the ``"clas"`` method and used by
    ``ClasSteering(shared="partial_active")``) take a language (None is the union over
    languages); the shared categories take none.

    >>> import torch
    >>> spec = {"en": torch.eye(2, 4, dtype=torch.bool), "de": torch.zeros(2, 4, dtype=torch.bool)}
    >>> ms = MaskSet(langs=["en", "de"], specific=spec,
    ...              categories={"partial_shared": torch.ones(2, 4, dtype=torch.bool)})
    >>> int(ms.mask("specific").sum()), int(ms.mask("partial_shared").sum())
    (2, 8)
    >>> MaskSet.from_dict(ms.to_dict()).mask("specific", "en").tolist() == spec["en"].tolist()
    True
    """

    langs: list[str]
    specific: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    categories: dict[str, Tensor] = dataclasses.field(default_factory=dict)
    site: str | None = None
    model_info: dict | None = None
    method: str | None = None
    params: dict = dataclasses.field(default_factory=dict)
    active: dict[str, Tensor] = dataclasses.field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        for t in [*self.specific.values(), *self.categories.values(), *self.active.values()]:
            return tuple(t.shape)  # type: ignore[return-value]
        raise DataValidationError("MaskSet holds no masks.")

    def mask(self, category: str, lang: str | None = None) -> Bool[Tensor, "layer neuron"]:
        if category in ("specific", "active"):
            table = self.specific if category == "specific" else self.active
            noun = "language-specific" if category == "specific" else "per-language 'active'"
            if lang is None:
                if not table:
                    raise DataValidationError(f"MaskSet holds no {noun} masks.")
                out = torch.zeros(self.shape, dtype=torch.bool)
                for m in table.values():
                    out |= m.bool()
                return out
            if lang not in table:
                if not table:
                    raise DataValidationError(f"MaskSet holds no {noun} masks.")
                raise DataValidationError(
                    f"Unknown language {lang!r}: these neurons have {category} masks for {sorted(table)}."
                )
            return table[lang].bool()
        if category not in self.categories:
            raise DataValidationError(
                f"MaskSet has no {category!r} mask (it holds {sorted(self.categories)}); build it "
                "from the NeuronSet with that category."
            )
        return self.categories[category].bool()

    @classmethod
    def from_neurons(cls, neurons, categories: Iterable[str] = (), langs: Iterable[str] | None = None) -> "MaskSet":
        """Copy the masks of ``categories`` (and "specific" per language) out of a NeuronSet.

        ``"active"`` among ``categories`` copies the per-language activity masks too.
        """
        langs = list(langs if langs is not None else getattr(neurons, "langs", []))
        categories = list(categories)
        per_lang = ("specific", "active")
        cats = {c: torch.as_tensor(neurons.mask(c)).bool().cpu() for c in categories if c not in per_lang}
        spec = {l: torch.as_tensor(neurons.mask("specific", l)).bool().cpu() for l in langs}
        active = {}
        if "active" in categories:
            active = {l: torch.as_tensor(neurons.mask("active", l)).bool().cpu() for l in langs}
        params = getattr(neurons, "params", None)
        return cls(
            langs=langs,
            specific=spec,
            categories=cats,
            site=getattr(neurons, "site", None),
            model_info=info_dict(getattr(neurons, "model_info", None)),
            method=getattr(neurons, "method", None),
            params=dict(params) if isinstance(params, Mapping) else {},
            active=active,
        )

    def to_dict(self) -> dict:
        d = {
            "langs": list(self.langs),
            "site": self.site,
            "method": self.method,
            "params": jsonable(self.params),
            "model_info": self.model_info,
            "specific": {l: encode_bool(m) for l, m in self.specific.items()},
            "categories": {c: encode_bool(m) for c, m in self.categories.items()},
        }
        if self.active:
            d["active"] = {l: encode_bool(m) for l, m in self.active.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "MaskSet":
        return cls(
            langs=list(d["langs"]),
            specific={l: decode_bool(m) for l, m in d.get("specific", {}).items()},
            categories={c: decode_bool(m) for c, m in d.get("categories", {}).items()},
            site=d.get("site"),
            model_info=d.get("model_info"),
            method=d.get("method"),
            params=dict(d.get("params") or {}),
            active={l: decode_bool(m) for l, m in d.get("active", {}).items()},
        )


def is_neuron_set(x: Any) -> bool:
    """True for NeuronSet-like objects (anything with a ``mask`` method that is not a tensor).

    >>> import torch
    >>> is_neuron_set(MaskSet(langs=[])), is_neuron_set(torch.ones(1))
    (True, False)
    """
    return callable(getattr(x, "mask", None)) and not isinstance(x, Tensor)


def source_langs(source: Any) -> list[str] | None:
    """Languages a mask source knows, or None for a language-independent mask."""
    if isinstance(source, Tensor):
        return None
    if isinstance(source, Mapping):
        return list(source)
    return list(getattr(source, "langs", []))


def get_mask(source: Any, category: str, lang: str | None, what: str) -> Bool[Tensor, "layer neuron"]:
    """The ``category`` mask of ``source`` for ``lang``; ``what`` names the intervention in errors.

    >>> import torch
    >>> m = torch.eye(2, 3, dtype=torch.bool)
    >>> get_mask({"en": m}, "specific", "en", "Deactivate").sum().item()
    2
    """
    if isinstance(source, Tensor):
        return source.bool()
    if isinstance(source, Mapping):
        if lang is None:
            raise DataValidationError(f"{what} has one mask per language: set target_lang (or call .for_lang).")
        check_lang(lang, list(source), what)
        return torch.as_tensor(source[lang]).bool()
    if is_neuron_set(source):
        if category == "specific":
            if lang is None:
                raise DataValidationError(f"{what} uses language-specific neurons: set target_lang (or call .for_lang).")
            check_lang(lang, source_langs(source), what)
        return torch.as_tensor(source.mask(category, lang) if category == "specific" else source.mask(category)).bool()
    raise DataValidationError(
        f"{what}: a mask must be a Bool[layer, neuron] tensor, a dict {{lang: tensor}} or a NeuronSet, "
        f"got {type(source).__name__}."
    )


def source_is_per_lang(source: Any, category: str) -> bool:
    """True when the mask depends on the language (a dict, or a NeuronSet's specific neurons)."""
    if isinstance(source, Tensor):
        return False
    if isinstance(source, Mapping):
        return True
    return category == "specific"


def source_to_dict(source: Any, categories: Sequence[str], langs: Sequence[str] | None = None) -> dict:
    """A mask source as JSON: ``{"kind": "tensor" | "per_lang" | "neuron_set", ...}``.

    A NeuronSet is stored as a :class:`MaskSet` holding only ``categories``.

    >>> import torch
    >>> source_to_dict(torch.eye(2, 3, dtype=torch.bool), ["specific"])["kind"]
    'tensor'
    """
    if isinstance(source, Tensor):
        return {"kind": "tensor", "mask": encode_bool(source)}
    if isinstance(source, Mapping):
        return {"kind": "per_lang", "masks": {l: encode_bool(torch.as_tensor(m)) for l, m in source.items()}}
    if isinstance(source, MaskSet):
        return {"kind": "neuron_set", "neurons": source.to_dict()}
    if langs is None:
        langs = source_langs(source) if "specific" in categories else []
    ms = MaskSet.from_neurons(source, categories, langs)
    return {"kind": "neuron_set", "neurons": ms.to_dict()}


def source_from_dict(d: Mapping) -> Any:
    """Inverse of :func:`source_to_dict` (a NeuronSet comes back as a :class:`MaskSet`).

    >>> import torch
    >>> m = {"en": torch.eye(2, 3, dtype=torch.bool)}
    >>> torch.equal(source_from_dict(source_to_dict(m, ["specific"]))["en"], m["en"])
    True
    """
    kind = d["kind"]
    if kind == "tensor":
        return decode_bool(d["mask"])
    if kind == "per_lang":
        return {l: decode_bool(m) for l, m in d["masks"].items()}
    if kind == "neuron_set":
        return MaskSet.from_dict(d["neurons"])
    raise DataValidationError(f"Unknown mask encoding {kind!r}.")


def source_union(source: Any, category: str) -> Bool[Tensor, "layer neuron"]:
    """The union of a source's masks over languages (CPU)."""
    if isinstance(source, Tensor):
        return source.bool().cpu()
    if isinstance(source, Mapping):
        out = None
        for m in source.values():
            m = torch.as_tensor(m).bool().cpu()
            out = m.clone() if out is None else out | m
        return out
    return torch.as_tensor(source.mask(category, None) if category == "specific" else source.mask(category)).bool().cpu()


def check_shape(model, mask: Tensor, what: str) -> None:
    """Raise MismatchError unless ``mask`` is ``[n_layers, d_mlp]`` of ``model``.

    >>> import torch
    >>> from clas_lens.testing import tiny_model
    >>> check_shape(tiny_model("llama"), torch.zeros(2, 64), "a mask")   # fits: no error
    """
    sites = neuron_sites(model)
    if tuple(mask.shape) != sites.shape:
        raise MismatchError(
            f"{what} has masks of shape {tuple(mask.shape)} (layer, neuron) but the model "
            f"{model_info(model).model_id!r} has {sites.shape}: the neurons come from another model."
        )

"""``NeuronSet``: named boolean neuron masks ``[layer, neuron]`` per category and language.

The result of :func:`~clas_lens.neurons.identify_neurons`. Masks have the model's full shape
(row ``l`` is layer ``l``; unmeasured layers are all False) and travel with the model identity,
the neuron site and a reference to the statistics they came from. Files are written and read
with ``clas_lens.io.save_tensors`` / ``load_tensors`` (content checksum verified on load).
Categories are defined in docs/methods.md, "Neuron categories".

>>> import torch
>>> m = torch.zeros(2, 4, dtype=torch.bool); m[1, 2] = True
>>> ns = NeuronSet(masks={"specific": {"en": m}}, langs=["en", "de"], site="act", model_info={},
...                method="mean", params={}, stats_ref=None, layers=[0, 1], shape=(2, 4))
>>> ns.mask("specific").nonzero().tolist(), int(ns.mask("specific", "de").sum())
([[1, 2]], 0)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from jaxtyping import Bool
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.io import load_tensors, save_tensors
from clas_lens.models import check_model_identity
from clas_lens.sites import check_site
from clas_lens.vocab import CATEGORIES

__all__ = ["NeuronSet", "FORMAT"]

#: The format tag of a saved :class:`NeuronSet` file.
FORMAT = "clas_lens.NeuronSet/1"
_ANY = "*"  # language key of categories that belong to no single language


# NeuronSet
# ---------------------------------------------------------------------------------------------


class NeuronSet:
    """Named boolean neuron masks ``[layer, neuron]``, per category and (optionally) language.

    ``masks[category][lang]`` holds one mask; ``lang`` is ``None`` for categories that belong
    to no single language (``all_shared``, ``partial_shared``, ``non_activated``). Besides the
    four categories a method may add its own (CLAS: ``"active"`` per language; AP: ``"top"``
    and ``"bottom"`` per language). ``scores[name][lang]`` holds per-neuron float scores a
    method computed (LAPE entropy, AP values, ...), NaN on unmeasured layers.

    Attributes:
        langs, site, model_info, method, params, stats_ref (metadata of the statistics),
        layers (measured layers), shape ``(n_layers, d_mlp)``.
    """

    def __init__(
        self,
        *,
        masks: Mapping[str, Mapping[str | None, Tensor]],
        langs: Sequence[str],
        site: str,
        model_info: Mapping[str, Any],
        method: str,
        params: Mapping[str, Any],
        stats_ref: Mapping[str, Any] | None,
        layers: Sequence[int],
        shape: tuple[int, int],
        scores: Mapping[str, Mapping[str | None, Tensor]] | None = None,
    ):
        self.langs = list(langs)
        self.site = check_site(site)
        self.model_info = dict(model_info)
        self.method = str(method)
        self.params = dict(params)
        self.stats_ref = dict(stats_ref or {})
        self.layers = [int(l) for l in layers]
        self.shape = (int(shape[0]), int(shape[1]))
        self._masks: dict[str, dict[str | None, Tensor]] = {}
        for cat, entries in masks.items():
            self._masks[cat] = {}
            for lang, m in entries.items():
                m = torch.as_tensor(m).to("cpu", torch.bool)
                if tuple(m.shape) != self.shape:
                    raise DataValidationError(f"Mask {cat}/{lang} has shape {tuple(m.shape)}, expected {self.shape}.")
                if lang is not None and lang not in self.langs:
                    raise DataValidationError(f"Mask {cat}/{lang}: {lang!r} is not one of {self.langs}.")
                self._masks[cat][lang] = m
        self.scores: dict[str, dict[str | None, Tensor]] = {
            name: {lang: torch.as_tensor(t).to("cpu", torch.float32) for lang, t in entries.items()}
            for name, entries in (scores or {}).items()
        }

    @property
    def categories(self) -> list[str]:
        """Categories present, the four standard ones first."""
        return [c for c in CATEGORIES if c in self._masks] + [c for c in self._masks if c not in CATEGORIES]

    def mask(self, category: str, lang: str | None = None) -> Bool[Tensor, "layer neuron"]:
        """The neurons of ``category`` (for ``lang``), a bool tensor of the model's shape.

        For per-language categories (``"specific"``) ``lang=None`` is the union over
        languages. For ``"partial_shared"``, ``lang`` keeps those active in that language;
        ``all_shared`` and ``non_activated`` do not depend on ``lang``.
        """
        if category not in self._masks:
            hint = (
                f" Method {self.method!r} only picks language-specific neurons (filed under 'specific')."
                if category in CATEGORIES and set(self._masks) & set(CATEGORIES) == {"specific"}
                else ""
            )
            raise ValueError(
                f"This NeuronSet has no category {category!r}; it has {self.categories}.{hint}"
            )
        if lang is not None and lang not in self.langs:
            raise ValueError(f"Language {lang!r} is not in this NeuronSet (it has {self.langs}).")
        entries = self._masks[category]
        if lang is None:
            if None in entries:
                return entries[None].clone()
            out = torch.zeros(self.shape, dtype=torch.bool)
            for m in entries.values():
                out |= m
            return out
        if lang in entries:
            return entries[lang].clone()
        if None in entries:
            if category == "partial_shared" and "active" in self._masks and lang in self._masks["active"]:
                return entries[None] & self._masks["active"][lang]
            return entries[None].clone()
        return torch.zeros(self.shape, dtype=torch.bool)  # a language with no neurons here

    def counts(self) -> "pd.DataFrame":  # noqa: F821
        """Tidy counts: one row per (measured layer, category, lang), column ``count``.

        ``lang`` is missing (None/NaN; ``groupby(..., dropna=False)`` keeps it) for categories
        that belong to no single language.
        """
        import pandas as pd

        rows = []
        for cat in self.categories:
            for lang, m in self._masks[cat].items():
                per_layer = m.sum(1)
                for layer in self.layers:
                    rows.append({"layer": layer, "category": cat, "lang": lang, "count": int(per_layer[layer])})
        return pd.DataFrame(rows, columns=["layer", "category", "lang", "count"])

    def overlap(self) -> "pd.DataFrame":  # noqa: F821
        """Jaccard overlap (lang x lang) of the language-specific neurons (NaN if both empty)."""
        import pandas as pd

        ms = {l: self.mask("specific", l) if "specific" in self._masks else torch.zeros(self.shape, dtype=torch.bool) for l in self.langs}
        data = []
        for a in self.langs:
            row = []
            for b in self.langs:
                inter = int((ms[a] & ms[b]).sum())
                union = int((ms[a] | ms[b]).sum())
                row.append(inter / union if union else math.nan)
            data.append(row)
        df = pd.DataFrame(data, index=pd.Index(self.langs, name="lang"), columns=pd.Index(self.langs, name="other"))
        return df

    def to_frame(self) -> "pd.DataFrame":  # noqa: F821
        """Tidy membership: one row per (layer, neuron, category, lang) in the set.

        ``lang`` is missing (None/NaN) for categories that belong to no single language.
        """
        import pandas as pd

        parts = []
        for cat in self.categories:
            for lang, m in self._masks[cat].items():
                idx = m.nonzero()
                parts.append(
                    pd.DataFrame(
                        {
                            "layer": idx[:, 0].numpy(),
                            "neuron": idx[:, 1].numpy(),
                            "category": cat,
                            "lang": [lang] * len(idx),
                        }
                    )
                )
        if not parts:
            return pd.DataFrame(columns=["layer", "neuron", "category", "lang"])
        return pd.concat(parts, ignore_index=True)

    def __repr__(self) -> str:
        summary = ", ".join(f"{c}: {int(self.mask(c).sum())}" for c in self.categories)
        return (
            f"NeuronSet(method={self.method!r}, site={self.site!r}, langs={self.langs}, "
            f"layers={self.layers}, {summary})"
        )

    # -- persistence / checks ----------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "params": self.params,
            "langs": self.langs,
            "site": self.site,
            "model_info": self.model_info,
            "stats_ref": self.stats_ref,
            "layers": self.layers,
            "shape": list(self.shape),
            "categories": self.categories,
        }

    def save(self, path: str | Path) -> Path:
        """One safetensors file (masks, scores; JSON metadata in the header), written atomically.

        >>> import tempfile, pathlib, torch
        >>> from clas_lens.testing import tiny_model
        >>> from clas_lens.neurons import identify_neurons
        >>> from clas_lens.stats import collect_stats
        >>> s = collect_stats(tiny_model("gpt2"), {"en": ["one two"], "de": ["eins zwei"]})
        >>> ns = identify_neurons(s, "mean", top_fraction=0.1)
        >>> p = ns.save(pathlib.Path(tempfile.mkdtemp()) / "neurons.safetensors")
        >>> bool(torch.equal(NeuronSet.load(p).mask("specific", "de"), ns.mask("specific", "de")))
        True
        """
        tensors: dict[str, Tensor] = {}
        for cat, entries in self._masks.items():
            for lang, m in entries.items():
                tensors[f"mask/{cat}/{_ANY if lang is None else lang}"] = m.contiguous()
        for name, entries in self.scores.items():
            for lang, t in entries.items():
                tensors[f"score/{name}/{_ANY if lang is None else lang}"] = t.contiguous()
        return save_tensors(path, tensors, self.meta(), FORMAT)

    @classmethod
    def load(cls, path: str | Path) -> "NeuronSet":
        """Read a NeuronSet written by :meth:`save`."""
        meta, tensors = load_tensors(path, FORMAT, "NeuronSet", required=(
            "langs", "site", "model_info", "method", "params", "stats_ref", "layers", "shape"))
        masks: dict[str, dict[str | None, Tensor]] = {}
        scores: dict[str, dict[str | None, Tensor]] = {}
        for key, t in tensors.items():
            kind, name, lang = key.split("/", 2)
            target = masks if kind == "mask" else scores
            target.setdefault(name, {})[None if lang == _ANY else lang] = t
        # keep the saved order of categories and of languages inside each category
        order = {l: i for i, l in enumerate(meta["langs"])}
        for d in (masks, scores):
            for name in d:
                d[name] = dict(sorted(d[name].items(), key=lambda kv: -1 if kv[0] is None else order.get(kv[0], 0)))
        cats = meta.get("categories", [])
        masks = {c: masks[c] for c in cats if c in masks} | {c: v for c, v in masks.items() if c not in cats}
        return cls(
            masks=masks,
            langs=meta["langs"],
            site=meta["site"],
            model_info=meta["model_info"],
            method=meta["method"],
            params=meta["params"],
            stats_ref=meta["stats_ref"],
            layers=meta["layers"],
            shape=tuple(meta["shape"]),
            scores=scores,
        )

    def check_model(self, model, site: str | None = None) -> None:
        """Raise :class:`~clas_lens.errors.MismatchError` unless ``model`` (and ``site``) match."""
        check_model_identity(
            model, self.model_info, "neurons", site=None if site is None else check_site(site), stored_site=self.site
        )



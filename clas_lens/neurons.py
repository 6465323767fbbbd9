"""Sorting MLP neurons into shared and language-specific ones, from :class:`NeuronStats`.

:func:`identify_neurons` offers four methods, all on the same statistics:

* ``"clas"`` -- the categories of "Sharing Matters" (Wang et al. 2024) that CLAS steers: a
  neuron is *active* for a language when its activation probability passes a criterion;
  ``all_shared`` = active in every language, ``partial_shared`` = in two or more but not all,
  ``specific`` = in exactly one (filed under that language), ``non_activated`` = in none.
* ``"lape"`` -- language activation probability entropy (Tang et al. 2024).
* ``"ap"`` -- average precision of per-sentence activations (Kojima et al. 2024).
* ``"mean"`` -- the top fraction of neurons by mean activation per language (Mondal et al. 2025).

Methods that only pick language neurons (lape, ap, mean) file them under ``"specific"``, per
language. The result is a :class:`NeuronSet`: boolean masks of the model's full shape
``[layer, neuron]`` (row ``l`` is layer ``l``; layers that were not measured are all False),
with the model identity, the site and a reference to the statistics they came from.

>>> from clas_lens.testing import tiny_model
>>> from clas_lens.stats import collect_stats
>>> model = tiny_model("llama")
>>> stats = collect_stats(model, {"en": ["The cat sat.", "A dog ran."],
...                               "de": ["Die Katze sass.", "Ein Hund lief."],
...                               "tr": ["Kedi oturdu.", "Bir köpek koştu."]}, site="act")
>>> ns = identify_neurons(stats, "clas")
>>> total = sum(int(ns.mask(c).sum()) for c in ("all_shared", "partial_shared", "specific", "non_activated"))
>>> total == 2 * 64
True
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from clas_lens.errors import DataValidationError
from clas_lens.io import atomic_write_bytes
from clas_lens.sites import check_site

__all__ = ["NeuronSet", "identify_neurons", "CATEGORIES", "METHODS", "average_precision"]

CATEGORIES: tuple[str, ...] = ("all_shared", "partial_shared", "specific", "non_activated")
METHODS: tuple[str, ...] = ("clas", "lape", "ap", "mean")
_FORMAT = "clas_lens.NeuronSet/1"
_ANY = "*"  # language key of categories that belong to no single language


# ---------------------------------------------------------------------------------------------
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
                if self.method in ("lape", "ap", "mean") and category in CATEGORIES
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
            "format": _FORMAT,
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
        >>> from clas_lens.stats import collect_stats
        >>> s = collect_stats(tiny_model("gpt2"), {"en": ["one two"], "de": ["eins zwei"]})
        >>> ns = identify_neurons(s, "mean", top_fraction=0.1)
        >>> p = ns.save(pathlib.Path(tempfile.mkdtemp()) / "neurons.safetensors")
        >>> bool(torch.equal(NeuronSet.load(p).mask("specific", "de"), ns.mask("specific", "de")))
        True
        """
        from clas_lens.io import save_tensors

        tensors: dict[str, Tensor] = {}
        for cat, entries in self._masks.items():
            for lang, m in entries.items():
                tensors[f"mask/{cat}/{_ANY if lang is None else lang}"] = m.contiguous()
        for name, entries in self.scores.items():
            for lang, t in entries.items():
                tensors[f"score/{name}/{_ANY if lang is None else lang}"] = t.contiguous()
        return save_tensors(path, tensors, self.meta(), _FORMAT)

    @classmethod
    def load(cls, path: str | Path) -> "NeuronSet":
        """Read a NeuronSet written by :meth:`save`."""
        from clas_lens.io import load_tensors

        meta, tensors = load_tensors(path, _FORMAT, "NeuronSet")
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
        from clas_lens.models import check_model_identity

        check_model_identity(
            model, self.model_info, "neurons", site=None if site is None else check_site(site), stored_site=self.site
        )


# ---------------------------------------------------------------------------------------------
# identification
# ---------------------------------------------------------------------------------------------


def _stats_ref(stats) -> dict[str, Any]:
    meta = stats.meta()
    keep = ("site", "threshold", "layers", "shape", "langs", "n_tokens", "keep_bos", "corpus_hash",
            "corpus_hashes", "versions", "n_truncated", "per_sentence")
    ref = {k: meta.get(k) for k in keep}
    ref["weights_sha256"] = stats.model_info.get("weights_sha256")
    return ref


def _langs(stats, langs, minimum: int, method: str) -> list[str]:
    if langs is None:
        langs = stats.langs
    elif isinstance(langs, str):
        langs = [langs]
    unknown = [l for l in langs if l not in stats.langs]
    if unknown:
        raise DataValidationError(f"Languages {unknown} have no statistics (they have {stats.langs}).")
    if len(langs) < minimum:
        raise DataValidationError(
            f"Method {method!r} needs statistics for at least {minimum} languages; got {list(langs)}."
        )
    return list(langs)


def _measured(stats, t: Tensor) -> Tensor:
    return t[stats.layers].to("cpu")


def _to_full(stats, t: Tensor, fill) -> Tensor:
    out = torch.full(stats.shape, fill, dtype=t.dtype)
    out[stats.layers] = t
    return out


def _warn_chance_probabilities(stats) -> None:
    if stats.site == "post" and stats.extra.get("gated") and stats.threshold == 0.0:
        warnings.warn(
            "Activation probabilities were measured at site 'post' of a gated MLP with threshold "
            "0: the sign of act(gate)*up is close to a coin flip, so most probabilities sit near "
            "0.5 and 'active' says little. Collect the statistics at site='act' (LAPE's "
            "convention; zeroing/scaling steering is identical at both sites) or use a positive "
            "threshold.",
            stacklevel=3,
        )


def _check_params(method: str, params: Mapping[str, Any], allowed: Sequence[str]) -> None:
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise TypeError(f"identify_neurons(method={method!r}) got unknown parameter(s) {extra}; allowed: {list(allowed)}.")


def _clas(stats, criterion: str = "prob", prob_threshold: float = 0.5, top_quantile: float = 0.1, langs=None):
    langs = _langs(stats, langs, 2, "clas")
    _warn_chance_probabilities(stats)
    P = torch.stack([_measured(stats, stats.active_prob(l)) for l in langs])  # lang mlayer neuron
    if criterion == "prob":
        if not 0.0 <= prob_threshold < 1.0:
            raise ValueError(f"prob_threshold must be in [0, 1); got {prob_threshold}.")
        active = P > prob_threshold
    elif criterion == "quantile":
        if not 0.0 < top_quantile <= 1.0:
            raise ValueError(f"top_quantile must be in (0, 1]; got {top_quantile}.")
        flat = P.flatten(1)
        n = flat.shape[1]
        k = n - math.ceil(n * top_quantile) + 1
        cut = flat.kthvalue(k, dim=1).values  # per language
        active = (P >= cut[:, None, None]) & (P > 0)
    else:
        raise ValueError(f"criterion={criterion!r}: use 'prob' or 'quantile'.")
    n_active = active.sum(0)
    n = len(langs)
    full = lambda m: _to_full(stats, m, False)  # noqa: E731
    masks: dict[str, dict[str | None, Tensor]] = {
        "all_shared": {None: full(n_active == n)},
        "partial_shared": {None: full((n_active >= 2) & (n_active < n))},
        "specific": {l: full(active[i] & (n_active == 1)) for i, l in enumerate(langs)},
        "non_activated": {None: full(n_active == 0)},
        "active": {l: full(active[i]) for i, l in enumerate(langs)},
    }
    params = {"criterion": criterion, "langs": langs}
    params.update({"prob_threshold": prob_threshold} if criterion == "prob" else {"top_quantile": top_quantile})
    return masks, {}, params, langs


def _lape(stats, top_rate: float = 0.01, filter_rate: float = 0.95, langs=None):
    langs = _langs(stats, langs, 2, "lape")
    if not 0.0 < top_rate <= 1.0 or not 0.0 < filter_rate <= 1.0:
        raise ValueError(f"top_rate and filter_rate must be in (0, 1]; got {top_rate}, {filter_rate}.")
    _warn_chance_probabilities(stats)
    P3 = torch.stack([_measured(stats, stats.active_prob(l)) for l in langs])  # lang mlayer neuron
    P = P3.flatten(1)  # lang x M
    M = P.shape[1]
    flat = P.flatten()
    k_bar = min(max(round(flat.numel() * filter_rate), 1), flat.numel())
    bar = flat.kthvalue(k_bar).values
    total = P.sum(0, keepdim=True)
    normed = torch.where(total > 0, P / total.clamp(min=1e-300), torch.zeros_like(P))
    logp = torch.where(normed > 0, normed.log(), torch.zeros_like(normed))
    entropy = -(normed * logp).sum(0)  # M
    candidate = (P > bar).any(0)
    n_sel = round(M * top_rate)
    ranked = torch.where(candidate, entropy, torch.full_like(entropy, math.inf))
    order = torch.argsort(ranked, stable=True)[:n_sel]
    selected = torch.zeros(M, dtype=torch.bool)
    selected[order] = True
    selected &= candidate
    masks = {"specific": {}}
    for i, l in enumerate(langs):
        m = (selected & (P[i] > bar)).reshape(P3.shape[1:])
        masks["specific"][l] = _to_full(stats, m, False)
    scores = {"entropy": {None: _to_full(stats, entropy.reshape(P3.shape[1:]).float(), math.nan)}}
    params = {"top_rate": top_rate, "filter_rate": filter_rate, "langs": langs, "activation_bar": float(bar)}
    return masks, scores, params, langs


def average_precision(
    scores: Float[Tensor, "sample m"], labels: Bool[Tensor, " sample"], *, chunk: int = 4096
) -> Float[Tensor, " m"]:
    """Average precision of each column of ``scores`` at ranking the ``labels`` first.

    Same definition as ``sklearn.metrics.average_precision_score`` (tied scores share one
    threshold): ``AP = sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds.

    >>> import torch
    >>> float(average_precision(torch.tensor([[0.1], [0.4], [0.35], [0.8]]),
    ...                         torch.tensor([False, False, True, True]))[0])
    0.8333333333333333
    """
    labels = torch.as_tensor(labels, dtype=torch.bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        raise DataValidationError("average_precision needs at least one positive sample.")
    n = scores.shape[0]
    out = []
    rank = torch.arange(1, n + 1, dtype=torch.float64).unsqueeze(1)
    for start in range(0, scores.shape[1], chunk):
        s = scores[:, start : start + chunk].to(torch.float64)
        s_sorted, idx = torch.sort(s, dim=0, descending=True, stable=True)
        y = labels[idx].to(torch.float64)
        tp = y.cumsum(0)
        is_end = torch.ones_like(s_sorted, dtype=torch.bool)
        is_end[:-1] = s_sorted[:-1] != s_sorted[1:]
        tp_end = torch.where(is_end, tp, torch.zeros_like(tp))
        prev = torch.cat([torch.zeros_like(tp_end[:1]), tp_end[:-1]]).cummax(0).values
        delta = torch.where(is_end, tp - prev, torch.zeros_like(tp))
        out.append((delta * (tp / rank)).sum(0) / n_pos)
    return torch.cat(out)


def _ap(stats, top_k: int = 1000, bottom_k: int = 1000, langs=None):
    langs = _langs(stats, langs, 2, "ap")
    if not stats.has_sentences:
        raise DataValidationError(
            "Method 'ap' (Kojima et al.) needs per-sentence activations: collect the statistics "
            "with collect_stats(..., per_sentence=True)."
        )
    if top_k < 0 or bottom_k < 0:
        raise ValueError(f"top_k and bottom_k must be >= 0; got {top_k}, {bottom_k}.")
    blocks = [stats.sentence_means(l)[:, stats.layers].flatten(1).float() for l in langs]  # sentence x M
    X = torch.cat(blocks)
    M = X.shape[1]
    if top_k + bottom_k > M:
        raise ValueError(f"top_k + bottom_k = {top_k + bottom_k} exceeds the {M} measured neurons.")
    sizes = [b.shape[0] for b in blocks]
    owner = torch.repeat_interleave(torch.arange(len(langs)), torch.tensor(sizes))
    shape = (len(stats.layers), stats.shape[1])
    masks: dict[str, dict[str | None, Tensor]] = {"specific": {}, "top": {}, "bottom": {}}
    scores: dict[str, dict[str | None, Tensor]] = {"ap": {}}
    for i, l in enumerate(langs):
        ap = average_precision(X, owner == i)
        order = torch.argsort(ap, descending=True, stable=True)
        top = torch.zeros(M, dtype=torch.bool)
        top[order[:top_k]] = True
        bottom = torch.zeros(M, dtype=torch.bool)
        if bottom_k:
            bottom[order[-bottom_k:]] = True
        masks["top"][l] = _to_full(stats, top.reshape(shape), False)
        masks["bottom"][l] = _to_full(stats, bottom.reshape(shape), False)
        masks["specific"][l] = masks["top"][l] | masks["bottom"][l]
        scores["ap"][l] = _to_full(stats, ap.reshape(shape).float(), math.nan)
    params = {"top_k": top_k, "bottom_k": bottom_k, "langs": langs}
    return masks, scores, params, langs


def _mean(stats, top_fraction: float = 0.01, contrast: bool = False, langs=None):
    langs = _langs(stats, langs, 2 if contrast else 1, "mean")
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1]; got {top_fraction}.")
    means = torch.stack([_measured(stats, stats.mean(l)) for l in langs]).flatten(1)  # lang x M
    M = means.shape[1]
    k = max(1, round(M * top_fraction))
    shape = (len(stats.layers), stats.shape[1])
    masks: dict[str, dict[str | None, Tensor]] = {"specific": {}}
    scores: dict[str, dict[str | None, Tensor]] = {"score": {}}
    for i, l in enumerate(langs):
        score = means[i]
        if contrast:
            others = torch.cat([means[:i], means[i + 1 :]])
            score = score - others.mean(0)
        order = torch.argsort(score, descending=True, stable=True)[:k]
        sel = torch.zeros(M, dtype=torch.bool)
        sel[order] = True
        masks["specific"][l] = _to_full(stats, sel.reshape(shape), False)
        scores["score"][l] = _to_full(stats, score.reshape(shape).float(), math.nan)
    params = {"top_fraction": top_fraction, "contrast": contrast, "langs": langs}
    return masks, scores, params, langs


_IMPL = {"clas": _clas, "lape": _lape, "ap": _ap, "mean": _mean}
_PARAMS = {
    "clas": ("criterion", "prob_threshold", "top_quantile", "langs"),
    "lape": ("top_rate", "filter_rate", "langs"),
    "ap": ("top_k", "bottom_k", "langs"),
    "mean": ("top_fraction", "contrast", "langs"),
}


def identify_neurons(stats, method: str = "clas", **params) -> NeuronSet:
    """Pick shared / language-specific neurons from :class:`~clas_lens.stats.NeuronStats`.

    Methods and parameters (defaults in brackets):

    * ``"clas"`` -- Sharing-Matters categories. A neuron is *active* for a language when
      ``criterion="prob"`` [default]: its activation probability ``P(act > stats.threshold)``
      on that language's tokens exceeds ``prob_threshold`` [0.5]; or
      ``criterion="quantile"``: it is in the top ``top_quantile`` [0.1] of that language's
      activation probabilities (and fires at all). ``all_shared`` / ``partial_shared`` /
      ``specific`` (per language) / ``non_activated`` follow from the number of languages it is
      active in; ``"active"`` (per language) is kept too. Why 0.5: "active" then means "fires
      on most of the language's tokens", a scale-free cut that needs no per-model tuning and
      is well above sampling noise for a few hundred tokens. It is meaningful where the sign
      of the activation is (site ``"act"``, LAPE's convention, as on Gemma-3-270M where ~9 %
      of neurons are all-shared at 0.5); at site ``"post"`` of a gated MLP with threshold 0
      probabilities cluster at 0.5 by chance, and a warning says so -- use ``"act"`` there
      (zeroing / scaling, as CLAS does, acts the same at both sites) or ``"quantile"``.
    * ``"lape"`` -- Tang et al. 2024: p normalised over languages, entropy per neuron; among
      neurons where some language's p exceeds the ``filter_rate`` [0.95] quantile of all p,
      the ``top_rate`` [0.01] fraction of all measured neurons with the lowest entropy; each
      is assigned to every language whose p exceeds that quantile. Scores: ``"entropy"``.
    * ``"ap"`` -- Kojima et al. 2024: per language, the average precision of each neuron's
      per-sentence mean activation at separating that language's sentences from the others'
      (needs ``collect_stats(per_sentence=True)``); the ``top_k`` [1000] highest and
      ``bottom_k`` [1000] lowest, both filed under ``"specific"`` (and ``"top"`` /
      ``"bottom"``). Scores: ``"ap"``.
    * ``"mean"`` -- Mondal et al. 2025: per language the ``top_fraction`` [0.01] of measured
      neurons by mean activation (``contrast=True``: by mean minus the other languages' mean).

    Every method takes ``langs`` (default: all languages of the statistics).

    >>> from clas_lens.testing import tiny_model
    >>> from clas_lens.stats import collect_stats
    >>> stats = collect_stats(tiny_model("gemma3"), {"en": ["a cat", "one two"], "sw": ["paka", "moja mbili"]},
    ...                       site="act", per_sentence=True)
    >>> identify_neurons(stats, "ap", top_k=5, bottom_k=5).mask("specific", "sw").sum().item()
    10
    >>> lape = identify_neurons(stats, "lape", top_rate=0.05)
    >>> lape.method, lape.categories
    ('lape', ['specific'])
    """
    if method not in _IMPL:
        raise ValueError(f"Unknown method {method!r}; choose one of {list(METHODS)}.")
    _check_params(method, params, _PARAMS[method])
    masks, scores, used, langs = _IMPL[method](stats, **params)
    return NeuronSet(
        masks=masks,
        langs=langs,
        site=stats.site,
        model_info=stats.model_info,
        method=method,
        params=used,
        stats_ref=_stats_ref(stats),
        layers=stats.layers,
        shape=stats.shape,
        scores=scores,
    )

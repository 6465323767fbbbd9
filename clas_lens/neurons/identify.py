"""Identifying shared and language-specific neurons: :func:`identify_neurons`.

Looks the method up in :mod:`~clas_lens.neurons.registry`, validates its parameters, runs it on
:class:`~clas_lens.stats.NeuronStats` and wraps the result in a
:class:`~clas_lens.neurons.NeuronSet` with the model identity, the site and a reference to the
statistics. See docs/methods.md, "Neuron categories" and "Peer methods".
"""
from __future__ import annotations

from typing import Any

from clas_lens.errors import DataValidationError
from clas_lens.neurons.neuron_set import NeuronSet
from clas_lens.neurons.registry import check_params

__all__ = ["identify_neurons", "stats_ref"]


def stats_ref(stats) -> dict[str, Any]:
    """The metadata of ``stats`` a NeuronSet keeps to say where it came from."""
    meta = stats.meta()
    keep = ("site", "threshold", "layers", "shape", "langs", "n_tokens", "keep_bos", "corpus_hash",
            "corpus_hashes", "versions", "n_truncated", "per_sentence")
    ref = {k: meta.get(k) for k in keep}
    ref["weights_sha256"] = stats.model_info.get("weights_sha256")
    return ref


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
      ``margin`` [0] (``"prob"`` only) sets a band of doubt: active needs
      ``p > prob_threshold + margin``, inactive ``p <= prob_threshold - margin``; a neuron
      inside the band for any language is in none of the four categories but under
      ``"uncertain"`` (per language: those whose p is in the band). ``margin=0`` gives
      exactly the rule without a band.
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

    Every method takes ``langs`` (default: all languages of the statistics). More methods
    can be added with :func:`~clas_lens.neurons.registry.register_method`.

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
    impl = check_params(method, params)
    empty = [lang for lang in (params.get("langs") or stats.langs) if lang in stats.langs and stats.n_tokens(lang) == 0]
    if empty:
        raise DataValidationError(
            f"The statistics have no tokens of language {empty[0]!r} (its texts were empty or all cut away), so "
            "every neuron would look never active in it. Collect the statistics again with texts in that "
            "language, or leave it out (identify_neurons(..., langs=[...]))."
        )
    masks, scores, used, langs = impl.fn(stats, **params)
    return NeuronSet(
        masks=masks,
        langs=langs,
        site=stats.site,
        model_info=stats.model_info,
        method=method,
        params=used,
        stats_ref=stats_ref(stats),
        layers=stats.layers,
        shape=stats.shape,
        scores=scores,
    )

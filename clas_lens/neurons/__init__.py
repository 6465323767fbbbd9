"""Sorting MLP neurons into shared and language-specific ones, from :class:`~clas_lens.stats.NeuronStats`.

:func:`identify_neurons` offers four methods, all on the same statistics (one module each):

* ``"clas"`` (:mod:`~clas_lens.neurons.clas`) -- the categories of "Sharing Matters" (Wang et
  al. 2024) that CLAS steers: ``all_shared``, ``partial_shared``, ``specific`` (per language),
  ``non_activated``, by the number of languages a neuron is active in;
* ``"lape"`` (:mod:`~clas_lens.neurons.lape`) -- language activation probability entropy (Tang et al. 2024);
* ``"ap"`` (:mod:`~clas_lens.neurons.ap`) -- average precision of per-sentence activations (Kojima et al. 2024);
* ``"mean"`` (:mod:`~clas_lens.neurons.mean`) -- top neurons by mean activation (Mondal et al. 2025).

Methods register themselves in :mod:`~clas_lens.neurons.registry`; :data:`METHODS` lists them.
Methods that only pick language neurons (lape, ap, mean) file them under ``"specific"``, per
language. The result is a :class:`NeuronSet` (:mod:`~clas_lens.neurons.neuron_set`): boolean
masks of the model's full shape ``[layer, neuron]`` (layers not measured are all False), with
the model identity, the site and a reference to the statistics. See docs/methods.md, "Neuron
categories" and "Peer methods".

>>> from clas_lens.testing import tiny_model
>>> from clas_lens.stats import collect_stats
>>> model = tiny_model("llama")
>>> stats = collect_stats(model, {"en": ["The cat sat.", "A dog ran."],
...                               "de": ["Die Katze sass.", "Ein Hund lief."],
...                               "tr": ["Kedi oturdu.", "Bir köpek koştu."]}, site="act")
>>> ns = identify_neurons(stats, "clas")
>>> total = sum(int(ns.mask(c).sum()) for c in CATEGORIES)
>>> total == 2 * 64
True
"""
from __future__ import annotations

from clas_lens.neurons import clas, lape, ap, mean  # noqa: F401, I001  (registers each method; this order is METHODS order)
from clas_lens.neurons.ap import average_precision
from clas_lens.neurons.identify import identify_neurons
from clas_lens.neurons.neuron_set import NeuronSet
from clas_lens.neurons.random_like import random_like  # noqa: F401  (re-exported)
from clas_lens.neurons.registry import method_names, register_method
from clas_lens.neurons.stability import (  # noqa: F401  (re-exported)
    neuron_stability, resample_weights, resampled_sets, set_jaccard, stability_selection, stability_table,
    weighted_stats,
)
from clas_lens.vocab import CATEGORIES

#: The built-in methods, in registration order (``registry.method_names()`` includes plug-ins).
METHODS: tuple[str, ...] = method_names()

__all__ = ["NeuronSet", "identify_neurons", "CATEGORIES", "METHODS", "average_precision", "register_method"]

"""Streaming per-language statistics of MLP neurons (and residual means), with an exact merge.

Modules (low to high):

* :mod:`~clas_lens.stats.reader` -- :func:`read_forward`, the one forward reader with early
  stop (also used by ``clas_lens.clusters.residual_reps``), sentence batching, read hooks;
* :mod:`~clas_lens.stats.accumulator` -- :class:`Accumulator`, the exact mergeable sums;
* :mod:`~clas_lens.stats.versions` -- :func:`package_versions`, recorded with results;
* :mod:`~clas_lens.stats.state` -- the flat ``{"<kind>/<lang>": tensor}`` state of accumulators;
* :mod:`~clas_lens.stats.neuron_stats` -- :class:`NeuronStats` (accessors, merge, save/load);
* :mod:`~clas_lens.stats.collect` -- :func:`collect_stats` over a parallel corpus;
* :mod:`~clas_lens.stats.quantiles` -- :func:`collect_quantiles`, :func:`sorted_quantiles`;
* :mod:`~clas_lens.stats.residual_means` -- :class:`ResidualMeans`, :func:`residual_means`.

Every per-neuron tensor has the model's full shape ``[layer, neuron]`` = ``(n_layers, d_mlp)``;
rows of layers that were not measured are NaN. Raw sums (:meth:`NeuronStats.state_tensors`)
combine by plain addition, so shards (and processes, via an all-reduce) merge to the
single-pass answer up to float64 rounding.

>>> from clas_lens.testing import tiny_model
>>> stats = collect_stats(tiny_model("llama"), {"en": ["The cat sat."], "de": ["Die Katze sass."]})
>>> stats.langs, stats.shape
(['en', 'de'], (2, 64))
"""
from __future__ import annotations

from clas_lens.stats.accumulator import INT_KINDS, KINDS, Accumulator, accum_device
from clas_lens.stats.collect import F16_MAX, collect_stats, corpus_hash, corpus_langs_texts
from clas_lens.stats.neuron_stats import FORMAT, NeuronStats, package_versions
from clas_lens.stats.quantiles import collect_quantiles, parse_quantiles, sorted_quantiles
from clas_lens.stats.reader import layer_read_hooks, read_forward, sentence_batches
from clas_lens.stats.residual_means import ResidualMeans, residual_means

__all__ = [
    "NeuronStats",
    "collect_stats",
    "collect_quantiles",
    "corpus_langs_texts",
    "sorted_quantiles",
    "parse_quantiles",
    "Accumulator",
    "KINDS",
    "INT_KINDS",
    "accum_device",
    "corpus_hash",
    "package_versions",
    "read_forward",
    "sentence_batches",
    "layer_read_hooks",
    "ResidualMeans",
    "residual_means",
    "FORMAT",
    "F16_MAX",
]

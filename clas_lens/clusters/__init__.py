"""Language clusters in the residual stream, before and after steering ("functional divergence").

CLAS's central finding (docs/methods.md, "Clusters and the divergence test") is that steering
gains go with MORE separated language clusters in the residual stream, not with a closer
alignment of every language to English. This package measures both and tests which one tracks
the gains:

1. :func:`residual_reps` (:mod:`~clas_lens.clusters.residual`) -- per sentence, language and
   layer, the residual stream ``blocks.{l}.hook_resid_post`` pooled over the sentence
   (``"mean"`` over real tokens, padding and BOS excluded, or the ``"last"`` real token),
   optionally under steering. Returns :class:`Reps` (:mod:`~clas_lens.clusters.reps`).
2. :func:`cluster_metrics` (:mod:`~clas_lens.clusters.compare`) -- per layer: silhouette with
   language labels (cosine and euclidean), Davies-Bouldin, Calinski-Harabasz (``lang ==
   "all"``); per language: that language's mean silhouette, the mean cosine of parallel pairs
   (anchor vs language) and parallel-sentence retrieval (accuracy and MRR, both directions).
   The scores themselves live in :mod:`~clas_lens.clusters.scores`. Representations are
   centred per layer by default (the mean over all languages and sentences subtracted), so
   cosines are not saturated by the residual stream's shared offset.
3. :func:`compare_reps` -- the same metrics before and after steering, and their deltas.
4. :func:`divergence_test` (:mod:`~clas_lens.clusters.divergence`) -- correlation of
   per-language (or per-setting) task gains with the separation delta AND with the alignment
   delta, side by side (Spearman and Pearson, bootstrap 95 % CIs, permutation p-values, n,
   the detectable ``|r|`` for that n), and their DIFFERENCE ``r_separation - r_alignment``
   (:func:`correlation_difference`, :mod:`~clas_lens.clusters.difference`: bootstrap CI over
   units, permutation p-value). The layer comes from the unsteered representations only
   (:func:`rule_layer`) or every layer is tested with Holm's correction. The correlation
   core, :func:`correlation_test`, lives in :mod:`clas_lens.metrics` (re-exported here).
   :func:`dose_response` (:mod:`~clas_lens.clusters.dose`) is the within-language version:
   per-language slopes of gain on cluster change across steering strengths.
5. :func:`project` (:mod:`~clas_lens.clusters.projection`) -- 2-D PCA or UMAP of one or
   several :class:`Reps` on shared axes.

Everything but :func:`residual_reps` is pure (tensors / DataFrames in and out); nothing here
prints or plots.

>>> from clas_lens.testing import tiny_model
>>> model = tiny_model("llama")
>>> corpus = {"en": ["the cat sat", "one two three", "the dog"],
...           "de": ["die Katze sass", "eins zwei drei", "der Hund"]}
>>> base = residual_reps(model, corpus)
>>> base.vectors.shape          # layer, sentence (2 langs x 3), d_model
torch.Size([2, 6, 32])
>>> df = cluster_metrics(base, metrics=("silhouette_cosine", "parallel_cosine"))
>>> sorted(df.metric.unique())
['parallel_cosine', 'silhouette_cosine']
"""
from __future__ import annotations

from clas_lens.clusters.compare import (
    METRICS,
    PER_LANGUAGE_METRICS,
    RETRIEVAL_METRICS,
    cluster_metrics,
    compare_reps,
)
from clas_lens.clusters.difference import correlation_difference
from clas_lens.clusters.divergence import DIVERGENCE_COLUMNS, LAYER_RULE, divergence_test, rule_layer
from clas_lens.clusters.dose import DOSE_COLUMNS, dose_response
from clas_lens.clusters.projection import PROJECTIONS, project
from clas_lens.clusters.reps import POOLINGS, REPS_FORMAT, Reps
from clas_lens.clusters.residual import residual_reps
from clas_lens.clusters.scores import (
    calinski_harabasz,
    davies_bouldin,
    label_codes,
    pairwise_distances,
    silhouette_from_distances,
    silhouette_samples,
    stratified_subsample,
)
from clas_lens.metrics import correlation_test  # moved to metrics; re-exported for compatibility

__all__ = [
    "Reps",
    "residual_reps",
    "cluster_metrics",
    "compare_reps",
    "correlation_test",
    "divergence_test",
    "correlation_difference",
    "rule_layer",
    "dose_response",
    "project",
    "silhouette_samples",
    "davies_bouldin",
    "calinski_harabasz",
    "METRICS",
    "RETRIEVAL_METRICS",
    "PER_LANGUAGE_METRICS",
    "POOLINGS",
    "PROJECTIONS",
    "DIVERGENCE_COLUMNS",
    "DOSE_COLUMNS",
    "LAYER_RULE",
    "REPS_FORMAT",
    "label_codes",
    "pairwise_distances",
    "silhouette_from_distances",
    "stratified_subsample",
]

"""Language-cluster separation and cross-lingual alignment per layer (:func:`cluster_metrics`),
and the same before and after steering with their deltas (:func:`compare_reps`).

Separation: silhouette with language labels (cosine and euclidean; overall and per language),
Davies-Bouldin, Calinski-Harabasz. Alignment to an anchor language: mean cosine of parallel
pairs and parallel-sentence retrieval (accuracy and MRR, both directions). See
docs/methods.md, "Clusters and the divergence test". Pure (Reps in, DataFrames out).

>>> import torch
>>> r = Reps(vectors=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0)),
...          langs=["en"] * 3 + ["de"] * 3, ids=["a", "b", "c"] * 2, layers=[0], pooling="mean")
>>> sorted(cluster_metrics(r, metrics=("parallel_cosine", "retrieval")).metric.unique())[:3]
['parallel_cosine', 'retrieval_acc', 'retrieval_acc_a2l']
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from clas_lens.clusters.reps import Reps
from clas_lens.clusters.scores import (
    calinski_harabasz,
    davies_bouldin,
    label_codes,
    pairwise_distances,
    silhouette_from_distances,
    silhouette_undefined,
    stratified_subsample,
)
from clas_lens.errors import DataValidationError, MismatchError

__all__ = ["METRICS", "RETRIEVAL_METRICS", "PER_LANGUAGE_METRICS", "cluster_metrics", "compare_reps"]

#: Metric groups accepted by :func:`cluster_metrics` (``"retrieval"`` expands to six metrics).
METRICS: tuple[str, ...] = (
    "silhouette_cosine",
    "silhouette_euclidean",
    "davies_bouldin",
    "calinski_harabasz",
    "parallel_cosine",
    "retrieval",
)
#: The six metrics that the ``"retrieval"`` group of :data:`METRICS` produces.
RETRIEVAL_METRICS: tuple[str, ...] = (
    "retrieval_acc_a2l",
    "retrieval_acc_l2a",
    "retrieval_acc",
    "retrieval_mrr_a2l",
    "retrieval_mrr_l2a",
    "retrieval_mrr",
)
#: Metrics with one value per language (the ones :func:`~clas_lens.clusters.divergence_test`
#: can correlate with per-language gains).
PER_LANGUAGE_METRICS: tuple[str, ...] = (
    "silhouette_cosine",
    "silhouette_euclidean",
    "parallel_cosine",
) + RETRIEVAL_METRICS


def _normalize(X: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(X, axis=1, keepdims=True)
    n[n == 0] = 1.0
    return X / n


def _retrieval(S: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[float, float]:
    """Accuracy and MRR of finding column ``cols[i]`` as the nearest neighbour of row ``rows[i]``
    in the similarity matrix ``S``; ties count against (rank = number of candidates with a
    similarity >= the correct one's)."""
    correct = S[rows, cols]
    ranks = (S[rows] >= correct[:, None]).sum(1)
    return float((ranks == 1).mean()), float((1.0 / ranks).mean())


def _expand_metrics(metrics: Sequence[str]) -> list[str]:
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"Unknown cluster metric(s) {unknown}; choose from {list(METRICS)}.")
    return metrics


def cluster_metrics(
    reps: Reps,
    *,
    metrics: Sequence[str] = METRICS,
    anchor: str = "en",
    max_samples: int | None = 2000,
    seed: int = 0,
    layers: Sequence[int] | None = None,
    center: bool = True,
) -> pd.DataFrame:
    """Language-cluster separation and cross-lingual alignment per layer, as a tidy table.

    Columns ``condition, layer, lang, metric, value``. Rows:

    * ``silhouette_cosine`` / ``silhouette_euclidean`` with language labels: ``lang="all"`` is
      the mean silhouette over all points (sklearn's ``silhouette_score``); ``lang=<l>`` is the
      mean silhouette value of language ``l``'s points, so per-language deltas can be compared
      with per-language gains. When there are more than ``max_samples`` points, silhouette is
      computed on a seeded stratified subsample of ``max_samples`` points (each language keeps
      its share; the same rows for every layer and for any Reps with the same rows, so before
      and after steering stay paired). ``max_samples=None`` uses all points. Where silhouette
      is undefined (NaN vectors, or all distances equal: constant vectors) it is NaN, with a warning.
    * ``davies_bouldin`` (lower = more separated) and ``calinski_harabasz`` (higher = more
      separated), euclidean, on all points, ``lang="all"``.
    * ``parallel_cosine``: mean cosine similarity of parallel pairs (same id) between the
      ``anchor`` and each other language, ``lang=<l>``.
    * ``retrieval``: cosine nearest-neighbour parallel-sentence retrieval between the anchor and
      each language: ``retrieval_acc_a2l`` / ``retrieval_mrr_a2l`` (anchor query, candidates =
      all of that language's sentences), ``..._l2a`` (the reverse) and ``retrieval_acc`` /
      ``retrieval_mrr`` (mean of both directions). Ties count as misses.

    ``layers`` restricts the layers (default all of ``reps.layers``).

    Centring (``center=True``, the default): at each layer the mean representation over all
    rows (every language and sentence of these reps) is subtracted before any metric.
    Residual streams are anisotropic: a few large shared dimensions put every cosine near 1
    (e.g. parallel_cosine ~0.99 at most layers of Gemma-3-270M, whatever the languages), and
    centring measures the cosine geometry around that common offset instead. Only the
    cosine-based metrics (silhouette_cosine, parallel_cosine, retrieval) change; euclidean ones
    are shift-invariant. ``center=False`` is the raw residual stream (the behaviour before
    centring became the default). Each Reps is centred by its own mean, so in
    :func:`compare_reps` a shift that steering adds to every row alike changes nothing.
    ``df.attrs`` records the anchor, max_samples, seed, center and the number of points used
    for silhouette.

    >>> import numpy as np, torch
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (20, 8)) + 5, rng.normal(0, 1, (20, 8)) - 5])
    >>> reps = Reps(vectors=torch.tensor(X[None], dtype=torch.float32),
    ...             langs=["en"] * 20 + ["de"] * 20, ids=[str(i) for i in range(20)] * 2,
    ...             layers=[3], pooling="mean")
    >>> df = cluster_metrics(reps, metrics=("silhouette_euclidean",))
    >>> float(df.query("lang == 'all'").value.iloc[0]) > 0.7
    True
    """
    wanted = _expand_metrics(metrics)
    lang_set = reps.lang_set
    if len(lang_set) < 2:
        raise DataValidationError(
            f"Cluster metrics need at least 2 languages; these reps have {lang_set}."
        )
    needs_anchor = any(m in wanted for m in ("parallel_cosine", "retrieval"))
    if needs_anchor and anchor not in lang_set:
        raise DataValidationError(
            f"Unknown anchor language {anchor!r}: these reps have {lang_set}. Pass anchor= one of "
            "them, or compute the reps with the anchor language included."
        )
    codes, uniq = label_codes(reps.langs)
    k = len(uniq)
    sil = [m for m in wanted if m.startswith("silhouette_")]
    sub = stratified_subsample(codes, k, max_samples, seed) if sil else np.arange(len(codes))
    sub_codes = codes[sub]
    layer_list = reps.layers if layers is None else [reps.layers[reps.layer_index(l)] for l in layers]
    ids_arr = np.asarray(reps.ids, dtype=object)
    rows: list[tuple] = []

    def add(layer, lang, metric, value):
        rows.append((reps.condition, int(layer), lang, metric, float(value)))

    for layer in layer_list:
        X = reps.vectors[reps.layer_index(layer)].detach().to("cpu", torch.float64).numpy()
        if center:
            X = X - X.mean(0, keepdims=True)
        if sil:
            Xs = X[sub]
            G = Xs @ Xs.T
            for m in sil:
                D = pairwise_distances(Xs, m.split("_", 1)[1], gram=G)
                why = silhouette_undefined(Xs, D)
                if why:  # not the "no separation" 0 of sklearn: undefined
                    warnings.warn(f"{m} at layer {layer} ({reps.condition}) is NaN: {why}.", RuntimeWarning, stacklevel=2)
                    s = np.full(len(sub_codes), np.nan)
                else:
                    s = silhouette_from_distances(D, sub_codes, k)
                add(layer, "all", m, s.mean())
                for c, lang in enumerate(uniq):
                    add(layer, lang, m, s[sub_codes == c].mean())
        if "davies_bouldin" in wanted:
            add(layer, "all", "davies_bouldin", davies_bouldin(X, codes))
        if "calinski_harabasz" in wanted:
            add(layer, "all", "calinski_harabasz", calinski_harabasz(X, codes))
        if needs_anchor:
            a_rows = np.flatnonzero(codes == uniq.index(anchor))
            A = _normalize(X[a_rows])
            a_pos = {i: j for j, i in enumerate(ids_arr[a_rows])}
            for c, lang in enumerate(uniq):
                if lang == anchor:
                    continue
                l_rows = np.flatnonzero(codes == c)
                l_pos = {i: j for j, i in enumerate(ids_arr[l_rows])}
                shared = [i for i in ids_arr[a_rows] if i in l_pos]
                if not shared:
                    raise DataValidationError(
                        f"No sentence id is shared by the anchor {anchor!r} and {lang!r}: parallel "
                        "metrics need parallel sentences (the same ids)."
                    )
                ai = np.array([a_pos[i] for i in shared])
                lj = np.array([l_pos[i] for i in shared])
                L = _normalize(X[l_rows])
                S = A @ L.T  # [anchor sentence, lang sentence] cosine similarity
                if "parallel_cosine" in wanted:
                    add(layer, lang, "parallel_cosine", S[ai, lj].mean())
                if "retrieval" in wanted:
                    acc_f, mrr_f = _retrieval(S, ai, lj)
                    acc_b, mrr_b = _retrieval(S.T, lj, ai)
                    add(layer, lang, "retrieval_acc_a2l", acc_f)
                    add(layer, lang, "retrieval_acc_l2a", acc_b)
                    add(layer, lang, "retrieval_acc", (acc_f + acc_b) / 2)
                    add(layer, lang, "retrieval_mrr_a2l", mrr_f)
                    add(layer, lang, "retrieval_mrr_l2a", mrr_b)
                    add(layer, lang, "retrieval_mrr", (mrr_f + mrr_b) / 2)
    df = pd.DataFrame(rows, columns=["condition", "layer", "lang", "metric", "value"])
    df.attrs.update(
        anchor=anchor, max_samples=max_samples, seed=seed, center=center, n_points=len(codes),
        n_silhouette_points=int(len(sub)), pooling=reps.pooling,
    )
    return df


def _align(before: Reps, after: Reps) -> Reps:
    """``after`` reordered to ``before``'s rows; raises if rows, layers, pooling or model differ."""
    if before.pooling != after.pooling:
        raise MismatchError(f"before uses pooling={before.pooling!r} but after {after.pooling!r}.")
    if before.layers != after.layers:
        raise MismatchError(
            f"before has layers {before.layers} but after {after.layers}: compute both with the "
            "same layers= (or use .select(layers=...))."
        )
    sb, sa = (before.model_info or {}).get("weights_sha256"), (after.model_info or {}).get("weights_sha256")
    if sb and sa and sb != sa:
        raise MismatchError(
            f"before and after come from different models ({before.model_info.get('model_id')} "
            f"{sb[:12]} vs {after.model_info.get('model_id')} {sa[:12]})."
        )
    key_b = list(zip(before.langs, before.ids))
    key_a = list(zip(after.langs, after.ids))
    if key_b == key_a:
        return after
    pos_a = {k: i for i, k in enumerate(key_a)}
    missing = [k for k in key_b if k not in pos_a]
    extra = [k for k in key_a if k not in set(key_b)]
    if missing or extra:
        raise MismatchError(
            f"before and after have different sentences: {len(missing)} (lang, id) only in before "
            f"(e.g. {missing[:3]}), {len(extra)} only in after (e.g. {extra[:3]}). Compute both on "
            "the same corpus and languages."
        )
    idx = [pos_a[k] for k in key_b]
    return dataclasses.replace(
        after, vectors=after.vectors[:, idx], langs=before.langs, ids=before.ids, meta=dict(after.meta)
    )


def compare_reps(before: Reps, after: Reps, **kw) -> pd.DataFrame:
    """Every cluster metric before and after (e.g. steering) and ``delta = after - before``.

    Columns ``layer, lang, metric, before, after, delta``; ``kw`` go to
    :func:`cluster_metrics` for both (same subsample, since the rows are aligned by
    (lang, id) first; with the default ``center=True`` each side is centred by its own mean).
    Raises :class:`~clas_lens.errors.MismatchError` for different sentences,
    layers, pooling or models. ``df.attrs`` names the two conditions.

    >>> import torch
    >>> base = Reps(vectors=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0)),
    ...             langs=["en"] * 3 + ["de"] * 3, ids=["a", "b", "c"] * 2, layers=[0], pooling="mean")
    >>> d = compare_reps(base, base.with_condition("same"), metrics=("parallel_cosine",))
    >>> list(d.columns), float(d.delta.abs().max())
    (['layer', 'lang', 'metric', 'before', 'after', 'delta'], 0.0)
    """
    after = _align(before, after)
    mb = cluster_metrics(before, **kw)
    ma = cluster_metrics(after, **kw)
    keys = ["layer", "lang", "metric"]
    df = mb[keys + ["value"]].rename(columns={"value": "before"}).merge(
        ma[keys + ["value"]].rename(columns={"value": "after"}), on=keys, how="inner", validate="1:1"
    )
    df["delta"] = df["after"] - df["before"]
    df.attrs.update(mb.attrs)
    df.attrs.update(before=before.condition, after=after.condition)
    return df

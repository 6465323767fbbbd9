"""The divergence test: does a steering gain track language-cluster SEPARATION or ALIGNMENT
to the anchor? (:func:`divergence_test`)

Per-unit gains (languages, or languages x settings) are correlated with the per-unit metric
deltas of :func:`~clas_lens.clusters.compare.compare_reps`, for a separation and an alignment
metric side by side, with :func:`clas_lens.metrics.correlation_test` (Spearman and Pearson,
bootstrap CIs, permutation p-values). See docs/methods.md, "Clusters and the divergence test".
Pure (DataFrames in and out).

>>> import pandas as pd
>>> deltas = pd.DataFrame({"layer": 0, "lang": ["de", "es", "ru", "zh"],
...                        "metric": "silhouette_cosine", "delta": [0.1, 0.2, 0.3, 0.4]})
>>> t = divergence_test({"de": 1, "es": 2, "ru": 3, "zh": 5}, deltas, alignment=None, n_boot=50)
>>> t[["hypothesis", "method", "r"]].round(3).values.tolist()
[['separation', 'spearman', 1.0], ['separation', 'pearson', 0.983]]
"""
from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from clas_lens.errors import DataValidationError
from clas_lens.metrics import correlation_test

__all__ = ["divergence_test"]


def _gains_frame(gains) -> pd.DataFrame:
    if isinstance(gains, pd.Series):
        g = gains.rename("gain").to_frame()
        if g.index.names == [None]:
            g.index.name = "lang"
        return g.reset_index()
    if isinstance(gains, Mapping):
        return pd.DataFrame({"lang": [str(k) for k in gains], "gain": list(gains.values())})
    if isinstance(gains, pd.DataFrame):
        g = gains.copy()
        if "gain" not in g.columns:
            if g.shape[1] == 1:
                g.columns = ["gain"]
            else:
                raise DataValidationError(
                    f"gains needs a 'gain' column (got columns {list(g.columns)})."
                )
        if "lang" not in g.columns:
            if g.index.names == [None]:
                g.index.name = "lang"
            g = g.reset_index()
        return g
    raise DataValidationError(
        f"gains must be a DataFrame (columns lang, gain), a Series indexed by lang or a dict; got "
        f"{type(gains).__name__}."
    )


def divergence_test(
    gains,
    deltas: pd.DataFrame,
    *,
    x: str = "silhouette_cosine",
    layer: int | str | None = None,
    alignment: str | None = "parallel_cosine",
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    methods: Sequence[str] = ("spearman", "pearson"),
) -> pd.DataFrame:
    """Does the task gain track language-cluster SEPARATION or ALIGNMENT to the anchor?

    Correlates per-unit gains with per-unit metric deltas (``after - before`` from
    :func:`compare_reps`), for the separation metric ``x`` (default: per-language cosine
    silhouette) and the alignment metric (default: parallel-pair cosine to the anchor), side by
    side, with :func:`correlation_test` (Spearman and Pearson, bootstrap CIs resampling the
    units, two-sided permutation p-value, n).

    Args:
        gains: per-unit task gains: a DataFrame with columns ``lang`` and ``gain`` (more key
            columns, e.g. ``setting`` for several steering strengths, are joined with the same
            columns of ``deltas``), a Series indexed by lang, or a dict ``{lang: gain}``.
        deltas: :func:`compare_reps` output (columns layer, lang, metric, delta; plus the key
            columns when gains has them, e.g. several compare_reps tables concatenated with a
            ``setting`` column). Rows with ``lang == "all"`` are ignored.
        x: separation metric (a per-language metric of :func:`cluster_metrics`).
        layer: a model layer; ``None`` picks the layer where the mean ``|delta|`` of ``x`` over
            the tested units is largest (chosen without looking at the gains, so the
            correlation test stays valid); ``"all"`` tests every layer (mind multiple testing).
        alignment: alignment metric (``None`` to skip); e.g. ``"retrieval_acc"``.
        n_boot, n_perm, seed: see :func:`correlation_test`.

    Both hypotheses are tested on the same units: those with a gain and a delta for both
    metrics (e.g. the anchor, which has no alignment delta, drops out).

    Returns:
        DataFrame with rows (hypothesis in {"separation", "alignment"}, metric, layer, method,
        r, ci_low, ci_high, p_value, n); ``df.attrs["layer_choice"]`` says how the layer was
        chosen and ``df.attrs["units"]`` lists the units.

    >>> import pandas as pd
    >>> deltas = pd.DataFrame({"layer": 1, "lang": ["de", "es", "ru", "zh", "hi"] * 2,
    ...     "metric": ["silhouette_cosine"] * 5 + ["parallel_cosine"] * 5,
    ...     "delta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.1, -0.1, 0.05, 0.0]})
    >>> gains = pd.DataFrame({"lang": ["de", "es", "ru", "zh", "hi"], "gain": [1, 2, 3, 4, 5]})
    >>> t = divergence_test(gains, deltas, n_boot=200)
    >>> t[["hypothesis", "method", "r", "n"]].round(2).values.tolist()[:2]
    [['separation', 'spearman', 1.0, 5], ['separation', 'pearson', 1.0, 5]]
    """
    g = _gains_frame(gains)
    keys = [c for c in g.columns if c != "gain"]
    need = {"layer", "lang", "metric", "delta"}
    if not need <= set(deltas.columns):
        raise DataValidationError(
            f"deltas needs columns {sorted(need)} (compare_reps output); got {list(deltas.columns)}."
        )
    missing_keys = [k for k in keys if k not in deltas.columns]
    if missing_keys:
        raise DataValidationError(
            f"gains has key column(s) {missing_keys} that deltas lacks: add them to deltas "
            "(e.g. concatenate compare_reps tables with a 'setting' column) or drop them from gains."
        )
    if g.duplicated(keys).any():
        raise DataValidationError(f"gains has several rows for the same {keys}: one gain per unit.")
    d = deltas[deltas["lang"] != "all"]
    per_lang = sorted(d["metric"].unique())
    hyps = [("separation", x)] + ([("alignment", alignment)] if alignment else [])
    tables = {}
    for _, metric in hyps:
        if metric not in per_lang:
            raise DataValidationError(
                f"Metric {metric!r} has no per-language deltas; available: {per_lang}."
            )
        t = d[d["metric"] == metric][keys + ["layer", "delta"]]
        if t.duplicated(keys + ["layer"]).any():
            raise DataValidationError(
                f"deltas has several {metric!r} rows per {keys + ['layer']}: add a key column "
                "(e.g. 'setting') to both gains and deltas."
            )
        tables[metric] = t.rename(columns={"delta": metric})
    merged = g[keys + ["gain"]]
    for metric, t in tables.items():
        merged = merged.merge(t, on=keys, how="inner") if "layer" not in merged.columns else merged.merge(
            t, on=keys + ["layer"], how="inner"
        )
    merged = merged.dropna(subset=["gain"] + list(tables))
    layers_avail = sorted(int(l) for l in merged["layer"].unique())
    if not layers_avail:
        raise DataValidationError(
            f"No unit has both a gain and deltas: gains units {g[keys].drop_duplicates().values.tolist()[:5]}, "
            f"delta languages {sorted(d['lang'].unique())[:10]}."
        )
    if layer is None:
        score = merged.assign(a=merged[x].abs()).groupby("layer")["a"].mean()
        chosen = [int(score.idxmax())]
        choice = f"max mean |delta {x}| over units (layer {chosen[0]})"
    elif isinstance(layer, str) and layer == "all":
        chosen = layers_avail
        choice = "all layers"
    else:
        if int(layer) not in layers_avail:
            raise DataValidationError(
                f"Layer {layer} is not in the deltas (layers with data: {layers_avail})."
            )
        chosen = [int(layer)]
        choice = "given"
    rows = []
    for lay in chosen:
        sub = merged[merged["layer"] == lay]
        for hyp, metric in hyps:
            for method in methods:
                res = correlation_test(
                    sub[metric].to_numpy(), sub["gain"].to_numpy(), method,
                    n_boot=n_boot, n_perm=n_perm, seed=seed,
                )
                rows.append(
                    {"hypothesis": hyp, "metric": metric, "layer": lay, "method": method,
                     "r": res["r"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
                     "p_value": res["p_value"], "n": res["n"]}
                )
    out = pd.DataFrame(rows, columns=["hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n"])
    out.attrs.update(
        layer_choice=choice,
        keys=keys,
        units=merged[merged["layer"] == chosen[0]][keys].values.tolist(),
        n_boot=n_boot, n_perm=n_perm, seed=seed,
    )
    return out

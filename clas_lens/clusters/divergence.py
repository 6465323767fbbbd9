"""The divergence test: does a steering gain track language-cluster SEPARATION or ALIGNMENT
to the anchor, and which of the two more? (:func:`divergence_test`)

Per-unit gains (languages, or languages x settings) are correlated with the per-unit metric
deltas of :func:`~clas_lens.clusters.compare.compare_reps`, for a separation and an alignment
metric side by side (:func:`clas_lens.metrics.correlation_test`), and the two correlations are
compared directly (:func:`~clas_lens.clusters.difference.correlation_difference`: their
difference with a bootstrap CI over units and a permutation p-value), with the correlation
that ``n`` units can detect (:func:`clas_lens.metrics.power.detectable_r`). The layer is chosen
from the unsteered representations only (:func:`rule_layer`), or every layer is tested with
Holm's correction. See docs/methods.md, "Clusters and the divergence test". Pure (DataFrames in
and out).

>>> import pandas as pd
>>> deltas = pd.DataFrame({"layer": 0, "lang": ["de", "es", "ru", "zh"],
...                        "metric": "silhouette_cosine", "delta": [0.1, 0.2, 0.3, 0.4]})
>>> t = divergence_test({"de": 1, "es": 2, "ru": 3, "zh": 5}, deltas, alignment=None, layer=0,
...                     n_boot=50)
>>> t[["hypothesis", "method", "r"]].round(3).values.tolist()
[['separation', 'spearman', 1.0], ['separation', 'pearson', 0.983]]
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from clas_lens.clusters.difference import correlation_difference
from clas_lens.errors import DataValidationError
from clas_lens.metrics import correlation_test, holm
from clas_lens.metrics.intervals import resolve_confidence
from clas_lens.metrics.power import detectable_r
from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = ["divergence_test", "rule_layer", "LAYER_RULE", "DIVERGENCE_COLUMNS"]

#: How ``layer="rule"`` picks the layer (written into ``df.attrs["layer_choice"]``).
LAYER_RULE = "max unsteered separation"
#: Columns of :func:`divergence_test`; the first nine are the columns of earlier versions.
DIVERGENCE_COLUMNS: tuple[str, ...] = (
    "hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n",
    "quantity", "estimate", "p_holm", "detectable_r",
)


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




def rule_layer(deltas: pd.DataFrame, metric: str = "silhouette_cosine", layers: Sequence[int] | None = None) -> int:
    """The layer whose UNSTEERED language separation is largest: the one layer rule of
    :func:`divergence_test` (it never looks at gains nor at what steering changed).

    Reads the ``before`` column (the unsteered value) of ``metric`` in :func:`compare_reps`
    output: the pooled row (``lang == "all"``, silhouette over all points) when there is one,
    else the mean over the per-language rows. ``metric`` must grow with separation (the
    silhouettes). ``layers`` restricts the candidates; ties go to the shallowest layer.

    >>> import pandas as pd
    >>> d = pd.DataFrame({"layer": [0, 1, 2], "lang": "all", "metric": "silhouette_cosine",
    ...                   "before": [0.2, 0.5, 0.4], "delta": [0.3, 0.0, 0.1]})
    >>> rule_layer(d)
    1
    """
    if "before" not in deltas.columns:
        raise DataValidationError(
            "layer='rule' reads the unsteered value of the separation metric (the 'before' column "
            "of compare_reps output); these deltas have no 'before' column. Pass compare_reps "
            "output, or layer=<int> / layer='all'."
        )
    d = deltas[deltas["metric"] == metric]
    if layers is not None:
        d = d[d["layer"].isin([int(l) for l in layers])]
    pooled = d[d["lang"] == "all"]
    d = pooled if len(pooled) else d
    score = d.dropna(subset=["before"]).groupby("layer")["before"].mean()
    if score.empty:
        raise DataValidationError(f"No unsteered value of {metric!r} to choose a layer from.")
    return int(score.idxmax())


def _merge(g: pd.DataFrame, keys: list[str], deltas: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per (unit, layer): gain and the delta of each metric (units lacking any drop)."""
    d = deltas[deltas["lang"] != "all"]
    per_lang = sorted(d["metric"].unique())
    merged = g[keys + ["gain"]]
    for metric in metrics:
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
        t = t.rename(columns={"delta": metric})
        on = keys + (["layer"] if "layer" in merged.columns else [])
        merged = merged.merge(t, on=on, how="inner")
    merged = merged.dropna(subset=["gain"] + metrics)
    if merged.empty:
        raise DataValidationError(
            f"No unit has both a gain and deltas: gains units {g[keys].drop_duplicates().values.tolist()[:5]}, "
            f"delta languages {sorted(d['lang'].unique())[:10]}."
        )
    return merged


def divergence_test(
    gains,
    deltas: pd.DataFrame,
    *,
    x: str = "silhouette_cosine",
    layer: int | str | None = "rule",
    alignment: str | None = "parallel_cosine",
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    methods: Sequence[str] = ("spearman", "pearson"),
    confidence: float = DEFAULT_CONFIDENCE,
    power: float = 0.8,
) -> pd.DataFrame:
    """Does the task gain track language-cluster SEPARATION or ALIGNMENT, and which one more?

    Over the same units (target languages, or languages x steering settings), per layer and
    correlation method:

    * ``separation``: ``r(gain, delta of x)`` (default: per-language cosine silhouette) with
      :func:`correlation_test` (bootstrap CI resampling units, permutation p-value);
    * ``alignment``: ``r(gain, delta of alignment)`` (default: parallel-pair cosine to the
      anchor), the same way;
    * ``difference``: ``r_separation - r_alignment`` with
      :func:`~clas_lens.clusters.difference.correlation_difference`: a bootstrap CI that
      resamples units and recomputes both correlations on each resample (the test of "one
      correlation is larger": the CI excludes 0), and a permutation p-value (gains shuffled
      across units, difference recomputed, ``(1 + k) / (1 + R)``; its null is "gains unrelated
      to both deltas").

    Every row also has ``n`` and ``detectable_r``: the smallest true ``|r|`` that ``n`` units
    detect at level ``1 - confidence`` with ``power`` (Fisher-z approximation,
    :func:`clas_lens.metrics.power.detectable_r`; on the difference row the same number, a
    lower bound on the detectable difference). With 11 languages it is about 0.76: a weak
    correlation is not evidence of no relation.

    Args:
        gains: per-unit task gains: a DataFrame with columns ``lang`` and ``gain`` (more key
            columns, e.g. ``setting`` for several steering strengths, are joined with the same
            columns of ``deltas``), a Series indexed by lang, or a dict ``{lang: gain}``.
        deltas: :func:`compare_reps` output (columns layer, lang, metric, delta, and ``before``
            for ``layer="rule"``; plus the key columns when gains has them, e.g. several
            compare_reps tables concatenated with a ``setting`` column). Rows with
            ``lang == "all"`` are used only by the layer rule.
        x: separation metric (a per-language metric of :func:`cluster_metrics`).
        layer: ``"rule"`` (default): the layer with the largest UNSTEERED language separation
            by ``x`` (:func:`rule_layer`: the ``before`` value, pooled over all points), a
            choice that sees neither the gains nor the steering deltas, so the tests and the
            separation-vs-alignment comparison stay fair. ``"all"``: every layer, with p-values
            Holm-adjusted across layers (column ``p_holm``, per quantity and method). An int:
            that layer. ``None`` (deprecated): the layer with the largest mean ``|delta x|``,
            the earlier default, which favours the separation hypothesis.
        alignment: alignment metric (``None`` to skip it and the difference); e.g.
            ``"retrieval_acc"``.
        n_boot, n_perm, seed: resamples, permutations and seed of every test.
        methods: ``"spearman"`` (default first) and/or ``"pearson"``.
        confidence: level of the CIs; ``1 - confidence`` is the alpha of ``detectable_r``.
        power: the power of ``detectable_r``.

    Both hypotheses are tested on the same units: those with a gain and a delta for both
    metrics (e.g. the anchor, which has no alignment delta, drops out).

    Returns:
        DataFrame with :data:`DIVERGENCE_COLUMNS`: one row per (layer, quantity, method);
        ``hypothesis`` in {"separation", "alignment", "difference"}, ``quantity`` in
        {"r_separation", "r_alignment", "r_separation - r_alignment"}, ``estimate`` (= ``r``,
        the correlation or the difference), ``ci_low``, ``ci_high``, ``p_value``, ``p_holm``
        (= ``p_value`` for one layer), ``n``, ``detectable_r``, ``metric``, ``layer``,
        ``method``. ``df.attrs``: ``layer_choice`` (how the layer was chosen), ``keys``,
        ``units``, ``n_boot``, ``n_perm``, ``seed``, ``confidence``, ``power``.

    >>> import pandas as pd
    >>> deltas = pd.DataFrame({"layer": 1, "lang": ["de", "es", "ru", "zh", "hi"] * 2,
    ...     "metric": ["silhouette_cosine"] * 5 + ["parallel_cosine"] * 5, "before": 0.3,
    ...     "delta": [0.1, 0.2, 0.3, 0.4, 0.5, 0.0, 0.1, -0.1, 0.05, 0.0]})
    >>> gains = pd.DataFrame({"lang": ["de", "es", "ru", "zh", "hi"], "gain": [1, 2, 3, 4, 5]})
    >>> t = divergence_test(gains, deltas, n_boot=200, n_perm=200, methods=("spearman",))
    >>> t[["quantity", "estimate", "n"]].round(2).values.tolist()
    [['r_separation', 1.0, 5], ['r_alignment', -0.1, 5], ['r_separation - r_alignment', 1.1, 5]]
    >>> round(float(t.detectable_r.iloc[0]), 2), t.attrs["layer_choice"]
    (0.96, 'max unsteered separation (layer 1)')
    """
    confidence = resolve_confidence(confidence, None, where="divergence_test")
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
    hyps = [("separation", x)] + ([("alignment", alignment)] if alignment else [])
    merged = _merge(g, keys, deltas, [m for _, m in hyps])
    layers_avail = sorted(int(l) for l in merged["layer"].unique())
    if layer is None:
        warnings.warn(
            "divergence_test(layer=None) picks the layer by the separation delta, which favours "
            "the separation hypothesis; use layer='rule' (the default: largest unsteered "
            "separation), an int, or 'all'.", DeprecationWarning, stacklevel=2,
        )
        score = merged.assign(a=merged[x].abs()).groupby("layer")["a"].mean()
        chosen = [int(score.idxmax())]
        choice = f"max mean |delta {x}| over units (layer {chosen[0]})"
    elif isinstance(layer, str) and layer == "rule":
        chosen = [rule_layer(deltas, x, layers_avail)]
        choice = f"{LAYER_RULE} (layer {chosen[0]})"
    elif isinstance(layer, str) and layer == "all":
        chosen = layers_avail
        choice = "all layers (Holm across layers)"
    elif isinstance(layer, str):
        raise DataValidationError(f"layer must be 'rule', 'all', an int or None; got {layer!r}.")
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
        gain = sub["gain"].to_numpy()
        for hyp, metric in hyps:
            for method in methods:
                res = correlation_test(
                    sub[metric].to_numpy(), gain, method,
                    n_boot=n_boot, n_perm=n_perm, seed=seed, confidence=confidence,
                )
                rows.append({"hypothesis": hyp, "metric": metric, "layer": lay, "method": method,
                             "r": res["r"], "ci_low": res["ci_low"], "ci_high": res["ci_high"],
                             "p_value": res["p_value"], "n": res["n"], "quantity": f"r_{hyp}"})
        if alignment:
            for method in methods:
                res = correlation_difference(
                    sub[x].to_numpy(), sub[alignment].to_numpy(), gain, method,
                    n_boot=n_boot, n_perm=n_perm, seed=seed, confidence=confidence,
                )
                rows.append({"hypothesis": "difference", "metric": f"{x} - {alignment}", "layer": lay,
                             "method": method, "r": res["estimate"], "ci_low": res["ci_low"],
                             "ci_high": res["ci_high"], "p_value": res["p_value"], "n": res["n"],
                             "quantity": "r_separation - r_alignment"})
    out = pd.DataFrame(rows, columns=list(DIVERGENCE_COLUMNS))
    out["estimate"] = out["r"]
    out["detectable_r"] = [detectable_r(int(n), 1 - confidence, power) for n in out["n"]]
    out["p_holm"] = out["p_value"]
    if len(chosen) > 1:
        for _, idx in out.groupby(["quantity", "method"]).groups.items():
            out.loc[idx, "p_holm"] = holm(out.loc[idx, "p_value"].to_numpy())
    out["n"] = out["n"].astype(int)
    out.attrs.update(
        layer_choice=choice,
        keys=keys,
        units=merged[merged["layer"] == chosen[0]][keys].values.tolist(),
        n_boot=n_boot, n_perm=n_perm, seed=seed, confidence=confidence, power=power,
    )
    return out

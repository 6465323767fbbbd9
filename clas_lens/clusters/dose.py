"""Within-language dose-response: as the steering strength (beta) grows, does the task gain grow
with the change in language-cluster separation? (:func:`dose_response`)

The across-language divergence test (``divergence_test``) compares languages with each other;
this one compares each language with itself at several strengths, so differences between
languages (script, resource level, baseline accuracy) cannot drive it. See docs/methods.md,
"Clusters and the divergence test". Pure (DataFrames in and out).

>>> gains = {"de": {0.2: 0.01, 0.5: 0.03, 1.0: 0.05}, "ru": {0.2: 0.0, 0.5: 0.02, 1.0: 0.03}}
>>> change = {"de": {0.2: 0.1, 0.5: 0.2, 1.0: 0.3}, "ru": {0.2: 0.05, 0.5: 0.1, 1.0: 0.2}}
>>> t = dose_response(gains, change)
>>> t[["quantity", "lang", "estimate", "n"]].round(3).values.tolist()
[['slope', 'de', 0.2, 3], ['slope', 'ru', 0.186, 3], ['mean slope', 'all', 0.193, 2]]
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from clas_lens.clusters.divergence import rule_layer
from clas_lens.errors import DataValidationError
from clas_lens.metrics import sign_flip_test
from clas_lens.metrics.intervals import resolve_confidence
from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = ["dose_response", "DOSE_COLUMNS"]

#: Columns of :func:`dose_response`.
DOSE_COLUMNS: tuple[str, ...] = (
    "quantity", "lang", "estimate", "ci_low", "ci_high", "p_value", "n", "metric", "layer", "method",
)


def _long(data, value: str, beta: str, what: str) -> pd.DataFrame:
    """``{lang: {beta: value}}`` or a DataFrame with ``lang``, ``beta`` and ``value`` columns."""
    if isinstance(data, Mapping):
        rows = [(str(lang), float(b), float(v)) for lang, per in data.items() for b, v in per.items()]
        return pd.DataFrame(rows, columns=["lang", beta, value])
    if isinstance(data, pd.DataFrame):
        missing = [c for c in ("lang", beta, value) if c not in data.columns]
        if missing:
            raise DataValidationError(f"{what} needs columns lang, {beta}, {value}; missing {missing}.")
        return data.copy()
    raise DataValidationError(
        f"{what} must be a DataFrame (lang, {beta}, {value}) or a dict {{lang: {{{beta}: {value}}}}}; "
        f"got {type(data).__name__}."
    )


def dose_response(
    gains_by_beta,
    cluster_change_by_beta,
    *,
    metric: str = "silhouette_cosine",
    layer: int | str = "rule",
    beta: str = "beta",
    confidence: float = DEFAULT_CONFIDENCE,
    n_resamples: int = 20000,
    seed: int = 0,
) -> pd.DataFrame:
    """Gain vs cluster change across steering strengths, languages as the units.

    For every language, the least-squares slope of its task gain on its cluster-metric change
    over the strengths it was run at (``gain ~ a_lang + slope_lang * delta``; at least two
    strengths with different deltas, else the language is dropped and listed in
    ``df.attrs["dropped"]``). The slopes are then summarised across languages, each language
    weighted equally: their mean with a Student-t interval and a sign-flip p-value
    (:func:`clas_lens.metrics.sign_flip_test`: exact for up to 16 languages). This is the
    two-stage "per-language slopes" analysis, not a random-intercept mixed model; a language's
    own intercept is free, so only within-language variation informs its slope. Slopes are in
    gain units per unit of metric change; a language whose metric barely moves gets a steep,
    noisy slope, so look at the per-language rows too.

    Args:
        gains_by_beta: ``{lang: {beta: gain}}`` or a DataFrame with columns ``lang``,
            ``beta`` and ``gain``.
        cluster_change_by_beta: ``{lang: {beta: delta}}`` or a DataFrame with columns ``lang``,
            ``beta`` and ``delta``, e.g. :func:`compare_reps` tables (unsteered vs steered at
            each beta) concatenated with a ``beta`` column; then rows are filtered by
            ``metric`` (when a ``metric`` column exists) and ``layer`` (when a ``layer``
            column exists). Pooled rows (``lang == "all"``) are ignored.
        metric: the cluster metric whose change is the dose (default per-language silhouette).
        layer: ``"rule"`` (default): the only layer, or, with several, the layer of largest
            unsteered separation (:func:`~clas_lens.clusters.divergence.rule_layer`, needs the
            ``before`` column); or an int.
        beta: the name of the strength column (e.g. ``"setting"``).
        confidence, n_resamples, seed: of the t interval and the sign-flip test.

    Including the unsteered point (beta 0, gain 0, delta 0) is the caller's choice; it is used
    like any other strength.

    Returns:
        DataFrame with :data:`DOSE_COLUMNS`: one ``quantity="slope"`` row per language
        (``n`` = strengths used; no CI or p) and one ``quantity="mean slope"`` row
        (``lang="all"``, ``n`` = languages). ``df.attrs``: ``dropped``, ``layer_choice``.

    >>> t = dose_response({"de": {1: 1.0, 2: 2.0}, "hi": {1: 0.0, 2: 1.0}, "zh": {1: 0.5, 2: 0.5}},
    ...                   {"de": {1: 0.1, 2: 0.2}, "hi": {1: 0.1, 2: 0.3}, "zh": {1: 0.0, 2: 0.0}})
    >>> t.lang.tolist(), t.attrs["dropped"]
    (['de', 'hi', 'all'], ['zh'])
    """
    confidence = resolve_confidence(confidence, None, where="dose_response")
    g = _long(gains_by_beta, "gain", beta, "gains_by_beta")
    d = _long(cluster_change_by_beta, "delta", beta, "cluster_change_by_beta")
    d = d[d["lang"] != "all"]
    if "metric" in d.columns:
        known = sorted(d["metric"].unique())
        d = d[d["metric"] == metric]
        if d.empty:
            raise DataValidationError(f"No per-language {metric!r} rows in cluster_change_by_beta; metrics: {known}.")
    chosen, choice = None, "none (no layer column)"
    if "layer" in d.columns:
        layers = sorted(int(l) for l in d["layer"].unique())
        if isinstance(layer, str):
            if layer != "rule":
                raise DataValidationError(f"layer must be 'rule' or an int; got {layer!r}.")
            chosen = layers[0] if len(layers) == 1 else rule_layer(cluster_change_by_beta, metric, layers)
            choice = "the only layer" if len(layers) == 1 else f"max unsteered separation (layer {chosen})"
        else:
            if int(layer) not in layers:
                raise DataValidationError(f"Layer {layer} is not in cluster_change_by_beta (layers: {layers}).")
            chosen, choice = int(layer), "given"
        d = d[d["layer"] == chosen]
    if d.duplicated(["lang", beta]).any():
        raise DataValidationError(
            f"cluster_change_by_beta has several rows per (lang, {beta}): filter them (metric, layer) first."
        )
    if g.duplicated(["lang", beta]).any():
        raise DataValidationError(f"gains_by_beta has several rows per (lang, {beta}): one gain per point.")
    m = g[["lang", beta, "gain"]].merge(d[["lang", beta, "delta"]], on=["lang", beta], how="inner")
    m = m.dropna(subset=["gain", "delta"])
    rows, dropped = [], []
    for lang in dict.fromkeys(m["lang"]):
        s = m[m["lang"] == lang]
        xs, ys = s["delta"].to_numpy(float), s["gain"].to_numpy(float)
        if len(xs) < 2 or np.ptp(xs) == 0:
            dropped.append(str(lang))
            continue
        xc = xs - xs.mean()
        slope = float(xc @ (ys - ys.mean()) / (xc @ xc))
        rows.append({"quantity": "slope", "lang": str(lang), "estimate": slope, "ci_low": np.nan,
                     "ci_high": np.nan, "p_value": np.nan, "n": len(xs), "method": "least squares"})
    if not rows:
        raise DataValidationError(
            f"No language has two strengths with different {metric!r} changes (matched points: "
            f"{len(m)}); a slope needs them."
        )
    res = sign_flip_test([r["estimate"] for r in rows], n_resamples=n_resamples, seed=seed, confidence=confidence)
    rows.append({"quantity": "mean slope", "lang": "all", "estimate": res["estimate"], "ci_low": res["ci_low"],
                 "ci_high": res["ci_high"], "p_value": res["p_value"], "n": res["n"],
                 "method": f"t interval, sign-flip p ({res['method']})"})
    out = pd.DataFrame(rows).assign(metric=metric, layer=chosen)[list(DOSE_COLUMNS)]
    out.attrs.update(dropped=dropped, layer_choice=choice, beta=beta, confidence=confidence)
    return out

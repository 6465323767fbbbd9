"""Tidy summaries of per-item scores: each condition's mean with a CI, and its paired gain
over the unsteered condition, with calibrated tests, power and a multiplicity correction.

:func:`summarise` turns a predictions table (one row per item and condition) into one row per
(task, lang, condition, metric) -- :data:`COLUMNS`. By default (``test="calibrated"``) binary
metrics (accuracy, exact match) get Wilson CIs and, for gains, the exact McNemar mid-p test
with Newcombe's paired CI; continuous metrics (margin, gold_logprob, neg_nll, f1) get t
intervals and the sign-flip test. Every gain row carries ``mde`` (the minimum detectable
effect at power 0.8) and ``p_holm`` (Holm across the languages of one task, metric and
condition); ``split`` says which item split the numbers come from. ``test="bootstrap"`` keeps
the seeded percentile and paired bootstrap. The statistics themselves are in
:mod:`~clas_lens.evaluation.inference` (:func:`metric_row` and :func:`paired_row` are
importable from here). See docs/methods.md, "Evaluation" and "Statistical tests".

>>> preds = pd.DataFrame({"task": "t", "lang": "en", "item_id": ["a", "b", "a", "b"],
...                       "condition": ["unsteered"] * 2 + ["x"] * 2, "accuracy": [0, 1, 1, 1]})
>>> summarise(preds, ["accuracy"])[["condition", "value", "diff", "test"]].to_dict("list")
{'condition': ['unsteered', 'x'], 'value': [0.5, 1.0], 'diff': [nan, 0.5], 'test': [nan, 'mcnemar-midp']}
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from clas_lens.evaluation.inference import (  # noqa: F401  (metric_row, paired_row: re-exported)
    check_test,
    gain_row,
    level_row,
    metric_kind,
    metric_row,
    paired_row,
    paired_values,
)
from clas_lens.metrics import holm, resolve_confidence
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED, canonical_condition, is_unsteered

#: Columns of :func:`summarise` (and :func:`~clas_lens.evaluation.evaluate`), in order.
COLUMNS = [
    "task", "lang", "condition", "metric", "value", "ci_low", "ci_high", "n",
    "diff", "diff_ci_low", "diff_ci_high", "p_value", "p_holm", "mde", "test", "split",
]
_NO_GAIN: dict[str, Any] = {
    "diff": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "p_value": math.nan,
    "p_holm": math.nan, "mde": math.nan, "test": None,
}


def split_of(frame: pd.DataFrame) -> str | None:
    """The split label of some predictions: their ``split`` values, sorted and joined by "+"
    (None without a split column or values).

    >>> split_of(pd.DataFrame({"split": ["test", "dev", "test"]}))
    'dev+test'
    """
    if "split" not in frame.columns:
        return None
    labels = sorted({str(v) for v in frame["split"] if v is not None and not (isinstance(v, float) and math.isnan(v))})
    return "+".join(labels) if labels else None


def add_holm(rows: pd.DataFrame) -> pd.DataFrame:
    """``p_holm``: Holm-adjusted ``p_value`` across the languages of each (task, condition,
    metric); NaN where ``p_value`` is NaN (the reference condition).

    >>> df = pd.DataFrame({"task": "t", "condition": "x", "metric": "m", "lang": ["a", "b"], "p_value": [0.01, 0.04]})
    >>> add_holm(df)["p_holm"].tolist()
    [0.02, 0.04]
    """
    rows = rows.copy()
    rows["p_holm"] = math.nan
    for _, g in rows.groupby(["task", "condition", "metric"], sort=False):
        rows.loc[g.index, "p_holm"] = holm(g["p_value"].to_numpy(dtype=np.float64))
    return rows


def summarise(
    predictions: pd.DataFrame,
    metrics: Sequence[str],
    *,
    baseline: str = UNSTEERED,
    test: str = "calibrated",
    kinds: Mapping[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> pd.DataFrame:
    """Tidy rows (see :data:`COLUMNS`) from per-item predictions with a ``condition`` column.

    Pure: rows in the order the (task, lang, condition) groups first appear; gains against the
    ``baseline`` condition (the reference: by default the unsteered one) of the same (task,
    lang) and item ids, NaN for the reference itself. ``test``: ``"calibrated"`` (default) or
    ``"bootstrap"`` (``n_boot``, ``seed``; ``seed`` also seeds the sign-flip test beyond 16
    items). ``kinds``: ``{metric: "binary" | "continuous"}`` overriding
    :func:`~clas_lens.evaluation.inference.metric_kind`. Legacy names of the unsteered
    condition (``"baseline"``, ``"base"``) are read as ``"unsteered"`` and written as such.
    ``alpha``: deprecated complement of ``confidence``.

    >>> preds = pd.DataFrame({"task": "t", "lang": "en", "item_id": ["a", "b", "a", "b"],
    ...                       "condition": ["unsteered"] * 2 + ["x"] * 2, "accuracy": [0, 1, 1, 1]})
    >>> summarise(preds, ["accuracy"], test="bootstrap", n_boot=100)[["condition", "value", "diff"]].to_dict("list")
    {'condition': ['unsteered', 'x'], 'value': [0.5, 1.0], 'diff': [nan, 0.5]}
    """
    confidence = resolve_confidence(confidence, alpha, where="summarise")
    check_test(test)
    baseline = canonical_condition(baseline)
    if predictions["condition"].map(is_unsteered).any():
        predictions = predictions.assign(condition=predictions["condition"].map(canonical_condition))
    rows = []
    frames = {k: g for k, g in predictions.groupby(["task", "lang", "condition"], sort=False)}
    opts = {"test": test, "n_boot": n_boot, "seed": seed, "confidence": confidence}
    for (task, lang, cond), g in frames.items():
        base = frames.get((task, lang, baseline))
        for metric in metrics:
            values = g[metric].to_numpy(dtype=np.float64)
            kind = (kinds or {}).get(metric) or metric_kind(metric, values)
            row: dict[str, Any] = {"task": task, "lang": lang, "condition": cond, "metric": metric}
            row.update(level_row(values, kind, **opts))
            if cond == baseline or base is None:
                row.update(_NO_GAIN)
            else:
                b, s = paired_values(base, g, metric, f"{task}/{lang}/{cond}")
                row.update(gain_row(b, s, kind, **opts))
            row["split"] = split_of(g)
            rows.append(row)
    out = pd.DataFrame(rows, columns=COLUMNS)
    return add_holm(out) if len(out) else out

"""Tidy summaries of per-item scores: means with bootstrap CIs and paired differences.

Pure functions, numbers in and rows out: :func:`metric_row` (mean and CI of one condition),
:func:`paired_row` (paired bootstrap of a steered condition against the unsteered one on the
same items) and :func:`summarise` (every (task, lang, condition, metric) of a predictions
table). :func:`clas_lens.evaluation.evaluate` and :mod:`clas_lens.sweep` use them. See
docs/methods.md, "Evaluation" and "Statistical tests".

>>> metric_row([1, 0, 1, 1], n_boot=200)["value"]
0.75
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from clas_lens.errors import DataValidationError
from clas_lens.metrics import bootstrap_ci, paired_bootstrap, resolve_confidence
from clas_lens.vocab import DEFAULT_CONFIDENCE, UNSTEERED, canonical_condition, is_unsteered

#: Columns of :func:`summarise` (and :func:`~clas_lens.evaluation.evaluate`), in order.
COLUMNS = [
    "task", "lang", "condition", "metric", "value", "ci_low", "ci_high", "n",
    "diff", "diff_ci_low", "diff_ci_high", "p_value",
]


def metric_row(
    values: Sequence[float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> dict[str, float]:
    """``value`` (mean), ``ci_low``, ``ci_high`` (bootstrap CI at level ``confidence``) and
    ``n`` of per-item values. ``alpha``: deprecated complement of ``confidence``.

    >>> r = metric_row([1, 0, 1, 1], n_boot=200)
    >>> r["value"], r["n"]
    (0.75, 4)
    """
    confidence = resolve_confidence(confidence, alpha, where="metric_row")
    x = np.asarray(values, dtype=np.float64)
    low, high = bootstrap_ci(x, n_boot=n_boot, seed=seed, confidence=confidence)
    return {"value": float(x.mean()) if len(x) else math.nan, "ci_low": low, "ci_high": high, "n": int(len(x))}


def paired_row(
    baseline: Sequence[float],
    steered: Sequence[float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> dict[str, float]:
    """Paired bootstrap of ``steered - baseline`` (the reference condition, usually the
    unsteered one): ``diff, diff_ci_low, diff_ci_high, p_value``.

    >>> r = paired_row([0, 0, 1, 0], [1, 0, 1, 1], n_boot=200)
    >>> r["diff"]
    0.5
    """
    confidence = resolve_confidence(confidence, alpha, where="paired_row")
    r = paired_bootstrap(
        np.asarray(baseline, dtype=np.float64),
        np.asarray(steered, dtype=np.float64),
        n_boot=n_boot,
        seed=seed,
        confidence=confidence,
    )
    return {"diff": r["diff"], "diff_ci_low": r["ci_low"], "diff_ci_high": r["ci_high"], "p_value": r["p_value"]}


def _nan_diff() -> dict[str, float]:
    return {"diff": math.nan, "diff_ci_low": math.nan, "diff_ci_high": math.nan, "p_value": math.nan}


def _paired_values(base: pd.DataFrame, other: pd.DataFrame, metric: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    b = base.set_index("item_id")[metric]
    o = other.set_index("item_id")[metric]
    if b.index.has_duplicates or o.index.has_duplicates:
        raise DataValidationError(f"{where}: duplicated item ids; paired comparison needs unique ids.")
    if set(b.index) != set(o.index):
        raise DataValidationError(
            f"{where}: the steered and unsteered runs scored different items "
            f"({len(set(b.index) ^ set(o.index))} differ); they must share the item set."
        )
    return b.to_numpy(dtype=np.float64), o.reindex(b.index).to_numpy(dtype=np.float64)


def summarise(
    predictions: pd.DataFrame,
    metrics: Sequence[str],
    *,
    baseline: str = UNSTEERED,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> pd.DataFrame:
    """Tidy rows (see :data:`COLUMNS`) from per-item predictions with a ``condition`` column.

    Pure: rows in the order the (task, lang, condition) groups first appear; diffs against the
    ``baseline`` condition (the reference: by default the unsteered one) of the same (task,
    lang), NaN for the reference itself. Legacy names of the unsteered condition
    (``"baseline"``, ``"base"``) are read as ``"unsteered"`` and written as such.
    ``alpha``: deprecated complement of ``confidence``.

    >>> preds = pd.DataFrame({"task": "t", "lang": "en", "item_id": ["a", "b", "a", "b"],
    ...                       "condition": ["unsteered"] * 2 + ["x"] * 2, "accuracy": [0, 1, 1, 1]})
    >>> summarise(preds, ["accuracy"], n_boot=100)[["condition", "value", "diff"]].to_dict("list")
    {'condition': ['unsteered', 'x'], 'value': [0.5, 1.0], 'diff': [nan, 0.5]}
    """
    confidence = resolve_confidence(confidence, alpha, where="summarise")
    baseline = canonical_condition(baseline)
    if predictions["condition"].map(is_unsteered).any():
        predictions = predictions.assign(condition=predictions["condition"].map(canonical_condition))
    rows = []
    frames = {k: g for k, g in predictions.groupby(["task", "lang", "condition"], sort=False)}
    boot = {"n_boot": n_boot, "seed": seed, "confidence": confidence}
    for (task, lang, cond), g in frames.items():
        base = frames.get((task, lang, baseline))
        for metric in metrics:
            row: dict[str, Any] = {"task": task, "lang": lang, "condition": cond, "metric": metric}
            row.update(metric_row(g[metric].to_numpy(dtype=np.float64), **boot))
            if cond == baseline or base is None:
                row.update(_nan_diff())
            else:
                b, s = _paired_values(base, g, metric, f"{task}/{lang}/{cond}")
                row.update(paired_row(b, s, **boot))
            rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)

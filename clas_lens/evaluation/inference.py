"""Statistics of one condition and of one paired comparison, calibrated by default.

Pure functions, numbers in and rows out, used by :func:`~clas_lens.evaluation.summarise`:

* :func:`metric_kind`: ``"binary"`` (accuracy, exact match: 0/1 per item) or ``"continuous"``
  (margin, gold_logprob, neg_nll, nll, f1: dense per-item outcomes);
* :func:`level_row`: a condition's mean and CI -- Wilson for binary, Student t for continuous
  (``test="calibrated"``), or the seeded percentile bootstrap (``test="bootstrap"``,
  :func:`metric_row`);
* :func:`gain_row`: steered minus unsteered on the same items -- binary: exact McNemar mid-p
  and Newcombe's paired CI; continuous: the sign-flip test and a t interval; or the old paired
  bootstrap by name (:func:`paired_row`). Every gain carries ``mde``, the smallest true effect
  the comparison detects with power 0.8 at level ``1 - confidence``
  (:func:`~clas_lens.metrics.min_detectable_effect`: binary with the observed discordance rate,
  continuous with the observed SD of the differences);
* :func:`paired_values`: the per-item values of two conditions, paired by item id.

See docs/methods.md, "Statistical tests".

>>> r = gain_row([0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 1, 1], "binary")
>>> r["diff"], round(r["p_value"], 4), r["test"]
(0.8333333333333334, 0.0313, 'mcnemar-midp')
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from clas_lens.errors import DataValidationError
from clas_lens.metrics import (
    bootstrap_ci,
    mcnemar_exact,
    min_detectable_effect,
    newcombe_paired_ci,
    paired_bootstrap,
    resolve_confidence,
    sign_flip_test,
    t_interval,
    wilson_ci,
)
from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Metrics scored 0/1 per item.
BINARY_METRICS: frozenset[str] = frozenset({"accuracy", "exact_match"})
#: Dense per-item metrics.
CONTINUOUS_METRICS: frozenset[str] = frozenset({"margin", "gold_logprob", "neg_nll", "nll", "f1"})
#: Names of ``test=``: calibrated tests (the default) or the paired bootstrap.
TESTS: tuple[str, ...] = ("calibrated", "bootstrap")
#: Power at which ``mde`` is computed.
MDE_POWER = 0.8


def check_test(test: str) -> str:
    """``test`` checked.

    >>> check_test("bootstrap")
    'bootstrap'
    """
    if test not in TESTS:
        raise DataValidationError(f"test={test!r}: choose from {list(TESTS)}.")
    return test


def metric_kind(metric: str, values: Sequence[float] | None = None) -> str:
    """``"binary"`` or ``"continuous"``: by name for known metrics, else binary when every
    value is 0 or 1.

    >>> metric_kind("accuracy"), metric_kind("margin"), metric_kind("my_score", [0.0, 1.0])
    ('binary', 'continuous', 'binary')
    """
    if metric in BINARY_METRICS:
        return "binary"
    if metric in CONTINUOUS_METRICS or values is None:
        return "continuous"
    x = np.asarray(values, dtype=np.float64)
    return "binary" if x.size and np.isin(x, (0.0, 1.0)).all() else "continuous"


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
    unsteered one): ``diff, diff_ci_low, diff_ci_high, p_value``. The calibrated tests are
    :func:`gain_row`'s default.

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


def level_row(
    values: Sequence[float],
    kind: str,
    *,
    test: str = "calibrated",
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Mean and CI of one condition: Wilson (binary) or t (continuous) intervals, or the
    bootstrap (``test="bootstrap"``). Keys ``value, ci_low, ci_high, n``.

    >>> r = level_row([1, 1, 0, 1], "binary")
    >>> r["value"], [round(r["ci_low"], 3), round(r["ci_high"], 3)]
    (0.75, [0.301, 0.954])
    """
    if check_test(test) == "bootstrap":
        return metric_row(values, n_boot=n_boot, seed=seed, confidence=confidence)
    x = np.asarray(values, dtype=np.float64)
    n = int(x.size)
    if n == 0:
        return {"value": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    if kind == "binary":
        low, high = wilson_ci(int(x.sum()), n, confidence)
    else:
        low, high = t_interval(x, confidence) if n > 1 else (math.nan, math.nan)
    return {"value": float(x.mean()), "ci_low": low, "ci_high": high, "n": n}


def mde_of(baseline: np.ndarray, steered: np.ndarray, kind: str, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Minimum detectable effect of the comparison (power 0.8, level ``1 - confidence``): binary
    with the observed discordance rate, continuous with the observed SD of the differences; NaN
    when undefined (n < 2, no discordant pair, or too few items for any effect).

    >>> round(mde_of(np.zeros(100), np.r_[np.ones(20), np.zeros(80)], "binary"), 3)
    0.124
    """
    n = int(len(baseline))
    if n < 2:
        return math.nan
    level = 1.0 - confidence
    if kind == "binary":
        disc = float(np.mean(baseline != steered))
        if disc == 0:
            return math.nan
        return float(min_detectable_effect(n, kind="binary", discordance=disc, level=level, power=MDE_POWER))
    sd = float(np.std(steered - baseline, ddof=1))
    return float(min_detectable_effect(n, kind="continuous", sd=sd, level=level, power=MDE_POWER))


def gain_row(
    baseline: Sequence[float],
    steered: Sequence[float],
    kind: str,
    *,
    test: str = "calibrated",
    confidence: float = DEFAULT_CONFIDENCE,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """``steered - baseline`` on the same items: ``diff, diff_ci_low, diff_ci_high, p_value,
    mde, test`` (calibrated tests by default, see the module docstring).

    >>> r = gain_row([0.1, 0.2, 0.3, 0.4], [0.3, 0.5, 0.4, 0.9], "continuous")
    >>> round(r["diff"], 3), r["p_value"], r["test"]
    (0.275, 0.125, 'sign-flip')
    """
    b = np.asarray(baseline, dtype=np.float64)
    s = np.asarray(steered, dtype=np.float64)
    if b.shape != s.shape:
        raise DataValidationError(f"gain_row: baseline and steered must be paired; got {b.size} and {s.size} values.")
    out: dict[str, Any]
    if check_test(test) == "bootstrap":
        out = {**paired_row(b, s, n_boot=n_boot, seed=seed, confidence=confidence), "test": "bootstrap"}
    elif kind == "binary":
        low, high = newcombe_paired_ci(b, s, confidence)
        p = mcnemar_exact(b, s, mid_p=True)["p_value"]
        out = {"diff": float(s.mean() - b.mean()), "diff_ci_low": low, "diff_ci_high": high, "p_value": p,
               "test": "mcnemar-midp"}
    else:
        r = sign_flip_test(s - b, seed=seed, confidence=confidence)
        out = {"diff": r["estimate"], "diff_ci_low": r["ci_low"], "diff_ci_high": r["ci_high"],
               "p_value": r["p_value"], "test": "sign-flip"}
    out["mde"] = mde_of(b, s, kind, confidence)
    return out


def paired_values(base: pd.DataFrame, other: pd.DataFrame, metric: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``metric`` values of two conditions' predictions, paired by ``item_id``; both must
    have scored the same items, each once.

    >>> a = pd.DataFrame({"item_id": ["x", "y"], "accuracy": [0, 1]})
    >>> b = pd.DataFrame({"item_id": ["y", "x"], "accuracy": [1, 1]})
    >>> [v.tolist() for v in paired_values(a, b, "accuracy", "t/en/s")]
    [[0.0, 1.0], [1.0, 1.0]]
    """
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

"""Confidence intervals and paired tests used to compare conditions.

* :func:`bootstrap_ci` is a seeded percentile bootstrap CI of the mean.
* :func:`paired_bootstrap` compares two conditions scored on the same items (e.g. steered vs
  unsteered); :func:`mcnemar` is the exact McNemar test on paired 0/1 outcomes.
* :func:`resolve_confidence` turns ``confidence=`` (or the deprecated ``alpha=``) into the one
  confidence level, and :func:`interval_quantiles` into the two percentile levels of a
  two-sided interval; every CI of the package goes through them.

See docs/methods.md, "Statistical tests". All functions are pure and seeded.

>>> low, high = bootstrap_ci([0, 1, 1, 0, 1, 1, 1, 0], seed=0, confidence=0.9)
>>> bool(low < 0.625 < high)
True
"""
from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np

from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = [
    "resolve_confidence",
    "interval_quantiles",
    "as_values",
    "bootstrap_means",
    "bootstrap_ci",
    "paired_bootstrap",
    "mcnemar",
]


def resolve_confidence(
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
    *,
    where: str = "this function",
    stacklevel: int = 3,
) -> float:
    """The confidence level of an interval, from ``confidence`` or the deprecated ``alpha``.

    ``alpha`` (the old keyword, ``alpha = 1 - confidence``) still works for one release and
    emits a :class:`DeprecationWarning` pointing at the caller of ``where`` (``stacklevel``).
    Giving both is an error unless they agree.

    >>> resolve_confidence(0.9)
    0.9
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     level = resolve_confidence(alpha=0.2, where="bootstrap_ci")
    >>> round(level, 6), caught[0].category.__name__
    (0.8, 'DeprecationWarning')
    """
    if alpha is not None:
        alpha = float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(
                f"{where}: alpha must be in (0, 1), got {alpha} (alpha= is deprecated: pass "
                "confidence=1 - alpha, e.g. confidence=0.95)."
            )
        warnings.warn(
            f"{where}: alpha= is deprecated; pass confidence={1 - alpha:g} instead "
            "(confidence = 1 - alpha).",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if confidence != DEFAULT_CONFIDENCE and not math.isclose(float(confidence), 1.0 - alpha):
            raise ValueError(
                f"{where} got confidence={confidence} and alpha={alpha}, which disagree: pass "
                "confidence only."
            )
        confidence = 1.0 - alpha
    confidence = float(confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"{where}: confidence must be in (0, 1), got {confidence}.")
    return confidence


def interval_quantiles(confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Lower and upper percentile levels of a two-sided ``confidence`` interval.

    The tail is rounded to 12 decimals, so ``confidence=0.95`` gives exactly the 2.5 % and
    97.5 % levels that ``alpha=0.05`` gave (``1 - 0.95`` is not exactly ``0.05`` in floating
    point).

    >>> interval_quantiles(0.95)
    (0.025, 0.975)
    >>> interval_quantiles(0.8)
    (0.1, 0.9)
    """
    tail = round((1.0 - float(confidence)) / 2.0, 12)
    return tail, 1.0 - tail


def as_values(values: Iterable[float], name: str) -> np.ndarray:
    """A 1-D float64 array of ``values``; raises ``ValueError`` for other shapes or NaN.

    >>> as_values([1, 2], "x")
    array([1., 2.])
    """
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN; drop or fill those items first.")
    return arr


def bootstrap_means(x: np.ndarray, n_boot: int, rng: np.random.Generator, chunk: int = 200) -> np.ndarray:
    """Means of ``n_boot`` resamples of ``x`` (indices drawn in chunks to bound memory).

    >>> bootstrap_means(np.ones(4), 3, np.random.default_rng(0))
    array([1., 1., 1.])
    """
    out = np.empty(n_boot, dtype=np.float64)
    n = len(x)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = x[idx].mean(axis=1)
    return out


def bootstrap_ci(
    values: Iterable[float],
    n_boot: int = 1000,
    seed: int = 0,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` confidence interval of the mean, seeded.

    ``confidence`` is the level (0.95: the 2.5 % and 97.5 % percentiles of the bootstrap
    means); ``alpha`` is its deprecated complement (``alpha=0.05`` is ``confidence=0.95``).
    NaN for no values; a single value gives ``(v, v)``.

    >>> low, high = bootstrap_ci([0, 1, 1, 0, 1, 1, 1, 0], seed=0)
    >>> bool(low < 0.625 < high)
    True
    """
    confidence = resolve_confidence(confidence, alpha, where="bootstrap_ci")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}.")
    x = as_values(values, "values")
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = bootstrap_means(x, n_boot, rng)
    low, high = np.quantile(means, interval_quantiles(confidence))
    return (float(low), float(high))


def paired_bootstrap(
    a: Iterable[float],
    b: Iterable[float],
    n_boot: int = 10000,
    seed: int = 0,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> dict[str, float]:
    """Paired bootstrap of the mean difference ``b - a`` over the same items.

    ``a`` is the reference condition (e.g. unsteered) and ``b`` the one compared to it (e.g.
    steered); ``diff > 0`` means ``b`` scores higher. Items are resampled jointly.
    ``ci_low, ci_high`` is the percentile interval at level ``confidence`` (``alpha``: its
    deprecated complement). ``p_value`` is two-sided: the bootstrap distribution is shifted to
    a zero mean (the null hypothesis) and ``p = (1 + #{|d* - diff| >= |diff|}) / (1 + n_boot)``,
    so identical inputs give ``p = 1`` and the smallest attainable value is ``1 / (n_boot + 1)``.

    Returns ``dict(diff, ci_low, ci_high, p_value, n)``.

    >>> r = paired_bootstrap([0, 0, 1, 0, 1, 0], [1, 1, 1, 0, 1, 1], n_boot=2000, seed=0)
    >>> round(r["diff"], 3), bool(r["ci_low"] <= r["diff"] <= r["ci_high"])
    (0.5, True)
    """
    confidence = resolve_confidence(confidence, alpha, where="paired_bootstrap")
    xa = as_values(a, "a")
    xb = as_values(b, "b")
    if len(xa) != len(xb):
        raise ValueError(f"paired_bootstrap needs paired values: len(a)={len(xa)} != len(b)={len(xb)}.")
    n = len(xa)
    if n == 0:
        nan = float("nan")
        return {"diff": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": 0}
    d = xb - xa
    diff = float(d.mean())
    rng = np.random.default_rng(seed)
    boots = bootstrap_means(d, n_boot, rng)
    low, high = np.quantile(boots, interval_quantiles(confidence))
    # Tolerance guards against float noise when all differences are equal.
    tol = 1e-12 * max(1.0, abs(diff))
    extreme = int(np.sum(np.abs(boots - diff) >= abs(diff) - tol))
    p = (1 + extreme) / (1 + n_boot)
    return {"diff": diff, "ci_low": float(low), "ci_high": float(high), "p_value": float(min(p, 1.0)), "n": n}


def mcnemar(a_correct: Sequence, b_correct: Sequence) -> float:
    """Exact (binomial) two-sided McNemar p-value for paired 0/1 outcomes.

    Only discordant pairs count: ``n01`` (a wrong, b right) and ``n10`` (a right, b wrong);
    ``p = min(1, 2 * P[Binomial(n01 + n10, 1/2) <= min(n01, n10)])``, and 1.0 when there are no
    discordant pairs.

    >>> mcnemar([1, 1, 0, 0], [1, 1, 0, 0])
    1.0
    >>> round(mcnemar([0] * 12, [1] * 12), 6)
    0.000488
    """
    from scipy.stats import binom

    a = [bool(v) for v in a_correct]
    b = [bool(v) for v in b_correct]
    if len(a) != len(b):
        raise ValueError(f"mcnemar needs paired outcomes: {len(a)} != {len(b)}.")
    n01 = sum(1 for x, y in zip(a, b) if not x and y)
    n10 = sum(1 for x, y in zip(a, b) if x and not y)
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    return float(min(1.0, 2.0 * binom.cdf(k, n, 0.5)))

"""Correlation of paired values with a bootstrap CI and a permutation p-value.

:func:`correlation_test` is the statistical core of the divergence test of
``clas_lens.clusters`` (do task gains track language-cluster separation or alignment?); see
docs/methods.md, "Statistical tests" and "Clusters and the divergence test".
:func:`rowwise_pearson` is the vectorised Pearson correlation it uses on bootstrap resamples.

Pure and seeded.

>>> r = correlation_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10], "pearson", n_boot=100)
>>> round(r["r"], 6), r["n"]
(1.0, 5)
"""
from __future__ import annotations

import itertools
import math
from typing import Any, Literal, Sequence

import numpy as np

from clas_lens.metrics.intervals import interval_quantiles, resolve_confidence
from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = ["rowwise_pearson", "correlation_test"]


def rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (last axis);
    NaN for a row where either side is constant.

    >>> rowwise_pearson(np.array([[1.0, 2, 3], [1, 1, 1]]), np.array([[2.0, 4, 7], [1, 2, 3]])).round(3)
    array([0.993,   nan])
    """
    a = a - a.mean(-1, keepdims=True)
    b = b - b.mean(-1, keepdims=True)
    den = np.sqrt((a * a).sum(-1) * (b * b).sum(-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (a * b).sum(-1) / den
    r[den <= 1e-300] = np.nan
    return r


def correlation_test(
    x: Sequence[float],
    y: Sequence[float],
    method: Literal["spearman", "pearson"] = "spearman",
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    alpha: float | None = None,
) -> dict[str, Any]:
    """Correlation of paired values with a bootstrap CI and a two-sided permutation p-value.

    * ``r``: Spearman (Pearson on average ranks) or Pearson.
    * ``ci_low``, ``ci_high``: percentile bootstrap interval at level ``confidence``
      (``alpha``: its deprecated complement), resampling pairs (ranks recomputed in each
      resample; resamples with a constant side are skipped).
    * ``p_value``: two-sided permutation test of no association, ``y`` shuffled against ``x``:
      ``(1 + #{|r*| >= |r|}) / (1 + n_perm)``; when ``n! <= n_perm`` all permutations are
      enumerated and ``p = #{|r*| >= |r|} / n!`` (exact).
    * ``n``: pairs used (pairs with a NaN are dropped). With ``n < 3`` or a constant side the
      numbers are NaN.

    Pure and seeded; permutations and resamples are vectorised.

    >>> r = correlation_test([1, 2, 3, 4, 5, 6, 7, 8], [2, 1, 4, 3, 6, 5, 8, 7], "spearman")
    >>> round(r["r"], 3), r["n"], r["p_value"] < 0.01
    (0.905, 8, True)
    """
    confidence = resolve_confidence(confidence, alpha, where="correlation_test")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}.")
    if n_boot < 1 or n_perm < 1:
        raise ValueError(f"n_boot and n_perm must be >= 1, got {n_boot} and {n_perm}.")
    from scipy.stats import rankdata

    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"correlation_test needs paired values: {xa.size} x values, {ya.size} y values.")
    keep = ~(np.isnan(xa) | np.isnan(ya))
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    nan = float("nan")
    result = {"method": method, "r": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "n": n}
    if n < 3 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return result
    if method == "spearman":
        xs, ys = rankdata(xa), rankdata(ya)
    else:
        xs, ys = xa, ya
    xc = xs - xs.mean()
    yc = ys - ys.mean()
    denom = math.sqrt(float((xc * xc).sum() * (yc * yc).sum()))
    r = float((xc * yc).sum() / denom)
    result["r"] = r

    rng_perm, rng_boot = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    # Permutations: the norms of the centred vectors do not change, only the dot product.
    tol = 1e-12
    if math.factorial(n) <= n_perm:
        perms = np.array(list(itertools.permutations(range(n))))
        r_perm = (yc[perms] @ xc) / denom
        p = float(np.mean(np.abs(r_perm) >= abs(r) - tol))
    else:
        perms = rng_perm.permuted(np.tile(np.arange(n), (n_perm, 1)), axis=1)
        r_perm = (yc[perms] @ xc) / denom
        p = float((1 + np.sum(np.abs(r_perm) >= abs(r) - tol)) / (1 + n_perm))
    result["p_value"] = min(p, 1.0)

    idx = rng_boot.integers(0, n, size=(n_boot, n))
    xb, yb = xa[idx], ya[idx]
    if method == "spearman":
        xb, yb = rankdata(xb, axis=1), rankdata(yb, axis=1)
    rb = rowwise_pearson(xb, yb)
    rb = rb[~np.isnan(rb)]
    if rb.size >= max(10, n_boot // 10):
        lo, hi = np.quantile(rb, interval_quantiles(confidence))
        result["ci_low"], result["ci_high"] = float(lo), float(hi)
    return result

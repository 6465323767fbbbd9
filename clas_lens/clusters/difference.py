"""Which of two predictors tracks an outcome better? The difference of two correlations with
the same outcome, with a bootstrap CI and a permutation p-value
(:func:`correlation_difference`).

The statistical core of the comparison in ``divergence_test``: ``r(gain, separation delta) -
r(gain, alignment delta)`` over the same languages. See docs/methods.md, "Clusters and the
divergence test". Pure and seeded (arrays in, a dict out).

>>> r = correlation_difference([1, 2, 3, 4, 5, 6], [2, 1, 2, 1, 2, 1], [1, 2, 3, 4, 5, 7],
...                            n_boot=200, n_perm=200)
>>> round(r["r_a"], 3), round(r["r_b"], 3), round(r["estimate"], 3), r["n"]
(1.0, -0.293, 1.293, 6)
"""
from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
from scipy.stats import rankdata

from clas_lens.metrics.correlation import rowwise_pearson
from clas_lens.metrics.intervals import interval_quantiles, resolve_confidence
from clas_lens.vocab import DEFAULT_CONFIDENCE

__all__ = ["correlation_difference"]


def _centred_unit(v: np.ndarray) -> np.ndarray:
    c = v - v.mean()
    return c / np.sqrt((c * c).sum())


def correlation_difference(
    a: Sequence[float],
    b: Sequence[float],
    y: Sequence[float],
    method: Literal["spearman", "pearson"] = "spearman",
    *,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> dict[str, Any]:
    """``r(a, y) - r(b, y)`` over the same units, with a bootstrap CI and a permutation p-value.

    * ``estimate``: ``r_a - r_b``, Spearman (Pearson on average ranks) or Pearson.
    * ``ci_low``, ``ci_high``: percentile bootstrap interval at level ``confidence``: units are
      resampled with replacement and BOTH correlations are recomputed on the same resample
      (ranks recomputed inside it), so their dependence (shared ``y``, correlated ``a`` and
      ``b``) is kept. Resamples where a side is constant are skipped; NaN when fewer than
      ``max(10, n_boot // 10)`` remain. This interval is the test of ``rho_a = rho_b``: it
      excludes 0 when one correlation is reliably larger.
    * ``p_value``: two-sided permutation p-value, ``y`` shuffled across units and the
      difference recomputed: ``(1 + k) / (1 + n_perm)`` with ``k = #{|d*| >= |d|}`` (never 0).
      Its null is "``y`` is exchangeable across units", i.e. unrelated to both ``a`` and ``b``
      (both correlations 0); it is exact (level ``alpha``) under that null. When both
      correlations are non-zero but equal it is not a test of their equality: read the CI.
    * ``r_a``, ``r_b``: the two correlations; ``n``: units used (a unit with a NaN in any of
      ``a``, ``b``, ``y`` is dropped). With ``n < 3`` or a constant side everything is NaN.

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=20), rng.normal(size=20)
    >>> res = correlation_difference(a, b, 2 * a + 0.3 * rng.normal(size=20), n_boot=500, n_perm=500)
    >>> res["ci_low"] > 0, res["p_value"] < 0.01
    (True, True)
    """
    confidence = resolve_confidence(confidence, None, where="correlation_difference")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}.")
    if n_boot < 1 or n_perm < 1:
        raise ValueError(f"n_boot and n_perm must be >= 1, got {n_boot} and {n_perm}.")
    arrs = [np.asarray(v, dtype=np.float64).ravel() for v in (a, b, y)]
    if len({v.size for v in arrs}) != 1:
        raise ValueError(
            f"correlation_difference needs paired values: {arrs[0].size} a, {arrs[1].size} b, "
            f"{arrs[2].size} y values."
        )
    keep = ~np.any([np.isnan(v) for v in arrs], axis=0)
    av, bv, yv = (v[keep] for v in arrs)
    n = int(yv.size)
    nan = float("nan")
    out = {"method": method, "estimate": nan, "ci_low": nan, "ci_high": nan, "p_value": nan,
           "r_a": nan, "r_b": nan, "n": n}
    if n < 3 or min(np.ptp(av), np.ptp(bv), np.ptp(yv)) == 0:
        return out
    ta, tb, ty = (rankdata(v) if method == "spearman" else v for v in (av, bv, yv))
    ua, ub, uy = _centred_unit(ta), _centred_unit(tb), _centred_unit(ty)
    r_a, r_b = float(ua @ uy), float(ub @ uy)
    d = r_a - r_b
    out.update(estimate=d, r_a=r_a, r_b=r_b)

    rng_perm, rng_boot = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    # Permuting y keeps its (centred, unit) norm: d* = uy[perm] @ (ua - ub).
    w = ua - ub
    k = 0
    done = 0
    tol = 1e-12
    while done < n_perm:
        m = min(4096, n_perm - done)
        perms = rng_perm.permuted(np.tile(np.arange(n), (m, 1)), axis=1)
        k += int(np.sum(np.abs(uy[perms] @ w) >= abs(d) - tol))
        done += m
    out["p_value"] = min(1.0, (1 + k) / (1 + n_perm))

    idx = rng_boot.integers(0, n, size=(n_boot, n))
    ab, bb, yb = av[idx], bv[idx], yv[idx]
    if method == "spearman":
        ab, bb, yb = (rankdata(v, axis=1) for v in (ab, bb, yb))
    db = rowwise_pearson(ab, yb) - rowwise_pearson(bb, yb)
    db = db[~np.isnan(db)]
    if db.size >= max(10, n_boot // 10):
        lo, hi = np.quantile(db, interval_quantiles(confidence))
        out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out

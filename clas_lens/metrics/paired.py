"""Calibrated paired tests, intervals, power and equivalence for steered-vs-unsteered comparisons.

Every comparison in clas_lens is paired: the same items scored under two conditions.

==============================  ===============================================================
:func:`sign_flip_test`          paired continuous outcomes (margins, log-probs, NLL): exact
                                sign-flip enumeration for n <= 16, Monte-Carlo beyond; a t
                                interval for the mean difference
:func:`mcnemar_exact`           paired binary outcomes: exact conditional binomial test on the
                                discordant pairs, with the mid-p variant (the default here: the
                                exact test rejects far below its level when n is small)
:func:`wilson_ci`               one proportion
:func:`newcombe_paired_ci`      difference of two paired proportions (Newcombe's method 10)
:func:`holm`                    Holm step-down adjustment across languages
:func:`min_detectable_effect`   smallest true effect found with the given power (level 0.05,
                                power 0.8 by default), paired binary or continuous
:func:`equivalence_test`        TOST: is the difference inside +-margin?
==============================  ===============================================================

Calibration (null rejection near 5 %, interval coverage near 95 %) is checked by simulation in
``tests/unit/metrics/test_paired.py`` and printed by ``benchmarks/bench_calibration.py``.
See docs/methods.md, "Statistical tests".

>>> r = sign_flip_test([0.5, 1.2, 0.3, 0.9, 1.1, 0.4, 0.8, 0.2])
>>> round(r["p_value"], 4), r["method"]
(0.0078, 'exact')
>>> r = mcnemar_exact([1, 1, 1, 1, 0], [0, 0, 0, 0, 0])
>>> r["p_exact"], round(r["p_mid"], 4)
(0.125, 0.0625)
>>> [round(x, 3) for x in wilson_ci(7, 10)]
[0.397, 0.892]
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from scipy import stats as sps

from clas_lens.vocab import DEFAULT_CONFIDENCE

#: Largest n for which the sign-flip test enumerates all 2**n sign patterns.
EXACT_MAX_N = 16


def _diffs(x: Sequence[float], name: str = "diffs") -> np.ndarray:
    d = np.asarray(x, dtype=np.float64).reshape(-1)
    if d.size == 0:
        raise ValueError(f"{name} is empty: a paired test needs at least one item.")
    if not np.isfinite(d).all():
        raise ValueError(f"{name} contains NaN or inf: score items with finite values only.")
    return d


def _check_level(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    return float(confidence)


def t_interval(diffs: Sequence[float], confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Student-t interval for the mean of paired differences (NaN when n < 2 or all equal).

    >>> [round(v, 3) for v in t_interval([1.0, 2.0, 3.0])]
    [-0.484, 4.484]
    """
    d = _diffs(diffs)
    n = d.size
    sd = d.std(ddof=1) if n > 1 else float("nan")
    if n < 2 or not sd > 0:
        m = float(d.mean())
        return (m, m) if n > 1 else (float("nan"), float("nan"))
    h = sps.t.ppf(0.5 + _check_level(confidence) / 2, n - 1) * sd / math.sqrt(n)
    return float(d.mean() - h), float(d.mean() + h)


def sign_flip_test(
    diffs: Sequence[float],
    *,
    n_resamples: int = 20000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
    alternative: str = "two-sided",
) -> dict:
    """Paired sign-flip (randomisation) test of mean difference 0, and a t interval.

    Under the null each paired difference is symmetric about 0, so its sign is a fair coin.
    The p-value is the share of sign patterns whose |sum| is at least the observed one: all
    ``2**n`` patterns when ``n <= 16`` (exact), else ``n_resamples`` random ones with the
    ``(1 + k) / (1 + R)`` correction (never 0).

    Returns ``{"estimate", "ci_low", "ci_high", "p_value", "n", "method"}``.
    """
    d = _diffs(diffs)
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError("alternative must be 'two-sided', 'greater' or 'less'.")
    n = d.size
    obs = float(d.sum())
    tol = 1e-9 * max(1.0, float(np.abs(d).sum()))

    def extreme(sums: np.ndarray) -> np.ndarray:
        if alternative == "two-sided":
            return np.abs(sums) >= abs(obs) - tol
        if alternative == "greater":
            return sums >= obs - tol
        return sums <= obs + tol

    if n <= EXACT_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        p = float(extreme(signs @ d).mean())
        method = "exact"
    else:
        rng = np.random.default_rng(seed)
        k = 0
        done = 0
        while done < n_resamples:
            m = min(4096, n_resamples - done)
            signs = rng.integers(0, 2, size=(m, n)) * 2.0 - 1.0
            k += int(extreme(signs @ d).sum())
            done += m
        p = (1 + k) / (1 + n_resamples)
        method = "monte-carlo"
    lo, hi = t_interval(d, confidence) if n > 1 else (float("nan"), float("nan"))
    return {"estimate": float(d.mean()), "ci_low": lo, "ci_high": hi, "p_value": min(1.0, p), "n": n, "method": method}


def _binary(x: Sequence, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.isin(a, (0.0, 1.0)).all():
        raise ValueError(f"{name} must hold 0/1 outcomes.")
    return a.astype(bool)


def mcnemar_exact(a: Sequence, b: Sequence, *, mid_p: bool = True) -> dict:
    """Exact McNemar test of two paired binary outcomes (``a`` = unsteered, ``b`` = steered).

    Conditional on the ``n_disc`` discordant pairs, the count ``b_only`` (b right, a wrong) is
    Binomial(n_disc, 1/2) under the null. The two-sided exact p is twice the smaller tail; the
    mid-p subtracts half the probability of the observed count (closer to the nominal level,
    see the calibration test). Returns ``{"p_value", "p_exact", "p_mid", "b_only", "a_only", "n"}``.

    >>> r = mcnemar_exact([0, 0, 0, 0], [1, 1, 1, 1])
    >>> r["p_exact"], round(r["p_mid"], 4), r["b_only"]
    (0.125, 0.0625, 4)
    """
    x, y = _binary(a, "a"), _binary(b, "b")
    if x.size != y.size:
        raise ValueError(f"a and b must be paired (same length); got {x.size} and {y.size}.")
    if x.size == 0:
        raise ValueError("a and b are empty: a paired test needs at least one item.")
    b_only = int((~x & y).sum())
    a_only = int((x & ~y).sum())
    nd = a_only + b_only
    if nd == 0:
        p_exact = p_mid = 1.0
    else:
        k = min(a_only, b_only)
        tail = float(sps.binom.cdf(k, nd, 0.5))
        p_exact = min(1.0, 2.0 * tail)
        p_mid = min(1.0, 2.0 * (tail - 0.5 * float(sps.binom.pmf(k, nd, 0.5))))
    return {"p_value": p_mid if mid_p else p_exact, "p_exact": p_exact, "p_mid": p_mid,
            "b_only": b_only, "a_only": a_only, "n": int(x.size)}


def wilson_ci(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n``.

    >>> [round(v, 3) for v in wilson_ci(0, 10)]
    [0.0, 0.278]
    """
    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"wilson_ci needs 0 <= k <= n; got k={k}, n={n}.")
    z = sps.norm.ppf(0.5 + _check_level(confidence) / 2)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, c - h)), float(min(1.0, c + h))


def newcombe_paired_ci(a: Sequence, b: Sequence, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Newcombe's (1998, method 10) interval for ``mean(b) - mean(a)`` of paired 0/1 outcomes.

    >>> [round(v, 3) for v in newcombe_paired_ci([0, 0, 1, 1, 0, 1], [1, 1, 1, 1, 0, 1])]
    [-0.172, 0.674]
    """
    x, y = _binary(a, "a"), _binary(b, "b")
    if x.size != y.size or x.size == 0:
        raise ValueError("newcombe_paired_ci needs two non-empty paired 0/1 sequences of equal length.")
    n = x.size
    p1, p2 = y.mean(), x.mean()  # steered, unsteered
    l1, u1 = wilson_ci(int(y.sum()), n, confidence)
    l2, u2 = wilson_ci(int(x.sum()), n, confidence)
    n11 = int((x & y).sum())
    n22 = int((~x & ~y).sum())
    n12 = int((y & ~x).sum())
    n21 = int((x & ~y).sum())
    den = (n11 + n12) * (n21 + n22) * (n11 + n21) * (n12 + n22)
    if den == 0:
        phi = 0.0
    else:
        aa = n11 * n22 - n12 * n21
        phi = (max(aa - n / 2, 0.0) if aa > 0 else aa) / math.sqrt(den)
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    hi = d + math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return float(max(-1.0, lo)), float(min(1.0, hi))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control), in the input order.

    >>> holm([0.01, 0.04, 0.03]).round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * q[order])
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def min_detectable_effect(
    n: int,
    *,
    kind: str = "continuous",
    sd: float | None = None,
    discordance: float | None = None,
    level: float = 0.05,
    power: float = 0.8,
) -> float:
    """Smallest true paired effect a two-sided test at significance ``level`` finds with ``power``.

    * ``kind="continuous"``: mean difference, given ``sd`` of the paired differences (one-sample
      t test; solved with the noncentral t distribution).
    * ``kind="binary"``: difference of two paired proportions, given the ``discordance`` rate
      (share of items whose outcome changes); McNemar's normal approximation
      ``sqrt(n) |d| = z_{a/2} sqrt(pd) + z_b sqrt(pd - d^2)``. NaN when no effect up to pd can
      reach the power (too few items).

    >>> round(min_detectable_effect(19, kind="binary", discordance=0.5), 2)
    0.43
    >>> round(min_detectable_effect(300, kind="continuous", sd=1.0), 3)
    0.162
    """
    if isinstance(n, bool) or int(n) != n or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}.")
    if not (0 < level < 1 and 0 < power < 1):
        raise ValueError("level and power must be in (0, 1).")
    n = int(n)
    if kind == "continuous":
        if sd is None or not np.isfinite(sd) or sd < 0:
            raise ValueError("kind='continuous' needs sd >= 0 (the SD of the paired differences).")
        if sd == 0:
            return 0.0
        df = n - 1
        tc = sps.t.ppf(1 - level / 2, df)

        def pw(delta: float) -> float:
            nc = delta * math.sqrt(n)
            return float(sps.nct.sf(tc, df, nc) + sps.nct.cdf(-tc, df, nc))

        lo, hi = 0.0, 1.0
        while pw(hi) < power:
            hi *= 2
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if pw(mid) < power else (lo, mid)
        return hi * sd
    if kind == "binary":
        if discordance is None or not 0 < discordance <= 1:
            raise ValueError("kind='binary' needs discordance in (0, 1] (share of items whose outcome differs).")
        pd = float(discordance)
        za, zb = sps.norm.ppf(1 - level / 2), sps.norm.ppf(power)

        def need(d: float) -> float:  # >= 0 when d is detectable
            return math.sqrt(n) * d - za * math.sqrt(pd) - zb * math.sqrt(max(pd - d * d, 0.0))

        if need(pd) < 0:
            return float("nan")
        lo, hi = 0.0, pd
        for _ in range(80):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if need(mid) < 0 else (lo, mid)
        return hi
    raise ValueError(f"kind must be 'continuous' or 'binary', got {kind!r}.")


def equivalence_test(diffs: Sequence[float], margin: float, *, level: float = 0.05) -> dict:
    """Two one-sided t tests (TOST): is the mean paired difference inside ``(-margin, margin)``?

    ``equivalent`` is True when both one-sided nulls are rejected at significance ``level`` (equivalently,
    the ``1 - 2 level`` t interval lies inside the margins). Use it before calling a result
    "kept" or "no effect". Returns ``{"p_value", "equivalent", "margin", "ci_low", "ci_high", "n"}``.

    >>> equivalence_test([0.01, -0.02, 0.0, 0.01, -0.01] * 8, margin=0.05)["equivalent"]
    True
    """
    d = _diffs(diffs)
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}.")
    n = d.size
    m = float(d.mean())
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return {"p_value": 1.0, "equivalent": False, "margin": float(margin), "ci_low": float("nan"),
                "ci_high": float("nan"), "n": n}
    if sd == 0:
        p = 0.0 if abs(m) < margin else 1.0
        return {"p_value": p, "equivalent": p < level, "margin": float(margin), "ci_low": m, "ci_high": m, "n": n}
    se = sd / math.sqrt(n)
    p_lower = float(sps.t.sf((m + margin) / se, n - 1))  # H0: mean <= -margin
    p_upper = float(sps.t.cdf((m - margin) / se, n - 1))  # H0: mean >= +margin
    p = max(p_lower, p_upper)
    lo, hi = t_interval(d, 1 - 2 * level)
    return {"p_value": p, "equivalent": p < level, "margin": float(margin), "ci_low": lo, "ci_high": hi, "n": n}

"""Null-rejection and coverage simulations of the paired tests in :mod:`clas_lens.metrics.paired`.

Used by the test suite (loose bounds) and ``benchmarks/bench_calibration.py`` (prints them).
Binary outcomes: items with unsteered accuracy ``p`` and a discordance rate ``pd`` split evenly
(no true effect); continuous outcomes: paired differences from a heavy-tailed symmetric
distribution (Student t, 3 degrees of freedom). With no effect the two conditions are
exchangeable, so each paired difference is symmetric about 0: the null the sign-flip test
assumes, and the one these simulations draw from.

>>> r = simulate_null(n=19, kind="continuous", runs=200, seed=1)
>>> 0.0 <= r["rejection_rate"] <= 0.15 and 0.8 <= r["coverage"] <= 1.0
True
"""
from __future__ import annotations

import numpy as np

from clas_lens.metrics.paired import mcnemar_exact, newcombe_paired_ci, sign_flip_test


def _binary_pair(rng: np.random.Generator, n: int, p: float, pd: float, effect: float = 0.0):
    """Paired 0/1 outcomes: P(a=1) = p; a share ``pd`` discordant, tilted by ``effect``."""
    a = rng.random(n) < p
    disc = rng.random(n) < pd
    up = rng.random(n) < (0.5 + effect / (2 * pd) if pd > 0 else 0.5)
    b = a.copy()
    # a discordant item flips towards b=1 with prob `up`, else towards b=0
    b[disc & up] = True
    b[disc & ~up] = False
    a2 = a.copy()
    a2[disc & up] = False
    a2[disc & ~up] = True
    return a2.astype(float), b.astype(float)


def simulate_null(
    n: int, kind: str, *, runs: int = 2000, seed: int = 0, p: float = 0.6, pd: float = 0.3,
    level: float = 0.05, n_resamples: int = 2000,
) -> dict:
    """Rejection rate at ``level`` and CI coverage of the true difference (0) with no effect."""
    rng = np.random.default_rng(seed)
    reject = covered = 0
    for r in range(runs):
        if kind == "binary":
            a, b = _binary_pair(rng, n, p, pd)
            pv = mcnemar_exact(a, b)["p_value"]
            lo, hi = newcombe_paired_ci(a, b)
        elif kind == "continuous":
            d = rng.standard_t(3, n)
            res = sign_flip_test(d, n_resamples=n_resamples, seed=r)
            pv, lo, hi = res["p_value"], res["ci_low"], res["ci_high"]
        else:
            raise ValueError("kind must be 'binary' or 'continuous'.")
        reject += pv < level
        covered += lo <= 0.0 <= hi
    return {"n": n, "kind": kind, "runs": runs, "rejection_rate": reject / runs, "coverage": covered / runs}

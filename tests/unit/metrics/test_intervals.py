"""clas_lens.metrics.intervals: bootstrap CIs, paired bootstrap, McNemar; confidence= and the
deprecated alpha=."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from clas_lens.metrics import (
    bootstrap_ci,
    interval_quantiles,
    mcnemar,
    paired_bootstrap,
    resolve_confidence,
)


# -- bootstrap ----------------------------------------------------------------------------
def test_bootstrap_ci_seeded_and_covers_mean():
    rng = np.random.default_rng(1)
    x = rng.binomial(1, 0.6, size=200).astype(float)
    a = bootstrap_ci(x, n_boot=1000, seed=0)
    b = bootstrap_ci(x, n_boot=1000, seed=0)
    c = bootstrap_ci(x, n_boot=1000, seed=1)
    assert a == b
    assert a != c
    low, high = a
    assert low < x.mean() < high
    # Width close to the normal approximation 2 * 1.96 * sd / sqrt(n).
    se = x.std() / np.sqrt(len(x))
    assert (high - low) == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_bootstrap_ci_edge_cases():
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([0.5]) == (0.5, 0.5)
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([1, 0], alpha=1.5)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1, float("nan")])


def test_bootstrap_ci_narrower_at_higher_alpha():
    x = np.arange(50, dtype=float)
    l95, h95 = bootstrap_ci(x, alpha=0.05)
    l80, h80 = bootstrap_ci(x, alpha=0.2)
    assert l95 <= l80 and h80 <= h95


# -- paired tests -------------------------------------------------------------------------
def test_paired_bootstrap_identical_gives_p_one():
    x = np.random.default_rng(0).binomial(1, 0.5, 100)
    r = paired_bootstrap(x, x, n_boot=500, seed=0)
    assert r["diff"] == 0.0
    assert r["p_value"] == 1.0
    assert r["ci_low"] == r["ci_high"] == 0.0


def test_paired_bootstrap_large_gain_tiny_p():
    rng = np.random.default_rng(0)
    a = rng.binomial(1, 0.3, 300).astype(float)
    b = np.maximum(a, rng.binomial(1, 0.6, 300))  # b never worse, often better
    r = paired_bootstrap(a, b, n_boot=2000, seed=0)
    assert r["diff"] == pytest.approx(b.mean() - a.mean())
    assert r["diff"] > 0.2
    assert r["p_value"] <= 1 / 2001 + 1e-12
    assert 0 < r["ci_low"] < r["diff"] < r["ci_high"]
    # Direction: swapping the arguments flips the sign.
    assert paired_bootstrap(b, a, n_boot=200, seed=0)["diff"] == pytest.approx(-r["diff"])


def test_paired_bootstrap_no_effect_large_p_and_seeded():
    rng = np.random.default_rng(3)
    a = rng.normal(size=200)
    b = a + rng.normal(scale=1.0, size=200) * 0.1 - 0.0
    r1 = paired_bootstrap(a, b, n_boot=1000, seed=7)
    r2 = paired_bootstrap(a, b, n_boot=1000, seed=7)
    assert r1 == r2
    assert r1["p_value"] > 0.05


def test_paired_bootstrap_length_mismatch():
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap([1, 0], [1])


def test_mcnemar():
    assert mcnemar([1, 0, 1], [1, 0, 1]) == 1.0
    # 10 discordant pairs all favouring b: p = 2 * 0.5**10
    a = [0] * 10 + [1] * 5
    b = [1] * 10 + [1] * 5
    assert mcnemar(a, b) == pytest.approx(2 * 0.5**10)
    # Balanced discordance: p = 1
    assert mcnemar([1, 0, 1, 0], [0, 1, 0, 1]) == 1.0
    # Compare with scipy's exact binomial test.
    from scipy.stats import binomtest

    a = [1] * 7 + [0] * 3 + [1] * 20
    b = [0] * 7 + [1] * 3 + [1] * 20
    assert mcnemar(a, b) == pytest.approx(binomtest(3, 10, 0.5).pvalue)
    with pytest.raises(ValueError):
        mcnemar([1], [1, 0])


# -- confidence= (alpha= deprecated) ------------------------------------------------------
def test_bootstrap_ci_narrower_at_lower_confidence():
    x = np.arange(50, dtype=float)
    l95, h95 = bootstrap_ci(x, confidence=0.95)
    l80, h80 = bootstrap_ci(x, confidence=0.8)
    assert l95 <= l80 and h80 <= h95
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1, 0], confidence=1.0)


def test_alpha_is_deprecated_but_gives_the_same_interval():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=40), rng.normal(size=40)
    for alpha in (0.05, 0.2):
        with pytest.warns(DeprecationWarning, match="confidence="):
            old = bootstrap_ci(a, n_boot=300, alpha=alpha)
        assert old == bootstrap_ci(a, n_boot=300, confidence=1 - alpha)  # bit for bit
        with pytest.warns(DeprecationWarning, match="alpha= is deprecated"):
            old_p = paired_bootstrap(a, b, n_boot=300, alpha=alpha)
        assert old_p == paired_bootstrap(a, b, n_boot=300, confidence=1 - alpha)
    # the default is 0.95 and emits no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert bootstrap_ci(a, n_boot=300) == bootstrap_ci(a, n_boot=300, confidence=0.95)
        paired_bootstrap(a, b, n_boot=50)
    # the warning points at the caller, not at clas_lens
    with pytest.warns(DeprecationWarning) as rec:
        bootstrap_ci(a, n_boot=10, alpha=0.1)
    assert rec[0].filename == __file__
    # both given: allowed only when they agree
    with pytest.warns(DeprecationWarning):
        assert bootstrap_ci(a, n_boot=50, confidence=0.9, alpha=0.1) == bootstrap_ci(a, n_boot=50, confidence=0.9)
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="disagree"):
        bootstrap_ci(a, confidence=0.9, alpha=0.2)


def test_confidence_helpers():
    assert interval_quantiles(0.95) == (0.025, 0.975)
    assert interval_quantiles(1 - 0.05) == (0.05 / 2, 1 - 0.05 / 2)  # exactly the old levels
    assert resolve_confidence() == 0.95
    with pytest.raises(ValueError, match="alpha"):
        resolve_confidence(alpha=0.0)
    with pytest.raises(ValueError, match="confidence"):
        resolve_confidence(0.0)

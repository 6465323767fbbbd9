"""clas_lens.clusters.difference: correlation_difference on known answers, planted effects and
the null (permutation p-values calibrated over 200 random datasets, through divergence_test too).
Also covers clas_lens.metrics.power.detectable_r (its one function; metrics' tests are owned
elsewhere and it exists for the divergence test)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from clas_lens.clusters import correlation_difference, divergence_test
from clas_lens.metrics.power import detectable_r


def test_estimate_equals_difference_of_scipy_correlations():
    rng = np.random.default_rng(0)
    a, b, y = rng.normal(size=(3, 15))
    y = y + a
    for method, fn in (("spearman", sps.spearmanr), ("pearson", sps.pearsonr)):
        res = correlation_difference(a, b, y, method, n_boot=200, n_perm=200)
        ra, rb = fn(a, y)[0], fn(b, y)[0]
        assert res["r_a"] == pytest.approx(ra) and res["r_b"] == pytest.approx(rb)
        assert res["estimate"] == pytest.approx(ra - rb) and res["n"] == 15
        assert res["ci_low"] <= res["estimate"] <= res["ci_high"]
        assert 1 / 201 <= res["p_value"] <= 1.0


def test_seeded_nan_and_errors():
    rng = np.random.default_rng(1)
    a, b, y = rng.normal(size=(3, 10))
    r1 = correlation_difference(a, b, y, n_boot=100, n_perm=100, seed=4)
    assert r1 == correlation_difference(a, b, y, n_boot=100, n_perm=100, seed=4)
    assert r1 != correlation_difference(a, b, y, n_boot=100, n_perm=100, seed=5)
    a2 = a.copy()
    a2[0] = np.nan  # a unit with a NaN drops out
    assert correlation_difference(a2, b, y, n_boot=50, n_perm=50)["n"] == 9
    const = correlation_difference(a, np.ones(10), y, n_boot=50, n_perm=50)
    assert math.isnan(const["estimate"]) and math.isnan(const["p_value"])
    assert math.isnan(correlation_difference([1, 2], [2, 1], [1, 2])["estimate"])
    with pytest.raises(ValueError, match="paired"):
        correlation_difference(a, b, y[:5])
    with pytest.raises(ValueError, match="method"):
        correlation_difference(a, b, y, "kendall")
    with pytest.raises(ValueError, match="n_boot"):
        correlation_difference(a, b, y, n_perm=0)


def test_planted_separation_effect_ci_excludes_zero():
    rng = np.random.default_rng(2)
    a, b, e = rng.normal(size=(3, 30))  # 30 units: at 11, |r_a - r_b| ~ 0.8 is often not significant
    res = correlation_difference(a, b, a + 0.3 * e, n_boot=2000, n_perm=2000)
    assert res["r_a"] > 0.8 and abs(res["r_b"]) < 0.5
    assert res["ci_low"] > 0 and res["p_value"] < 0.05
    # swapped roles: the sign flips, the p-value is the same permutations' answer
    swapped = correlation_difference(b, a, a + 0.3 * e, n_boot=2000, n_perm=2000)
    assert swapped["estimate"] == pytest.approx(-res["estimate"]) and swapped["ci_high"] < 0
    assert swapped["p_value"] == pytest.approx(res["p_value"])


def test_null_permutation_p_values_are_calibrated():
    """Gains unrelated to both deltas, 11 languages, 200 random datasets: the permutation test
    of the difference rejects at 0.05 in 1-10 % of them, and p is roughly uniform."""
    rng = np.random.default_rng(2024)
    for method in ("spearman", "pearson"):
        ps = np.array([
            correlation_difference(*rng.normal(size=(3, 11)), method, n_boot=10, n_perm=199, seed=i)["p_value"]
            for i in range(200)
        ])
        assert 0.01 <= (ps <= 0.05).mean() <= 0.10, (method, (ps <= 0.05).mean())
        assert 0.35 <= (ps <= 0.5).mean() <= 0.65, method


def test_null_through_divergence_test():
    rng = np.random.default_rng(7)
    langs = [f"x{i}" for i in range(11)]
    ps = []
    for i in range(200):
        sep, align, gain = rng.normal(size=(3, 11))
        deltas = pd.DataFrame({"layer": 0, "lang": langs * 2, "before": 0.1,
                               "metric": ["silhouette_cosine"] * 11 + ["parallel_cosine"] * 11,
                               "delta": np.concatenate([sep, align])})
        out = divergence_test(dict(zip(langs, gain)), deltas, n_boot=10, n_perm=199, seed=i, methods=("spearman",))
        ps.append(out.set_index("quantity").loc["r_separation - r_alignment", "p_value"])
    ps = np.array(ps)
    assert 0.01 <= (ps <= 0.05).mean() <= 0.10, (ps <= 0.05).mean()


def test_detectable_r():
    assert detectable_r(11) == pytest.approx(math.tanh((1.959964 + 0.841621) / math.sqrt(8)), rel=1e-6)
    assert detectable_r(11) > detectable_r(30) > detectable_r(300)
    assert detectable_r(30, level=0.1) < detectable_r(30) < detectable_r(30, power=0.9)
    assert math.isnan(detectable_r(3))
    with pytest.raises(ValueError):
        detectable_r(10, level=1.5)
    with pytest.raises(ValueError):
        detectable_r(10.5)
    # the Fisher-z approximation against simulation: at r = detectable_r(20), a Pearson test of
    # 20 normal pairs rejects about 80 % of the time
    rng = np.random.default_rng(0)
    r = detectable_r(20)
    cov = np.array([[1, r], [r, 1]])
    hits = [sps.pearsonr(*rng.multivariate_normal([0, 0], cov, size=20).T)[1] < 0.05 for _ in range(1000)]
    assert 0.74 <= np.mean(hits) <= 0.86

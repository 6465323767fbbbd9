"""clas_lens.metrics.correlation: correlation_test against scipy (r, exact permutation
p-value), calibration of the permutation test on null data, confidence= and the deprecated
alpha=, the clusters re-export."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from clas_lens.metrics import correlation_test, rowwise_pearson


def test_correlation_equals_scipy_and_exact_permutation():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(size=12)
    s = correlation_test(x, y, "spearman", n_boot=500, n_perm=500, seed=1)
    p = correlation_test(x, y, "pearson", n_boot=500, n_perm=500, seed=1)
    assert s["r"] == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert p["r"] == pytest.approx(pearsonr(x, y).statistic, abs=1e-12)
    for res in (s, p):
        assert res["ci_low"] <= res["r"] <= res["ci_high"] and res["n"] == 12
        assert 0 < res["p_value"] <= 1
    assert correlation_test(x, y, "pearson", n_boot=100, n_perm=100, seed=1) == correlation_test(
        x, y, "pearson", n_boot=100, n_perm=100, seed=1
    )
    # n = 5: 120 permutations <= n_perm, so the p-value is exact (brute force)
    import itertools

    xs, ys = np.array([0.1, 0.5, 0.2, 0.9, 0.4]), np.array([1.0, 2.5, 0.5, 3.0, 2.0])
    r = pearsonr(xs, ys).statistic
    perm_r = [pearsonr(xs, ys[list(q)]).statistic for q in itertools.permutations(range(5))]
    exact = np.mean(np.abs(perm_r) >= abs(r) - 1e-12)
    assert correlation_test(xs, ys, "pearson", n_perm=200)["p_value"] == pytest.approx(exact)
    # degenerate inputs give NaN, not an exception
    assert math.isnan(correlation_test([1, 2], [3, 4])["r"])
    assert math.isnan(correlation_test([1, 1, 1, 1], [1, 2, 3, 4])["p_value"])
    nan_dropped = correlation_test([1, 2, 3, np.nan, 5], [2, 1, 4, 3, 6], "pearson", n_boot=50, n_perm=50)
    assert nan_dropped["n"] == 4


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_permutation_test_is_calibrated_on_null_data(method):
    t0 = time.perf_counter()
    rng = np.random.default_rng(12345)
    ps = []
    for sim in range(200):
        x, y = rng.normal(size=15), rng.normal(size=15)
        ps.append(correlation_test(x, y, method, n_boot=1, n_perm=200, seed=sim)["p_value"])
    frac = float(np.mean(np.asarray(ps) < 0.05))
    assert 0.02 <= frac <= 0.08, frac
    # and it has power against a real association
    x = rng.normal(size=15)
    assert correlation_test(x, x + 0.3 * rng.normal(size=15), method, n_boot=1, n_perm=200)["p_value"] < 0.01
    assert time.perf_counter() - t0 < 20


def test_correlation_confidence_and_deprecated_alpha():
    rng = np.random.default_rng(2)
    x = rng.normal(size=20)
    y = x + rng.normal(size=20)
    wide = correlation_test(x, y, "pearson", n_boot=400, n_perm=100, confidence=0.99)
    narrow = correlation_test(x, y, "pearson", n_boot=400, n_perm=100, confidence=0.8)
    assert wide["ci_low"] < narrow["ci_low"] < narrow["ci_high"] < wide["ci_high"]
    assert wide["r"] == narrow["r"] and wide["p_value"] == narrow["p_value"]
    with pytest.warns(DeprecationWarning, match="correlation_test: alpha= is deprecated"):
        old = correlation_test(x, y, "pearson", n_boot=400, n_perm=100, alpha=0.2)
    assert old == narrow
    with pytest.raises(ValueError, match="alpha"):
        correlation_test(x, y, alpha=1.5)


def test_rowwise_pearson_and_clusters_reexport():
    from scipy.stats import pearsonr

    from clas_lens import clusters

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    b[2] = 1.0
    r = rowwise_pearson(a, b)
    assert r[:2] == pytest.approx([pearsonr(a[i], b[i]).statistic for i in range(2)])
    assert math.isnan(r[2])
    assert clusters.correlation_test is correlation_test

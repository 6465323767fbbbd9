"""Calibrated paired tests: known answers, independent references (scipy) and null simulations."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from clas_lens.metrics.calibration import simulate_null
from clas_lens.metrics.paired import (
    equivalence_test,
    holm,
    mcnemar_exact,
    min_detectable_effect,
    newcombe_paired_ci,
    sign_flip_test,
    t_interval,
    wilson_ci,
)


def test_sign_flip_exact_equals_brute_force():
    d = np.array([0.3, -0.1, 0.8, 0.25, -0.4, 0.9, 0.05])
    obs = abs(d.sum())
    count = sum(abs(np.dot(s, d)) >= obs - 1e-12 for s in itertools.product((1, -1), repeat=d.size))
    assert sign_flip_test(d)["p_value"] == pytest.approx(count / 2 ** d.size)


def test_sign_flip_monte_carlo_close_to_exact_and_never_zero():
    rng = np.random.default_rng(0)
    d = rng.normal(0.2, 1.0, 16)
    exact = sign_flip_test(d)["p_value"]
    d20 = np.concatenate([d, [0.0] * 4])  # zeros do not change the test, but force Monte-Carlo
    mc = sign_flip_test(d20, n_resamples=40000)
    assert mc["method"] == "monte-carlo"
    assert mc["p_value"] == pytest.approx(exact, abs=0.01)
    assert sign_flip_test(np.full(40, 1.0), n_resamples=1000)["p_value"] > 0


def test_sign_flip_one_sided():
    d = [0.5, 0.4, 0.6, 0.3, 0.7]
    assert sign_flip_test(d, alternative="greater")["p_value"] == pytest.approx(1 / 32)
    assert sign_flip_test(d, alternative="less")["p_value"] == pytest.approx(1.0)


def test_t_interval_matches_scipy():
    d = np.array([0.1, 0.4, -0.2, 0.5, 0.3, 0.0])
    lo, hi = t_interval(d, 0.9)
    ref = sps.t.interval(0.9, d.size - 1, loc=d.mean(), scale=sps.sem(d))
    assert (lo, hi) == pytest.approx(ref)


def test_mcnemar_exact_equals_binomial_test():
    a = [1] * 3 + [0] * 9 + [1] * 10
    b = [0] * 3 + [1] * 9 + [1] * 10
    r = mcnemar_exact(a, b)
    assert (r["b_only"], r["a_only"]) == (9, 3)
    assert r["p_exact"] == pytest.approx(sps.binomtest(3, 12, 0.5).pvalue)
    assert r["p_mid"] < r["p_exact"]
    assert mcnemar_exact(a, b, mid_p=False)["p_value"] == r["p_exact"]


def test_old_bootstrap_problem_is_gone():
    # 4 of 4 discordant: the exact McNemar p is 0.125 (the paired bootstrap said 0.042).
    assert mcnemar_exact([0] * 4, [1] * 4)["p_exact"] == pytest.approx(0.125)
    assert mcnemar_exact([0], [1])["p_exact"] == 1.0


def test_wilson_textbook_values():
    # Newcombe (1998a) table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605
    assert wilson_ci(81, 263) == pytest.approx((0.2553, 0.3662), abs=5e-4)
    assert wilson_ci(15, 148) == pytest.approx((0.0624, 0.1605), abs=5e-4)


def test_newcombe_paired_degenerate_and_bounds():
    lo, hi = newcombe_paired_ci([1] * 10, [1] * 10)
    assert lo <= 0.0 <= hi and -1 <= lo and hi <= 1
    lo, hi = newcombe_paired_ci([0] * 20, [1] * 20)
    assert lo > 0.5 and hi == pytest.approx(1.0)


def test_holm_matches_definition():
    p = np.array([0.04, 0.001, 0.03, 0.2])
    adj = holm(p)
    order = np.argsort(p)
    manual = np.empty(4)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, (4 - rank) * p[i])
        manual[i] = min(1.0, running)
    assert adj == pytest.approx(manual)
    assert np.isnan(holm([np.nan, 0.01])[0])


def test_mde_continuous_has_the_stated_power():
    n, sd = 40, 2.0
    d = min_detectable_effect(n, kind="continuous", sd=sd)
    tc = sps.t.ppf(0.975, n - 1)
    nc = d / sd * math.sqrt(n)
    assert sps.nct.sf(tc, n - 1, nc) + sps.nct.cdf(-tc, n - 1, nc) == pytest.approx(0.8, abs=1e-6)


def test_mde_binary_power_by_simulation():
    n, pd = 300, 0.2
    d = min_detectable_effect(n, kind="binary", discordance=pd)
    rng = np.random.default_rng(0)
    from clas_lens.metrics.calibration import _binary_pair

    hits = sum(mcnemar_exact(*_binary_pair(rng, n, 0.6, pd, effect=d))["p_exact"] < 0.05 for _ in range(400))
    assert 0.7 <= hits / 400 <= 0.9


def test_mde_shrinks_with_n_and_is_nan_when_hopeless():
    assert min_detectable_effect(300, kind="binary", discordance=0.5) < min_detectable_effect(19, kind="binary", discordance=0.5)
    assert math.isnan(min_detectable_effect(3, kind="binary", discordance=0.1))
    with pytest.raises(ValueError):
        min_detectable_effect(10, kind="binary")


def test_equivalence_needs_evidence():
    rng = np.random.default_rng(0)
    assert not equivalence_test(rng.normal(0, 1, 10), margin=0.1)["equivalent"]  # too noisy to say "kept"
    assert equivalence_test(rng.normal(0, 0.05, 200), margin=0.05)["equivalent"]
    assert not equivalence_test(rng.normal(0.2, 0.05, 200), margin=0.05)["equivalent"]


@pytest.mark.parametrize("n", [19, 300])
@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_null_calibration(n, kind):
    runs = 600 if (n == 300 and kind == "continuous") else 2000
    r = simulate_null(n, kind, runs=runs, seed=0, n_resamples=999)
    # Loose bounds (issue 12 asks 3-6 % and 93-97 %; the benchmark prints the exact numbers).
    assert 0.02 <= r["rejection_rate"] <= 0.07, r
    assert 0.92 <= r["coverage"] <= 0.98, r


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="empty"):
        sign_flip_test([])
    with pytest.raises(ValueError, match="NaN"):
        sign_flip_test([1.0, float("nan")])
    with pytest.raises(ValueError, match="0/1"):
        mcnemar_exact([0, 2], [1, 1])
    with pytest.raises(ValueError, match="paired"):
        mcnemar_exact([0, 1], [1])

"""evaluation.inference: metric kinds; level and gain rows equal the calibrated functions of
clas_lens.metrics (Wilson, t, McNemar mid-p, Newcombe, sign-flip), or the bootstrap by name;
mde from the observed discordance / SD."""
from __future__ import annotations

import math

import numpy as np
import pytest

from clas_lens.errors import DataValidationError
from clas_lens.evaluation.inference import check_test, gain_row, level_row, mde_of, metric_kind, metric_row, paired_row
from clas_lens.metrics import (
    mcnemar_exact,
    min_detectable_effect,
    newcombe_paired_ci,
    sign_flip_test,
    t_interval,
    wilson_ci,
)

RNG = np.random.default_rng(0)
B01 = RNG.integers(0, 2, 60).astype(float)
S01 = np.where(RNG.random(60) < 0.2, 1 - B01, B01)
BX = RNG.normal(size=40)
SX = BX + 0.3 + RNG.normal(scale=0.5, size=40)


def test_metric_kind():
    assert [metric_kind(m) for m in ("accuracy", "exact_match")] == ["binary"] * 2
    assert [metric_kind(m) for m in ("margin", "gold_logprob", "neg_nll", "nll", "f1")] == ["continuous"] * 5
    assert metric_kind("f1", [0.0, 1.0]) == "continuous"  # known names win over values
    assert metric_kind("other", [0, 1, 1]) == "binary" and metric_kind("other", [0.5]) == "continuous"


def test_level_rows():
    r = level_row(S01, "binary", confidence=0.9)
    assert r["value"] == pytest.approx(S01.mean()) and r["n"] == 60
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson_ci(int(S01.sum()), 60, 0.9))
    r = level_row(SX, "continuous")
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(t_interval(SX))
    assert level_row(SX, "continuous", test="bootstrap", n_boot=200, seed=1) == metric_row(SX, n_boot=200, seed=1)
    assert math.isnan(level_row([], "binary")["value"]) and math.isnan(level_row([1.0], "continuous")["ci_low"])


def test_binary_gain_is_mcnemar_midp_with_newcombe():
    r = gain_row(B01, S01, "binary", confidence=0.9)
    assert r["test"] == "mcnemar-midp" and r["diff"] == pytest.approx(S01.mean() - B01.mean())
    assert r["p_value"] == pytest.approx(mcnemar_exact(B01, S01)["p_mid"])
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx(newcombe_paired_ci(B01, S01, 0.9))
    disc = float((B01 != S01).mean())
    assert r["mde"] == pytest.approx(min_detectable_effect(60, kind="binary", discordance=disc, level=0.1))


def test_continuous_gain_is_sign_flip_with_t():
    r = gain_row(BX, SX, "continuous", seed=4)
    ref = sign_flip_test(SX - BX, seed=4)
    assert r["test"] == "sign-flip" and r["diff"] == pytest.approx(ref["estimate"]) and r["p_value"] == ref["p_value"]
    assert (r["diff_ci_low"], r["diff_ci_high"]) == pytest.approx(t_interval(SX - BX))
    assert r["mde"] == pytest.approx(min_detectable_effect(40, kind="continuous", sd=float(np.std(SX - BX, ddof=1))))


def test_bootstrap_by_name_and_edge_cases():
    r = gain_row(B01, S01, "binary", test="bootstrap", n_boot=300, seed=2)
    assert r["test"] == "bootstrap"
    assert {k: r[k] for k in ("diff", "diff_ci_low", "diff_ci_high", "p_value")} == paired_row(B01, S01, n_boot=300, seed=2)
    same = gain_row(B01, B01, "binary")
    assert same["diff"] == 0 and same["p_value"] == 1 and math.isnan(same["mde"])  # no discordant pair
    assert math.isnan(mde_of(np.zeros(1), np.ones(1), "binary"))  # n < 2
    assert mde_of(BX, BX + 1.0, "continuous") == pytest.approx(0.0, abs=1e-12)  # constant differences
    with pytest.raises(DataValidationError, match="paired"):
        gain_row([0, 1], [1], "binary")
    with pytest.raises(DataValidationError, match="test='permutation'"):
        check_test("permutation")

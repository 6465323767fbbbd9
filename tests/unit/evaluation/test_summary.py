"""summarise / metric_row / paired_row: pure summaries, pairing by item id, the unsteered
condition's legacy names, confidence levels; calibrated tests by default, the bootstrap by
name, Holm across languages, mde, split."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from clas_lens.evaluation import COLUMNS, metric_row, paired_row, summarise
from clas_lens.metrics import bootstrap_ci, holm, mcnemar_exact, paired_bootstrap, sign_flip_test


def test_summarise_is_pure_and_pairs_by_item_id():
    preds = pd.DataFrame(
        {
            "task": "t", "lang": "en",
            "condition": ["b"] * 4 + ["s"] * 4,
            "item_id": ["1", "2", "3", "4", "4", "3", "2", "1"],
            "accuracy": [0, 0, 1, 1, 1, 1, 0, 1],
        }
    )
    df = summarise(preds, ["accuracy"], baseline="b", n_boot=100)
    s = df[df.condition == "s"].iloc[0]
    # paired by id: 1: 0->1, 2: 0->0, 3: 1->1, 4: 1->1
    assert s["diff"] == pytest.approx(0.25) and s["n"] == 4
    assert math.isnan(df[df.condition == "b"].iloc[0]["diff"])




def test_legacy_baseline_predictions_are_read_as_unsteered():
    preds = pd.DataFrame(
        {
            "task": "t", "lang": "en",
            "condition": ["baseline"] * 3 + ["clas"] * 3,
            "item_id": ["1", "2", "3"] * 2,
            "accuracy": [0, 1, 0, 1, 1, 0],
        }
    )
    df = summarise(preds, ["accuracy"], n_boot=100)
    assert list(df.columns) == COLUMNS
    assert df["condition"].tolist() == ["unsteered", "clas"]
    assert df.loc[1, "diff"] == pytest.approx(1 / 3)
    same = summarise(preds, ["accuracy"], baseline="baseline", n_boot=100)
    pd.testing.assert_frame_equal(df, same)


def test_rows_equal_the_metrics_functions():
    a, b = [0, 1, 1, 0, 1, 0, 0, 1], [1, 1, 1, 0, 1, 1, 0, 1]
    r = metric_row(b, n_boot=300, seed=5, confidence=0.9)
    assert (r["ci_low"], r["ci_high"]) == bootstrap_ci(b, n_boot=300, seed=5, confidence=0.9)
    assert r["value"] == pytest.approx(0.75) and r["n"] == 8
    ref = paired_bootstrap(a, b, n_boot=300, seed=5, confidence=0.9)
    p = paired_row(a, b, n_boot=300, seed=5, confidence=0.9)
    assert p == {"diff": ref["diff"], "diff_ci_low": ref["ci_low"], "diff_ci_high": ref["ci_high"], "p_value": ref["p_value"]}
    with pytest.warns(DeprecationWarning, match="alpha"):
        assert metric_row(b, n_boot=300, seed=5, alpha=0.1) == pytest.approx(r)
    with pytest.warns(DeprecationWarning, match="alpha"):
        assert paired_row(a, b, n_boot=300, seed=5, alpha=0.1) == pytest.approx(p)
    empty = metric_row([], n_boot=10)
    assert math.isnan(empty["value"]) and empty["n"] == 0


def test_different_item_sets_are_refused():
    preds = pd.DataFrame({"task": "t", "lang": "en", "condition": ["unsteered", "x"], "item_id": ["1", "2"], "accuracy": [0, 1]})
    with pytest.raises(ValueError, match="scored different items"):
        summarise(preds, ["accuracy"], n_boot=10)


def test_deprecated_baseline_constant():
    import clas_lens.evaluation as evaluation

    with pytest.warns(DeprecationWarning, match="UNSTEERED"):
        assert evaluation.BASELINE == "unsteered"


def test_calibrated_by_default_bootstrap_by_name_holm_and_split():
    rng = np.random.default_rng(1)
    rows = []
    for lang in ("en", "de", "sw"):
        base = rng.integers(0, 2, 30)
        steer = np.where(rng.random(30) < 0.3, 1 - base, base)
        marg_b = rng.normal(size=30)
        for cond, acc, marg in (("unsteered", base, marg_b), ("clas", steer, marg_b + 0.2 + rng.normal(scale=0.3, size=30))):
            rows += [{"task": "t", "lang": lang, "condition": cond, "item_id": str(k), "split": "dev" if k % 3 else "test",
                      "accuracy": float(acc[k]), "margin": float(marg[k])} for k in range(30)]
    preds = pd.DataFrame(rows)
    df = summarise(preds, ["margin", "accuracy"], seed=2)
    assert list(df.columns) == COLUMNS
    assert {"p_value", "diff_ci_low", "diff_ci_high", "mde", "p_holm", "test", "split"} <= set(df.columns)
    gains = df[df.condition == "clas"]
    assert set(gains[gains.metric == "accuracy"]["test"]) == {"mcnemar-midp"}
    assert set(gains[gains.metric == "margin"]["test"]) == {"sign-flip"}
    assert set(df["split"]) == {"dev+test"}
    for metric in ("margin", "accuracy"):
        g = gains[gains.metric == metric]
        assert g["p_holm"].to_numpy() == pytest.approx(holm(g["p_value"].to_numpy()))  # across languages
        assert (g["p_holm"] >= g["p_value"]).all() and g["mde"].notna().all()
    for lang in ("en", "de", "sw"):
        p = preds[preds.lang == lang]
        b = p[p.condition == "unsteered"]["margin"].to_numpy()
        s = p[p.condition == "clas"]["margin"].to_numpy()
        row = gains[(gains.lang == lang) & (gains.metric == "margin")].iloc[0]
        ref = sign_flip_test(s - b, seed=2)
        assert row["p_value"] == ref["p_value"] and (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx((ref["ci_low"], ref["ci_high"]))
        ba = p[p.condition == "unsteered"]["accuracy"].to_numpy()
        sa = p[p.condition == "clas"]["accuracy"].to_numpy()
        row = gains[(gains.lang == lang) & (gains.metric == "accuracy")].iloc[0]
        assert row["p_value"] == pytest.approx(mcnemar_exact(ba, sa)["p_mid"])
    boot = summarise(preds, ["margin", "accuracy"], test="bootstrap", n_boot=200, seed=2)
    assert set(boot[boot.condition == "clas"]["test"]) == {"bootstrap"}
    b, s = preds[(preds.lang == "en") & (preds.condition == "unsteered")], preds[(preds.lang == "en") & (preds.condition == "clas")]
    ref = paired_bootstrap(b["accuracy"].to_numpy(), s["accuracy"].to_numpy(), n_boot=200, seed=2)
    row = boot[(boot.lang == "en") & (boot.condition == "clas") & (boot.metric == "accuracy")].iloc[0]
    assert row["p_value"] == ref["p_value"] and row["diff_ci_low"] == ref["ci_low"]
    # a metric's kind can be stated; an unknown test is refused
    forced = summarise(preds, ["accuracy"], kinds={"accuracy": "continuous"})
    assert set(forced[forced.condition == "clas"]["test"]) == {"sign-flip"}
    with pytest.raises(ValueError, match="test='exact'"):
        summarise(preds, ["accuracy"], test="exact")

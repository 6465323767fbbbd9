"""summarise / metric_row / paired_row: pure summaries, pairing by item id, the unsteered
condition's legacy names, confidence levels."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from clas_lens.evaluation import COLUMNS, metric_row, paired_row, summarise
from clas_lens.metrics import bootstrap_ci, paired_bootstrap


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

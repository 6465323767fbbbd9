"""evaluation.breakdown: per-class recall (NLI labels, other tasks' gold options, conditions)
and anchor_kept (TOST: "kept" only when equivalence is shown) on synthetic data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens.errors import DataValidationError
from clas_lens.evaluation import ANCHOR_COLUMNS, RECALL_COLUMNS, anchor_kept, per_class_recall
from clas_lens.metrics import equivalence_test, wilson_ci


def test_per_class_recall():
    preds = pd.DataFrame({
        "task": "nli", "lang": "de", "condition": ["unsteered"] * 6 + ["clas"] * 6, "item_id": list("abcdef") * 2,
        "answer_index": [0, 0, 1, 1, 2, 2] * 2, "pred_index": [0, 0, 0, 0, 0, 0] + [0, 1, 1, 1, 2, 0],
    })
    df = per_class_recall(preds)
    assert list(df.columns) == RECALL_COLUMNS and len(df) == 6
    u = df[df.condition == "unsteered"]
    assert u["label"].tolist() == ["entailment", "neutral", "contradiction"] and u["recall"].tolist() == [1.0, 0.0, 0.0]
    c = df[df.condition == "clas"]
    assert c["recall"].tolist() == [0.5, 1.0, 0.5] and (c["n"] == 2).all()
    assert (c["ci_low"].iloc[0], c["ci_high"].iloc[0]) == pytest.approx(wilson_ci(1, 2))
    cloze = pd.DataFrame({"task": "cloze", "lang": "en", "item_id": ["x", "y"], "answer_index": [3, 4],
                          "pred_index": [3, 0], "reference": ["Thursday", "Friday"]})
    out = per_class_recall(cloze)
    assert out["label"].tolist() == ["Thursday", "Friday"] and out["condition"].isna().all()
    with pytest.raises(DataValidationError, match="choice predictions"):
        per_class_recall(pd.DataFrame({"task": ["t"], "lang": ["en"]}))


def _preds(shift, noise, n=50, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=n)
    rows = {"task": "t", "lang": ["en"] * (2 * n) + ["de"] * (2 * n),
            "item_id": [str(k) for k in range(n)] * 4,
            "condition": (["unsteered"] * n + ["clas"] * n) * 2,
            "margin": np.r_[base, base + shift + rng.normal(scale=noise, size=n)] .tolist() * 2,
            "accuracy": ([1.0] * n + [1.0] * n) * 2}
    return pd.DataFrame(rows)


def test_anchor_kept_only_when_equivalence_is_shown():
    kept = anchor_kept(_preds(0.0, 0.05), margin=0.1)
    assert list(kept.columns) == ANCHOR_COLUMNS and kept["metric"].tolist() == ["margin"]
    row = kept.iloc[0]
    assert row["verdict"] == "kept" and row["lang"] == "en" and row["n"] == 50
    p = _preds(0.0, 0.05)
    d = p[(p.lang == "en") & (p.condition == "clas")]["margin"].to_numpy() - p[(p.lang == "en") & (p.condition == "unsteered")]["margin"].to_numpy()
    assert row["p_value"] == pytest.approx(equivalence_test(d, 0.1)["p_value"])
    # a noisy comparison that is not significantly different is still "not shown", never "kept"
    noisy = anchor_kept(_preds(0.0, 1.0), margin=0.1).iloc[0]
    assert noisy["verdict"] == "not shown"
    shifted = anchor_kept(_preds(-0.5, 0.05), margin=0.1).iloc[0]
    assert shifted["verdict"] == "not shown" and shifted["diff"] < -0.4
    both = anchor_kept(_preds(0.0, 0.05), margin={"margin": 0.1, "accuracy": 0.05}, metrics=["margin", "accuracy"])
    assert both["verdict"].tolist() == ["kept", "kept"]


def test_anchor_kept_reads_evaluate_results_and_checks():
    preds = _preds(0.0, 0.05)
    res = pd.DataFrame({"task": ["t"], "lang": ["en"]})
    res.attrs["predictions"] = preds
    res.attrs["unsteered"] = "unsteered"
    assert anchor_kept(res, margin=0.1)["verdict"].tolist() == ["kept"]
    assert anchor_kept(preds, anchor="de", margin=0.1)["lang"].tolist() == ["de"]
    with pytest.raises(DataValidationError, match="no predictions in the anchor language 'sw'"):
        anchor_kept(preds, anchor="sw", margin=0.1)
    with pytest.raises(DataValidationError, match="per-item predictions"):
        anchor_kept(pd.DataFrame({"task": ["t"]}), margin=0.1)

"""clas_lens/report.py: paper_table (gains, CI, Holm, MDE) and format_table."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from clas_lens.errors import DataValidationError
from clas_lens.metrics import holm, min_detectable_effect
from clas_lens.report import PAPER_COLUMNS, format_table, paper_table


def _frame(conditions=("unsteered", "clas", "int_mu"), langs=("en", "de", "sw", "hi")):
    rng = np.random.default_rng(0)
    rows = []
    for lang in langs:
        for cond in conditions:
            v = float(rng.uniform(0.2, 0.8))
            steered = cond != "unsteered"
            d = float(rng.normal(0.05, 0.05)) if steered else math.nan
            rows.append({
                "task": "cloze", "lang": lang, "condition": cond, "metric": "accuracy", "value": v,
                "ci_low": v - 0.1, "ci_high": v + 0.1, "n": 50,
                "diff": d, "diff_ci_low": d - 0.08 if steered else math.nan,
                "diff_ci_high": d + 0.08 if steered else math.nan,
                "p_value": float(rng.uniform(0.001, 0.5)) if steered else math.nan,
            })
    return pd.DataFrame(rows)


def test_columns_roles_and_values():
    df = _frame()
    t = paper_table(df)
    assert list(t.columns) == PAPER_COLUMNS
    assert len(t) == 2 * 4
    assert t["method"].tolist() == ["clas"] * 4 + ["int_mu"] * 4
    assert t[t.method == "clas"]["lang"].tolist() == ["en", "de", "sw", "hi"]
    assert t.set_index(["method", "lang"]).loc[("clas", "en"), "role"] == "anchor"
    row = t.set_index(["method", "lang"]).loc[("clas", "de")]
    src = df[(df.condition == "clas") & (df.lang == "de")].iloc[0]
    base = df[(df.condition == "unsteered") & (df.lang == "de")].iloc[0]
    assert row["gain"] == src["diff"] and row["steered"] == src["value"] and row["unsteered"] == base["value"]
    assert row["gain_ci_low"] == src["diff_ci_low"] and row["p_value"] == src["p_value"]


def test_holm_over_target_languages_only():
    df = _frame()
    t = paper_table(df)
    for method, g in t.groupby("method"):
        targets = g[g.role == "target"]
        np.testing.assert_allclose(targets["p_holm"], holm(targets["p_value"]))
        assert g[g.role == "anchor"]["p_holm"].isna().all()
        assert (targets["significant"] == (targets["p_holm"] < 0.05)).all()
    raw = paper_table(df, adjust=False)
    tg = raw[raw.role == "target"]
    np.testing.assert_allclose(tg["p_holm"], tg["p_value"])


def test_mde_from_ci_width():
    t = paper_table(_frame(), confidence=0.95, power=0.8)
    assert (t["mde_source"] == "ci").all()
    se = 0.16 / (2 * 1.959963984540054)
    np.testing.assert_allclose(t["mde"], (1.959963984540054 + 0.8416212335729143) * se, rtol=1e-9)


def test_mde_from_items_when_predictions_are_attached():
    df = _frame(conditions=("unsteered", "clas"), langs=("en", "de"))
    rng = np.random.default_rng(1)
    preds = []
    for lang in ("en", "de"):
        base = rng.integers(0, 2, 40)
        flip = rng.random(40) < 0.25
        steered = np.where(flip, 1 - base, base)
        for cond, vals in (("baseline", base), ("clas", steered)):  # the legacy name is read too
            preds.append(pd.DataFrame({"task": "cloze", "lang": lang, "condition": cond,
                                       "item_id": [f"i{k}" for k in range(40)], "accuracy": vals}))
        if lang == "de":
            disc = float(np.mean(base != steered))
    df.attrs["predictions"] = pd.concat(preds, ignore_index=True)
    t = paper_table(df).set_index("lang")
    assert (t["mde_source"] == "items").all()
    assert t.loc["de", "mde"] == pytest.approx(min_detectable_effect(40, kind="binary", discordance=disc))


def test_sweep_conditions_selected_and_relabelled():
    key = "clas|alpha=1.0|beta=0.2|gamma=0.2|layers=last:4"
    df = _frame(conditions=("baseline", key, "int_mu|value=mean|layers=last:4"))
    t = paper_table(df, methods={key: "CLAS"})
    assert set(t["method"]) == {"CLAS"}
    df.attrs["grid"] = {"confidence": 0.9}
    assert paper_table(df).attrs["confidence"] == 0.9
    with pytest.raises(DataValidationError, match="No condition"):
        paper_table(df, methods=["lape"])


def test_metric_filter_and_errors():
    df = pd.concat([_frame(), _frame().assign(metric="margin")], ignore_index=True)
    assert set(paper_table(df, metric="margin")["metric"]) == {"margin"}
    assert len(paper_table(df)) == 16
    with pytest.raises(DataValidationError, match="No metric"):
        paper_table(df, metric="f1")
    with pytest.raises(DataValidationError, match="missing columns"):
        paper_table(df.drop(columns=["diff"]))
    with pytest.raises(DataValidationError, match="no 'unsteered'"):
        paper_table(df[df.condition != "unsteered"])


def test_format_table_and_latex():
    t = paper_table(_frame())
    wide = format_table(t)
    assert list(wide.index) == ["clas", "int_mu"] and list(wide.columns) == ["en", "de", "sw", "hi"]
    r = t.iloc[1]
    expected = f"{r.gain:+.2f} [{r.gain_ci_low:+.2f}, {r.gain_ci_high:+.2f}]" + ("*" if r.significant else "")
    assert wide.loc["clas", "de"] == expected
    latex = wide.to_latex()
    assert "\\begin{tabular}" in latex and "clas" in latex and latex.count("\\\\") >= 3  # header + 2 rows
    assert format_table(t, value="steered", ci=False).loc["clas", "de"].startswith(f"{r.steered:.2f}")
    both = pd.concat([t, t.assign(metric="margin")], ignore_index=True)
    assert format_table(both).index.names == ["task", "metric", "method"]


def test_on_a_real_evaluate_frame():
    from clas_lens.data.tasks import load_task
    from clas_lens.evaluation import evaluate
    from clas_lens.steering import Deactivate
    from clas_lens.testing import tiny_model

    torch.set_num_threads(1)
    model = tiny_model("llama")
    task = load_task("cloze", langs=["en", "de", "sw"])
    off = Deactivate(torch.ones(2, 64, dtype=torch.bool), layers=[1])
    res = evaluate(model, task, ["de", "sw"], {"unsteered": None, "off": off}, limit=4, n_boot=100)
    assert len(paper_table(res)) == 3 * res["metric"].nunique()
    t = paper_table(res, metric="margin")
    assert t["lang"].tolist() == ["en", "de", "sw"] and set(t["mde_source"]) == {"items"}
    assert t["n"].tolist() == [4, 4, 4]
    assert paper_table(res, metric="accuracy")["mde"].notna().all()


def test_mde_falls_back_to_the_ci_when_no_item_changed():
    df = _frame(conditions=("unsteered", "clas"), langs=("en", "de"))
    preds = pd.concat([pd.DataFrame({"task": "cloze", "lang": lang, "condition": cond, "item_id": ["a", "b", "c"],
                                     "accuracy": [1, 0, 1]})
                       for lang in ("en", "de") for cond in ("unsteered", "clas")], ignore_index=True)
    df.attrs["predictions"] = preds
    t = paper_table(df)
    assert (t["mde_source"] == "ci").all() and t["mde"].notna().all()

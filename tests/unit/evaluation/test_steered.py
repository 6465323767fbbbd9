"""evaluate(): tidy rows, paired gains (calibrated tests by default, the bootstrap by name),
per-language binding of templates, anchor, early errors, the unsteered condition's name."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from _steering_toys import FakeNeurons, FakeStats, ToyTask
from clas_lens.errors import DataValidationError, MismatchError
from clas_lens.evaluation import COLUMNS, evaluate, predict
from clas_lens.metrics import (
    bootstrap_ci,
    holm,
    mcnemar_exact,
    min_detectable_effect,
    newcombe_paired_ci,
    paired_bootstrap,
    wilson_ci,
)
from clas_lens.sites import neuron_sites
from clas_lens.steering import ClasSteering, Deactivate, SetNeurons, steer


@pytest.fixture(scope="module")
def ns(tiny_llama):
    return FakeNeurons(neuron_sites(tiny_llama).shape)


def test_tidy_rows_anchor_and_paired_diffs(tiny_llama, ns):
    task = ToyTask()
    conds = {
        "none": None,
        "clas": ClasSteering(ns, layers="last:2", beta=3.0, gamma=1.0),
        "zero": ClasSteering(ns, beta=0.0, gamma=0.0),
    }
    df = evaluate(tiny_llama, task, ["de", "ru"], conds, n_boot=200, seed=3)
    boot = evaluate(tiny_llama, task, ["de", "ru"], conds, n_boot=200, seed=3, test="bootstrap")
    assert list(df.columns) == COLUMNS and list(boot.columns) == COLUMNS
    for col in ("p_value", "diff_ci_low", "diff_ci_high", "mde", "p_holm"):
        assert col in df.columns
    assert df.attrs["langs"] == ["en", "de", "ru"]  # anchor added first
    assert len(df) == 3 * 3 and set(df["metric"]) == {"accuracy"}
    assert (df["n"] == task.n).all() and set(df["task"]) == {"toy"}
    base = df[df.condition == "none"]
    assert base[["diff", "diff_ci_low", "diff_ci_high", "p_value", "p_holm", "mde"]].isna().all().all()
    assert set(df[df.condition != "none"]["test"]) == {"mcnemar-midp"} and set(boot[boot.condition != "none"]["test"]) == {"bootstrap"}
    zero = df[df.condition == "zero"]
    assert (zero["diff"] == 0).all() and (zero["p_value"] == 1).all()
    preds = df.attrs["predictions"]
    assert len(preds) == 3 * 3 * task.n and list(preds.columns[:4]) == ["task", "lang", "condition", "item_id"]
    # numbers equal the metrics module's on the per-item values
    for lang in ["en", "de", "ru"]:
        p = preds[preds.lang == lang]
        b = p[p.condition == "none"]["accuracy"].to_numpy()
        s = p[p.condition == "clas"]["accuracy"].to_numpy()
        # the old paired bootstrap, by name
        row = boot[(boot.lang == lang) & (boot.condition == "clas")].iloc[0]
        assert row["value"] == pytest.approx(s.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(bootstrap_ci(s, n_boot=200, seed=3))
        ref = paired_bootstrap(b, s, n_boot=200, seed=3)
        assert row["diff"] == pytest.approx(ref["diff"]) and row["p_value"] == pytest.approx(ref["p_value"])
        assert row["diff_ci_low"] == pytest.approx(ref["ci_low"])
        # calibrated by default: Wilson, exact McNemar mid-p, Newcombe, MDE at the discordance rate
        row = df[(df.lang == lang) & (df.condition == "clas")].iloc[0]
        assert row["value"] == pytest.approx(s.mean())
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_ci(int(s.sum()), len(s)))
        assert row["p_value"] == pytest.approx(mcnemar_exact(b, s)["p_mid"])
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(newcombe_paired_ci(b, s))
        disc = float((b != s).mean())
        mde = min_detectable_effect(len(b), kind="binary", discordance=disc) if disc > 0 else float("nan")
        assert row["mde"] == pytest.approx(mde, nan_ok=True)
    for cond in ("clas", "zero"):
        rows = df[df.condition == cond]
        assert rows["p_holm"].to_numpy() == pytest.approx(holm(rows["p_value"].to_numpy()))
        zp = p[p.condition == "zero"]
        assert zp["prediction"].tolist() == p[p.condition == "none"]["prediction"].tolist()
    assert (preds[preds.condition == "clas"]["prediction"].to_numpy() != preds[preds.condition == "none"]["prediction"].to_numpy()).any()
    assert df.attrs["conditions"]["clas"][0]["site"] == "post"
    assert df.attrs["baseline"] == "none" and df.attrs["unsteered"] == "none"


def test_templates_are_bound_to_each_language(tiny_llama, ns):
    task = ToyTask()
    stats = FakeStats(neuron_sites(tiny_llama).shape)
    clas = ClasSteering(ns, beta=3.0, gamma=1.0)
    mu = SetNeurons.int_mu(ns, stats, layers=[1])
    df = evaluate(tiny_llama, task, ["de", "ru"], {"clas": clas, "mu": [mu]}, n_boot=50)
    preds = df.attrs["predictions"]
    assert df.attrs["baseline"] == "unsteered"  # added: no unsteered condition was given
    assert df.attrs["unsteered"] == "unsteered" and set(preds["condition"]) == {"unsteered", "clas", "mu"}
    for lang in ["en", "de", "ru"]:
        with steer(tiny_llama, clas.for_lang(lang)):
            direct = predict(tiny_llama, task, lang)
        got = preds[(preds.lang == lang) & (preds.condition == "clas")]
        assert got["margin"].to_numpy() == pytest.approx(direct["margin"].to_numpy(), abs=0)
        with steer(tiny_llama, mu.for_lang(lang)):
            direct = predict(tiny_llama, task, lang)
        got = preds[(preds.lang == lang) & (preds.condition == "mu")]
        assert np.array_equal(got["margin"].to_numpy(), direct["margin"].to_numpy())


def test_anchor_options_and_limit(tiny_llama, ns):
    task = ToyTask(langs=["de", "ru"])
    df = evaluate(tiny_llama, task, ["de"], {"off": Deactivate(ns, layers=[1])}, anchor=None, limit=3, n_boot=20)
    assert set(df["lang"]) == {"de"} and (df["n"] == 3).all()
    with pytest.raises(DataValidationError, match="no language 'en'"):
        evaluate(tiny_llama, task, ["de"], None)


def test_errors_come_before_any_work(tiny_llama, tiny_gpt2, ns):
    task = ToyTask(langs=["en", "de", "ru", "sw"])
    with pytest.raises(DataValidationError, match="Unknown language 'sw'"):
        evaluate(tiny_llama, task, ["de", "sw"], {"clas": ClasSteering(ns)})
    with pytest.raises(DataValidationError, match="no language 'xx'"):
        evaluate(tiny_llama, task, ["xx"], {"clas": ClasSteering(ns)})
    with pytest.raises(MismatchError):
        evaluate(tiny_gpt2, task, ["de"], {"clas": ClasSteering(ns)})
    with pytest.raises(DataValidationError, match="dict"):
        evaluate(tiny_llama, task, ["de"], [ClasSteering(ns)])
    with pytest.raises(DataValidationError, match="test='exact'"):
        evaluate(tiny_llama, task, ["de"], {"clas": ClasSteering(ns)}, test="exact")
    assert task.calls == []


def test_real_cloze_task(tiny_llama):
    from clas_lens.data.tasks import load_task

    task = load_task("cloze", langs=["en", "de"])
    mask = torch.zeros(neuron_sites(tiny_llama).shape, dtype=torch.bool)
    mask[1, :16] = True
    df = evaluate(tiny_llama, task, ["de"], {"none": None, "off": Deactivate(mask)}, limit=2, n_boot=50)
    assert len(df) == 2 * 2 * 3 and df.attrs["predictions"]["condition"].tolist().count("off") == 4
    assert list(df["metric"][:3]) == ["margin", "gold_logprob", "accuracy"]
    assert set(df[df.metric == "margin"]["test"].dropna()) == {"sign-flip"}
    assert set(df["split"]) <= {"dev", "test", "dev+test"}


def test_legacy_unsteered_names_are_written_unsteered(tiny_llama, ns):
    task = ToyTask(langs=["en"], n=4)
    df = evaluate(tiny_llama, task, ["en"], {"baseline": None, "off": Deactivate(ns, layers=[1])}, n_boot=20)
    assert df["condition"].tolist() == ["unsteered", "off"] and df.attrs["unsteered"] == "unsteered"
    assert set(df.attrs["predictions"]["condition"]) == {"unsteered", "off"}
    with pytest.raises(DataValidationError, match="names the unsteered condition"):
        evaluate(tiny_llama, task, ["en"], {"base": Deactivate(ns, layers=[1])})
    with pytest.raises(DataValidationError, match="Two conditions are named 'unsteered'"):
        evaluate(tiny_llama, task, ["en"], {"baseline": None, "unsteered": None})


def test_confidence_and_deprecated_alpha(tiny_llama, ns):
    task = ToyTask(langs=["en"], n=6)
    conds = {"none": None, "off": Deactivate(ns, layers=[1])}
    new = evaluate(tiny_llama, task, ["en"], conds, n_boot=100, confidence=0.8)
    with pytest.warns(DeprecationWarning, match="alpha"):
        old = evaluate(tiny_llama, task, ["en"], conds, n_boot=100, alpha=0.2)
    pd.testing.assert_frame_equal(new, old)
    p = new.attrs["predictions"]
    s = p[p.condition == "off"]["accuracy"].to_numpy()
    row = new[new.condition == "off"].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_ci(int(s.sum()), len(s), 0.8))
    boot = evaluate(tiny_llama, task, ["en"], conds, n_boot=100, confidence=0.8, test="bootstrap")
    row = boot[boot.condition == "off"].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(bootstrap_ci(s, n_boot=100, confidence=0.8))

"""clas_lens.clusters.divergence: separation vs alignment and their difference on planted data,
the layer rule (unsteered data only) and Holm across layers, per-setting units, clear errors.
(The correlation core is tested in tests/unit/metrics/test_correlation.py, the difference core
in test_difference.py.)"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens.clusters import DIVERGENCE_COLUMNS, divergence_test, rule_layer
from clas_lens.errors import DataValidationError
from clas_lens.metrics import holm
from clas_lens.metrics.power import detectable_r

OLD_COLUMNS = ["hypothesis", "metric", "layer", "method", "r", "ci_low", "ci_high", "p_value", "n"]


def _deltas(langs, layers, sep, align, before=None):
    """compare_reps-like rows; the unsteered pooled silhouette (``before`` of the "all" row)
    falls with depth unless ``before`` gives one value per layer."""
    before = before if before is not None else [0.5 - 0.1 * li for li in range(len(layers))]
    rows = []
    for li, layer in enumerate(layers):
        for lang, s, a in zip(langs, sep, align):
            rows.append((layer, lang, "silhouette_cosine", 0.2, s * (li + 1)))
            rows.append((layer, lang, "parallel_cosine", 0.9, a))
        rows.append((layer, "all", "silhouette_cosine", before[li], 99.0))
    return pd.DataFrame(rows, columns=["layer", "lang", "metric", "before", "delta"])


def test_divergence_test_separation_vs_alignment():
    rng = np.random.default_rng(0)
    langs = [f"x{i}" for i in range(12)]
    sep = rng.normal(size=12)
    align = rng.normal(size=12)
    gains = 2.0 * sep + 0.2 * rng.normal(size=12)
    deltas = _deltas(langs + ["en"], [2, 5], list(sep) + [0.0], list(align) + [np.nan])
    g = pd.DataFrame({"lang": langs, "gain": gains})
    with pytest.warns(DeprecationWarning, match="layer='rule'"):
        out = divergence_test(g, deltas, layer=None, n_boot=300, n_perm=300)
    assert list(out.columns[:9]) == OLD_COLUMNS  # the earlier columns first, unchanged
    assert list(out.columns) == list(DIVERGENCE_COLUMNS)
    assert set(out.hypothesis) == {"separation", "alignment", "difference"} and set(out.method) == {"spearman", "pearson"}
    assert set(out.layer) == {5}  # the deprecated choice: larger mean |delta| of silhouette at layer 5
    assert "max mean |delta" in out.attrs["layer_choice"]
    sep_rows, al_rows = out[out.hypothesis == "separation"], out[out.hypothesis == "alignment"]
    assert (sep_rows.r > 0.8).all() and (sep_rows.p_value < 0.01).all() and (sep_rows.ci_low > 0).all()
    assert (al_rows.p_value > 0.01).all()
    assert (out.n == 12).all()
    # the default: the layer of largest UNSTEERED separation (layer 2 here), blind to the deltas
    rule = divergence_test(g, deltas, n_boot=300, n_perm=300)
    assert set(rule.layer) == {2} and rule.attrs["layer_choice"] == "max unsteered separation (layer 2)"
    np.testing.assert_allclose(rule.r.to_numpy(), out.r.to_numpy())  # rank/scale-free in layer
    # the same through a Series / dict of gains, and a chosen layer
    s = pd.Series(gains, index=langs)
    out2 = divergence_test(s, deltas, layer=2, n_boot=300, n_perm=300)
    assert set(out2.layer) == {2} and out2.attrs["layer_choice"] == "given"
    np.testing.assert_allclose(out2.r.to_numpy(), out.r.to_numpy())  # rank/scale-free in layer
    assert (out2.p_holm == out2.p_value).all()  # one layer: nothing to adjust
    every = divergence_test(dict(zip(langs, gains)), deltas, layer="all", n_boot=50, n_perm=50)
    assert len(every) == 12 and sorted(every.layer.unique()) == [2, 5]  # 2 layers x 3 quantities x 2 methods
    for _, grp in every.groupby(["quantity", "method"]):
        np.testing.assert_allclose(grp.p_holm.to_numpy(), holm(grp.p_value.to_numpy()))
    assert (every.p_holm >= every.p_value).all()
    # gains including the anchor: it lacks an alignment delta and drops out of BOTH tests
    g_en = pd.DataFrame({"lang": langs + ["en"], "gain": list(gains) + [0.0]})
    assert (divergence_test(g_en, deltas, n_boot=50, n_perm=50).n == 12).all()


def test_difference_row_compares_the_two_correlations():
    """Gains driven by the separation change, unrelated to the alignment change: the difference
    r_separation - r_alignment is large, its bootstrap CI excludes 0, its permutation p small."""
    rng = np.random.default_rng(3)
    n = 24  # units (e.g. 12 languages x 2 strengths); with 11 the CI excludes 0 in ~80 % of such datasets
    langs = [f"x{i}" for i in range(n)]
    sep, align = rng.normal(size=n), rng.normal(size=n)
    gains = sep + 0.3 * rng.normal(size=n)
    deltas = _deltas(langs, [4], sep, align)
    out = divergence_test(dict(zip(langs, gains)), deltas, n_boot=1000, n_perm=1000)
    assert list(out.quantity.unique()) == ["r_separation", "r_alignment", "r_separation - r_alignment"]
    for method in ("spearman", "pearson"):
        rows = out[out.method == method].set_index("quantity")
        diff = rows.loc["r_separation - r_alignment"]
        assert diff.estimate == pytest.approx(rows.loc["r_separation", "r"] - rows.loc["r_alignment", "r"])
        assert diff.estimate > 0.5 and diff.ci_low > 0 and diff.p_value < 0.05, (method, diff)
        assert diff.metric == "silhouette_cosine - parallel_cosine" and diff.hypothesis == "difference"
    assert (out.estimate == out.r).all() and (out.n == n).all()
    assert out.detectable_r.iloc[0] == pytest.approx(detectable_r(n)) and 0.5 < out.detectable_r.iloc[0] < 0.6
    assert 0.7 < detectable_r(11) < 0.8  # what 11 target languages can detect
    # a lower confidence narrows the CIs and lowers the detectable r (alpha = 1 - confidence)
    o90 = divergence_test(dict(zip(langs, gains)), deltas, n_boot=1000, n_perm=1000, confidence=0.9,
                          methods=("spearman",))
    assert o90.detectable_r.iloc[0] == pytest.approx(detectable_r(n, level=0.1))
    assert o90.attrs["confidence"] == 0.9 and o90.attrs["power"] == 0.8


def test_rule_layer_sees_only_unsteered_values():
    langs = ["de", "ru", "zh", "hi"]
    d = _deltas(langs, [0, 3, 6], [0.1, 0.2, 0.3, 0.4], [0.0] * 4, before=[0.1, 0.6, 0.3])
    assert rule_layer(d) == 3
    assert rule_layer(d.assign(delta=d.delta * -100)) == 3  # deltas play no part
    assert rule_layer(d, layers=[0, 6]) == 6
    per_lang_only = d[d.lang != "all"].copy()  # no pooled row: mean over the languages' before
    per_lang_only.loc[per_lang_only.layer == 6, "before"] = 0.9
    assert rule_layer(per_lang_only) == 6
    with pytest.raises(DataValidationError, match="'before' column"):
        rule_layer(d.drop(columns="before"))
    with pytest.raises(DataValidationError, match="'before' column"):
        divergence_test(dict(zip(langs, [1, 2, 3, 4])), d.drop(columns="before"))
    with pytest.raises(DataValidationError, match="'rule', 'all'"):
        divergence_test(dict(zip(langs, [1, 2, 3, 4])), d, layer="best")


def test_divergence_test_per_setting_and_errors():
    rng = np.random.default_rng(1)
    langs = ["de", "ru", "zh", "hi"]
    tables, gains = [], []
    for strength in (0.5, 1.0, 2.0):
        sep = rng.normal(size=4) * strength
        t = _deltas(langs, [3], sep, rng.normal(size=4))
        tables.append(t.assign(setting=strength))
        gains.append(pd.DataFrame({"setting": strength, "lang": langs, "gain": sep + 0.1 * rng.normal(size=4)}))
    deltas, gains = pd.concat(tables), pd.concat(gains)
    out = divergence_test(gains, deltas, n_boot=200, n_perm=200)
    assert (out.n == 12).all() and out.attrs["keys"] == ["setting", "lang"]
    assert set(out.layer) == {3} and "layer 3" in out.attrs["layer_choice"]
    assert out[out.hypothesis == "separation"].r.min() > 0.8
    with pytest.raises(DataValidationError, match="several"):
        divergence_test(gains[gains.setting == 1.0].drop(columns="setting"), deltas)
    with pytest.raises(DataValidationError, match="no per-language deltas"):
        divergence_test(gains, deltas, x="davies_bouldin")
    with pytest.raises(DataValidationError, match="Layer 7"):
        divergence_test(gains, deltas, layer=7)
    with pytest.raises(DataValidationError, match="lacks"):
        divergence_test(gains, deltas.drop(columns="setting"))
    one = divergence_test(gains, deltas, alignment=None, methods=("spearman",), n_boot=50, n_perm=50)
    assert list(one.hypothesis) == ["separation"]  # no alignment: no difference row either

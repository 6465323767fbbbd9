"""clas_lens.plotting: figures from small synthetic result tables (traces, names, annotations,
not pixels), input errors, one shared style, and save_figure with and without a browser."""
from __future__ import annotations

import doctest
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError

LANGS = ["en", "de", "zh", "hi"]


# ------------------------------------------------------------------------------------------------
# Synthetic inputs in the contract shapes (seeded)
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def counts_df():
    rows = []
    for layer in range(3):
        rows += [(layer, "all_shared", "", 10 + layer), (layer, "partial_shared", "", 20),
                 (layer, "non_activated", "", 5)]
        rows += [(layer, "specific", lang, 1 + i) for i, lang in enumerate(LANGS)]
    return pd.DataFrame(rows, columns=["layer", "category", "lang", "count"])


@pytest.fixture
def overlap_df():
    m = np.array([[1.0, 0.1, 0.0, 0.2], [0.1, 1.0, 0.3, 0.0], [0.0, 0.3, 1.0, 0.05],
                  [0.2, 0.0, 0.05, 1.0]])
    return pd.DataFrame(m, index=LANGS, columns=LANGS)


@pytest.fixture
def probs(rng):
    return {lang: rng.beta(0.5 + i, 3, size=(3, 64)) for i, lang in enumerate(LANGS)}


@pytest.fixture
def attr_df(rng):
    n = 40
    return pd.DataFrame({"layer": np.repeat(np.arange(4), 10), "neuron": np.tile(np.arange(10), 4),
                         "score": rng.normal(size=n)})


@pytest.fixture
def sweep_df():
    rows = []
    for task, metric in [("nli", "accuracy"), ("qa", "f1")]:
        for lang in LANGS:
            for beta in [0.0, 0.2, 0.4]:
                v = 0.5 + 0.1 * beta
                rows.append(dict(task=task, lang=lang, condition="clas", method="clas", alpha=1.0,
                                 beta=beta, gamma=0.2, layers=[1, 2], metric=metric, value=v,
                                 ci_low=v - 0.05, ci_high=v + 0.05, n=50, diff=v - 0.5,
                                 diff_ci_low=v - 0.55, diff_ci_high=v - 0.45, p_value=0.1))
        # a second metric for qa, never drawn by default
        rows.append(dict(task=task, lang="en", condition="clas", method="clas", alpha=1.0,
                         beta=0.2, gamma=0.2, layers=[1, 2], metric="exact_match", value=0.3,
                         ci_low=0.2, ci_high=0.4, n=50, diff=0.0, diff_ci_low=-0.1,
                         diff_ci_high=0.1, p_value=1.0))
    return pd.DataFrame(rows)


@pytest.fixture
def eval_df():
    rows = []
    for task, metric in [("nli", "accuracy"), ("qa", "f1")]:
        for cond in ["base", "clas", "int_mu"]:
            for i, lang in enumerate(LANGS):
                d = 0.0 if cond == "base" else 0.01 * (i + 1)
                rows.append(dict(task=task, lang=lang, condition=cond, metric=metric,
                                 value=0.5 + d, ci_low=0.45 + d, ci_high=0.55 + d, n=100,
                                 diff=d, diff_ci_low=d - 0.02, diff_ci_high=d + 0.02,
                                 p_value=1.0 if cond == "base" else [0.5, 0.01, 0.2, 0.001][i]))
    return pd.DataFrame(rows)


@pytest.fixture
def metrics_df():
    rows = []
    for cond in ["clas", "base"]:  # base deliberately not first
        for layer in range(4):
            rows.append(dict(condition=cond, layer=layer, lang="", metric="silhouette_cosine",
                             value=0.1 * layer + (0.05 if cond == "clas" else 0.0)))
            for lang in LANGS[1:]:
                rows.append(dict(condition=cond, layer=layer, lang=lang, metric="parallel_cosine",
                                 value=0.9 - 0.1 * layer))
    return pd.DataFrame(rows)


@pytest.fixture
def proj_df(rng):
    rows = []
    for cond in ["clas", "base"]:
        for lang in LANGS:
            for s in range(5):
                rows.append(dict(x=rng.normal(), y=rng.normal(), lang=lang, condition=cond,
                                 id=f"s{s}", text=f"<i>sentence</i> {s} in {lang} " + "word " * 30))
    return pd.DataFrame(rows)


@pytest.fixture
def points_df():
    return pd.DataFrame({"lang": ["de", "zh", "hi", "ar"], "gain": [0.01, 0.03, 0.02, 0.05],
                         "delta_separation": [0.0, 0.02, 0.01, 0.04],
                         "delta_alignment": [0.01, -0.01, 0.02, 0.0]})


@pytest.fixture
def test_df():
    return pd.DataFrame([
        dict(hypothesis="separation", metric="silhouette_cosine", layer=3, method="spearman",
             r=0.8, ci_low=0.1, ci_high=1.0, p_value=0.04, n=4),
        dict(hypothesis="alignment", metric="parallel_cosine", layer=3, method="spearman",
             r=-0.2, ci_low=-0.9, ci_high=0.7, p_value=0.7, n=4),
    ])


def _annotations(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def _styled(fig: go.Figure) -> bool:
    return fig.layout.template.layout.font.family == plotting.FONT_FAMILY


# ------------------------------------------------------------------------------------------------
# Docstrings and style
# ------------------------------------------------------------------------------------------------

def test_docstring_examples_run():
    result = doctest.testmod(plotting, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 15 and result.failed == 0


def test_template_registered_once_and_applied():
    assert plotting.TEMPLATE_NAME in pio.templates
    fig = plotting.apply_style(go.Figure(), title="t", width=400, height=300)
    assert _styled(fig) and fig.layout.title.text == "t"
    assert (fig.layout.width, fig.layout.height) == (400, 300)


def test_set_defaults_is_the_only_global_switch():
    old_t, old_r = pio.templates.default, pio.renderers.default
    try:
        plotting.set_defaults(renderer="json")
        assert pio.templates.default == "clas_lens" and pio.renderers.default == "json"
    finally:
        pio.templates.default, pio.renderers.default = old_t, old_r


def test_importing_plotting_changes_no_plotly_default_and_loads_no_kaleido():
    code = ("import plotly.io as pio; t = pio.templates.default; import sys, clas_lens.plotting; "
            "assert pio.templates.default == t, pio.templates.default; "
            "assert 'clas_lens' in pio.templates; "
            "print('kaleido' in sys.modules, 'choreographer' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_lang_colors_fixed_and_consistent():
    a = plotting.lang_colors(["en", "de", "zh"])
    b = plotting.lang_colors(["zh", "xx", "de"])
    assert a["de"] == b["de"] and a["zh"] == b["zh"]
    assert plotting.lang_colors(["xx"])["xx"] == b["xx"]  # unknown codes: stable hash colour
    assert plotting.lang_colors("zh_Hans")["zh_Hans"] == a["zh"]
    common = plotting.lang_colors(["en", "de", "es", "fr", "ru", "zh", "hi", "ar", "tr", "vi",
                                   "el", "th", "sw", "bg", "ur", "ja", "ro"])
    assert len(set(common.values())) == len(common)  # XNLI + XQuAD languages all distinct
    assert all(c.startswith("#") and len(c) == 7 for c in common.values())


def test_same_language_same_colour_across_figures(eval_df, proj_df, probs):
    want = plotting.lang_colors(["de"])["de"]
    gains = plotting.language_gains(eval_df)
    bars = next(t for t in gains.data if t.name == "target languages")
    assert dict(zip(bars.x, bars.marker.color))["de"] == want
    proj = plotting.projection_scatter(proj_df)
    assert {t.marker.color for t in proj.data if t.name == "de"} == {want}
    ecdf = plotting.activation_prob_distributions(probs)
    assert next(t for t in ecdf.data if t.name == "de").line.color == want


# ------------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------------

def test_neuron_categories(counts_df):
    fig = plotting.neuron_categories(counts_df)
    assert isinstance(fig, go.Figure) and _styled(fig)
    names = [t.name for t in fig.data]
    assert names == ["all-shared", "partial-shared", "specific", "non-activated"] + LANGS
    assert fig.layout.barmode == "stack"
    by_name = {t.name: t for t in fig.data}
    # specific total = sum over languages (1+2+3+4) when there is no lang == "" specific row
    assert list(by_name["specific"].y) == [10, 10, 10]
    assert list(by_name["all-shared"].y) == [10, 11, 12]
    assert by_name["de"].xaxis == "x2" and by_name["all-shared"].xaxis == "x"
    norm = plotting.neuron_categories(counts_df, normalize=True)
    stacked = sum(np.asarray(t.y, dtype=float) for t in norm.data if t.xaxis == "x")
    np.testing.assert_allclose(stacked, 1.0)


def test_neuron_categories_prefers_total_row_and_handles_missing_lang(counts_df):
    df = pd.concat([counts_df, pd.DataFrame([(0, "specific", "", 7), (1, "specific", "", 7),
                                             (2, "specific", "", 7)], columns=counts_df.columns)])
    df["lang"] = df["lang"].replace("", np.nan)  # as read back from CSV
    none = counts_df.astype({"lang": object})
    none.loc[none["lang"] == "", "lang"] = None  # as NeuronSet.counts() writes it
    assert [t.name for t in plotting.neuron_categories(none).data][:4] == [
        "all-shared", "partial-shared", "specific", "non-activated"]
    fig = plotting.neuron_categories(df)
    assert list(next(t for t in fig.data if t.name == "specific").y) == [7, 7, 7]
    only_shared = counts_df[counts_df["category"] != "specific"]
    assert [t.name for t in plotting.neuron_categories(only_shared).data] == [
        "all-shared", "partial-shared", "non-activated"]


def test_neuron_categories_extra_categories_and_normalising(counts_df):
    # methods add their own per-language categories (CLAS "active", AP "top"): not drawn
    active = counts_df[counts_df["category"] == "specific"].assign(category="active", count=99)
    fig = plotting.neuron_categories(pd.concat([counts_df, active]))
    assert len(fig.data) == 4 + len(LANGS) and 99 not in np.concatenate([t.y for t in fig.data])
    with pytest.raises(DataValidationError, match=r"none of the categories.*'top'"):
        plotting.neuron_categories(counts_df.assign(category="top"))
    # LAPE-like: only specific neurons; fractions need d_mlp
    lape = counts_df[counts_df["category"] == "specific"]
    with pytest.raises(DataValidationError, match="needs n_neurons"):
        plotting.neuron_categories(lape, normalize=True)
    frac = plotting.neuron_categories(lape, normalize=True, n_neurons=100)
    np.testing.assert_allclose(frac.data[0].y, [0.1, 0.1, 0.1])
    np.testing.assert_allclose(next(t for t in frac.data if t.name == "hi").y, [0.04] * 3)


def test_language_overlap(overlap_df):
    fig = plotting.language_overlap(overlap_df)
    (hm,) = fig.data
    assert hm.type == "heatmap" and list(hm.x) == LANGS and list(hm.y) == LANGS
    assert hm.texttemplate == "%{text}"
    text = np.asarray(hm.text)
    assert text[0, 1] == "0.10" and text[1, 2] == "0.30" and text[0, 0] == ""
    assert np.isnan(np.asarray(hm.z, dtype=float)[0, 0]) and hm.zmax == pytest.approx(0.3)
    full = plotting.language_overlap(overlap_df.loc[LANGS, LANGS[::-1]], mask_diagonal=False,
                                     decimals=1)
    assert np.asarray(full.data[0].text)[0, 0] == "1.0"
    assert list(full.data[0].x) == LANGS  # columns reordered to the index order


def test_language_overlap_errors(overlap_df):
    with pytest.raises(DataValidationError, match="square"):
        plotting.language_overlap(overlap_df.iloc[:, :3])
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        plotting.language_overlap(overlap_df * 2)
    with pytest.raises(DataValidationError, match="DataFrame"):
        plotting.language_overlap(overlap_df.to_numpy())


def test_activation_prob_distributions(probs):
    fig = plotting.activation_prob_distributions(probs)
    assert [t.name for t in fig.data] == LANGS
    for t in fig.data:
        x, y = np.asarray(t.x), np.asarray(t.y)
        assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) > 0) and y[-1] == 1.0
        assert 0 <= x.min() and x.max() <= 1
    per = plotting.activation_prob_distributions(probs, layers=[0, 2], by_layer=True)
    assert len(per.data) == 2 * len(LANGS)
    assert sum(t.showlegend for t in per.data) == len(LANGS)
    assert [a.text for a in per.layout.annotations] == ["layer 0", "layer 2"]


def test_activation_prob_distributions_accepts_torch():
    import torch

    p = {"en": torch.rand(2, 10, dtype=torch.float64), "de": torch.rand(2, 10)}
    fig = plotting.activation_prob_distributions(p, layers=[1])
    assert len(fig.data) == 2 and len(fig.data[0].x) == 10


def test_activation_prob_distributions_errors(probs):
    with pytest.raises(DataValidationError, match="same shape"):
        plotting.activation_prob_distributions({**probs, "xx": np.zeros((2, 64))})
    with pytest.raises(DataValidationError, match=r"\[0, 1\]"):
        plotting.activation_prob_distributions({"en": np.full((2, 3), 1.5)})
    with pytest.raises(DataValidationError, match="out of range"):
        plotting.activation_prob_distributions(probs, layers=[7])
    with pytest.raises(DataValidationError, match="2-D"):
        plotting.activation_prob_distributions({"en": np.zeros(4)})
    with pytest.raises(DataValidationError, match="non-empty"):
        plotting.activation_prob_distributions({})


def test_top_attributed_neurons(attr_df):
    fig = plotting.top_attributed_neurons(attr_df, k=5)
    (bar,) = fig.data
    expected = attr_df.reindex(attr_df["score"].abs().sort_values(ascending=False).index).head(5)
    assert list(bar.y) == [f"L{l}.N{n}" for l, n in zip(expected["layer"], expected["neuron"])]
    np.testing.assert_allclose(bar.x, expected["score"])
    assert bar.orientation == "h"
    colors = set(bar.marker.color)
    assert colors <= set(plotting.SIGN_COLORS.values())


def test_top_attributed_neurons_per_language(attr_df):
    df = pd.concat([attr_df.assign(lang="de"), attr_df.assign(lang="zh", score=-attr_df["score"])])
    fig = plotting.top_attributed_neurons(df, k=3)
    assert [t.name for t in fig.data] == ["de", "zh"]
    assert all(len(t.y) == 3 for t in fig.data)
    assert list(fig.data[0].y) == list(fig.data[1].y)  # same |score| order
    assert [a.text for a in fig.layout.annotations] == ["de: top 3 by |score|",
                                                       "zh: top 3 by |score|"]


def test_top_attributed_neurons_errors(attr_df):
    with pytest.raises(DataValidationError, match="aggregate"):
        plotting.top_attributed_neurons(pd.concat([attr_df, attr_df]))
    with pytest.raises(ValueError, match="positive integer"):
        plotting.top_attributed_neurons(attr_df, k=0)


def test_sweep_curves(sweep_df):
    fig = plotting.sweep_curves(sweep_df, x="beta")
    assert _annotations(fig) == ["nli · accuracy", "qa · f1"]
    bands = [t for t in fig.data if t.name.endswith("95% CI")]
    lines = [t for t in fig.data if not t.name.endswith("95% CI")]
    assert len(bands) == len(lines) == 2 * len(LANGS)
    assert [t.name for t in lines] == LANGS * 2
    assert sum(t.showlegend for t in lines) == len(LANGS)  # one legend entry per language
    assert all(b.fill == "toself" and b.showlegend is False for b in bands)
    de = next(t for t in lines if t.name == "de" and t.xaxis == "x")
    assert list(de.x) == [0.0, 0.2, 0.4]
    np.testing.assert_allclose(de.y, [0.5, 0.52, 0.54])
    band = next(t for t in bands if t.name == "de 95% CI" and t.xaxis == "x")
    np.testing.assert_allclose(band.y, [0.55, 0.57, 0.59, 0.49, 0.47, 0.45])
    # the gain view has a zero line per panel
    diff = plotting.sweep_curves(sweep_df, y="diff")
    assert len([s for s in diff.layout.shapes if s.y0 == 0 and s.y1 == 0]) == 2
    # one metric for one task
    em = plotting.sweep_curves(sweep_df, metric="exact_match")
    assert _annotations(em) == ["nli · exact_match", "qa · exact_match"]
    only_qa = plotting.sweep_curves(sweep_df, metric={"qa": "f1"})
    assert _annotations(only_qa) == ["qa · f1"]


def test_sweep_curves_ambiguous_rows_name_the_varying_column(sweep_df):
    two = pd.concat([sweep_df, sweep_df.assign(gamma=0.4, value=sweep_df["value"] - 0.1)])
    with pytest.raises(DataValidationError, match=r"differ in \['gamma'\].*fixed=\{'gamma'"):
        plotting.sweep_curves(two)
    fixed = plotting.sweep_curves(two, fixed={"gamma": 0.4})
    de = next(t for t in fixed.data if t.name == "de")
    np.testing.assert_allclose(de.y, [0.4, 0.42, 0.44])
    dashed = plotting.sweep_curves(two, dash="gamma")
    names = {t.name for t in dashed.data if not t.name.endswith("CI")}
    assert {"de · gamma=0.2", "de · gamma=0.4"} <= names
    styles = {t.line.dash for t in dashed.data if not t.name.endswith("CI")}
    assert styles == {"solid", "dash"}
    with pytest.raises(DataValidationError, match="no sweep_df rows match"):
        plotting.sweep_curves(two, fixed={"gamma": 9.0})


def test_sweep_curves_skips_rows_without_strength(sweep_df):
    # load_sweep: the baseline and int_mu cells have no beta (NaN)
    base = sweep_df.iloc[:2].assign(method="baseline", condition="baseline", beta=np.nan)
    int_mu = sweep_df.iloc[:2].assign(method="int_mu", beta=np.nan, value_kind="mean")
    fig = plotting.sweep_curves(pd.concat([sweep_df, base, int_mu]))
    assert all(np.isfinite(np.asarray(t.x, dtype=float)).all() for t in fig.data)
    assert len(fig.data) == 2 * 2 * len(LANGS)


def test_language_gains(eval_df):
    fig = plotting.language_gains(eval_df, anchor="en")
    assert len(_annotations(fig)) == 4 + 1  # 2 tasks x 2 steered conditions + footnote
    assert _annotations(fig)[0] == "nli · clas (mean target gain +0.030)"
    assert "error bars: 95% CI" in _annotations(fig)[-1]
    anchors = [t for t in fig.data if t.name == "anchor (en)"]
    targets = [t for t in fig.data if t.name == "target languages"]
    stars = [t for t in fig.data if t.name == "* p < 0.05"]
    assert len(anchors) == len(targets) == len(stars) == 4
    assert sum(t.showlegend for t in anchors) == 1 and sum(t.showlegend for t in targets) == 1
    assert list(anchors[0].x) == ["en"] and anchors[0].marker.pattern.shape == "/"
    assert list(targets[0].x) == ["de", "zh", "hi"]
    np.testing.assert_allclose(targets[0].y, [0.02, 0.03, 0.04])
    np.testing.assert_allclose(targets[0].error_y.array, [0.02] * 3)
    np.testing.assert_allclose(targets[0].error_y.arrayminus, [0.02] * 3)
    assert list(stars[0].x) == ["de", "hi"]  # p 0.01 and 0.001
    assert list(fig.layout.xaxis.categoryarray) == ["en", "de", "zh", "hi"]  # anchor first
    # the base condition is not a panel
    assert not any("base" in a for a in _annotations(fig)[:-1])


def test_language_gains_anchor_rules(eval_df):
    no_en = eval_df[eval_df["lang"] != "en"]
    with pytest.raises(DataValidationError, match="anchor language 'en'.*anchor=None"):
        plotting.language_gains(no_en)
    fig = plotting.language_gains(no_en, anchor=None, metric={"nli": "accuracy"})
    assert {t.name for t in fig.data} == {"target languages", "* p < 0.05"}
    assert len(_annotations(fig)) == 2 + 1
    with pytest.raises(DataValidationError, match="no steered condition"):
        plotting.language_gains(eval_df[eval_df["condition"] == "base"])
    with pytest.raises(DataValidationError, match="same"):
        plotting.language_gains(pd.concat([eval_df, eval_df]))


def test_cluster_by_layer(metrics_df):
    fig = plotting.cluster_by_layer(metrics_df)
    assert [(t.name, t.xaxis) for t in fig.data] == [("base", "x"), ("clas", "x"),
                                                      ("base", "x2"), ("clas", "x2")]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert fig.data[0].line.color == plotting.BASE_COLOR
    np.testing.assert_allclose(fig.data[1].y, [0.05, 0.15, 0.25, 0.35])
    assert _annotations(fig) == ["silhouette_cosine",
                                 "parallel_cosine (alignment) · mean over 3 languages"]
    per = plotting.cluster_by_layer(metrics_df, per_lang=True)
    names = [t.name for t in per.data]
    assert names[:2] == ["base", "clas"] and "de · base" in names and "hi · clas" in names
    assert len(per.data) == 2 + 2 * 3
    single = plotting.cluster_by_layer(metrics_df, alignment=None)
    assert len(single.data) == 2 and _annotations(single) == ["silhouette_cosine"]


def test_language_gains_with_evaluate_baseline_naming(eval_df):
    # evaluate() names the unsteered condition "baseline" and leaves its diff NaN
    df = eval_df.replace({"condition": {"base": "baseline"}})
    df.loc[df["condition"] == "baseline", ["diff", "diff_ci_low", "diff_ci_high",
                                           "p_value"]] = np.nan
    fig = plotting.language_gains(df)
    titles = _annotations(fig)[:-1]
    assert len(titles) == 4 and not any("baseline" in t for t in titles)
    assert fig.layout.yaxis.title.text == "Δ accuracy vs baseline"
    named = plotting.language_gains(eval_df, base="clas")  # any condition can be the reference
    assert {t.split(" (")[0] for t in _annotations(named)[:-1]} == {
        "nli · base", "nli · int_mu", "qa · base", "qa · int_mu"}


def test_cluster_by_layer_uses_pooled_rows(metrics_df):
    # cluster_metrics: silhouette "all" plus one row per language; the line is the "all" row
    sil = metrics_df[metrics_df["metric"] == "silhouette_cosine"]
    per_lang = pd.concat([sil.assign(lang=l, value=-1.0) for l in LANGS[1:]])
    df = pd.concat([metrics_df.replace({"lang": {"": "all"}}), per_lang])
    fig = plotting.cluster_by_layer(df)
    np.testing.assert_allclose(fig.data[0].y, [0.0, 0.1, 0.2, 0.3])
    assert _annotations(fig)[0] == "silhouette_cosine"
    per = plotting.cluster_by_layer(df, per_lang=True, alignment=None)
    want = {f"{lang} · {cond}" for lang in LANGS[1:] for cond in ("base", "clas")}
    assert {t.name for t in per.data} == want
    assert all(set(t.y) == {-1.0} for t in per.data)


def test_cluster_by_layer_unknown_metric(metrics_df):
    with pytest.raises(DataValidationError, match="silhouette_euclidean.*parallel_cosine"):
        plotting.cluster_by_layer(metrics_df, metric="silhouette_euclidean")


def test_projection_scatter(proj_df):
    fig = plotting.projection_scatter(proj_df)
    assert _annotations(fig) == ["base (before steering)", "clas"]
    assert len(fig.data) == 2 * len(LANGS)
    assert [t.name for t in fig.data] == LANGS * 2
    assert [t.xaxis for t in fig.data] == ["x"] * 4 + ["x2"] * 4  # base first
    assert sum(t.showlegend for t in fig.data) == len(LANGS)
    t = fig.data[0]
    assert t.mode == "markers" and len(t.x) == 5
    ident, text = t.customdata[0]
    assert ident == "s0" and "&lt;i&gt;sentence&lt;/i&gt;" in text and "<br>" in text
    assert "%{customdata[0]}" in t.hovertemplate and "%{customdata[1]}" in t.hovertemplate


def test_projection_scatter_layers(proj_df):
    two = pd.concat([proj_df.assign(layer=3), proj_df.assign(layer=5, x=proj_df["x"] + 100)])
    with pytest.raises(DataValidationError, match=r"several layers \[3, 5\].*layer="):
        plotting.projection_scatter(two)
    fig = plotting.projection_scatter(two, layer=5, share_axes=True)
    assert _annotations(fig) == ["base (before steering) · layer 5", "clas · layer 5"]
    assert min(min(t.x) for t in fig.data) > 50
    with pytest.raises(DataValidationError, match="no rows for layer 4"):
        plotting.projection_scatter(two, layer=4)


def test_divergence_scatter(points_df, test_df):
    fig = plotting.divergence_scatter(points_df, test_df)
    fits = [t for t in fig.data if t.name == "least-squares fit"]
    assert len(fits) == 2 and sum(t.showlegend for t in fits) == 1
    slope, intercept = np.polyfit(points_df["delta_separation"], points_df["gain"], 1)
    np.testing.assert_allclose(fits[0].y, slope * np.asarray(fits[0].x) + intercept)
    points = [t for t in fig.data if t.name != "least-squares fit"]
    assert len(points) == 2 * 4 and {t.name for t in points} == {"de", "zh", "hi", "ar"}
    notes = _annotations(fig)
    assert notes[:2] == ["gain vs separation (divergence)", "gain vs alignment"]
    assert "spearman r = +0.80 [+0.10, +1.00], p = 0.04, n = 4" in notes[2]
    assert "silhouette_cosine, layer 3" in notes[2]
    assert "r = -0.20" in notes[3] and "parallel_cosine" in notes[3]
    bare = plotting.divergence_scatter(points_df)
    assert _annotations(bare)[2] == "n = 4 points (no test given)"
    many = pd.concat([test_df, test_df.assign(layer=7, r=0.1)])
    with pytest.raises(DataValidationError, match=r"several layers \[3, 7\].*layer="):
        plotting.divergence_scatter(points_df, many)
    seven = plotting.divergence_scatter(points_df, many, layer=7)
    assert "r = +0.10" in _annotations(seven)[2] and "layer 7" in _annotations(seven)[2]


# ------------------------------------------------------------------------------------------------
# Missing columns: one clear error naming them, for every table-taking function
# ------------------------------------------------------------------------------------------------

CASES = [
    ("neuron_categories", "counts_df", "count", {}),
    ("top_attributed_neurons", "attr_df", "score", {}),
    ("sweep_curves", "sweep_df", "ci_high", {}),
    ("sweep_curves", "sweep_df", "beta", {}),
    ("language_gains", "eval_df", "diff_ci_low", {}),
    ("cluster_by_layer", "metrics_df", "value", {}),
    ("projection_scatter", "proj_df", "text", {}),
    ("divergence_scatter", "points_df", "delta_alignment", {}),
]


@pytest.mark.parametrize("func,fixture,column,kwargs", CASES)
def test_missing_columns_are_named(request, func, fixture, column, kwargs):
    df = request.getfixturevalue(fixture).drop(columns=[column])
    with pytest.raises(DataValidationError) as err:
        getattr(plotting, func)(df, **kwargs)
    msg = str(err.value)
    assert fixture in msg and f"missing column(s) ['{column}']" in msg


def test_missing_test_columns_and_non_frames(points_df, test_df):
    with pytest.raises(DataValidationError, match=r"test_df is missing column\(s\) \['p_value'\]"):
        plotting.divergence_scatter(points_df, test_df.drop(columns="p_value"))
    with pytest.raises(DataValidationError, match="must be a pandas DataFrame"):
        plotting.neuron_categories([{"layer": 0}])
    with pytest.raises(DataValidationError, match="no rows"):
        plotting.projection_scatter(pd.DataFrame(columns=["x", "y", "lang", "condition", "id",
                                                          "text"]))


# ------------------------------------------------------------------------------------------------
# save_figure
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def small_fig(eval_df):
    return plotting.language_gains(eval_df[eval_df["task"] == "nli"])


def _self_contained(html: str) -> bool:
    return "Plotly.newPlot" in html and len(html) > 1_000_000 and 'src="https://cdn' not in html


def test_save_figure_html_only(tmp_path, small_fig):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # HTML alone never warns
        out = plotting.save_figure(small_fig, tmp_path / "sub" / "gains.png", formats=["html"])
    assert out == {"html": tmp_path / "sub" / "gains.html"}
    assert _self_contained(out["html"].read_text(encoding="utf-8"))
    assert not list((tmp_path / "sub").glob(".*.tmp"))  # atomic: no temp file left
    dotted = plotting.save_figure(small_fig, tmp_path / "fig.v2", formats="html")
    assert dotted["html"].name == "fig.v2.html"
    with pytest.raises(ValueError, match="unknown figure format 'gif'"):
        plotting.save_figure(small_fig, tmp_path / "x", formats=("gif",))
    with pytest.raises(TypeError, match="go.Figure"):
        plotting.save_figure({"data": []}, tmp_path / "x")


def test_save_figure_without_browser_still_writes_html(tmp_path, small_fig, monkeypatch):
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(plotting, "_find_browser", lambda: None)
    ok, reason = plotting.static_export_available()
    assert ok is False and "apt-get install" in reason and "BROWSER_PATH" in reason
    with pytest.warns(plotting.StaticExportWarning, match="PNG/SVG not written"):
        out = plotting.save_figure(small_fig, tmp_path / "gains")
    assert isinstance(out["html"], Path) and _self_contained(out["html"].read_text("utf-8"))
    for fmt in ("png", "svg"):
        assert isinstance(out[fmt], str) and "no Chrome/Chromium found" in out[fmt]
        assert "apt-get install" in out[fmt] and not (tmp_path / f"gains.{fmt}").exists()


def test_bad_browser_path_is_reported(tmp_path, small_fig, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chrome"))
    ok, reason = plotting.static_export_available()
    assert not ok and "BROWSER_PATH=" in reason and "not an executable" in reason
    with pytest.warns(plotting.StaticExportWarning):
        out = plotting.save_figure(small_fig, tmp_path / "g", formats=("svg",))
    assert "BROWSER_PATH=" in out["svg"] and out["html"].exists()


def test_kaleido_failure_is_reported_not_raised(tmp_path, small_fig, monkeypatch):
    exe = tmp_path / "fake-chrome"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    monkeypatch.setenv("BROWSER_PATH", str(exe))

    def boom(*args, **kwargs):
        raise RuntimeError("browser crashed")

    monkeypatch.setattr(plotting, "_kaleido_export", boom)
    with pytest.warns(plotting.StaticExportWarning, match="browser crashed"):
        out = plotting.save_figure(small_fig, tmp_path / "g", formats=("html", "png"))
    assert out["html"].exists() and "kaleido failed" in out["png"]
    assert not (tmp_path / "g.png").exists()


STATIC_OK, STATIC_REASON = plotting.static_export_available()


@pytest.mark.slow
@pytest.mark.skipif(not STATIC_OK, reason=f"static export unavailable: {STATIC_REASON} "
                                          "(see tests/QUARANTINE.md)")
def test_save_figure_png_svg_with_browser(tmp_path, small_fig):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", plotting.StaticExportWarning)
        out = plotting.save_figure(small_fig, tmp_path / "gains", width=800, height=500, scale=1)
    elapsed = time.perf_counter() - t0
    png, svg = out["png"], out["svg"]
    assert isinstance(png, Path) and isinstance(svg, Path), out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert int.from_bytes(data[16:20], "big") == 800 and int.from_bytes(data[20:24], "big") == 500
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and len(text) > 10_000 and "target languages" in text
    assert elapsed < 120, f"static export took {elapsed:.1f} s"
    print(f"\nPNG+SVG export with {STATIC_REASON}: {elapsed:.1f} s")

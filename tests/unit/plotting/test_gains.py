"""clas_lens.plotting.gains: sweep curves and per-language gains over the unsteered condition."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError

from ._figs import LANGS
from ._figs import annotations as _annotations


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
    # 2 tasks x 2 steered conditions: a title and a corner note with the mean target gain; a footnote
    assert len(_annotations(fig)) == 4 + 4 + 1
    assert _annotations(fig)[0] == "nli · clas" and _annotations(fig)[4] == "mean +0.03"
    assert max(len(a) for a in _annotations(fig)[:-1]) <= 20  # short titles: panels never collide
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
    assert "MDE" not in _annotations(fig)[-1]  # no mde column, no dashes


def test_language_gains_draws_the_mde_beside_each_bar(eval_df):
    df = eval_df.assign(mde=np.where(eval_df["lang"] == "zh", np.nan, 0.05))
    fig = plotting.language_gains(df, anchor="en")
    dashes = [t for t in fig.data if t.name == "± MDE (80% power)"]
    assert len(dashes) == 4 and sum(t.showlegend for t in dashes) == 1
    assert list(dashes[0].x) == ["en", "en", "de", "de", "hi", "hi"]  # zh has no MDE: no dash
    np.testing.assert_allclose(dashes[0].y, [0.05, -0.05] * 3)
    assert "minimum detectable effect" in _annotations(fig)[-1]


def test_language_gains_anchor_rules(eval_df):
    no_en = eval_df[eval_df["lang"] != "en"]
    with pytest.raises(DataValidationError, match="anchor language 'en'.*anchor=None"):
        plotting.language_gains(no_en)
    fig = plotting.language_gains(no_en, anchor=None, metric={"nli": "accuracy"})
    assert {t.name for t in fig.data} == {"target languages", "* p < 0.05"}
    assert len(_annotations(fig)) == 2 + 2 + 1
    with pytest.raises(DataValidationError, match="no steered condition"):
        plotting.language_gains(eval_df[eval_df["condition"] == "base"])
    with pytest.raises(DataValidationError, match="same"):
        plotting.language_gains(pd.concat([eval_df, eval_df]))



def test_language_gains_with_evaluate_baseline_naming(eval_df):
    # evaluate() names the unsteered condition "baseline" and leaves its diff NaN
    df = eval_df.replace({"condition": {"base": "baseline"}})
    df.loc[df["condition"] == "baseline", ["diff", "diff_ci_low", "diff_ci_high",
                                           "p_value"]] = np.nan
    fig = plotting.language_gains(df)
    titles = [a for a in _annotations(fig)[:-1] if not a.startswith("mean ")]
    assert len(titles) == 4 and not any("baseline" in t for t in titles)
    assert fig.layout.yaxis.title.text == "Δ accuracy vs unsteered"
    named = plotting.language_gains(eval_df, base="clas")  # any condition can be the reference
    assert {t for t in _annotations(named)[:-1] if not t.startswith("mean ")} == {
        "nli · unsteered", "nli · int_mu", "qa · unsteered", "qa · int_mu"}




def test_unsteered_spelling_confidence_and_deprecated_alpha(eval_df, sweep_df):
    df = eval_df.replace({"condition": {"base": "unsteered"}})
    fig = plotting.language_gains(df)
    assert fig.layout.yaxis.title.text == "Δ accuracy vs unsteered"
    assert "steered − unsteered" in _annotations(fig)[-1]
    assert not any("unsteered" in t for t in _annotations(fig)[:-1])  # not a panel

    def stars(f, name="* p < 0.05"):
        return [list(t.x) for t in f.data if t.name == name]

    with pytest.warns(DeprecationWarning, match="confidence"):
        old = plotting.language_gains(df, alpha=0.05)
    new = plotting.language_gains(df, confidence=0.95)
    assert stars(old) == stars(new) == stars(fig) and stars(new)
    wide = plotting.language_gains(df, confidence=0.5)  # p < 0.5: zh (p = 0.2) too, not en (0.5)
    assert stars(wide, "* p < 0.5")[0] == ["de", "zh", "hi"]
    diff = plotting.sweep_curves(sweep_df, y="diff")
    assert diff.layout.yaxis.title.text == "Δ accuracy vs unsteered"


def _many_langs_sweep(n, tasks=("nli",)):
    from clas_lens.languages import LANGUAGES

    langs = list(LANGUAGES)[:n]
    rows = [dict(task=t, lang=l, metric="accuracy", beta=b, value=0.5 + 0.01 * i + 0.1 * b,
                 ci_low=0.4 + 0.01 * i, ci_high=0.6 + 0.01 * i + 0.2 * b)
            for t in tasks for i, l in enumerate(langs) for b in (0.0, 0.2, 0.5)]
    return langs, pd.DataFrame(rows)


def test_sweep_small_multiples_one_panel_per_language():
    langs, df = _many_langs_sweep(12)
    fig = plotting.sweep_curves(df)  # auto: 12 languages > OVERLAY_MAX -> small multiples
    assert _annotations(fig) == langs  # one panel per language, titled by it
    lines = [t for t in fig.data if not t.name.endswith("95% CI")]
    assert [t.name for t in lines] == langs and all(t.showlegend for t in lines)
    assert len({t.xaxis for t in lines}) == 12  # no two languages share a panel
    assert fig.layout.width == 1280  # 4 columns on screen
    y_ranges = {tuple(ax.range) for ax in fig.select_yaxes()}
    x_ranges = {tuple(ax.range) for ax in fig.select_xaxes()}
    assert len(y_ranges) == 1 and len(x_ranges) == 1  # one task: panels share both ranges
    lo, hi = next(iter(y_ranges))
    assert lo < df["ci_low"].min() and hi > df["ci_high"].max()
    assert fig.layout.yaxis.title.text == "accuracy" and fig.layout.yaxis2.title.text is None
    assert fig.layout.xaxis9.title.text == "beta" and fig.layout.xaxis.title.text is None
    overlaid = plotting.sweep_curves(df, facet=None)  # the old view is still there
    assert _annotations(overlaid) == ["nli · accuracy"] and len(overlaid.data) == 24
    few = plotting.sweep_curves(df[df["lang"].isin(langs[:4])])
    assert _annotations(few) == ["nli · accuracy"]  # up to OVERLAY_MAX: overlaid
    forced = plotting.sweep_curves(df[df["lang"].isin(langs[:2])], facet="lang")
    assert _annotations(forced) == langs[:2]
    with pytest.raises(ValueError, match="facet"):
        plotting.sweep_curves(df, facet="task")


def test_sweep_small_multiples_wrap_per_task_and_hide_empty_cells():
    langs, df = _many_langs_sweep(5, tasks=("nli", "qa"))
    df.loc[df["task"] == "qa", ["value", "ci_low", "ci_high"]] += 10  # qa on its own scale
    fig = plotting.sweep_curves(df, size="single")  # 3 columns: 2 rows per task
    titles = _annotations(fig)
    assert titles[:5] == [f"{l} · nli" for l in langs] and titles[5:] == [f"{l} · qa"
                                                                          for l in langs]
    hidden = [ax for ax in fig.select_xaxes() if ax.visible is False]
    assert len(hidden) == 2  # the empty 6th cell of each task block
    ranges = {tuple(fig.layout["yaxis" + t.yaxis[1:]].range) for t in fig.data}
    assert len(ranges) == 2  # one y range per task, shared by its panels
    assert min(r[1] for r in ranges) < 5 < max(r[0] for r in ranges)
    assert fig.layout.width == 336 and fig.layout.legend.orientation == "h"

"""clas_lens.plotting.neurons: category bars, activation ECDFs, top neurons (the overlap heatmap
is tested in test_overlap.py, beside its module)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from clas_lens import plotting
from clas_lens.errors import DataValidationError

from ._figs import LANGS
from ._figs import styled as _styled


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


"""Synthetic inputs of the plotting tests, in the shapes the figure functions take (seeded).

The unsteered condition is spelled "base" here on purpose: legacy names must still be read
(and are labelled "unsteered" in figures)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ._figs import LANGS


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

